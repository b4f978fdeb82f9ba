"""Who may do what on the MQTT broker: one credential and one ACL entry per cabinet, from the registry.

Each active MQTT cabinet logs in to Mosquitto with its device code as user name and a password
issued with its device token (`issue_mqtt_password`, shown once; only a PBKDF2-SHA512 hash is kept,
in the form Mosquitto's password file takes: `$7$<iterations>$<salt>$<hash>`, base64). Its ACL
lets it write only `spd/<hospital>/cabinets/<code>/events` and read only
`spd/<hospital>/cabinets/<code>/results`. The bridge (user and password from settings.MQTT_URL)
alone reads every cabinet's events and writes every cabinet's results. Anyone else — anonymous
clients, a cabinet on another cabinet's topic — is refused by the broker (the shipped
docker/mosquitto.conf sets `allow_anonymous false`); in MQTT 3.1.1 an unauthorised publication is
acknowledged but dropped, and an unauthorised subscription delivers nothing.

`write_auth_files` renders both files from the database and replaces them atomically, only when
their content changed; Mosquitto reads them again on SIGHUP (`manage.py sync_mqtt_auth`, and the
compose broker's watcher, docker/mosquitto-run.sh). With settings.SPD_MQTT_AUTH_DIR set, the
registry rewrites them itself after a token is issued or a cabinet changed (`sync_after_commit`).
"""
import base64
import hashlib
import hmac
import logging
import os
import secrets
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.db import transaction

from devices.models import Device

logger = logging.getLogger(__name__)

# As mosquitto_passwd (Mosquitto 2) writes them: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte key.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
# Characters a user name or topic level may not hold: the password file's separator, the ACL
# file's line structure, and MQTT's topic separators and wildcards.
_FORBIDDEN = set(":/+#") | {" ", "\t", "\n", "\r", "\x00"}


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The password-file form of `password`: `$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>`."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_hash_matches(hashed: str, password: str) -> bool:
    try:
        _, algorithm, iterations, salt, digest = hashed.split("$")
        if algorithm != "7":
            return False
        expected = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations), 64)
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def issue_mqtt_password(device: Device) -> str:
    """A new broker password for `device` (not saved); only its hash is kept, so it is shown once."""
    password = secrets.token_urlsafe(32)
    device.mqtt_password_hash = mosquitto_hash(password)
    return password


def events_topic(device: Device) -> str:
    return f"spd/{device.hospital.code}/cabinets/{device.code}/events"


def results_topic(device: Device) -> str:
    return f"spd/{device.hospital.code}/cabinets/{device.code}/results"


def usable_name(name: str) -> bool:
    """Whether `name` can be a broker user name and one level of a topic."""
    return bool(name) and not (set(name) & _FORBIDDEN)


@dataclass(frozen=True)
class BridgeCredential:
    username: str
    password: str


def bridge_credential(url: str | None = None) -> BridgeCredential | None:
    """The bridge's user name and password, as given in MQTT_URL (mqtt://user:password@host)."""
    parsed = urlparse(url if url is not None else settings.MQTT_URL)
    if not parsed.username or not parsed.password:
        return None
    return BridgeCredential(unquote(parsed.username), unquote(parsed.password))


@dataclass
class AuthFiles:
    passwd: str
    acl: str
    cabinets: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def render_auth_files(*, bridge: BridgeCredential, previous_passwd: str = "") -> AuthFiles:
    """The password file and ACL for the bridge and every active MQTT cabinet holding a password.

    The bridge's line of `previous_passwd` is kept when it still matches its password, so that
    rendering twice gives the same text (and the broker is not reloaded for nothing).
    """
    if not usable_name(bridge.username):
        raise ValueError(f"the bridge user name {bridge.username!r} cannot be a broker user name")
    bridge_hash = next(
        (
            line.split(":", 1)[1] for line in previous_passwd.splitlines()
            if line.startswith(f"{bridge.username}:") and mosquitto_hash_matches(line.split(":", 1)[1], bridge.password)
        ),
        None,
    ) or mosquitto_hash(bridge.password)
    passwd = [f"{bridge.username}:{bridge_hash}"]
    acl = [
        "# Written by manage.py sync_mqtt_auth from the SPD device registry; edits here are overwritten.",
        "# No topic line precedes the first user: anonymous clients (refused anyway) may do nothing.",
        "",
        f"user {bridge.username}",
        "topic read spd/+/cabinets/+/events",
        "topic write spd/+/cabinets/+/results",
    ]
    files = AuthFiles(passwd="", acl="")
    cabinets = (
        Device.objects.filter(kind=Device.Kind.CABINET_MQTT, is_active=True)
        .exclude(mqtt_password_hash="")
        .select_related("hospital")
        .order_by("code")
    )
    for device in cabinets:
        if device.code == bridge.username:
            files.skipped[device.code] = "the device code is the bridge's user name"
        elif not (usable_name(device.code) and usable_name(device.hospital.code)):
            files.skipped[device.code] = "the device or hospital code holds a character a topic or user name cannot"
        else:
            passwd.append(f"{device.code}:{device.mqtt_password_hash}")
            acl += ["", f"user {device.code}", f"topic write {events_topic(device)}", f"topic read {results_topic(device)}"]
            files.cabinets.append(device.code)
    files.passwd = "\n".join(passwd) + "\n"
    files.acl = "\n".join(acl) + "\n"
    return files


@dataclass(frozen=True)
class SyncReport:
    changed: bool
    cabinets: list[str]
    skipped: dict[str, str]
    signalled: bool = False


def write_auth_files(
    directory: str | os.PathLike, *, bridge: BridgeCredential, mode: int = 0o640, pid_file: str | None = None
) -> SyncReport:
    """Write `passwd` and `acl` into `directory` (each replaced atomically, only if changed); then,
    if anything changed and `pid_file` names a running Mosquitto, send it SIGHUP to read them again."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = directory / PASSWORD_FILE, directory / ACL_FILE
    previous = passwd_path.read_text() if passwd_path.exists() else ""
    files = render_auth_files(bridge=bridge, previous_passwd=previous)
    changed = _replace(acl_path, files.acl, mode) | _replace(passwd_path, files.passwd, mode)
    signalled = False
    if changed and pid_file:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, signal.SIGHUP)
        signalled = True
    for code, reason in files.skipped.items():
        logger.warning("MQTT cabinet %s has no broker access: %s", code, reason)
    return SyncReport(changed=changed, cabinets=files.cabinets, skipped=files.skipped, signalled=signalled)


def _replace(path: Path, text: str, mode: int) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def sync_after_commit() -> None:
    """Rewrite the broker's files once the current transaction commits, if SPD_MQTT_AUTH_DIR is set.

    A failure is logged, not raised: the registry change stands, and `manage.py sync_mqtt_auth`
    (run by the bridge container at every start) writes the files again.
    """
    directory = settings.SPD_MQTT_AUTH_DIR
    if not directory:
        return

    def sync() -> None:
        bridge = bridge_credential()
        if bridge is None:
            logger.error("SPD_MQTT_AUTH_DIR is set but MQTT_URL names no bridge user and password")
            return
        try:
            write_auth_files(directory, bridge=bridge, pid_file=settings.SPD_MQTT_BROKER_PID_FILE or None)
        except (OSError, ValueError):
            logger.exception("could not write the MQTT broker's password and ACL files in %s", directory)

    transaction.on_commit(sync)
