"""The docker/ stack holds together: compose parses, every service has what it runs, and every
management command the entrypoint calls exists (a missing one only shows in production)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def test_every_manage_py_command_of_the_entrypoint_exists():
    script = (DOCKER / "entrypoint.sh").read_text()
    called = re.findall(r"python manage\.py ([a-z_]+)", script)
    assert {"migrate", "sync_mqtt_auth", "run_mqtt_bridge"} <= set(called)
    assert set(called) - set(get_commands()) == set()


def test_every_mode_a_service_runs_is_one_the_entrypoint_knows(compose):
    modes = set(re.findall(r"^\s{4}([a-z]+)\)$", (DOCKER / "entrypoint.sh").read_text(), re.MULTILINE))
    commands = {name: service.get("command") for name, service in compose["services"].items()}
    app_services = {name for name, service in compose["services"].items() if service.get("image") == "spd-app:latest"}
    assert app_services == {"web", "worker", "beat", "bridge"}
    assert {commands[name][0] for name in app_services} <= modes


def test_the_bridge_runs_with_a_broker_login_and_shares_the_auth_files_with_the_broker(compose):
    services = compose["services"]
    bridge, broker = services["bridge"], services["mqtt"]
    assert bridge["command"] == ["mqtt"]
    assert set(bridge["depends_on"]) == {"db", "redis", "mqtt"}
    assert bridge["environment"]["MQTT_URL"].startswith("mqtt://spd-bridge:${MQTT_BRIDGE_PASSWORD")
    auth_dir = bridge["environment"]["SPD_MQTT_AUTH_DIR"]
    assert f"mqttauth:{auth_dir}" in bridge["volumes"]
    assert "mqttauth:/spd-auth:ro" in broker["volumes"]
    assert "mqttauth" in compose["volumes"]
    assert broker["entrypoint"] == ["/bin/sh", "/spd/mosquitto-run.sh"]
    mounted = {volume.split(":")[0] for volume in broker["volumes"]}
    assert {"./mosquitto.conf", "./mosquitto-run.sh"} <= mounted
    for path in ("./mosquitto.conf", "./mosquitto-run.sh"):
        assert (DOCKER / path).is_file()


def test_the_shipped_broker_refuses_anonymous_clients_and_queues_a_day_for_the_bridge():
    directives = {}
    for line in (DOCKER / "mosquitto.conf").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            directives.setdefault(name, value)
    assert directives["allow_anonymous"] == "false"
    assert directives["password_file"] == "/mosquitto/auth/passwd"
    assert directives["acl_file"] == "/mosquitto/auth/acl"
    assert int(directives["max_queued_messages"]) >= 1_150_000  # 500 cabinets × ~2 300 messages a day
    assert directives["persistence"] == "true"


def test_the_broker_script_installs_the_files_where_the_config_reads_them():
    script = (DOCKER / "mosquitto-run.sh").read_text()
    assert 'TARGET="${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"' in script
    assert 'SOURCE="${SPD_AUTH_SOURCE:-/spd-auth}"' in script
    assert "kill -HUP" in script
    if shutil.which("sh"):
        subprocess.run(["sh", "-n", str(DOCKER / "mosquitto-run.sh")], check=True)
        subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")], check=True)


def test_the_web_container_and_the_benchmarks_run_gunicorn_with_one_configuration():
    import runpy

    config = runpy.run_path(str(ROOT / "spd" / "gunicorn_conf.py"))
    assert (config["worker_class"], config["workers"], config["threads"]) == ("gthread", 3, 4)
    assert "--config spd/gunicorn_conf.py" in (DOCKER / "entrypoint.sh").read_text()
    assert '"--config", "spd/gunicorn_conf.py"' in (DOCKER / "Dockerfile").read_text()
    assert '"gunicorn_conf.py"' in (ROOT / "bench" / "server.py").read_text()


def test_a_web_worker_freezes_its_start_up_objects_once_the_application_is_loaded():
    # In a process of its own, as a gunicorn worker: the application loaded, then the hook.
    script = (
        "import gc, runpy, django; django.setup();"
        "config = runpy.run_path('spd/gunicorn_conf.py');"
        "import sys; before = gc.get_freeze_count(); config['post_worker_init'](None);"
        "print(before, gc.get_freeze_count(), 'inventory.api.views' in sys.modules or 'inventory.api' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "spd.settings"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    before, after, urls_loaded = out.stdout.split()
    assert int(before) == 0 and int(after) > 100_000 and urls_loaded == "True"


def test_celery_workers_freeze_their_start_up_objects():
    from celery.signals import worker_process_init, worker_ready

    import spd.celery

    for signal in (worker_process_init, worker_ready):
        assert spd.celery._freeze_start_up_objects in [receiver() for _, receiver in signal.receivers]
