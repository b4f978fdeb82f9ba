"""The application served for real (gunicorn on a free port) and a small HTTP client for it.

The server runs `gunicorn spd.wsgi` like the production web container — its configuration file
`spd/gunicorn_conf.py`: gthread workers — with DEBUG off, on the benchmark's database; it is
stopped when the block ends.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The URL of the database Django is connected to now (the test database under pytest)."""
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    def connection(self) -> HttpClient:
        return HttpClient(self.host, self.port)


@contextlib.contextmanager
def gunicorn(*, workers: int, log_path: Path) -> Iterator[Server]:
    """gunicorn serving the app on the current database; yields once it answers."""
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url(), "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or f"bench-{secrets.token_hex(24)}",
        "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "spd.settings",
    }
    executable = Path(sys.executable).with_name("gunicorn")
    # The production configuration (worker class, threads, keep-alive), for every endpoint and the
    # baseline alike; only the process count is the workload's.
    command = [str(executable) if executable.exists() else "gunicorn", "spd.wsgi:application",
               "--config", str(ROOT / "spd" / "gunicorn_conf.py"),
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
               "--timeout", "300", "--backlog", "256"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        server = Server("127.0.0.1", port)
        _wait_until_up(server, process, log_path)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(server: Server, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            status, _ = server.connection().request("GET", "/healthz/")
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {log_path}")


class HttpClient:
    """One keep-alive connection (reopened when the server closes it), JSON in and out."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=300)

    def request(self, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, object]:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", "Accept-Language": "en", **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=payload, headers=all_headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()  # the server closed an idle keep-alive connection: once more
            self.connection.request(method, path, body=payload, headers=all_headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        content_type = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if data and "json" in content_type else data

    def close(self) -> None:
        self.connection.close()
