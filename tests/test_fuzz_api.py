"""Schemathesis fuzzes every operation of the OpenAPI schema against a real server.

The server is gunicorn (as in production, DEBUG off) on a PostgreSQL database of its own, migrated
and loaded with the demo alliance, called with an administrator's token (and a device token for the
device event endpoint). Every operation gets positive and negative data (schemathesis' examples,
coverage and fuzzing phases); then a stateful run follows the links schemathesis infers between
operations. A test fails on any 5xx and on any response that does not match the schema — which
documents the error body `{code, detail, problems}` for every 4xx (see inventory/api/errors.py).

Run time is bounded by `SPD_FUZZ_MAX_EXAMPLES` examples per operation and phase (default 5: about
three minutes on two cores); raise it for a deeper local run.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
import requests
import schemathesis
from django.conf import settings
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import CHECKS

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = int(os.environ.get("SPD_FUZZ_MAX_EXAMPLES", "5"))
# Not fuzzed: the login (its throttle and lock-out answer 429 by design once a few bad passwords
# arrive; tests/inventory/api/test_bad_input.py covers its bad input) and the schema itself.
EXCLUDED_PATHS = ("/api/v1/auth/token/",)
CHECK_NAMES = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(database_url: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DATABASE_URL=database_url, DEBUG="0", SECRET_KEY="fuzz-only-secret-key-" + "x" * 40,
        SECURE_SSL_REDIRECT="0", ALLOWED_HOSTS="127.0.0.1,localhost", CELERY_TASK_ALWAYS_EAGER="1",
        CELERY_BROKER_URL="memory://", SPD_HIS_CHARGE_URL="http://127.0.0.1:9/charges",
        SPD_HIS_TIMEOUT_SECONDS="0.2", LOG_LEVEL="WARNING", LOGIN_THROTTLE_RATE="1000/min",
        DJANGO_SETTINGS_MODULE="spd.settings",
        # No connection kept between requests: the stateful test swaps the database under the server.
        DB_CONN_MAX_AGE="0",
    )
    env.pop("REDIS_URL", None)
    return env


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class FuzzServer(NamedTuple):
    base_url: str
    user_token: str
    device_token: str
    restore_data: Callable[[], None]  # the database back to the seeded demo data (ids, tokens and all)


@pytest.fixture(scope="module")
def fuzz_server():
    """gunicorn on a fresh PostgreSQL database with the demo data, kept as a template to restore it from."""
    default = settings.DATABASES["default"]
    if default["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the fuzz server needs PostgreSQL")
    name = f"{default['NAME']}_apifuzz"[:63]
    admin = {
        "host": default.get("HOST") or "127.0.0.1", "port": default.get("PORT") or 5432, "user": default.get("USER") or "postgres",
        "password": default.get("PASSWORD") or None, "dbname": "postgres", "autocommit": True,
    }
    seed = f"{name[:58]}_seed"
    with psycopg.connect(**admin) as connection:
        for database in (name, seed):
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')

    def restore_data() -> None:
        with psycopg.connect(**admin) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seed}"')
    parsed = urlparse(os.environ.get("DATABASE_URL", ""))
    database_url = urlunparse(parsed._replace(path=f"/{name}"))
    env = _server_env(database_url)
    server = None
    try:
        _manage(env, "migrate", "--no-input", "-v0")
        _manage(env, "seed_demo")
        user_token = _manage(env, "shell", "-c", (
            "from rest_framework.authtoken.models import Token; from inventory.models import User; "
            "print(Token.objects.get_or_create(user=User.objects.get(username='admin'))[0].key)"
        )).strip().splitlines()[-1]
        device_token = _manage(env, "shell", "-c", (
            "from devices.models import Device; d = Device.objects.filter(hospital__is_lead=True, is_active=True)"
            ".order_by('pk').first(); t = d.issue_token(); d.save(update_fields=['token_hash']); print(t)"
        )).strip().splitlines()[-1]
        with psycopg.connect(**admin) as connection:
            connection.execute(f'CREATE DATABASE "{seed}" TEMPLATE "{name}"')
        port = _free_port()
        server = subprocess.Popen(
            # No request-line limit here: an overlong URL is refused by gunicorn (or the front proxy)
            # with an HTML 414 before the application sees it; what is fuzzed is the application.
            [sys.executable, "-m", "gunicorn", "spd.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--timeout", "120", "--log-level", "warning", "--limit-request-line", "0", "--no-control-socket"],
            cwd=ROOT, env=env,
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base_url}/healthz/", timeout=10).status_code < 500:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.3)
        yield FuzzServer(base_url, user_token, device_token, restore_data)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with psycopg.connect(**admin) as connection:
            for database in (name, seed):
                connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _openapi_document() -> dict:
    """The schema /api/schema/ serves (same generator, same hooks), made at collection time so that
    every operation is a test of its own."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


