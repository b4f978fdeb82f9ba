"""Date-times in and out of the API are RFC 3339 with whole-minute offsets, whatever the moment.

Before 1901 the zone database gives Asia/Shanghai its local mean time, +08:05:43: a device event
stored then (before dates were checked, or under a wide SPD_ACCEPTED_DATE_YEARS) came back as
"1900-01-01T08:05:43+08:05:43", which no RFC 3339 client reads. And Python accepts offsets up to
±23:59 where PostgreSQL stops at ±15:59, so a filter with -21:38 was a server error."""
import datetime
import re

import pytest
from django.db import models
from django.utils import timezone
from rest_framework import serializers

from devices.models import Device, DeviceEvent
from inventory.api.fields import RFC3339DateTimeField
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
LONG_AGO = datetime.datetime(1900, 1, 1, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def events(hospital):
    device = Device.objects.create(hospital=hospital, code="CAB-OLD", name="柜", kind=Device.Kind.CABINET_HTTP)
    old = DeviceEvent.objects.create(device=device, event_id="old", kind="heartbeat", occurred_at=LONG_AGO,
                                     received_at=LONG_AGO, processed_at=LONG_AGO, body_sha256="0" * 64)
    now = DeviceEvent.objects.create(device=device, event_id="now", kind="heartbeat",
                                     occurred_at=datetime.datetime(2026, 11, 23, 1, 30, tzinfo=datetime.UTC),
                                     body_sha256="0" * 64)
    return old, now


def test_a_moment_before_1901_is_shown_in_utc_and_a_recent_one_in_local_time(events, keeper):
    rows = {row["event_id"]: row for row in api_client_for(keeper).get("/api/v1/devices/events/").json()["results"]}

    for name in ("occurred_at", "received_at", "processed_at"):
        assert rows["old"][name] == "1900-01-01T00:00:00Z", name
    assert rows["now"]["occurred_at"] == "2026-11-23T09:30:00+08:00"
    for row in rows.values():
        assert all(RFC3339.match(row[name]) for name in ("occurred_at", "received_at"))


def test_the_field_keeps_the_instant_and_every_model_serializer_uses_it():
    field = RFC3339DateTimeField()
    shown = field.to_representation(datetime.datetime(1899, 6, 1, 12, 0, tzinfo=datetime.UTC))
    assert shown == "1899-06-01T12:00:00Z"
    assert field.to_internal_value("1900-01-01T08:00:00+08:00") == LONG_AGO
    # Shanghai's summer time (1986–1991) is a whole hour: local time, as for any other moment.
    assert field.to_representation(datetime.datetime(1988, 7, 1, tzinfo=datetime.UTC)) == "1988-07-01T09:00:00+09:00"
    assert serializers.ModelSerializer.serializer_field_mapping[models.DateTimeField] is RFC3339DateTimeField
    assert timezone.get_current_timezone_name() == "Asia/Shanghai"


@pytest.mark.parametrize("moment", ["2488-02-13T05:33:44-21:38", "0001-01-01T00:00:00+08:00",
                                    "9999-12-31T23:59:59-08:00", "2026-11-23T09:30:00+14:59"])
def test_a_date_time_filter_with_any_offset_python_reads_is_answered(keeper, moment):
    client = api_client_for(keeper)
    for path, name in (("/api/v1/movements/", "occurred_after"), ("/api/v1/movements/", "occurred_before"),
                       ("/api/v1/his/settlements/", "settled_after")):
        response = client.get(path, {name: moment})
        assert response.status_code == 200, (path, name, response.content[:300])
