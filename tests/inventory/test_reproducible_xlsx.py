"""Hashed report workbooks are rendered again and compared with the stored file: their bytes must not
depend on the clock. openpyxl stamps a workbook when it is created and again when it is saved, and
zipfile dates every entry; a run that crosses a second boundary used to give other bytes."""
import datetime
import io
import zipfile

import openpyxl.packaging.core
import openpyxl.writer.excel
import pytest

from inventory.spreadsheets import reproducible_xlsx, workbook

MOMENT = datetime.datetime(2026, 11, 30, 23, 59, 58, tzinfo=datetime.UTC)


class _Clock(datetime.datetime):
    """datetime whose now() moves on a minute at every call."""
    calls = 0

    @classmethod
    def now(cls, tz=None):
        cls.calls += 1
        return datetime.datetime(2026, 12, 6, 8, cls.calls % 60, tzinfo=tz)


@pytest.fixture
def moving_clock(monkeypatch):
    fake = type("fake_datetime_module", (), {"datetime": _Clock, "timezone": datetime.timezone})
    monkeypatch.setattr(openpyxl.packaging.core, "datetime", fake)
    monkeypatch.setattr(openpyxl.writer.excel, "datetime", fake)


def _book():
    return workbook(["产品", "数量"], [["导管", 3], ["=SUM(A1)", 1]], "表")


def test_the_same_table_gives_the_same_bytes_whenever_it_is_rendered(moving_clock):
    first = reproducible_xlsx(_book(), MOMENT)
    second = reproducible_xlsx(_book(), MOMENT)
    assert first == second

    plain = []
    for _ in range(2):
        buffer = io.BytesIO()
        _book().save(buffer)
        plain.append(buffer.getvalue())
    assert plain[0] != plain[1], "the clock no longer reaches openpyxl: this test would prove nothing"


def test_the_workbook_is_dated_by_its_moment_not_by_the_clock(moving_clock):
    data = reproducible_xlsx(_book(), MOMENT)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        core = archive.read("docProps/core.xml").decode()
        dates = {entry.date_time for entry in archive.infolist()}
    assert "2026-11-30T23:59:58Z" in core and "2026-12-06" not in core
    assert dates == {(2026, 12, 1, 7, 59, 58)}  # local (Asia/Shanghai) time; zip keeps even seconds
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["产品", "数量"], ["导管", 3], ["'=SUM(A1)", 1]]