CONFIG = schemathesis.Config.from_dict({
    "request-timeout": 60,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "allow-x00": True},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": True}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECK_NAMES}},
})
schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG).exclude(path=list(EXCLUDED_PATHS))
CHECK_FUNCTIONS = CHECKS.get_by_names(CHECK_NAMES)
QUICK = hypothesis_settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def _call_kwargs(case, fuzz_server) -> dict:
    base_url, user_token, device_token, _ = fuzz_server
    if case.operation.path == "/api/v1/devices/events/" and case.operation.method.upper() == "POST":
        authorization = f"Device {device_token}"
    else:
        authorization = f"Token {user_token}"
    return {"base_url": base_url, "headers": {**(case.headers or {}), "Authorization": authorization}}


@schema.parametrize()
@hypothesis_settings(QUICK, max_examples=MAX_EXAMPLES)
def test_every_operation_answers_without_a_server_error_and_as_documented(case, fuzz_server):
    case.call_and_validate(**_call_kwargs(case, fuzz_server), checks=CHECK_FUNCTIONS)


def test_linked_operations_hold_up_in_sequence(fuzz_server):
    """Stateful: schemathesis chains operations by the links it infers from the schema (a list's ids
    into its detail, update, delete and actions …), so later steps act on objects that exist.

    Every sequence starts from the same data: the database is restored from the seeded template in
    `setup()`. Hypothesis requires a test to be a function of its choices — it keeps a tree of every
    run's draws and replays known prefixes — while here the draws depend on the server: which rules
    may run depends on which bundles hold a response (a list answering 200, a PUT answering 200 and
    not 400 for a code taken by an earlier sequence …), and with swarm testing each valid rule costs a
    feature-flag draw, the last one forced. On data that earlier sequences had changed, the same prefix
    drew a different number of booleans and Hypothesis stopped the run with FlakyStrategyDefinition
    ("The boolean value was forced to a specific value but was not forced on the first run"), as
    schemathesis' own runner expects and swallows (engine/run/stateful/_executor.py, `_classify_flaky`).

    Failures are collected rather than raised, so that a failing step does not end the run before the
    others are seen."""
    failures: list[str] = []

    class Sequences(schema.as_state_machine()):
        def setup(self) -> None:
            fuzz_server.restore_data()

        def get_call_kwargs(self, case) -> dict:
            return _call_kwargs(case, fuzz_server)

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            try:
                case.validate_response(response, checks=CHECK_FUNCTIONS, transport_kwargs=kwargs)
            except Exception as failure:  # schemathesis' FailureGroup and its kin
                failures.append(f"{case.operation.method.upper()} {case.operation.path}: {failure}")

    Sequences.run(settings=hypothesis_settings(
        QUICK, max_examples=MAX_EXAMPLES * 4, stateful_step_count=12, phases=[Phase.explicit, Phase.generate],
    ))
    assert not failures, f"{len(failures)} failing steps; the first:\n{failures[0]}"


# --- what only a real HTTP server shows ----------------------------------------------------------

def _raw_request(base_url: str, request: bytes) -> tuple[int, dict, bytes]:
    """Send `request` as is and read the answer (http.client would fix up what we break on purpose)."""
    parsed = urlparse(base_url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=60) as sock:
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, dict(answer.getheaders()), answer.read()


def test_a_chunked_device_event_is_a_json_411(fuzz_server):
    base_url, _, device_token, _ = fuzz_server
    body = json.dumps({"event_id": "chunked-1", "kind": "scan", "occurred_at": "2026-11-23T09:30:00+08:00",
                       "payload": {"code": "x"}}).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    status, headers, content = _raw_request(base_url, (
        "POST /api/v1/devices/events/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Device {device_token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunked)
    assert status == 411, content[:300]
    assert json.loads(content)["code"] == "LENGTH_REQUIRED"


@pytest.mark.parametrize("path", ["/api/v1/transfers/", "/api/v1/devices/events/", "/api/v1/auth/token/"])
def test_a_body_over_the_limit_is_a_json_413_not_read(fuzz_server, path):
    base_url, user_token, _, _ = fuzz_server
    declared = 50 * 1024 * 1024
    status, _, content = _raw_request(base_url, (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Token {user_token}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    ).encode() + b"{" * 1024)
    assert status == 413, content[:300]
    assert json.loads(content)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_megabyte_username_at_the_api_login_is_a_validation_error(fuzz_server):
    """(The web login's is tests/inventory/api/test_bad_input.py: over plain HTTP the secure CSRF
    cookie of a DEBUG-off server is not sent back.)"""
    base_url, _, _, _ = fuzz_server
    response = requests.post(
        f"{base_url}/api/v1/auth/token/", json={"username": "u" * 2**20, "password": "x"}, timeout=60,
    )
    assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"


def test_an_unknown_api_path_is_a_json_404_on_the_real_server(fuzz_server):
    base_url, user_token, _, _ = fuzz_server
    for path in ("/api/v1/no-such-thing/", "/api/v1/units/%00/", "/api/v1/units/1/%F0/", "/api/nothing"):
        response = requests.get(f"{base_url}{path}", headers={"Authorization": f"Token {user_token}"}, timeout=60)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NOT_FOUND"
