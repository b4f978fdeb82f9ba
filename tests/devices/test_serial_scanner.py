"""Serial scanners: framing on its own, then the reader and the commands against real pseudo-terminals.

A pty stands in for the scanner's port: the reader opens the slave path as it would /dev/ttyUSB0,
the test writes what the scanner would send to the master. The reader runs in a thread, so those
tests use committed data (`transaction=True`) and every thread closes its connection at the end.
Waits poll with a timeout; nothing sleeps for a fixed long time.
"""
import contextlib
import os
import select
import signal
import threading
import time
import tty
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from devices.adapters.serial_scanner import FrameDecoder, ScannerConfigError, SerialScannerReader, parse_suffix
from devices.management.commands import run_scanner
from devices.models import Device, DeviceEvent
from inventory.models import Movement, Unit, UnitStatus
from inventory.services.receiving import LineInput, accept_delivery_note, receive_delivery_note
from tests.conftest import scan_every_line
from tests.factories import gs1_udi

WAIT = 5.0  # seconds any single condition may take before the test fails


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


# --- framing -------------------------------------------------------------------------------------


def test_code_split_across_reads_is_one_frame():
    decoder = FrameDecoder(b"\r\n")
    assert decoder.feed(b"]d20106") == []
    assert decoder.feed(b"9500000000017") == []
    assert decoder.feed(b"21SN1\r") == []
    assert decoder.feed(b"\n") == ["]d2010695000000000172" "1SN1"]
    assert decoder.pending == 0


def test_several_codes_in_one_read_are_separate_frames():
    decoder = FrameDecoder(b"\r\n")
    assert decoder.feed(b"A1\r\nB2\r\nC3\r\nD4") == ["A1", "B2", "C3"]
    assert decoder.feed(b"\r\n") == ["D4"]


def test_empty_frames_are_dropped_and_only_line_ends_are_trimmed():
    decoder = FrameDecoder(b"\r")
    assert decoder.feed(b"\r\rA1\r\n\rB2 \r\n C3\t\r") == ["A1", "B2 ", " C3\t"]


# A HIBC label whose mod-43 check character is a space (data "+A99912341/$$+3281231S0").
HIBC_SPACE_CHECK = "+A99912341/$$+3281231S0 "


def test_a_space_at_either_end_of_a_frame_is_kept():
    decoder = FrameDecoder(b"\r\n")
    assert decoder.feed(HIBC_SPACE_CHECK.encode("latin-1") + b"\r\n") == [HIBC_SPACE_CHECK]
    assert decoder.feed(b"\x00 X1 \x00\r\n") == [" X1 "]  # NUL line noise goes, spaces stay


@pytest.mark.parametrize(
    ("text", "suffix"),
    [("\\r\\n", b"\r\n"), ("\\r", b"\r"), ("\\n", b"\n"), ("\\t", b"\t"), ("\\x03", b"\x03"), ("<EOT>", b"<EOT>")],
)
def test_suffix_is_given_as_an_escape_string(text, suffix):
    assert parse_suffix(text) == suffix
    decoder = FrameDecoder(parse_suffix(text))
    stream = b"CODE-1" + suffix + b"CODE-2" + suffix
    frames = [frame for byte in range(len(stream)) for frame in decoder.feed(stream[byte: byte + 1])]
    assert frames == ["CODE-1", "CODE-2"]


@pytest.mark.parametrize("text", ["", "\\x", "\\u4e2d"])
def test_unusable_suffix_is_a_configuration_error(text):
    with pytest.raises(ScannerConfigError):
        parse_suffix(text)


def test_group_separator_is_kept_in_the_code():
    code = "]d20106950000000001717261231" "10L1\x1d21SN1"
    decoder = FrameDecoder(b"\r\n")
    assert decoder.feed(code.encode("latin-1") + b"\r\n") == [code]
    assert decoder.feed(b"\x1d2110\r\n") == ["\x1d2110"]


def test_oversize_frame_is_dropped_whole_and_the_next_code_survives(caplog):
    decoder = FrameDecoder(b"\r\n", max_frame=64)
    for _ in range(50):
        assert decoder.feed(b"x" * 30) == []
        assert decoder.pending <= 64
    assert decoder.feed(b"tail of the long line\r\nGOOD\r\n") == ["GOOD"]
    assert decoder.feed(b"y" * 100 + b"\r\nNEXT\r\n") == ["NEXT"]
    assert decoder.dropped == 2
    assert "dropped a frame of over 64 bytes" in caplog.text


