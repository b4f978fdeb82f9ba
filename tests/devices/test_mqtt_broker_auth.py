"""Broker-side trust: per-cabinet credentials and ACLs, against a real Mosquitto run by the test.

Each test that needs the broker starts /usr/sbin/mosquitto on a free port with the shipped
docker/mosquitto.conf, adapted only where it must be (port, file paths, TLS listener), and with
the password file and ACL that `write_auth_files` renders from the registry. The shared broker on
1883 is not touched.
"""
import json
import os
import queue
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from paho.mqtt.enums import CallbackAPIVersion

from devices.adapters.mqtt_cabinet import MqttCabinetBridge
from devices.broker_auth import (
    BridgeCredential,
    issue_mqtt_password,
    mosquitto_hash,
    mosquitto_hash_matches,
    render_auth_files,
    write_auth_files,
)
from devices.models import Device, DeviceEvent
from tests import factories
from tests.conftest import REQUIRE_SERVICES, api_client_for

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TIMEOUT = 5.0
WHEN = "2026-11-23T09:30:00+08:00"
BRIDGE = BridgeCredential("spd-bridge", "bridge-secret-" + uuid.uuid4().hex)

needs_mosquitto = pytest.mark.skipif(
    not os.path.exists(MOSQUITTO) and not REQUIRE_SERVICES, reason="no mosquitto executable"
)


def unique() -> str:
    return uuid.uuid4().hex[:8].upper()


