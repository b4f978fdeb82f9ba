"""Reading alerts: the list a user may see, and the counts the dashboard shows."""
from django.db.models import Count, Q, QuerySet

from inventory.models import Alert, User
from inventory.selectors.stock import StockScope


def alerts_visible_to(user: User) -> QuerySet[Alert]:
    """The alerts of the user's hospital (every hospital for an alliance superuser; a nurse's
    departments only, as on the alerts page)."""
    return StockScope.of(user).alerts().select_related("acknowledged_by", "resolved_by")


def alert_summary(alerts: QuerySet[Alert], tiers: tuple[int, ...]) -> dict:
    """Counts of the unresolved alerts among `alerts`: by status, kind, severity, kind × severity, and
    the near-expiry ones by tier (widest first). Three queries."""
    unresolved = alerts.exclude(status=Alert.Status.RESOLVED).order_by()
    rows = list(unresolved.values("kind", "severity", "status").annotate(count=Count("pk")))
    by_kind = dict.fromkeys(Alert.Kind.values, 0)
    by_severity = dict.fromkeys(Alert.Severity.values, 0)
    by_status = {Alert.Status.OPEN.value: 0, Alert.Status.ACKNOWLEDGED.value: 0}
    matrix: dict[tuple[str, str], int] = {}
    for row in rows:
        by_kind[row["kind"]] += row["count"]
        by_severity[row["severity"]] += row["count"]
        by_status[row["status"]] += row["count"]
        matrix[row["kind"], row["severity"]] = matrix.get((row["kind"], row["severity"]), 0) + row["count"]
    near = unresolved.filter(kind=Alert.Kind.NEAR_EXPIRY).aggregate(
        **{f"tier_{days}": Count("pk", filter=Q(details__tier=days)) for days in tiers}
    )
    return {
        "open": sum(by_status.values()),
        "by_status": by_status,
        "by_kind": by_kind,
        "by_severity": by_severity,
        "by_kind_and_severity": [
            {"kind": kind, "severity": severity, "count": count} for (kind, severity), count in sorted(matrix.items())
        ],
        "near_expiry_by_tier": [{"days": days, "count": near[f"tier_{days}"]} for days in tiers],
    }