def test_suffix_split_across_reads_after_an_oversize_frame_still_ends_it():
    decoder = FrameDecoder(b"\r\n", max_frame=8)
    assert decoder.feed(b"z" * 20 + b"\r") == []
    assert decoder.feed(b"\nOK\r\n") == ["OK"]


@given(
    frames=st.lists(st.text(alphabet="0123456789()+-/ABC\x1d", min_size=1, max_size=40), max_size=12),
    suffix=st.sampled_from([b"\r\n", b"\r", b"\n", b"\t", b"<EOT>"]),
    data=st.data(),
)
def test_any_chunking_of_a_stream_gives_back_its_frames(frames, suffix, data):
    stream = b"".join(frame.encode("latin-1") + suffix for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder(suffix)
    decoded = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoded += decoder.feed(stream[start:end])
    assert decoded == frames
    assert decoder.pending == 0


# --- the reader against a real pseudo-terminal ----------------------------------------------------


class Pty:
    """A pseudo-terminal pair: the reader opens `path` (the slave), the test plays the scanner on the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw at once: otherwise bytes written before the reader configures the port get the
        # terminal's line editing (CR turned into LF, echo).
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.closed = False

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read(self, until: Callable[[bytes], bool], timeout: float = WAIT) -> bytes:
        received = b""
        deadline = time.monotonic() + timeout
        while not until(received) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                received += os.read(self.master, 4096)
        return received

    def close(self) -> None:
        """Unplug: the slave first, so the reader's open port is the last user of the device node."""
        if not self.closed:
            self.closed = True
            os.close(self.slave)
            os.close(self.master)


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    pair = Pty()
    yield pair
    pair.close()


@pytest.fixture
def scanner(hospital) -> Device:
    return Device.objects.create(
        hospital=hospital, code="SER-1", name="收货台扫码枪", kind=Device.Kind.SERIAL_SCANNER,
        config={"port_url": "/dev/null-scanner", "baudrate": 115200, "frame_suffix": "\\r\\n"},
    )


def fast_reader(device: Device, url: str, **options) -> SerialScannerReader:
    return SerialScannerReader(device, url=url, read_timeout=0.05, backoff_initial=0.05, backoff_max=0.2, **options)


@contextlib.contextmanager
def running(reader: SerialScannerReader) -> Iterator[threading.Thread]:
    def run() -> None:
        try:
            reader.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="serial-reader", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        reader.stop()
        thread.join(WAIT)
        assert not thread.is_alive(), "the reader did not stop"


def codes_of(device: Device) -> list[str]:
    return [event.payload["code"] for event in DeviceEvent.objects.filter(device=device).order_by("id")]


@pytest.mark.django_db(transaction=True)
def test_codes_split_across_writes_or_joined_in_one_write_each_become_one_event(scanner, product, pty_pair):
    first, second, third = (gs1_udi(product.udi_di, serial=f"S{n}", lot="L1") for n in (1, 2, 3))
    reader = fast_reader(scanner, pty_pair.path)
    with running(reader):
        assert reader.connected.wait(WAIT)
        frame = first.encode("latin-1") + b"\r\n"
        for piece in (frame[:5], frame[5:20], frame[20:-1], frame[-1:]):
            pty_pair.write(piece)
            time.sleep(0.02)  # let the reader see each piece as its own read
        assert wait_for(lambda: reader.counters.ingested == 1)
        pty_pair.write(f"{second}\r\n{third}\r\n".encode("latin-1"))
        assert wait_for(lambda: reader.counters.ingested == 3)

    assert codes_of(scanner) == [first, second, third]
    events = DeviceEvent.objects.filter(device=scanner)
    assert {event.kind for event in events} == {"scan"}
    assert {event.status for event in events} == {DeviceEvent.Status.PROCESSED}
    assert len({event.event_id for event in events}) == 3
    assert all(event.event_id.startswith("SER-1-") for event in events)
    assert events[0].result["udi"]["serial"] == "S1"
    assert (reader.counters.frames, reader.counters.errors, reader.counters.refused) == (3, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_hibc_label_ending_in_a_space_check_character_is_stored_and_read_whole(scanner, pty_pair):
    reader = fast_reader(scanner, pty_pair.path)
    with running(reader):
        assert reader.connected.wait(WAIT)
        pty_pair.write(HIBC_SPACE_CHECK.encode("latin-1") + b"\r\n")
        assert wait_for(lambda: reader.counters.ingested == 1)

    event = DeviceEvent.objects.get(device=scanner)
    assert event.payload["code"] == HIBC_SPACE_CHECK
    assert event.result["udi"]["serial"] == "S0"  # a trimmed code fails its check character
    assert event.result["udi"]["di"] == "A99912341"


@pytest.mark.django_db(transaction=True)
def test_garbage_line_is_stored_refused_and_the_reader_keeps_going(scanner, product, pty_pair, caplog):
    good = gs1_udi(product.udi_di, serial="S1")
    reader = fast_reader(scanner, pty_pair.path)
    with running(reader):
        assert reader.connected.wait(WAIT)
        pty_pair.write(b"\x00\xff%%garbage%%\r\n" + good.encode("latin-1") + b"\r\n")
        assert wait_for(lambda: reader.counters.ingested == 2)
        assert reader.connected.is_set()

    garbage, scan = DeviceEvent.objects.filter(device=scanner).order_by("id")
    assert (garbage.status, garbage.error_code) == (DeviceEvent.Status.REFUSED, "UDI_UNPARSEABLE")
    assert garbage.payload["code"] == "\xff%%garbage%%"
    assert (scan.status, scan.payload["code"]) == (DeviceEvent.Status.PROCESSED, good)
    assert reader.counters.refused == 1
    assert "UDI_UNPARSEABLE" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_reader_reconnects_after_the_scanner_is_unplugged_and_plugged_back(scanner, product, tmp_path):
    link = tmp_path / "ttyScanner"  # like a udev symlink, re-pointed when the device comes back
    before_code, after_code = gs1_udi(product.udi_di, serial="BEFORE"), gs1_udi(product.udi_di, serial="AFTER")
    before, after = Pty(), None
    link.symlink_to(before.path)
    reader = fast_reader(scanner, str(link))
    try:
        with running(reader):
            assert reader.connected.wait(WAIT)
            before.write(before_code.encode("latin-1") + b"\r\n")
            assert wait_for(lambda: reader.counters.ingested == 1)
            before.write(b"]d20106950")  # unplugged in the middle of a scan

            before.close()
            assert wait_for(lambda: not reader.connected.is_set()), "the reader did not notice the unplug"
            assert wait_for(lambda: reader.counters.errors >= 2), "the reader did not retry the missing port"

            after = Pty()
            (tmp_path / "ttyScanner.new").symlink_to(after.path)
            os.replace(tmp_path / "ttyScanner.new", link)
            assert reader.connected.wait(WAIT), "the reader did not reopen the port"
            after.write(after_code.encode("latin-1") + b"\r\n")
            assert wait_for(lambda: reader.counters.ingested == 2)
    finally:
        before.close()
        if after is not None:
            after.close()

    assert codes_of(scanner) == [before_code, after_code]
    assert reader.counters.reconnects == 1


@pytest.mark.django_db(transaction=True)
def test_stop_ends_the_reader_promptly_while_reading(scanner, pty_pair):
    reader = SerialScannerReader(scanner, url=pty_pair.path)  # the production read timeout
    with running(reader) as thread:
        assert reader.connected.wait(WAIT)
        started = time.monotonic()
        reader.stop()
        thread.join(WAIT)
        assert time.monotonic() - started < 1.0
    assert not reader.connected.is_set()


@pytest.mark.django_db(transaction=True)
def test_stop_ends_the_reader_promptly_while_it_waits_to_reopen(scanner, tmp_path):
    reader = SerialScannerReader(scanner, url=str(tmp_path / "absent"), backoff_initial=30)
    with running(reader) as thread:
        assert wait_for(lambda: reader.counters.errors == 1)
        started = time.monotonic()
        reader.stop()
        thread.join(WAIT)
        assert time.monotonic() - started < 1.0


@pytest.fixture
def unit_in_warehouse(keeper_actor, supplier, warehouse, product) -> Unit:
    note = receive_delivery_note(
        actor=keeper_actor, hospital=warehouse.hospital, supplier=supplier, number="DN-SER", receiving_location=warehouse,
        lines=[LineInput(Decimal("1200.00"), udi=gs1_udi(product.udi_di, serial="S1", lot="L1"))],
        idempotency_key="rcv-DN-SER",
    )
    scan_every_line(keeper_actor, note)
    accept_delivery_note(actor=keeper_actor, note=note, idempotency_key="acc-DN-SER")
    return Unit.objects.get(serial="S1")


@pytest.mark.django_db(transaction=True)
def test_the_same_label_scanned_twice_at_a_receiving_station_moves_the_unit_once(
    scanner, unit_in_warehouse, cath_lab_store, pty_pair
):
    scanner.location, scanner.scan_mode = cath_lab_store, Device.ScanMode.RECEIVE_INTO_LOCATION
    scanner.save()
    reader = fast_reader(scanner, pty_pair.path)
    with running(reader):
        assert reader.connected.wait(WAIT)
        pty_pair.write((unit_in_warehouse.udi_raw + "\r\n").encode("latin-1") * 2)
        assert wait_for(lambda: reader.counters.ingested == 2)

    first, second = DeviceEvent.objects.filter(device=scanner).order_by("id")
    assert first.status == DeviceEvent.Status.PROCESSED, first.error_detail
    assert (second.status, second.error_code) == (DeviceEvent.Status.REFUSED, "ALREADY_AT_LOCATION")
    unit_in_warehouse.refresh_from_db()
    assert unit_in_warehouse.location == cath_lab_store
    assert Movement.objects.filter(unit=unit_in_warehouse, kind="TRANSFER").count() == 1


# --- the commands ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_run_scanner_reads_until_sigterm(scanner, product, pty_pair, monkeypatch):
    readers: list[SerialScannerReader] = []

    class RecordedReader(SerialScannerReader):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            readers.append(self)

    monkeypatch.setattr(run_scanner, "SerialScannerReader", RecordedReader)
    code = gs1_udi(product.udi_di, serial="S1")
    outcome = {}

    def play_scanner_then_terminate() -> None:
        if not (wait_for(lambda: bool(readers)) and readers[0].connected.wait(WAIT)):
            outcome["failed"] = "the command did not open the port"
            return
        pty_pair.write(code.encode("latin-1") + b"\r\n")
        if not wait_for(lambda: readers[0].counters.ingested == 1):
            outcome["failed"] = "the scan was not stored"
            readers[0].stop()
            return
        outcome["signalled_at"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    helper = threading.Thread(target=play_scanner_then_terminate, daemon=True)
    helper.start()
    try:
        call_command("run_scanner", device="SER-1", url=pty_pair.path)
    finally:
        helper.join(WAIT)
        if readers:
            readers[0].stop()

    assert "failed" not in outcome, outcome.get("failed")
    assert time.monotonic() - outcome["signalled_at"] < 1.0
    assert codes_of(scanner) == [code]
    assert signal.getsignal(signal.SIGTERM) == handler_before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "change", "message"),
    [
        ("NOPE", {}, "unknown device 'NOPE'"),
        ("SER-1", {"is_active": False}, "device SER-1 is inactive"),
        ("SER-1", {"config": {}}, "device SER-1 has no port_url"),
        ("SER-1", {"kind": Device.Kind.CABINET_MQTT}, "not a serial scanner"),
        ("SER-1", {"config": {"port_url": "loop://", "frame_suffix": "\\x"}}, "not a valid escape string"),
    ],
)
def test_run_scanner_refuses_a_device_it_cannot_read(scanner, code, change, message):
    Device.objects.filter(pk=scanner.pk).update(**change)
    with pytest.raises(CommandError, match=message):
        call_command("run_scanner", device=code)


@pytest.mark.django_db
def test_run_scanner_refuses_a_url_pyserial_does_not_know(scanner):
    with pytest.raises(CommandError, match="cannot use nosuch://port"):
        call_command("run_scanner", device="SER-1", url="nosuch://port")


def frames_from(received: bytes, suffix: bytes = b"\r\n") -> list[str]:
    return FrameDecoder(suffix).feed(received)


@pytest.mark.django_db
def test_simulate_scanner_writes_split_frames_and_garbage_to_the_port(pty_pair):
    call_command(
        "simulate_scanner", url=pty_pair.path, codes=["]d2A\x1d21X", "]d2B"], count=5, interval=0, split=True,
        garbage_every=2, suffix="\\r",
    )
    received = pty_pair.read(until=lambda data: data.count(b"\r") >= 7)
    assert frames_from(received, b"\r") == [
        "]d2A\x1d21X", "]d2B", "GARBAGE-2-%%##", "]d2A\x1d21X", "]d2B", "GARBAGE-4-%%##", "]d2A\x1d21X",
    ]


@pytest.mark.django_db
def test_simulate_scanner_scans_the_units_in_stock_of_a_hospital(unit_in_warehouse, hospital, pty_pair):
    call_command("simulate_scanner", url=pty_pair.path, codes_from_db=True, hospital=hospital.code, interval=0)
    received = pty_pair.read(until=lambda data: data.endswith(b"\r\n"))
    assert frames_from(received) == [unit_in_warehouse.udi_raw]
    assert unit_in_warehouse.status == UnitStatus.IN_STOCK


@pytest.mark.django_db
def test_simulate_scanner_needs_units_to_scan(hospital, pty_pair):
    with pytest.raises(CommandError, match="no units in stock"):
        call_command("simulate_scanner", url=pty_pair.path, codes_from_db=True, hospital=hospital.code)