def event(event_id: str, kind: str = "heartbeat", payload: dict | None = None) -> dict:
    return {"event_id": event_id, "kind": kind, "occurred_at": WHEN, "payload": payload or {}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def adapted_config(directory: Path, port: int, tls: dict | None = None) -> str:
    """docker/mosquitto.conf with this test's port and files; everything else as shipped."""
    lines = []
    for line in (REPO / "docker/mosquitto.conf").read_text().splitlines():
        directive = line.split(" ", 1)[0]
        if directive == "listener":
            line = f"listener {port} 127.0.0.1"
        elif directive in ("password_file", "acl_file"):
            line = f"{directive} {directory / line.split()[1].rsplit('/', 1)[1]}"
        elif directive == "persistence_location":
            line = f"persistence_location {directory}/"
        lines.append(line)
    if tls:
        lines += [f"listener {tls['port']} 127.0.0.1", "protocol mqtt", f"cafile {tls['ca']}",
                  f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
    return "\n".join(lines) + "\n"


@dataclass
class Broker:
    port: int
    directory: Path
    process: subprocess.Popen
    tls_port: int | None = None

    def sync(self) -> None:
        write_auth_files(self.directory, bridge=BRIDGE, mode=0o644, pid_file=str(self.directory / "pid"))


def start_broker(directory: Path, tls: dict | None = None) -> Broker:
    directory.chmod(0o755)  # mosquitto, started as root, drops to its own user and must read these
    write_auth_files(directory, bridge=BRIDGE, mode=0o644)
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(adapted_config(directory, port, tls))
    with open(directory / "mosquitto.log", "wb") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    (directory / "pid").write_text(str(process.pid))
    deadline = time.monotonic() + TIMEOUT
    for listening in (port, *([tls["port"]] if tls else [])):
        while True:
            try:
                socket.create_connection(("127.0.0.1", listening), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    pytest.fail(f"mosquitto did not start: {(directory / 'mosquitto.log').read_text()}")
                time.sleep(0.05)
    return Broker(port, directory, process, tls and tls["port"])


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory Mosquitto can read once it has dropped root for its own user (pytest's tmp_path
    is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="spd-mosquitto-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def broker(broker_dir) -> Iterator[Broker]:
    if not os.path.exists(MOSQUITTO):
        pytest.fail("SPD_REQUIRE_SERVICES=1 but there is no mosquitto executable")
    running = start_broker(broker_dir)
    yield running
    running.process.terminate()
    running.process.wait(TIMEOUT)


class Client:
    """A plain MQTT client logged in as `username` (or anonymous); records what it receives."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None, **tls: str) -> None:
        self.received: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.connected = threading.Event()
        self.reason: object = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{unique()}")
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(ca_certs=tls["ca"])
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda client, userdata, message: self.received.put(
            (message.topic, json.loads(message.payload))
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.reason = reason_code
        self.connected.set()

    def accepted(self) -> bool:
        assert self.connected.wait(TIMEOUT), "no CONNACK"
        return not self.reason.is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(TIMEOUT)

    def publish(self, topic: str, body: object) -> None:
        info = self.client.publish(topic, json.dumps(body), qos=1)
        info.wait_for_publish(TIMEOUT)

    def next(self, timeout: float = TIMEOUT) -> tuple[str, dict] | None:
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_cabinet(hospital, code: str | None = None) -> tuple[Device, str]:
    device = Device(hospital=hospital, code=code or f"CAB-{unique()}", name="智能柜", kind=Device.Kind.CABINET_MQTT)
    password = issue_mqtt_password(device)
    device.save()
    return device, password


def events_of(device: Device) -> str:
    return f"spd/{device.hospital.code}/cabinets/{device.code}/events"


def results_of(device: Device) -> str:
    return f"spd/{device.hospital.code}/cabinets/{device.code}/results"


def start_bridge(url: str, **options) -> MqttCabinetBridge:
    bridge = MqttCabinetBridge(url, client_id=f"test-bridge-{unique()}", **options)
    bridge.start()
    assert bridge.wait_until_subscribed(TIMEOUT), "the bridge did not subscribe"
    return bridge


def wait_for(condition, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout} s")
        time.sleep(0.02)
    return value


# The password hash and the files


def test_our_hash_is_the_form_mosquitto_passwd_writes_and_checks_the_same_way(tmp_path):
    ours = mosquitto_hash("s3cret", salt=b"0123456789ab")
    assert ours.startswith("$7$101$") and mosquitto_hash_matches(ours, "s3cret")
    assert not mosquitto_hash_matches(ours, "s3cret ")
    tool = shutil.which("mosquitto_passwd")
    if tool:
        subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "alice", "s3cret"], check=True)
        [line] = (tmp_path / "pw").read_text().splitlines()
        assert mosquitto_hash_matches(line.split(":", 1)[1], "s3cret")


@pytest.mark.django_db
def test_each_cabinet_may_write_only_its_events_and_read_only_its_results(hospital, other_hospital):
    first, _ = mqtt_cabinet(hospital, "CAB-A")
    mqtt_cabinet(other_hospital, "CAB-B")
    Device.objects.create(hospital=hospital, code="CAB-NOPASS", name="x", kind=Device.Kind.CABINET_MQTT)
    inactive, _ = mqtt_cabinet(hospital, "CAB-OFF")
    Device.objects.filter(pk=inactive.pk).update(is_active=False)
    bad, _ = mqtt_cabinet(hospital, "CAB/#")

    files = render_auth_files(bridge=BRIDGE)

    users = [line.split(":", 1)[0] for line in files.passwd.splitlines()]
    assert users == ["spd-bridge", "CAB-A", "CAB-B"]
    assert "user CAB-A\ntopic write spd/H001/cabinets/CAB-A/events\ntopic read spd/H001/cabinets/CAB-A/results" in (
        files.acl
    )
    assert "user CAB-B\ntopic write spd/H002/cabinets/CAB-B/events\ntopic read spd/H002/cabinets/CAB-B/results" in (
        files.acl
    )
    assert "user spd-bridge\ntopic read spd/+/cabinets/+/events\ntopic write spd/+/cabinets/+/results" in files.acl
    first_rule = next(line for line in files.acl.splitlines() if line and not line.startswith("#"))
    assert first_rule == "user spd-bridge"  # no topic line before it: nothing granted to anonymous
    assert set(files.skipped) == {"CAB/#"}
    assert f"CAB-A:{first.mqtt_password_hash}" in files.passwd


@pytest.mark.django_db
def test_writing_again_without_a_change_leaves_the_files_alone(hospital, tmp_path):
    mqtt_cabinet(hospital, "CAB-A")
    assert write_auth_files(tmp_path, bridge=BRIDGE).changed
    assert not write_auth_files(tmp_path, bridge=BRIDGE).changed
    mqtt_cabinet(hospital, "CAB-C")
    report = write_auth_files(tmp_path, bridge=BRIDGE)
    assert report.changed and report.cabinets == ["CAB-A", "CAB-C"]
    assert oct((tmp_path / "passwd").stat().st_mode & 0o777) == "0o640"


@pytest.mark.django_db
def test_sync_mqtt_auth_needs_a_bridge_credential(tmp_path, settings):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="names no user and password"):
        call_command("sync_mqtt_auth", dir=str(tmp_path), url="mqtt://broker:1883")
    call_command("sync_mqtt_auth", dir=str(tmp_path), url="mqtt://spd-bridge:pw@broker:1883")
    assert (tmp_path / "passwd").read_text().startswith("spd-bridge:$7$")


@pytest.mark.django_db
def test_issuing_a_cabinets_token_issues_its_broker_password_and_rewrites_the_files(
    hospital, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.SPD_MQTT_AUTH_DIR, settings.MQTT_URL = str(tmp_path), "mqtt://spd-bridge:pw@mqtt:1883"
    admin = factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])
    device = Device.objects.create(hospital=hospital, code="CAB-NEW", name="智能柜", kind=Device.Kind.CABINET_MQTT)

    with django_capture_on_commit_callbacks(execute=True):
        answer = api_client_for(admin).post(f"/api/v1/devices/{device.pk}/issue-token/").json()

    assert answer["mqtt"]["username"] == "CAB-NEW"
    assert answer["mqtt"]["events_topic"] == "spd/H001/cabinets/CAB-NEW/events"
    device.refresh_from_db()
    assert mosquitto_hash_matches(device.mqtt_password_hash, answer["mqtt"]["password"])
    assert device.token_hash == Device.hash_token(answer["token"])
    assert answer["mqtt"]["password"] != answer["token"]
    assert f"CAB-NEW:{device.mqtt_password_hash}" in (tmp_path / "passwd").read_text()

    with django_capture_on_commit_callbacks(execute=True):
        api_client_for(admin).patch(f"/api/v1/devices/{device.pk}/", {"is_active": False}, format="json")
    assert "CAB-NEW" not in (tmp_path / "passwd").read_text()


@pytest.mark.django_db
def test_a_scanner_token_carries_no_broker_password(hospital):
    admin = factories.UserFactory(username="admin", hospital=hospital, roles=["admin"])
    device = Device.objects.create(hospital=hospital, code="SC-1", name="扫码枪", kind=Device.Kind.SERIAL_SCANNER)
    answer = api_client_for(admin).post(f"/api/v1/devices/{device.pk}/issue-token/").json()
    assert set(answer) == {"token"}


# The real broker, with the shipped configuration


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_the_shipped_broker_refuses_anonymous_clients_and_wrong_passwords(broker, hospital):
    device, password = mqtt_cabinet(hospital)
    broker.sync()
    anonymous = Client(broker.port)
    wrong = Client(broker.port, device.code, password + "x")
    right = Client(broker.port, device.code, password)
    try:
        assert not anonymous.accepted()
        assert not wrong.accepted()
        assert right.accepted()
    finally:
        for client in (anonymous, wrong, right):
            client.close()


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_a_cabinet_publishing_on_another_cabinets_topic_reaches_nothing(broker, hospital):
    victim, victim_password = mqtt_cabinet(hospital)
    spoofer, spoofer_password = mqtt_cabinet(hospital)
    broker.sync()
    bridge = start_bridge(f"mqtt://{BRIDGE.username}:{BRIDGE.password}@127.0.0.1:{broker.port}")
    honest = Client(broker.port, victim.code, victim_password)
    forger = Client(broker.port, spoofer.code, spoofer_password)
    try:
        honest.subscribe(results_of(victim))
        forger.publish(events_of(victim), event("forged-close", "door_close", {"epcs": []}))
        honest.publish(events_of(victim), event("real-1"))

        topic, answer = honest.next()
        assert [r["event_id"] for r in answer["results"]] == ["real-1"]  # the forged one never arrived
        assert list(DeviceEvent.objects.filter(device=victim).values_list("event_id", flat=True)) == ["real-1"]
        assert not DeviceEvent.objects.filter(event_id="forged-close").exists()
    finally:
        bridge.stop()
        honest.close()
        forger.close()


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_a_cabinet_cannot_read_another_cabinets_results_nor_the_events(broker, hospital):
    cabinet, password = mqtt_cabinet(hospital)
    snoop, snoop_password = mqtt_cabinet(hospital)
    broker.sync()
    bridge = start_bridge(f"mqtt://{BRIDGE.username}:{BRIDGE.password}@127.0.0.1:{broker.port}")
    owner = Client(broker.port, cabinet.code, password)
    spy = Client(broker.port, snoop.code, snoop_password)
    try:
        owner.subscribe(results_of(cabinet))
        spy.client.subscribe("spd/#", qos=1)
        spy.client.subscribe(results_of(cabinet), qos=1)
        time.sleep(0.2)
        owner.publish(events_of(cabinet), event("hb-1"))

        assert owner.next()[1]["results"][0]["event_id"] == "hb-1"
        assert spy.next(timeout=1.0) is None
    finally:
        bridge.stop()
        owner.close()
        spy.close()


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_a_cabinet_issued_later_can_log_in_once_the_files_are_rewritten_and_the_broker_signalled(broker, hospital):
    device, password = mqtt_cabinet(hospital)
    before = Client(broker.port, device.code, password)
    try:
        assert not before.accepted()  # not in the broker's files yet
    finally:
        before.close()
    call_command("sync_mqtt_auth", dir=str(broker.directory), url=f"mqtt://{BRIDGE.username}:{BRIDGE.password}@x",
                 pid_file=str(broker.directory / "pid"), mode="644")
    deadline = time.monotonic() + TIMEOUT
    while True:
        after = Client(broker.port, device.code, password)
        try:
            if after.accepted():
                break
        finally:
            after.close()
        assert time.monotonic() < deadline, "the broker did not take the new password file"
        time.sleep(0.1)


# TLS


def make_certificates(directory: Path) -> dict:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=SPD test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "san.ext", "-out", "server.crt")
    for name in ("ca.crt", "server.crt", "server.key"):
        (directory / name).chmod(0o644)
    return {"ca": str(directory / "ca.crt"), "cert": str(directory / "server.crt"),
            "key": str(directory / "server.key")}


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_the_bridge_works_over_tls_with_the_configured_ca_and_nothing_connects_without_it(broker_dir, hospital):
    files = make_certificates(broker_dir)
    broker = start_broker(broker_dir, tls={**files, "port": free_port()})
    try:
        device, password = mqtt_cabinet(hospital)
        broker.sync()
        bridge = start_bridge(
            f"mqtts://{BRIDGE.username}:{BRIDGE.password}@127.0.0.1:{broker.tls_port}", ca_file=files["ca"]
        )
        cabinet = Client(broker.tls_port, device.code, password, ca=files["ca"])
        try:
            cabinet.subscribe(results_of(device))
            cabinet.publish(events_of(device), event("tls-1"))
            assert cabinet.next()[1]["results"][0]["status"] == "PROCESSED"
        finally:
            bridge.stop()
            cabinet.close()

        untrusting = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{unique()}")
        untrusting.username_pw_set(device.code, password)
        untrusting.tls_set()  # the system's CAs only: the test CA is not among them
        with pytest.raises(ssl.SSLError):
            untrusting.connect("127.0.0.1", broker.tls_port)
    finally:
        broker.process.terminate()
        broker.process.wait(TIMEOUT)


def test_tls_files_without_an_mqtts_url_are_refused():
    with pytest.raises(ValueError, match="not mqtts"):
        MqttCabinetBridge("mqtt://127.0.0.1:1883", ca_file="/etc/ssl/ca.crt")


# The compose broker's script (docker/mosquitto-run.sh)


@needs_mosquitto
@pytest.mark.django_db(transaction=True)
def test_the_compose_broker_script_installs_the_registrys_files_and_reloads_when_they_change(broker_dir, hospital):
    source, target = broker_dir / "spd-auth", broker_dir / "auth"
    broker_dir.chmod(0o755)
    source.mkdir()
    port = free_port()
    config = broker_dir / "mosquitto.conf"
    config.write_text(adapted_config(target, port))
    environment = {
        **os.environ, "PATH": f"{os.path.dirname(MOSQUITTO)}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SPD_AUTH_SOURCE": str(source), "MOSQUITTO_AUTH_DIR": str(target), "MOSQUITTO_CONFIG": str(config),
        "SPD_AUTH_POLL_SECONDS": "0.2",
    }
    with open(broker_dir / "run.log", "wb") as log:
        script = subprocess.Popen(["sh", str(REPO / "docker/mosquitto-run.sh")], env=environment, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(port) or script.poll() is not None)
        assert script.poll() is None, (broker_dir / "run.log").read_text()
        device, password = mqtt_cabinet(hospital)
        nobody_yet = Client(port, device.code, password)
        assert not nobody_yet.accepted()  # nothing issued yet: empty files, nobody logs in
        nobody_yet.close()

        write_auth_files(source, bridge=BRIDGE)  # what the app writes into the shared volume

        def logs_in() -> bool:
            client = Client(port, device.code, password)
            try:
                return client.accepted()
            finally:
                client.close()

        wait_for(logs_in)
        assert oct((target / "passwd").stat().st_mode & 0o777) == "0o600"
    finally:
        script.terminate()
        script.wait(TIMEOUT)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False
