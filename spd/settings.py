"""Settings, all from the environment.

The defaults are the embedded set-up (SQLite file, Celery tasks in-process, DEBUG on) so that a
newcomer can start the product with no configuration. Production sets DEBUG=0 and a real
SECRET_KEY (or SECRET_KEY_FILE); then the security settings below switch on and
`manage.py check --deploy` is clean.
"""
import os
from pathlib import Path

import dj_database_url
import pghistory
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """A setting from the environment, or from the file named by NAME_FILE (Docker secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name, "1" if default else "0").strip().lower()
    return value in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_celery_beat",
    "pgtrigger",
    "pghistory",
    "inventory",
    "devices",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body: oversized or chunked API bodies get a JSON 413 / 411.
    "inventory.api.errors.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After authentication: stamps master-data history rows with the request's user (PostgreSQL).
    "inventory.history.HistoryMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns locked-out logins into a 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "spd.urls"
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"
WSGI_APPLICATION = "spd.wsgi.application"
AUTH_USER_MODEL = "inventory.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Two PostgreSQL roles in production (docs/deployment.md): the application connects with
# DATABASE_URL as a role that owns no table, so it cannot TRUNCATE the ledger, disable its
# append-only trigger or drop anything; migrations run as the tables' owner, DATABASE_MIGRATE_URL,
# selected by SPD_DB_AS_OWNER=1 (the image's entrypoint does this for `migrate` and
# `grant_app_privileges`, which gives the application role exactly what it needs).
_DATABASE_URL = env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'spd.sqlite3'}")
DATABASE_MIGRATE_URL = env("DATABASE_MIGRATE_URL")
SPD_DB_AS_OWNER = env_bool("SPD_DB_AS_OWNER", False)
if SPD_DB_AS_OWNER and not DATABASE_MIGRATE_URL:
    raise ImproperlyConfigured("SPD_DB_AS_OWNER=1 needs DATABASE_MIGRATE_URL (the tables' owner).")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_MIGRATE_URL if SPD_DB_AS_OWNER else _DATABASE_URL,
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60")),
    )
}
# The role the application connects as: `manage.py grant_app_privileges` grants to it.
SPD_DB_APP_ROLE = dj_database_url.parse(_DATABASE_URL).get("USER") or ""
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
# Reports off the primary (inventory/reports_database.py): a streaming replica the reports, the
# review pages and their exports read from; writes always go to the primary. In tests it mirrors
# the primary's test database (no second database to create).
if REPORTS_DATABASE_URL := env("REPORTS_DATABASE_URL", ""):
    DATABASES["reports"] = dj_database_url.parse(REPORTS_DATABASE_URL, conn_max_age=int(env("DB_CONN_MAX_AGE", "60")))
    DATABASES["reports"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["inventory.reports_database.ReportsRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Master-data history (inventory/models/history.py). Each change row carries its own copy of the
# request context (user id, URL) as JSON, so the history tables need no shared, updatable context
# table and can refuse every UPDATE and DELETE. Only writing requests set a context.
PGHISTORY_CONTEXT_FIELD = pghistory.ContextJSONField()
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling: after this many failures for one username + address, that pair is locked out.
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(env("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "inventory.api.auth.lockout_response"
# Lock-out and login throttle count per real client address: X-Forwarded-For is believed only as far as
# the reverse proxies listed here (addresses or networks, e.g. "10.0.0.0/8") wrote it.
SPD_TRUSTED_PROXIES = env_list("SPD_TRUSTED_PROXIES")
AXES_CLIENT_IP_CALLABLE = "inventory.client_address.client_address"

LANGUAGE_CODE = env("LANGUAGE_CODE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inventory.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["inventory.api.permissions.RoleBasedAccess"],
    "DEFAULT_FILTER_BACKENDS": ["inventory.api.filters.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "inventory.api.pagination.BoundedLimitOffsetPagination",
    "DEFAULT_PARSER_CLASSES": [
        "inventory.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inventory.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": env("LOGIN_THROTTLE_RATE", "20/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SPD consumables API",
    "DESCRIPTION": "Receiving, stock, ledger and traceability of hospital medical consumables.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs describe every endpoint: for signed-in users unless SPD_API_DOCS_PUBLIC.
    "SERVE_PERMISSIONS": ["inventory.api.permissions.DocsAccess"],
    # Assets come from the sidecar package, so the docs work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents the error body `{code, detail, problems}` of its 4xx answers.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums", "inventory.api.errors.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "UnitStatusEnum": "inventory.models.stock.UnitStatus",
        "DeliveryNoteStatusEnum": "inventory.models.documents.DeliveryNote.Status",
        "DeviceEventStatusEnum": "devices.models.DeviceEvent.Status",
        "DeviceEventKindEnum": "devices.models.DeviceEvent.Kind",
        "DeviceKindEnum": "devices.models.Device.Kind",
        "LocationKindEnum": "inventory.models.organisation.Location.Kind",
        "DepartmentKindEnum": "inventory.models.organisation.Department.Kind",
        "MovementKindEnum": "inventory.models.stock.Movement.Kind",
        "CertificateKindEnum": "inventory.models.parties.Certificate.Kind",
        "StockOrderKindEnum": "inventory.models.documents.StockOrder.Kind",
        "SupplierSettlementStatusEnum": "inventory.models.billing.SupplierSettlement.Status",
        "AlertKindEnum": "inventory.models.alerts.Alert.Kind",
        "AlertStatusEnum": "inventory.models.alerts.Alert.Status",
        "AlertSeverityEnum": "inventory.models.alerts.Alert.Severity",
        "ReconciliationRunStatusEnum": "inventory.models.reconciliation.ReconciliationRun.Status",
        "FindingKindEnum": "inventory.models.reconciliation.Finding.Kind",
        "ChargeDeliveryStatusEnum": "inventory.models.clinical.ChargeDelivery.Status",
        "PackDefinitionKindEnum": "inventory.models.processing.PackDefinition.Kind",
        "PackMemberStateEnum": "inventory.models.processing.PackMember.State",
        "LabelSymbologyEnum": "inventory.models.processing.LabelPrint.Symbology",
        "PurchasePlanStatusEnum": "inventory.models.procurement.PurchasePlan.Status",
        "StocktakeKindEnum": "inventory.models.stocktake.StocktakeSession.Kind",
        "StocktakeStatusEnum": "inventory.models.stocktake.StocktakeSession.Status",
        "AdjustmentReasonEnum": "inventory.models.stocktake.StocktakeLine.Adjustment",
        "RecallStatusEnum": "inventory.models.recall.Recall.Status",
        "RecallSourceEnum": "inventory.models.recall.Recall.Source",
        "ReceiptDiscrepancyActionEnum": "inventory.models.picking.DeliveryItem.Action",
        "PurchaseOrderStatusEnum": "inventory.models.procurement.PurchaseOrder.Status",
        "ShippingNoticeStatusEnum": "inventory.models.portal.AdvanceShippingNotice.Status",
        "VbpPeriodEnum": "inventory.models.vbp.VbpContract.Period",
        "AllianceReceiptActionEnum": "inventory.models.alliance_transfers.AllianceTransferLine.Action",
        "EvaluationIndicatorSourceEnum": "inventory.models.evaluation.Indicator.Source",
        "EvaluationRunStatusEnum": "inventory.models.evaluation.EvaluationRun.Status",
    },
}

# Celery: Redis in production; with no broker configured, tasks run in-process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", env("REDIS_URL", "memory://"))
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", "")  or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# Periodic jobs live in the database (django-celery-beat), so an admin can change them without a deploy.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_TIME_LIMIT = int(env("CELERY_TASK_TIME_LIMIT", "3600"))
# A message not acknowledged within this time (worker killed) is delivered again; above the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "7200"))}
CELERY_TASK_SOFT_TIME_LIMIT = int(env("CELERY_TASK_SOFT_TIME_LIMIT", "3300"))
REDIS_URL = env("REDIS_URL", "")
# The broker the cabinet bridge uses: mqtt://user:password@host:1883, or mqtts://…:8883 for TLS.
MQTT_URL = env("MQTT_URL", "")
# TLS for mqtts:// (docs/deployment.md): the CA that signed the broker's certificate (empty: the
# system's CAs), and a client certificate and key when the broker asks for one.
MQTT_TLS_CA_FILE = env("MQTT_TLS_CA_FILE")
MQTT_TLS_CERT_FILE = env("MQTT_TLS_CERT_FILE")
MQTT_TLS_KEY_FILE = env("MQTT_TLS_KEY_FILE")
# Where the broker's password file and ACL are written (devices/broker_auth.py); empty: only by
# `manage.py sync_mqtt_auth --dir`. With a pid file, Mosquitto is sent SIGHUP after each change.
SPD_MQTT_AUTH_DIR = env("SPD_MQTT_AUTH_DIR")
SPD_MQTT_BROKER_PID_FILE = env("SPD_MQTT_BROKER_PID_FILE")
# The bridge writes its heartbeat this often; MQTT_BRIDGE_DOWN is raised after this much silence.
SPD_MQTT_BRIDGE_HEARTBEAT_SECONDS = int(env("SPD_MQTT_BRIDGE_HEARTBEAT_SECONDS", "15"))
SPD_MQTT_BRIDGE_DOWN_AFTER_SECONDS = int(env("SPD_MQTT_BRIDGE_DOWN_AFTER_SECONDS", "120"))
# Heartbeat and temperature events are deleted after this many days (device_event_retention job);
# business events (scans, door sessions, inventories) are kept for good.
SPD_DEVICE_TELEMETRY_RETENTION_DAYS = int(env("SPD_DEVICE_TELEMETRY_RETENTION_DAYS", "90"))

# API tokens (inventory/api/authentication.py): a token older than this many hours no longer works
# and the client signs in again (0: tokens last until the password changes or the user is deactivated).
SPD_API_TOKEN_TTL_HOURS = float(env("SPD_API_TOKEN_TTL_HOURS", "0"))

# A cursor page of the sync lists stops before rows recorded this recently: a row whose
# transaction is still open may commit a lower id (inventory.api.sync). Longer than any such transaction.
SPD_SYNC_SETTLE_SECONDS = float(env("SPD_SYNC_SETTLE_SECONDS", "5"))
# The API schema and docs for anyone, not only signed-in users (e.g. on an integrators' test instance).
SPD_API_DOCS_PUBLIC = env_bool("SPD_API_DOCS_PUBLIC", False)

# Business defaults (each may be overridden per product).
SPD_MIN_SHELF_LIFE_DAYS = int(env("SPD_MIN_SHELF_LIFE_DAYS", "90"))
# Alerts: near-expiry tiers (days), certificate warning window, HIS failing threshold.
SPD_EXPIRY_TIERS = tuple(int(days) for days in env("SPD_EXPIRY_TIERS", "90,60,30").split(","))
SPD_CERTIFICATE_WARN_DAYS = int(env("SPD_CERTIFICATE_WARN_DAYS", "30"))
SPD_HIS_FAILING_ALERT_MINUTES = int(env("SPD_HIS_FAILING_ALERT_MINUTES", "30"))
# Nightly reconciliation: the HIS may settle a use this many days later, so the nightly run covers
# the day (1 + grace) days ago; consignment use unsettled after N days is reported.
SPD_RECON_BILLING_GRACE_DAYS = int(env("SPD_RECON_BILLING_GRACE_DAYS", "2"))
SPD_RECON_CONSIGNMENT_SETTLE_DAYS = int(env("SPD_RECON_CONSIGNMENT_SETTLE_DAYS", "45"))
SPD_RECON_MAX_PERIOD_DAYS = int(env("SPD_RECON_MAX_PERIOD_DAYS", "366"))
# Consumable review (docs/review.md): a watched item's month is unusual above median + k × MAD of the
# 6 months before (a MAD of 0 counts as MIN_MAD); a surgery is an outlier above Q3 + IQR × (Q3 − Q1).
SPD_REVIEW_ANOMALY_K = float(env("SPD_REVIEW_ANOMALY_K", "3"))
SPD_REVIEW_ANOMALY_MIN_MAD = float(env("SPD_REVIEW_ANOMALY_MIN_MAD", "1"))
SPD_REVIEW_OUTLIER_IQR = float(env("SPD_REVIEW_OUTLIER_IQR", "1.5"))
# Processing (docs/processing.md): label stock size "WIDTHxHEIGHT" in mm; the first digits of the
# internal GTIN-14 of pack products (GS1 restricted-circulation range 02x); the hours within which a
# set component's partner must be used on the same encounter before SET_PARTNER_MISSING is raised.
SPD_LABEL_SIZE_MM = env("SPD_LABEL_SIZE_MM", "60x40")
SPD_INTERNAL_GTIN_PREFIX = env("SPD_INTERNAL_GTIN_PREFIX", "029")
SPD_SET_PARTNER_WINDOW_HOURS = float(env("SPD_SET_PARTNER_WINDOW_HOURS", "24"))

# Stocktakes (inventory/services/stocktake.py): a line whose variance reaches this many units, or
# this value (yuan), needs a recount by another person; the daily check lists units issued and
# still in a department store after N days, and products used more than factor × their median day.
SPD_STOCKTAKE_RECOUNT_QUANTITY = int(env("SPD_STOCKTAKE_RECOUNT_QUANTITY", "2"))
SPD_STOCKTAKE_RECOUNT_VALUE = env("SPD_STOCKTAKE_RECOUNT_VALUE", "1000")
SPD_STOCKTAKE_ISSUED_UNUSED_DAYS = int(env("SPD_STOCKTAKE_ISSUED_UNUSED_DAYS", "7"))
SPD_STOCKTAKE_USE_FACTOR = env("SPD_STOCKTAKE_USE_FACTOR", "3")
# HIS charge relay (inventory/services/his.py): endpoint, per-request timeout, retries with back-off.
SPD_HIS_CHARGE_URL = env("SPD_HIS_CHARGE_URL", "http://127.0.0.1:8900/charges")
SPD_HIS_TIMEOUT_SECONDS = float(env("SPD_HIS_TIMEOUT_SECONDS", "5"))
SPD_HIS_MAX_ATTEMPTS = int(env("SPD_HIS_MAX_ATTEMPTS", "12"))
SPD_HIS_BACKOFF_BASE_SECONDS = float(env("SPD_HIS_BACKOFF_BASE_SECONDS", "5"))
SPD_HIS_TOKEN = env("SPD_HIS_TOKEN")
SPD_HIS_SETTLEMENT_MAX_BYTES = int(env("SPD_HIS_SETTLEMENT_MAX_BYTES", str(20 * 1024 * 1024)))
# The largest certificate scan a supplier may upload through the portal (PDF, PNG or JPEG).
SPD_CERTIFICATE_MAX_BYTES = int(env("SPD_CERTIFICATE_MAX_BYTES", str(5 * 1024 * 1024)))
# Complaints (services.complaints): more than THRESHOLD upheld written complaints about a supplier or
# product received within PERIOD_DAYS suspend it from new orders and acceptance.
SPD_COMPLAINT_SUSPENSION_THRESHOLD = int(env("SPD_COMPLAINT_SUSPENSION_THRESHOLD", "3"))
SPD_COMPLAINT_PERIOD_DAYS = int(env("SPD_COMPLAINT_PERIOD_DAYS", "365"))
# Any API request body (JSON, form fields) larger than this is refused with 413 before it is parsed;
# multipart uploads may add SPD_HIS_SETTLEMENT_MAX_BYTES of file on top.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("SPD_MAX_BODY_BYTES", str(2 * 1024 * 1024)))
# A device event body (or batch) larger than this is refused with 413 before it is parsed.
SPD_DEVICE_EVENT_MAX_BYTES = int(env("SPD_DEVICE_EVENT_MAX_BYTES", str(512 * 1024)))
# Dates from devices and HIS imports outside now ± this many years are refused (inventory/date_window.py).
SPD_ACCEPTED_DATE_YEARS = int(env("SPD_ACCEPTED_DATE_YEARS", "5"))
# A device clock further ahead of the server's than this is not believed: the server's time is used
# for its cabinet sessions, and a DEVICE_CLOCK_SKEW alert is raised.
SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS = int(env("SPD_DEVICE_MAX_CLOCK_AHEAD_SECONDS", "300"))
# Reader check at door close: a read missing more than this share of the cabinet's tagged units (or
# all of them), when it should hold at least the minimum, is held as SUSPECT, not applied. A cabinet
# device's config may set its own (suspect_missing_share, suspect_min_units).
SPD_CABINET_SUSPECT_SHARE = float(env("SPD_CABINET_SUSPECT_SHARE", "0.5"))
SPD_CABINET_SUSPECT_MIN_UNITS = int(env("SPD_CABINET_SUSPECT_MIN_UNITS", "4"))
# Alert notifications (inventory/services/notifications.py): e-mail through Django's mail settings,
# group robots through each rule's webhook URL. An unreachable SMTP server is recorded on each message
# and retried; EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend prints mails instead.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = float(env("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "SPD <spd@localhost>")
SPD_NOTIFY_TIMEOUT_SECONDS = float(env("SPD_NOTIFY_TIMEOUT_SECONDS", "10"))
SPD_NOTIFY_MAX_ATTEMPTS = int(env("SPD_NOTIFY_MAX_ATTEMPTS", "8"))
SPD_NOTIFY_BACKOFF_BASE_SECONDS = float(env("SPD_NOTIFY_BACKOFF_BASE_SECONDS", "60"))
SPD_NOTIFY_DIGEST_MAX_ALERTS = int(env("SPD_NOTIFY_DIGEST_MAX_ALERTS", "30"))
# Proposed par levels (inventory/services/replenishment.py): from the p95 daily use of the last N weeks,
# minimum = p95 × lead days (how long a delivery takes), target = p95 × cover days (what one
# delivery should last). Proposals only: a person accepts or dismisses each.
SPD_PAR_USE_WEEKS = int(env("SPD_PAR_USE_WEEKS", "8"))
SPD_PAR_LEAD_DAYS = int(env("SPD_PAR_LEAD_DAYS", "2"))
SPD_PAR_COVER_DAYS = int(env("SPD_PAR_COVER_DAYS", "7"))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
