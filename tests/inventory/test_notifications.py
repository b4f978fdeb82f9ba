"""Alert notifications: a real SMTP conversation (aiosmtpd) and a real HTTP group robot; once per
escalation; quiet hours; the daily digest; a failing channel never touches the alert; retries with
back-off; the rules' API for administrators."""
import base64
import datetime
import email
import hashlib
import hmac
import json
import socket
import threading
import urllib.parse
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import DatabaseError, transaction
from django.utils import timezone

from inventory.models import Alert, Notification, NotificationRule
from inventory.services import alerts, notifications
from tests import factories
from tests.conftest import api_client_for

Kind, Severity = Alert.Kind, Alert.Severity
Status = Notification.Status
TZ = timezone.get_fixed_timezone(8 * 60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on a free port; Django's SMTP backend pointed at it."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


class FakeRobot:
    """A group robot's webhook over real HTTP: records each POST, answers with `status` and `answer`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.status, self.answer = 200, {"errcode": 0, "errmsg": "ok"}
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                robot.requests.append((self.path, json.loads(body)))
                payload = json.dumps(robot.answer).encode()
                self.send_response(robot.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def robot():
    fake = FakeRobot()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _quick_channels(settings):
    settings.SPD_NOTIFY_TIMEOUT_SECONDS = 2
    settings.SPD_NOTIFY_BACKOFF_BASE_SECONDS = 60
    settings.SPD_NOTIFY_MAX_ATTEMPTS = 3


def _rule(hospital, **fields) -> NotificationRule:
    values = {"name": "duty", "channel": NotificationRule.Channel.EMAIL, "recipients": "duty@example.org",
              "min_severity": Severity.WARNING, **fields}
    rule = NotificationRule(hospital=hospital, **values)
    rule.full_clean()
    rule.save()
    return rule


def _raise(hospital, severity, subject="device:1", kind=Kind.DEVICE_OFFLINE, now=None) -> Alert:
    return alerts.raise_alert(hospital=hospital, kind=kind, subject_key=subject, severity=severity,
                              message=f"cabinet {subject} silent", now=now)


def _subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def test_an_alert_is_emailed_over_smtp_once_per_escalation_not_at_every_scan(hospital, smtp):
    _rule(hospital, recipients="duty@example.org, head@example.org")
    for _ in range(3):  # three scans see the same WARNING
        alert = _raise(hospital, Severity.WARNING)
    assert Notification.objects.count() == 1
    assert smtp.messages == []  # queued with the alert, sent by the relay afterwards

    report = notifications.deliver_due_notifications()
    assert (report.sent, report.failed) == (1, 0)
    (recipients, message), = smtp.messages
    assert sorted(recipients) == ["duty@example.org", "head@example.org"]
    assert hospital.name in _subject(message) and "cabinet device:1 silent" in message.get_payload(decode=True).decode()

    _raise(hospital, Severity.CRITICAL)  # escalated: told again, once
    _raise(hospital, Severity.CRITICAL)
    assert notifications.deliver_due_notifications().sent == 1
    assert len(smtp.messages) == 2
    assert set(Notification.objects.values_list("alert", "severity", "status")) == {
        (alert.pk, Severity.WARNING, Status.SENT), (alert.pk, Severity.CRITICAL, Status.SENT)}
    assert notifications.deliver_due_notifications().claimed == 0


def test_below_the_minimum_severity_nothing_is_sent_at_once_and_other_kinds_follow_their_rule(hospital, smtp):
    _rule(hospital, min_severity=Severity.CRITICAL)
    _rule(hospital, name="expiry", kind=Kind.NEAR_EXPIRY, min_severity=Severity.INFO, recipients="store@example.org")
    _raise(hospital, Severity.WARNING)
    _raise(hospital, Severity.INFO, subject="unit:5", kind=Kind.NEAR_EXPIRY)
    notifications.deliver_due_notifications()
    assert [recipients for recipients, _ in smtp.messages] == [["store@example.org"]]


def test_group_robots_get_wecom_and_signed_dingtalk_markdown_over_http(hospital, robot):
    _rule(hospital, name="wecom", channel=NotificationRule.Channel.WECOM, recipients="",
          webhook_url=f"{robot.url}/cgi-bin/webhook/send?key=abc")
    _rule(hospital, name="dingtalk", channel=NotificationRule.Channel.DINGTALK, recipients="",
          webhook_url=f"{robot.url}/robot/send?access_token=xyz", secret="SECdemo")
    _raise(hospital, Severity.CRITICAL)
    assert notifications.deliver_due_notifications().sent == 2

    by_path = {urllib.parse.urlsplit(path).path: (path, body) for path, body in robot.requests}
    _, wecom = by_path["/cgi-bin/webhook/send"]
    assert wecom["msgtype"] == "markdown" and set(wecom["markdown"]) == {"content"}
    assert "cabinet device:1 silent" in wecom["markdown"]["content"]
    path, dingtalk = by_path["/robot/send"]
    assert dingtalk["msgtype"] == "markdown" and set(dingtalk["markdown"]) == {"title", "text"}
    assert hospital.name in dingtalk["markdown"]["title"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    expected = base64.b64encode(
        hmac.new(b"SECdemo", f"{query['timestamp'][0]}\nSECdemo".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["access_token"] == ["xyz"] and query["sign"] == [expected]


def test_a_failing_channel_never_blocks_the_alert_and_is_retried_with_back_off(hospital, robot, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nobody listens
    _rule(hospital, name="mail")
    _rule(hospital, name="robot", channel=NotificationRule.Channel.WECOM, recipients="", webhook_url=robot.url)
    robot.status, robot.answer = 500, {"errcode": -1, "errmsg": "system busy"}

    with transaction.atomic():
        alert = _raise(hospital, Severity.CRITICAL)
    now = timezone.now()
    report = notifications.deliver_due_notifications(now=now)
    assert (report.claimed, report.failed, report.sent) == (2, 2, 0)
    assert Alert.objects.get(pk=alert.pk).status == Alert.Status.OPEN
    failed = {row.rule.name: row for row in Notification.objects.select_related("rule")}
    assert failed["mail"].status == Status.FAILED and "refused" in failed["mail"].last_error.lower()
    assert failed["robot"].status == Status.FAILED and "HTTP 500" in failed["robot"].last_error
    for row in failed.values():  # 60 s base, 50–100 % jitter
        assert now + datetime.timedelta(seconds=29) <= row.next_attempt_at <= now + datetime.timedelta(seconds=62)

    assert notifications.deliver_due_notifications(now=now + datetime.timedelta(seconds=5)).claimed == 0
    robot.status, robot.answer = 200, {"errcode": 0, "errmsg": "ok"}
    later = notifications.deliver_due_notifications(now=now + datetime.timedelta(minutes=2))
    assert (later.sent, later.failed) == (1, 1)
    gave_up = notifications.deliver_due_notifications(now=now + datetime.timedelta(hours=1))
    assert gave_up.gave_up == 1
    mail = Notification.objects.get(rule__name="mail")
    assert (mail.status, mail.attempts) == (Status.GAVE_UP, 3)

    notifications.resend(notification=mail)
    mail.refresh_from_db()
    assert (mail.status, mail.attempts) == (Status.PENDING, 0)


def test_a_robot_answering_an_error_code_is_a_failure(hospital, robot):
    _rule(hospital, channel=NotificationRule.Channel.DINGTALK, recipients="", webhook_url=robot.url)
    robot.answer = {"errcode": 310000, "errmsg": "keywords not in content"}
    _raise(hospital, Severity.CRITICAL)
    assert notifications.deliver_due_notifications().failed == 1
    assert "310000" in Notification.objects.get().last_error


def test_an_error_while_queueing_messages_does_not_cost_the_alert(hospital, monkeypatch):
    _rule(hospital)

    def broken(**kwargs):
        raise DatabaseError("outbox unavailable")

    monkeypatch.setattr(notifications, "queue_alert_notifications", broken)
    alert = _raise(hospital, Severity.CRITICAL)
    assert Alert.objects.filter(pk=alert.pk, status=Alert.Status.OPEN).exists()
    assert not Notification.objects.exists()


def test_scans_notify_through_sync_alerts_too(hospital, smtp):
    _rule(hospital, min_severity=Severity.CRITICAL)
    spec = alerts.AlertSpec(hospital.pk, "his-outbox", Severity.CRITICAL, "12 charges not delivered")
    for _ in range(2):
        alerts.sync_alerts(kind=Kind.HIS_DELIVERY_FAILING, specs=[spec], scope=alerts.Q(hospital=hospital))
    assert notifications.deliver_due_notifications().sent == 1
    assert len(smtp.messages) == 1


def _at(hour: int, minute: int = 0, day: int = 1) -> datetime.datetime:
    return datetime.datetime(2026, 12, day, hour, minute, tzinfo=TZ)


def test_quiet_hours_hold_all_but_critical_until_they_end(hospital, smtp):
    _rule(hospital, quiet_start=datetime.time(22), quiet_end=datetime.time(7))
    warning = _raise(hospital, Severity.WARNING, subject="device:1", now=_at(23, 30))
    critical = _raise(hospital, Severity.CRITICAL, subject="device:2", now=_at(23, 30))
    held = Notification.objects.get(alert=warning)
    assert held.next_attempt_at == _at(7, day=2)
    assert Notification.objects.get(alert=critical).next_attempt_at == _at(23, 30)

    assert notifications.deliver_due_notifications(now=_at(23, 31)).sent == 1
    assert notifications.deliver_due_notifications(now=_at(6, 59, day=2)).claimed == 0
    assert notifications.deliver_due_notifications(now=_at(7, 1, day=2)).sent == 1
    assert len(smtp.messages) == 2


def test_quiet_hours_within_a_day_and_outside_them():
    rule = NotificationRule(quiet_start=datetime.time(12), quiet_end=datetime.time(14))
    assert notifications.release_at(rule, Severity.INFO, _at(13)) == _at(14)
    assert notifications.release_at(rule, Severity.INFO, _at(15)) == _at(15)
    assert notifications.release_at(rule, Severity.CRITICAL, _at(13)) == _at(13)
    overnight = NotificationRule(quiet_start=datetime.time(22), quiet_end=datetime.time(7))
    assert notifications.release_at(overnight, Severity.WARNING, _at(3)) == _at(7)
    assert notifications.release_at(overnight, Severity.WARNING, _at(21)) == _at(21)


def test_a_held_message_is_cancelled_if_the_alert_is_resolved_or_escalated_meanwhile(hospital, smtp):
    _rule(hospital, quiet_start=datetime.time(22), quiet_end=datetime.time(7))
    resolved = _raise(hospital, Severity.WARNING, subject="device:1", now=_at(23))
    alerts.auto_resolve(hospital=hospital, kind=Kind.DEVICE_OFFLINE, subject_keys=["device:1"], now=_at(23, 10))
    escalated = _raise(hospital, Severity.WARNING, subject="device:2", now=_at(23))
    _raise(hospital, Severity.CRITICAL, subject="device:2", now=_at(23, 20))

    report = notifications.deliver_due_notifications(now=_at(7, 5, day=2))
    assert (report.sent, report.cancelled) == (1, 1)  # the CRITICAL; the resolved alert's held WARNING
    assert Notification.objects.get(alert=resolved).status == Status.CANCELLED
    assert dict(Notification.objects.filter(alert=escalated).values_list("severity", "status")) == {
        Severity.WARNING: Status.CANCELLED, Severity.CRITICAL: Status.SENT}
    assert len(smtp.messages) == 1


def test_the_daily_digest_tells_the_rest_once_a_day(hospital, other_hospital, smtp):
    _rule(hospital, min_severity=Severity.CRITICAL)
    _rule(hospital, name="no digest", min_severity=Severity.CRITICAL, digest=False, recipients="x@example.org")
    for number in range(3):
        _raise(hospital, Severity.WARNING, subject=f"device:{number}")
    _raise(hospital, Severity.INFO, subject="unit:9", kind=Kind.NEAR_EXPIRY)
    _raise(other_hospital, Severity.WARNING, subject="device:7")
    gone = _raise(hospital, Severity.WARNING, subject="device:8")
    alerts.resolve(alert=gone, user=factories.UserFactory(hospital=hospital, roles=["admin"]), note="fixed")

    now = _at(8)
    first = notifications.queue_digests(now=now)
    again = notifications.queue_digests(now=now + datetime.timedelta(hours=3))
    assert (first.queued, first.alerts, again.queued) == (1, 4, 0)
    digest = Notification.objects.get(kind=Notification.Kind.DIGEST)
    assert "4" in digest.subject and digest.body.count("cabinet device:") == 3

    assert notifications.deliver_due_notifications(now=now).sent == 1
    (recipients, message), = smtp.messages
    assert recipients == ["duty@example.org"]
    assert notifications.queue_digests(now=now + datetime.timedelta(days=1)).queued == 1


def test_the_digest_job_queues_and_sends(hospital, smtp):
    from inventory.jobs import run_job

    _rule(hospital, min_severity=Severity.CRITICAL)
    _raise(hospital, Severity.WARNING)
    result = run_job("alert_digest")
    assert result["queued"] == 1 and result["sent"]["sent"] == 1
    assert run_job("alert_digest")["queued"] == 0


# --- rules: model validation, admin, API ----------------------------------------------------------


def test_a_rule_needs_the_target_of_its_channel(hospital):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as email_error:
        _rule(hospital, recipients="not-an-address")
    assert "recipients" in email_error.value.message_dict
    with pytest.raises(ValidationError) as robot_error:
        _rule(hospital, channel=NotificationRule.Channel.WECOM, recipients="", webhook_url="")
    assert "webhook_url" in robot_error.value.message_dict
    with pytest.raises(ValidationError):
        _rule(hospital, quiet_start=datetime.time(22))


def test_the_admin_edits_rules(hospital, client):
    admin_user = factories.UserFactory(username="root", is_superuser=True, is_staff=True, hospital=None)
    client.force_login(admin_user)
    response = client.post("/admin/inventory/notificationrule/add/", {
        "hospital": hospital.pk, "name": "night duty", "kind": "", "channel": "EMAIL",
        "recipients": "duty@example.org", "webhook_url": "", "secret": "", "min_severity": "CRITICAL",
        "quiet_start": "", "quiet_end": "", "digest": "on", "is_active": "on", "created_at_0": "2026-12-01",
        "created_at_1": "08:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert NotificationRule.objects.get().name == "night duty"
    assert client.get("/admin/inventory/notification/").status_code == 200


def test_administrators_manage_their_hospitals_rules_through_the_api(hospital, other_hospital, keeper):
    admin_user = factories.UserFactory(hospital=hospital, roles=["admin"])
    client = api_client_for(admin_user)
    created = client.post("/api/v1/alerts/notification-rules/", {
        "name": "OR robot", "kind": Kind.RETURN_OVERDUE, "channel": "DINGTALK",
        "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=t", "secret": "SECx",
        "min_severity": "WARNING", "quiet_start": "22:00", "quiet_end": "07:00",
    }, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["hospital"] == hospital.pk and body["has_secret"] is True and "secret" not in body

    invalid = client.post("/api/v1/alerts/notification-rules/", {"name": "mail", "channel": "EMAIL"}, format="json")
    assert invalid.status_code == 400 and "recipients" in json.dumps(invalid.json())
    assert client.patch(f"/api/v1/alerts/notification-rules/{body['id']}/", {"quiet_end": None},
                        format="json").status_code == 400

    theirs = _rule(other_hospital)
    assert client.get(f"/api/v1/alerts/notification-rules/{theirs.pk}/").status_code == 404
    assert [row["id"] for row in client.get("/api/v1/alerts/notification-rules/").json()["results"]] == [body["id"]]
    assert api_client_for(keeper).get("/api/v1/alerts/notification-rules/").status_code == 403

    _raise(hospital, Severity.CRITICAL, kind=Kind.RETURN_OVERDUE, subject="unit:1")
    listed = client.get("/api/v1/alerts/notifications/").json()["results"]
    assert [(row["channel"], row["status"]) for row in listed] == [("DINGTALK", "PENDING")]
    assert api_client_for(keeper).get("/api/v1/alerts/notifications/").status_code == 403
    assert client.post(f"/api/v1/alerts/notifications/{listed[0]['id']}/resend/").status_code == 200


def test_with_a_broker_the_relay_task_is_queued_after_the_alert_commits(hospital, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    from inventory.tasks import deliver_notifications

    _rule(hospital)
    monkeypatch.setitem(deliver_notifications.app.conf, "task_always_eager", False)
    queued = []
    monkeypatch.setattr(deliver_notifications, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _raise(hospital, Severity.CRITICAL)
        assert queued == []  # nothing leaves before the commit
    assert len(callbacks) == 1 and queued == [()]

    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(deliver_notifications, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        alert = _raise(hospital, Severity.CRITICAL, subject="device:2")
    assert Notification.objects.filter(alert=alert, status=Status.PENDING).exists()  # the relay job sends it
