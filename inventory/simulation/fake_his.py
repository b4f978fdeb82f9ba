"""A small, real HTTP server that plays the HIS's charge endpoint, for tests and the demo.

It behaves as the HIS contract asks: it keeps the first charge per `Idempotency-Key` and answers
every repeat of that key with the same `his_reference`, recording the charge once. It can be told
to misbehave, for the next N requests or until told otherwise:

    ok       accept (the default)
    fail     answer 500, record nothing
    reject   answer 422 (a 4xx the HIS might give for an unknown charge code), record nothing
    timeout  hang without answering for longer than any client waits, record nothing
    slow     accept, but answer only after `delay` seconds
    drop     accept and record the charge, then close the connection without an answer: the
             "HIS accepted it but the relay never heard" case

Control from Python (`FakeHis.set_mode`, `.received`, `.requests`) or over HTTP:
`POST /_control {"mode": "fail", "count": 3, "delay": 1.5}`, `GET /_received`, `POST /_reset`.
Charges are accepted by POST on any other path, e.g. /charges.
"""
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "fail", "reject", "timeout", "slow", "drop")


@dataclass
class ReceivedCharge:
    """A charge the fake HIS holds: recorded once per idempotency key."""

    key: str
    his_reference: str
    body: dict
    times_sent: int = 1


@dataclass
class Attempt:
    """One request to the charge endpoint and how the fake HIS treated it."""

    key: str
    mode: str
    headers: dict = field(default_factory=dict)


class FakeHis:
    """Start with `start()` (or as a context manager); `url` is where to POST charges."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, token: str = "", delay: float = 1.0,
        hang_seconds: float = 30.0, duplicate_status: int = 200,
        on_charge: Callable[[ReceivedCharge], None] | None = None,
    ) -> None:
        self.token = token
        self.delay = delay
        self.hang_seconds = hang_seconds
        self.duplicate_status = duplicate_status  # 200, or 409 as some HIS answer a repeated key
        self.on_charge = on_charge
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._mode, self._count = "ok", None
        self._charges: dict[str, ReceivedCharge] = {}
        self._attempts: list[Attempt] = []
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # --- running -----------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/charges"

    def start(self) -> "FakeHis":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-his", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests left hanging (timeout mode) are let go at once."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeHis":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- control -----------------------------------------------------------------------------------

    def set_mode(self, mode: str, count: int | None = None, delay: float | None = None) -> None:
        """Behave as `mode` for the next `count` charge requests (all of them if None), then "ok"."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._mode, self._count = mode, count
            if delay is not None:
                self.delay = delay

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    def reset(self) -> None:
        """Forget every charge and request, and go back to "ok"."""
        with self._lock:
            self._charges.clear()
            self._attempts.clear()
            self._mode, self._count = "ok", None

    @property
    def received(self) -> list[ReceivedCharge]:
        """The charges held, one per idempotency key, in the order they first arrived."""
        with self._lock:
            return list(self._charges.values())

    @property
    def requests(self) -> list[Attempt]:
        """Every request to the charge endpoint, repeats included."""
        with self._lock:
            return list(self._attempts)

    def charge(self, key: str) -> ReceivedCharge | None:
        with self._lock:
            return self._charges.get(key)

    # --- used by the handler -----------------------------------------------------------------------

    def _take_mode(self, key: str, headers: dict) -> str:
        with self._lock:
            mode = self._mode
            if self._count is not None:
                self._count -= 1
                if self._count == 0:
                    self._mode, self._count = "ok", None
            self._attempts.append(Attempt(key=key, mode=mode, headers=headers))
            return mode

    def _accept(self, key: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            held = self._charges.get(key)
            if held is not None:
                if held.body != body:
                    return 422, {"error": f"idempotency key {key} was used for a different charge"}
                held.times_sent += 1
                return self.duplicate_status, {"his_reference": held.his_reference, "duplicate": True}
            held = ReceivedCharge(key=key, his_reference=f"HIS-{len(self._charges) + 1:06d}", body=body)
            self._charges[key] = held
        if self.on_charge is not None:
            self.on_charge(held)
        return 201, {"his_reference": held.his_reference}

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeHIS/1.0"

    @property
    def fake(self) -> FakeHis:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded requests are the log."""

    def do_GET(self) -> None:
        if self.path == "/_received":
            self._answer(200, [asdict(charge) for charge in self.fake.received])
        elif self.path == "/_requests":
            self._answer(200, [asdict(attempt) for attempt in self.fake.requests])
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._answer(400, {"error": "the body is not JSON"})
            return
        if self.path == "/_control":
            self._control(body)
        elif self.path == "/_reset":
            self.fake.reset()
            self._answer(200, {"mode": "ok"})
        elif self.path.startswith("/_"):
            self._answer(404, {"error": "not found"})
        else:
            self._charge(body)

    def _control(self, body: object) -> None:
        if not isinstance(body, dict):
            self._answer(400, {"error": "send {\"mode\": ..., \"count\": N}"})
            return
        try:
            self.fake.set_mode(body.get("mode", "ok"), body.get("count"), body.get("delay"))
        except (ValueError, TypeError) as error:
            self._answer(400, {"error": str(error)})
            return
        self._answer(200, {"mode": self.fake.mode, "count": body.get("count")})

    def _charge(self, body: object) -> None:
        fake = self.fake
        if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
            self._answer(401, {"error": "missing or wrong bearer token"})
            return
        key = self.headers.get("Idempotency-Key", "")
        if not key or not isinstance(body, dict):
            self._answer(400, {"error": "a JSON object and an Idempotency-Key header are required"})
            return
        mode = fake._take_mode(key, dict(self.headers.items()))
        if mode == "fail":
            self._answer(500, {"error": "HIS internal error (simulated)"})
        elif mode == "reject":
            self._answer(422, {"error": f"charge code {body.get('his_charge_code')} is not in the HIS (simulated)"})
        elif mode == "timeout":
            fake._wait(fake.hang_seconds)
            self.close_connection = True
        else:
            if mode == "slow":
                fake._wait(fake.delay)
            status, answer = fake._accept(key, body)
            if mode == "drop":
                self.close_connection = True  # accepted and recorded, but no answer at all
                return
            self._answer(status, answer)

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
