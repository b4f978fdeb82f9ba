"""Idempotent execution of stock operations.

Every operation that moves stock takes a caller-chosen idempotency key. The same key with the same
request returns the first outcome and writes nothing; with a different request it is refused (409).
"""
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.apps import apps
from django.db import IntegrityError, models, transaction

from inventory.errors import Refusal, Refused
from inventory.models import Hospital, IdempotencyRecord

T = TypeVar("T", bound=models.Model)


def fingerprint(operation: str, payload: object) -> str:
    canonical = json.dumps({"operation": operation, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Claim:
    """The record `run_once` writes for a key after the work, for work that may write it itself, in
    its own statement (`run_once(…, perform_with_claim=…)`): it then sets `recorded`."""

    hospital_id: int
    key: str
    operation: str
    fingerprint: str
    recorded: bool = False

    def record(self, result_model: str) -> IdempotencyRecord:
        """The record, not yet saved, of an outcome of `result_model` (its id the writer's)."""
        return IdempotencyRecord(hospital_id=self.hospital_id, key=self.key, operation=self.operation,
                                 fingerprint=self.fingerprint, result_model=result_model)


def run_once(
    *, hospital: Hospital, key: str, operation: str, payload: object, perform: Callable[[], T] | None = None,
    record_first: bool = True, perform_with_claim: Callable[[Claim], T] | None = None,
) -> tuple[T, bool]:
    """Run `perform` once per (hospital, key), atomically; return (outcome, performed_now).

    The record is inserted before the work, inside the same transaction: a concurrent request with
    the same key blocks on the unique index until the first commits, then replays its outcome. If
    the work fails, the record is rolled back with it and the key stays free.

    `record_first=False` inserts the record after the work, with its outcome (one statement less),
    for work that locks first what a second request with the same key would lock: that request
    waits for the first to commit, then either is refused by what the first did — and finds its
    record — or does the work again and fails on the record's unique index; either way everything
    it wrote is rolled back and the first outcome replayed (or 409 for a different request).

    `perform_with_claim` instead of `perform` (with `record_first=False`): the work is given the
    record to write and may write it in its own last statement (`Claim.recorded`), else it is
    inserted after the work as above. Either way the same row, and the same outcome on its unique index.
    """
    if not key or len(key) > 128:
        raise Refused(Refusal.IDEMPOTENCY_KEY_INVALID)
    request_fingerprint = fingerprint(operation, payload)
    claim = Claim(hospital.pk, key, operation, request_fingerprint)
    if perform_with_claim is not None:
        record_first, perform = False, lambda: perform_with_claim(claim)
    try:
        with transaction.atomic():
            if record_first:
                record = IdempotencyRecord.objects.create(
                    hospital=hospital, key=key, operation=operation, fingerprint=request_fingerprint
                )
            outcome = perform()
            if record_first:
                record.result_model = outcome._meta.label
                record.result_id = outcome.pk
                record.save(update_fields=["result_model", "result_id"])
            elif not claim.recorded:
                IdempotencyRecord.objects.create(
                    hospital=hospital, key=key, operation=operation, fingerprint=request_fingerprint,
                    result_model=outcome._meta.label, result_id=outcome.pk,
                )
            return outcome, True
    except IntegrityError:
        first = IdempotencyRecord.objects.filter(hospital=hospital, key=key).first()
        if first is None:
            raise
    except Refused:
        if record_first or (first := IdempotencyRecord.objects.filter(hospital=hospital, key=key).first()) is None:
            raise
    if first.operation != operation or first.fingerprint != request_fingerprint:
        raise Refused(Refusal.IDEMPOTENCY_CONFLICT, key=key)
    return apps.get_model(first.result_model).objects.get(pk=first.result_id), False
