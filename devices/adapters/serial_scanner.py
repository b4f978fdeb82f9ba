"""Serial barcode scanners: frame the bytes a scanner sends, and turn each frame into a scan event.

A serial scanner (RS-232, or USB in CDC/virtual-COM mode) sends each barcode it reads followed by a
configurable suffix, usually CR LF. `FrameDecoder` is the pure part — bytes in, codes out — so
tests call it directly. `SerialScannerReader` is the long-running part: it opens the port by
pyserial URL (`/dev/ttyUSB0`, `/dev/pts/3`, `socket://host:port`, `loop://`), hands every code to
`devices.services.ingest_event` as a `scan` event, and survives whatever the port and the scanner
do: unplugged cables, garbage, half frames, endless lines.
"""
import codecs
import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import serial
from django.db import close_old_connections
from django.utils import timezone

from devices.models import Device, DeviceEvent
from devices.services import EventRejected, ingest_event

logger = logging.getLogger(__name__)

DEFAULT_SUFFIX = "\\r\\n"
DEFAULT_BAUDRATE = 9600
MAX_FRAME = 4096
# A connection that delivered data or lasted this long (s) was healthy: its loss restarts the back-off.
HEALTHY_AFTER = 5.0

# Stripped from both ends of a frame: stray line ends when the suffix is only half of what the
# scanner sends (CR of CR LF), and NUL line noise, which no symbology carries and PostgreSQL text
# cannot hold. Nothing else: a space or tab is data (a HIBC check character may be a space), and
# GS (0x1D) separates GS1 fields (str.strip() would remove it: Python counts 0x1C-0x1F as whitespace).
_FRAME_PADDING = b"\x00\n\r"


class ScannerConfigError(ValueError):
    """A device whose configuration a serial reader cannot use (no port, bad suffix or baud rate)."""


def parse_suffix(text: str) -> bytes:
    """The frame suffix bytes for a suffix written as an escape string: "\\r\\n", "\\r", "\\t", "\\x03"…

    Configuration is JSON edited by people, where control characters are awkward, so the usual
    backslash escapes are accepted; characters written literally are kept as they are.
    """
    if not isinstance(text, str) or not text:
        raise ScannerConfigError("frame suffix must be a non-empty string such as \\r\\n")
    try:
        suffix = codecs.decode(text.encode("latin-1"), "unicode_escape").encode("latin-1")
    except (UnicodeError, ValueError) as error:
        raise ScannerConfigError(f"frame suffix {text!r} is not a valid escape string: {error}") from None
    if not suffix:
        raise ScannerConfigError("frame suffix must not be empty")
    return suffix


