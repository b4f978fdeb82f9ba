"""Alert notifications: e-mail and group robots (企业微信 / 钉钉) for people not looking at the pages.

Queueing (`queue_alert_notifications`, called by `alerts.sync_alerts` inside its transaction)
    When an alert is created, or escalated to a higher severity, one Notification (the outbox row)
    is written for each active rule of its hospital and kind whose minimum severity it reaches, in
    the alert's own transaction: the alert and the promise to tell of it commit together. The
    row's `dedup_key` (alert, severity, rule) is unique, so every later scan that sees the same
    alert again writes nothing: an alert is notified once per escalation, not at every scan. An
    escalation cancels the same rule's lower-severity message of that alert if it is still waiting.
    Quiet hours hold a non-CRITICAL message until they end (`next_attempt_at`).

Sending (`deliver_due_notifications`; the `notification_relay` job, and a Celery task queued on commit)
    Outside any transaction, like the HIS relay (services/his.py): due rows are claimed with a
    lease (`claimed_until`) in a short transaction that commits before the network is touched,
    and each outcome is written only if the lease still holds. A channel that fails (SMTP server
    down, webhook 500, robot answering errcode ≠ 0, timeout) makes the row FAILED with the error
    and a retry after an exponential back-off with jitter; after SPD_NOTIFY_MAX_ATTEMPTS it is
    GAVE_UP. The alert is never touched by any of this. A message whose alert has been resolved
    before it could be sent (e.g. held through quiet hours) is CANCELLED instead.

Digest (`queue_digests`; the `alert_digest` job, daily)
    For each active rule with `digest` on: the hospital's unresolved alerts of its kind below its
    minimum severity, in one message a day (unique per rule and day; quiet hours apply).

Settings (read at each use, with these defaults):
    SPD_NOTIFY_TIMEOUT_SECONDS       connect and read timeout of one send (10); a claim lasts three times this
    SPD_NOTIFY_MAX_ATTEMPTS          attempts before a message is GAVE_UP (8)
    SPD_NOTIFY_BACKOFF_BASE_SECONDS  delay before the first retry (60); doubles per attempt, capped at 6 h
    SPD_NOTIFY_DIGEST_MAX_ALERTS     alerts listed one by one in a digest (30); the rest are counted
    EMAIL_* and DEFAULT_FROM_EMAIL   Django's mail settings (the SMTP server)
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from inventory.models import Alert, Hospital, Notification, NotificationRule
from inventory.task_queue import DELIVER_NOTIFICATIONS_TASK, queue_task, tasks_run_in_process

logger = logging.getLogger(__name__)

Severity, Status = Alert.Severity, Notification.Status
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
DUE = (Status.PENDING, Status.FAILED)
MAX_BACKOFF_SECONDS = 6 * 3600
MAX_ERROR_CHARS = 2000
MAX_RESPONSE_BYTES = 64 * 1024
# WeCom refuses markdown content over 4096 bytes; DingTalk's limit is larger. Stay under both.
MAX_WEBHOOK_BYTES = 4000
_CHUNK = 500


def _setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


def notify_timeout() -> float:
    return float(_setting("SPD_NOTIFY_TIMEOUT_SECONDS", 10))


def notify_max_attempts() -> int:
    return int(_setting("SPD_NOTIFY_MAX_ATTEMPTS", 8))


def backoff_seconds(attempts: int) -> float:
    """Delay before the next try after `attempts` failed ones: base × 2^(attempts-1), capped, 50–100 % jitter."""
    base = float(_setting("SPD_NOTIFY_BACKOFF_BASE_SECONDS", 60))
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** min(max(attempts - 1, 0), 30))
    return delay * random.uniform(0.5, 1.0)


# --- quiet hours ----------------------------------------------------------------------------------


def release_at(rule: NotificationRule, severity: str, now: datetime.datetime) -> datetime.datetime:
    """When a message of `severity` may go out under `rule`: now, or the end of its quiet hours.

    CRITICAL is never held. Quiet hours are in the hospital's time (settings.TIME_ZONE) and may
    span midnight (22:00–07:00).
    """
    start, end = rule.quiet_start, rule.quiet_end
    if severity == Severity.CRITICAL or start is None or end is None or start == end:
        return now
    local = timezone.localtime(now)
    moment = local.time()
    if start < end:
        quiet, end_day = start <= moment < end, local.date()
    else:
        quiet = moment >= start or moment < end
        end_day = local.date() if moment < end else local.date() + datetime.timedelta(days=1)
    if not quiet:
        return now
    return timezone.make_aware(datetime.datetime.combine(end_day, end), timezone.get_current_timezone())


# --- queueing -------------------------------------------------------------------------------------


def queue_alert_notifications(*, alerts: Iterable[Alert], now: datetime.datetime | None = None) -> int:
    """Write the messages due for these alerts (just created or escalated); returns how many are new.

    Called inside the alert's transaction. A message already written for an alert at this severity
    and rule is not written again (unique `dedup_key`), whatever the number of scans.
    """
    alerts = [alert for alert in alerts if alert.pk is not None]
    if not alerts:
        return 0
    now = now or timezone.now()
    rules = list(
        NotificationRule.objects.filter(
            hospital_id__in={alert.hospital_id for alert in alerts}, is_active=True,
        ).filter(Q(kind="") | Q(kind__in={alert.kind for alert in alerts})).select_related("hospital")
    )
    if not rules:
        return 0
    rows = []
    for alert in alerts:
        for rule in rules:
            if rule.hospital_id != alert.hospital_id or rule.kind not in ("", alert.kind):
                continue
            if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[rule.min_severity]:
                continue
            subject, body = render_alert(alert, rule.hospital)
            rows.append(Notification(
                rule=rule, hospital_id=alert.hospital_id, alert=alert, kind=Notification.Kind.ALERT,
                severity=alert.severity, dedup_key=f"alert:{alert.pk}:{alert.severity}:rule:{rule.pk}",
                subject=subject, body=body, created_at=now, next_attempt_at=release_at(rule, alert.severity, now),
            ))
    if not rows:
        return 0
    keys = [row.dedup_key for row in rows]
    # A savepoint: should writing the messages fail, the caller's alert transaction goes on without them.
    with transaction.atomic():
        before = sum(Notification.objects.filter(dedup_key__in=chunk).count() for chunk in _chunks(keys))
        Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=_CHUNK)
        for chunk in _chunks(sorted({row.alert_id for row in rows})):
            # A message still waiting (quiet hours, retries) for a lower severity of the alert is superseded.
            Notification.objects.filter(alert_id__in=chunk, status__in=DUE).exclude(
                severity=F("alert__severity")
            ).update(status=Status.CANCELLED, last_error="superseded by an escalation of the alert",
                     claimed_until=None)
    transaction.on_commit(_kick_relay)
    return len(rows) - before


def _chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _kick_relay() -> None:
    """After the alert commits, ask a worker to send now rather than at the relay's next run.

    Only with a real broker: with in-process tasks the sending would hold up whoever raised the
    alert (a scan, a request) for a channel's timeout; the relay job sends within its interval.
    """
    if tasks_run_in_process():
        return
    try:
        queue_task(DELIVER_NOTIFICATIONS_TASK)
    except Exception:  # the broker is down: the relay job still finds the rows
        logger.exception("could not queue the notification relay; the scheduled relay will send")


def render_alert(alert: Alert, hospital: Hospital) -> tuple[str, str]:
    """The subject and the (markdown-friendly) body of one alert's message, in the hospital's language."""
    with translation.override(settings.LANGUAGE_CODE):
        severity = Severity(alert.severity).label
        subject = _("[SPD %(severity)s] %(hospital)s: %(kind)s") % {
            "severity": severity, "hospital": hospital.name, "kind": Alert.Kind(alert.kind).label,
        }
        lines = [
            alert.message,
            "",
            _("Severity: %(severity)s") % {"severity": severity},
            _("Subject: %(subject)s") % {"subject": alert.subject_key},
            _("First raised: %(at)s") % {"at": f"{timezone.localtime(alert.first_raised_at):%Y-%m-%d %H:%M}"},
            _("Alert no. %(id)s — acknowledge or resolve it on the alerts page.") % {"id": alert.pk},
        ]
    return str(subject)[:200], "\n".join(str(line) for line in lines)


@dataclass
class DigestReport:
    rules: int = 0
    queued: int = 0
    alerts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def queue_digests(*, now: datetime.datetime | None = None) -> DigestReport:
    """Write today's digest for each active rule with `digest` on that has alerts below its threshold.

    One per rule and day (unique key): running the job again the same day writes nothing.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    limit = int(_setting("SPD_NOTIFY_DIGEST_MAX_ALERTS", 30))
    report = DigestReport()
    rules = NotificationRule.objects.filter(is_active=True, digest=True).exclude(min_severity=Severity.INFO)
    for rule in rules.select_related("hospital").order_by("pk"):
        report.rules += 1
        below = [level for level, rank in SEVERITY_RANK.items() if rank < SEVERITY_RANK[rule.min_severity]]
        rest = Alert.objects.filter(hospital=rule.hospital, severity__in=below).exclude(status=Alert.Status.RESOLVED)
        if rule.kind:
            rest = rest.filter(kind=rule.kind)
        counts = list(rest.order_by().values("kind", "severity").annotate(count=Count("pk")).order_by("kind", "severity"))
        total = sum(row["count"] for row in counts)
        if not total:
            continue
        subject, body = _render_digest(rule, today, counts, total, list(rest.order_by("-last_seen_at", "-pk")[:limit]))
        _, created = Notification.objects.get_or_create(
            dedup_key=f"digest:{rule.pk}:{today.isoformat()}",
            defaults={"rule": rule, "hospital": rule.hospital, "kind": Notification.Kind.DIGEST, "subject": subject,
                      "body": body, "created_at": now, "next_attempt_at": release_at(rule, Severity.INFO, now)},
        )
        report.queued += created
        report.alerts += total if created else 0
    return report


