"""How a batch's new events are built and stored: copies of one event, each moment's text written once."""
import datetime
import hashlib
import json

import pytest
from django.utils.dateparse import parse_datetime

from devices.models import Device, DeviceEvent
from devices.services import _copy_of, body_hash, ingest_batch
from tests.conftest import stock_units


@pytest.fixture
def station(hospital, cath_lab_store):
    return Device.objects.create(
        hospital=hospital, code="RCV-1", name="RCV-1", kind=Device.Kind.WEDGE_SCANNER, location=cath_lab_store,
        scan_mode=Device.ScanMode.RECEIVE_INTO_LOCATION,
    )


@pytest.mark.django_db
def test_a_copy_of_an_event_has_its_values_its_own_state_and_its_device_without_a_query(
    station, django_assert_num_queries
):
    template = DeviceEvent(device=station)
    copy = _copy_of(template)
    copy.event_id, copy.payload = "e1", {"code": "x"}

    assert copy is not template and copy._state is not template._state
    assert copy._state.adding and copy._state.db == template._state.db  # as `copy.copy` gave
    for field in DeviceEvent._meta.concrete_fields:
        if field.attname not in ("event_id", "payload"):
            assert getattr(copy, field.attname) == getattr(template, field.attname), field.attname
    assert (template.event_id, template.payload) == ("", {})
    with django_assert_num_queries(0):
        assert copy.device is station and copy.device_id == station.pk


@pytest.mark.postgres  # the events' one INSERT of JSON rows (other databases: bulk_create)
@pytest.mark.django_db
def test_a_batch_stores_each_moment_as_its_event_holds_it(station, keeper_actor, supplier, warehouse, product):
    units = stock_units(keeper_actor, supplier, warehouse, product, ["M1", "M2", "M3"])
    sent = ["2026-11-23T09:30:00+08:00", "2026-11-23T01:30:00Z", "2026-11-23T09:30:00.250001+08:00"]  # two one instant
    bodies = [{"event_id": f"m{k}", "kind": "scan", "occurred_at": when, "payload": {"code": unit.udi_raw}}
              for k, (when, unit) in enumerate(zip(sent, units, strict=True))]
    bodies.append({"event_id": "h", "kind": "heartbeat", "occurred_at": sent[2], "payload": {}})

    outcomes = ingest_batch(device=station, bodies=bodies)

    assert [o["status"] for o in outcomes] == ["PROCESSED"] * 4
    stored = {event.event_id: event for event in DeviceEvent.objects.all()}
    assert [stored[f"m{k}"].occurred_at for k in range(3)] == [parse_datetime(when) for when in sent]
    assert stored["h"].occurred_at == parse_datetime(sent[2])
    assert len({event.received_at for event in stored.values()}) == 1
    scans = {stored[f"m{k}"].processed_at for k in range(3)}
    assert len(scans) == 1  # processed together
    received = stored["h"].received_at
    assert received <= scans.pop() <= stored["h"].processed_at <= received + datetime.timedelta(minutes=1)
    assert all(event.result and not event.error_code for event in stored.values())


def test_a_body_hash_is_the_sha256_of_the_canonical_json_of_the_body():
    bodies = [
        {"event_id": "e", "kind": "scan", "occurred_at": "2026-12-07T09:30:00+08:00", "payload": {"code": "]d201\x1d21"}},
        {"payload": {"z": [1, 2.5, None, True], "a": {"名": "导管", "k": "\\u0000"}}, "event_id": "é"},
    ]
    for body in bodies:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert body_hash(body) == hashlib.sha256(canonical.encode()).hexdigest()