class FrameDecoder:
    """Split a byte stream into scanned codes at a suffix.

    Reads from a serial port end anywhere: a code may arrive in several chunks, several codes may
    arrive in one. The decoder keeps the unfinished tail between calls, drops empty frames, keeps
    every other byte of a frame (spaces at either end included), and
    decodes as Latin-1 so that every byte — GS (0x1D) included — reaches the UDI parser unchanged.
    Memory is bounded: a frame that grows past `max_frame` bytes without a suffix (wrong suffix
    configured, line noise) is dropped whole, up to the next suffix, with a warning.
    """

    def __init__(self, suffix: bytes = b"\r\n", *, max_frame: int = MAX_FRAME) -> None:
        if not suffix:
            raise ValueError("the frame suffix must not be empty")
        self.suffix = bytes(suffix)
        self.max_frame = max_frame
        self.dropped = 0
        self._buffer = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[str]:
        """The codes completed by this chunk, in order."""
        self._buffer += data
        codes = []
        while (end := self._buffer.find(self.suffix)) >= 0:
            frame = bytes(self._buffer[:end])
            del self._buffer[: end + len(self.suffix)]
            if self._discarding:
                self._discarding = False  # the end of the oversize frame, already counted
                continue
            if len(frame) > self.max_frame:
                self._drop(len(frame))
                continue
            if code := frame.strip(_FRAME_PADDING).decode("latin-1"):
                codes.append(code)
        if len(self._buffer) > self.max_frame:
            if not self._discarding:
                self._drop(len(self._buffer))
                self._discarding = True
            # Keep what could be the start of a suffix split across two reads.
            del self._buffer[: len(self._buffer) - (len(self.suffix) - 1)]
        return codes

    def reset(self) -> None:
        """Forget an unfinished frame, e.g. when the port was lost: a frame never spans two connections."""
        self._buffer.clear()
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held while waiting for a suffix; never more than `max_frame`."""
        return len(self._buffer)

    def _drop(self, size: int) -> None:
        self.dropped += 1
        logger.warning(
            "dropped a frame of over %d bytes (%d so far) without the suffix %r: wrong suffix configured or line noise",
            self.max_frame, size, self.suffix,
        )


@dataclass
class ReaderCounters:
    """What a reader has done since it started, for its log lines and for tests."""

    frames: int = 0  # codes framed from the port
    ingested: int = 0  # stored as new device events (whatever the scan handler then decided)
    refused: int = 0  # of those, refused or failed by the scan handler (e.g. an unparseable code)
    errors: int = 0  # port failures, failed opens, and codes that could not be stored
    reconnects: int = 0  # successful re-opens after the port was lost


class SerialScannerReader:
    """Read one serial scanner until stopped; every framed code becomes one `scan` event.

    Event ids: a serial scanner has no id of its own for a scan, so the reader makes one per frame
    (`<device code>-<uuid4>`), and reuses it only when it retries storing that same frame after a
    database error — the ingest path then returns the first result instead of applying it twice.
    A fresh id per physical scan is right: scanning the same label twice is two scans, which is
    what an operator means by it. A scanner that re-sends a label, or an operator who re-scans one,
    makes two events, and that is harmless: a scan alone moves no stock. Only a device in
    RECEIVE_INTO_LOCATION mode moves the unit, and that transfer is idempotent by state — the
    second scan finds the unit already at the device's location and is refused, nothing moves.

    Bad data never stops the reader: a garbage line is stored like any scan (the scan handler
    refuses it with UDI_UNPARSEABLE, so it stays visible in the device's event log) and logged.
    A lost port (unplugged USB adapter, closed socket) is reopened with exponential back-off.
    `stop()` — called by the SIGTERM/SIGINT handler of `run_scanner`, or by a test — ends `run()`
    within about one read timeout.
    """

    def __init__(
        self,
        device: Device,
        *,
        url: str | None = None,
        baudrate: int | None = None,
        read_timeout: float = 0.2,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        max_frame: int = MAX_FRAME,
    ) -> None:
        config = device.config or {}
        self.device = device
        self.url = url or config.get("port_url") or ""
        if not self.url:
            raise ScannerConfigError(f"device {device.code} has no port_url and no URL was given")
        try:
            self.baudrate = int(baudrate or config.get("baudrate") or DEFAULT_BAUDRATE)
        except (TypeError, ValueError):
            raise ScannerConfigError(f"device {device.code} has an invalid baudrate {config.get('baudrate')!r}") from None
        self.decoder = FrameDecoder(parse_suffix(config.get("frame_suffix") or DEFAULT_SUFFIX), max_frame=max_frame)
        self.read_timeout = read_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.counters = ReaderCounters()
        self.connected = threading.Event()  # set while the port is open, for tests and status
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask `run()` to return; safe from a signal handler or another thread."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Open, read and reopen the port until `stop()`."""
        logger.info("serial reader for %s on %s at %d baud, suffix %r", self.device.code, self.url,
                    self.baudrate, self.decoder.suffix)
        opened_before = False
        delay = self.backoff_initial
        attempt = 0
        try:
            while not self.stopping:
                attempt += 1
                try:
                    port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self.read_timeout)
                except (serial.SerialException, OSError) as error:  # a ValueError (bad URL) is fatal
                    self.counters.errors += 1
                    logger.warning("cannot open %s for %s (attempt %d): %s; retrying in %.1f s",
                                   self.url, self.device.code, attempt, error, delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                if opened_before:
                    self.counters.reconnects += 1
                logger.info("opened %s for %s (attempt %d)", self.url, self.device.code, attempt)
                opened_before, attempt, opened_at = True, 0, time.monotonic()
                received = self._read_until_lost(port)
                if received or time.monotonic() - opened_at >= HEALTHY_AFTER:
                    delay = self.backoff_initial
                # Back off after a loss too: a port that opens and fails at once must not spin.
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
        finally:
            close_old_connections()
            logger.info("serial reader for %s stopped: %s", self.device.code, self.counters)

    def _read_until_lost(self, port: serial.SerialBase) -> bool:
        """Read until the port fails or `stop()`; tell whether the port delivered any data."""
        self.connected.set()
        received = False
        try:
            while not self.stopping:
                data = port.read(1)  # waits up to read_timeout, so stop() is seen promptly
                if not data:
                    continue
                data += port.read(port.in_waiting)
                received = True
                if codes := self.decoder.feed(data):
                    self.counters.frames += len(codes)
                    self._ingest_batch(codes)
        except (serial.SerialException, OSError) as error:
            self.counters.errors += 1
            logger.warning("lost %s for %s: %s", self.url, self.device.code, error)
        finally:
            self.connected.clear()
            self.decoder.reset()
            with contextlib.suppress(OSError):  # closing a port whose device is gone may fail too
                port.close()
        return received

    def _ingest_batch(self, codes: list[str]) -> None:
        # A reader lives for months: drop connections the database or CONN_MAX_AGE has expired
        # before using one, and give it back when the batch is done.
        close_old_connections()
        try:
            self._refresh_device()
            for code in codes:
                self._ingest(code)
        finally:
            close_old_connections()

    def _refresh_device(self) -> None:
        """Pick up changes made in the registry (scan mode, location, GS substitute) without a restart."""
        try:
            self.device.refresh_from_db()
        except Exception:  # the stored copy still works; the ingest retries below deal with the database
            logger.exception("could not refresh device %s", self.device.code)

    def _ingest(self, code: str, *, attempts: int = 3) -> None:
        if not self.device.is_active:
            self.counters.errors += 1
            logger.warning("device %s is inactive; scan %r ignored", self.device.code, code)
            return
        body = {
            "event_id": f"{self.device.code}-{uuid.uuid4().hex}", "kind": DeviceEvent.Kind.SCAN.value,
            "occurred_at": timezone.now().isoformat(), "payload": {"code": code},
        }
        for attempt in range(1, attempts + 1):
            try:
                outcome = ingest_event(device=self.device, body=body)
            except EventRejected as rejected:
                self.counters.errors += 1
                logger.warning("scan %r from %s rejected: %s %s", code, self.device.code, rejected.code, rejected.detail)
                return
            except Exception:  # database trouble: retry with the same event id, so nothing applies twice
                logger.exception("storing scan %r from %s failed (attempt %d of %d)", code, self.device.code,
                                 attempt, attempts)
                close_old_connections()
                if attempt == attempts or self._stop.wait(0.5 * attempt):
                    break
                continue
            self._count(code, outcome.event)
            return
        self.counters.errors += 1
        logger.error("scan %r from %s was not stored; it must be scanned again", code, self.device.code)

    def _count(self, code: str, event: DeviceEvent) -> None:
        self.counters.ingested += 1
        if event.status == DeviceEvent.Status.PROCESSED:
            logger.info("scan %r from %s: %s", code, self.device.code, event.event_id)
            return
        self.counters.refused += 1
        logger.warning("scan %r from %s: %s %s %s", code, self.device.code, event.status, event.error_code,
                       event.error_detail)

