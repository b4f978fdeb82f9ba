"""Binding RFID tags to units (贴标). One live tag per unit and one unit per tag; rebinding needs an
explicit unbind, so a tag can never silently move from one unit to another."""
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.actors import Actor
from inventory.errors import Refusal, Refused
from inventory.models import TagBinding, Unit
from inventory.validators import refuse_personal_ids

_EPC = re.compile(r"^[0-9A-F]{8,64}$")


def normalise_epc(epc: str) -> str:
    value = epc.strip().replace(" ", "").replace(":", "").upper()
    if not _EPC.match(value) or len(value) % 2:
        raise Refused(Refusal.INVALID_EPC, epc=epc)
    return value


def bind_tag(*, unit: Unit, epc: str, actor: Actor) -> TagBinding:
    """Bind `epc` to `unit`. Binding the same tag to the same unit again is a no-op."""
    epc = normalise_epc(epc)
    with transaction.atomic():
        unit = Unit.objects.select_for_update().get(pk=unit.pk)
        if unit.epc == epc:
            return unit.tag_bindings.get(epc=epc, unbound_at__isnull=True)
        if unit.epc:
            raise Refused(Refusal.UNIT_ALREADY_TAGGED, unit=unit.serial, epc=unit.epc)
        holder = Unit.objects.filter(epc=epc).first()
        if holder is not None and holder.hospital_id != unit.hospital_id:
            # Tags are unique across the alliance, but which unit of another hospital holds one is
            # none of this hospital's business.
            raise Refused(Refusal.TAG_NOT_AVAILABLE, epc=epc)
        if holder is not None:
            raise Refused(Refusal.TAG_IN_USE, epc=epc, unit=holder.serial)
        unit.epc = epc
        try:
            with transaction.atomic():
                unit.save(update_fields=["epc"])
        except IntegrityError as error:  # bound elsewhere concurrently
            raise Refused(Refusal.TAG_IN_USE, epc=epc, unit="?") from error
        return TagBinding.objects.create(unit=unit, epc=epc, bound_by=actor.user, bound_by_device=actor.device)


def unbind_tag(*, unit: Unit, actor: Actor, reason: str) -> TagBinding:
    """Take the tag off a unit (damaged tag, relabelling); the history keeps who and why."""
    if not reason:
        raise Refused(Refusal.REASON_REQUIRED)
    refuse_personal_ids(reason=reason)
    with transaction.atomic():
        unit = Unit.objects.select_for_update().get(pk=unit.pk)
        if not unit.epc:
            raise Refused(Refusal.UNIT_NOT_TAGGED, unit=unit.serial)
        binding = unit.tag_bindings.get(epc=unit.epc, unbound_at__isnull=True)
        binding.unbound_at, binding.unbound_by, binding.unbind_reason = timezone.now(), actor.user, reason
        binding.save(update_fields=["unbound_at", "unbound_by", "unbind_reason"])
        unit.epc = None
        unit.save(update_fields=["epc"])
        return binding