def _render_digest(
    rule: NotificationRule, day: datetime.date, counts: list[dict], total: int, newest: list[Alert]
) -> tuple[str, str]:
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[SPD daily digest] %(hospital)s %(day)s: %(count)s open alerts") % {
            "hospital": rule.hospital.name, "day": day.isoformat(), "count": total,
        }
        lines = [_("Open alerts below %(severity)s, by kind:") % {"severity": Severity(rule.min_severity).label}]
        lines += [
            f"- {Alert.Kind(row['kind']).label} / {Severity(row['severity']).label}: {row['count']}" for row in counts
        ]
        lines += ["", _("Latest:")]
        lines += [f"- [{Severity(alert.severity).label}] {alert.message}" for alert in newest]
        if total > len(newest):
            lines.append(_("… and %(count)s more on the alerts page.") % {"count": total - len(newest)})
    return str(subject)[:200], "\n".join(str(line) for line in lines)


# --- sending --------------------------------------------------------------------------------------


@dataclass
class NotifyReport:
    """What one relay run did. `lost`: taken over by another relay before its outcome was written."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    cancelled: int = 0
    lost: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def deliver_due_notifications(*, limit: int = 50, now: datetime.datetime | None = None) -> NotifyReport:
    """Send the due messages, each by one relay at a time, outside any transaction (see the module docstring)."""
    start, started = now or timezone.now(), time.monotonic()

    def clock() -> datetime.datetime:
        return start + datetime.timedelta(seconds=time.monotonic() - started)

    report = NotifyReport()
    lease = datetime.timedelta(seconds=3 * notify_timeout())
    token = start + lease
    claimed = _claim(limit=limit, now=start, until=token)
    rows = list(
        Notification.objects.filter(pk__in=claimed, claimed_until=token).select_related("rule", "alert")
        .order_by("pk")
    )
    report.claimed = len(rows)
    for row in rows:
        mine = Notification.objects.filter(pk=row.pk, claimed_until=token)
        renewed = clock() + lease
        if not mine.update(claimed_until=renewed):
            report.lost += 1
            continue
        mine = Notification.objects.filter(pk=row.pk, claimed_until=renewed)
        if row.alert is not None and row.alert.status == Alert.Status.RESOLVED:
            report.cancelled += mine.update(
                status=Status.CANCELLED, claimed_until=None, last_error="the alert was resolved before it was sent"
            )
            continue
        error = send(row)
        at = clock()
        if not error:
            written = mine.update(status=Status.SENT, sent_at=at, attempts=F("attempts") + 1, claimed_until=None,
                                 last_error="")
            report.sent += written
        else:
            attempts = row.attempts + 1
            gave_up = attempts >= notify_max_attempts()
            written = mine.update(
                status=Status.GAVE_UP if gave_up else Status.FAILED, attempts=F("attempts") + 1,
                last_error=error[:MAX_ERROR_CHARS], claimed_until=None,
                next_attempt_at=at + datetime.timedelta(seconds=backoff_seconds(attempts)),
            )
            if written:
                setattr(report, "gave_up" if gave_up else "failed", getattr(report, "gave_up" if gave_up else "failed")
                        + 1)
                logger.warning("notification %s via %s failed (attempt %s): %s", row.pk, row.rule.channel, attempts,
                               error)
        if not written:
            report.lost += 1
    return report


def _claim(*, limit: int, now: datetime.datetime, until: datetime.datetime) -> list[int]:
    """Mark up to `limit` due, unclaimed messages as ours until `until`, commit, and return their ids."""
    due = Q(status__in=DUE, next_attempt_at__lte=now) & (Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",)).filter(due).order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Notification.objects.filter(due, pk__in=ids).update(claimed_until=until)
    return ids


def send(notification: Notification) -> str:
    """Send one message through its rule's channel; the error as text, or "" when it went through.

    Never raises for a network, SMTP or HTTP failure: the relay records it and retries.
    """
    rule = notification.rule
    if rule.channel == NotificationRule.Channel.EMAIL:
        return send_email(rule, notification.subject, notification.body)
    return send_webhook(rule, notification.subject, notification.body)


def send_email(rule: NotificationRule, subject: str, body: str) -> str:
    """Through Django's mail backend (settings.EMAIL_*), one message to all the rule's recipients."""
    try:
        connection = get_connection(fail_silently=False, timeout=notify_timeout())
        message = EmailMessage(subject=subject, body=body, to=rule.recipient_list(), connection=connection)
        sent = message.send(fail_silently=False)
    except (OSError, ValueError) as error:  # smtplib.SMTPException is an OSError
        return f"e-mail to {rule.recipients!r} failed: {type(error).__name__}: {error}"
    return "" if sent else "the mail backend sent nothing"


def webhook_message(rule: NotificationRule, subject: str, body: str) -> dict:
    """The group robot's JSON: WeCom `markdown.content`, DingTalk `markdown.title` + `markdown.text`."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
    text = f"**{subject}**\n{quoted}"
    while len(text.encode()) > MAX_WEBHOOK_BYTES:
        text = text[: len(text) * 9 // 10] + "…"
    if rule.channel == NotificationRule.Channel.WECOM:
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": subject, "text": text}}


def signed_url(rule: NotificationRule, *, at_ms: int | None = None) -> str:
    """The webhook URL; for a DingTalk robot with a secret, with its `timestamp` and HMAC-SHA256 `sign`."""
    if rule.channel != NotificationRule.Channel.DINGTALK or not rule.secret:
        return rule.webhook_url
    at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
    digest = hmac.new(rule.secret.encode(), f"{at_ms}\n{rule.secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    separator = "&" if "?" in rule.webhook_url else "?"
    return f"{rule.webhook_url}{separator}timestamp={at_ms}&sign={sign}"


def send_webhook(rule: NotificationRule, subject: str, body: str) -> str:
    """POST the markdown message to the group robot; "" when it answers 2xx with errcode 0 (or none)."""
    data = json.dumps(webhook_message(rule, subject, body), ensure_ascii=False).encode()
    request = urllib.request.Request(
        signed_url(rule), data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    timeout = notify_timeout()
    where = urllib.parse.urlsplit(rule.webhook_url)._replace(query="").geturl()  # the key stays out of the log
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        return f"{where}: HTTP {error.code}: {error.read(2000).decode('utf-8', 'replace')}"
    except TimeoutError:
        return f"{where}: no answer within {timeout:g} s"
    except urllib.error.URLError as error:
        return f"cannot reach {where}: {error.reason}"
    except (OSError, http.client.HTTPException) as error:
        return f"{where}: {type(error).__name__}: {error}"
    try:
        answer = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return ""
    if isinstance(answer, dict) and answer.get("errcode", 0) not in (0, "0"):
        return f"{where}: errcode {answer.get('errcode')}: {answer.get('errmsg', '')}"
    return ""


def resend(*, notification: Notification, now: datetime.datetime | None = None) -> Notification:
    """Send a message that gave up (or is failing) again at the relay's next run, attempts counted anew.

    A message already sent, cancelled or waiting is returned unchanged: resending never sends twice.
    """
    with transaction.atomic():
        locked = Notification.objects.select_for_update().get(pk=notification.pk)
        if locked.status in (Status.GAVE_UP, Status.FAILED):
            locked.status, locked.attempts, locked.next_attempt_at = Status.PENDING, 0, now or timezone.now()
            locked.claimed_until = None
            locked.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_until"])
    transaction.on_commit(_kick_relay)
    return locked
