"""The text a reportlab PDF shows, for tests: each string drawn, in drawing order.

Enough for the reports' PDFs and nothing more: content streams encoded ASCII85 + Flate (reportlab's
default) and text in the CID font STSong-Light, whose strings are UCS-2 big-endian.
"""
import base64
import re
import zlib

_STREAM = re.compile(rb"/Filter \[ /ASCII85Decode /FlateDecode \].*?stream\r?\n(.*?)endstream", re.S)
_SHOWN = re.compile(rb"\(((?:\\.|[^\\)])*)\) Tj", re.S)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.S)
_ESCAPED = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(match: re.Match) -> bytes:
    code = match.group(1)
    if code[:1].isdigit():
        return bytes([int(code, 8)])
    return _ESCAPED.get(code, code)


def shown_strings(pdf: bytes) -> list[str]:
    strings = []
    for stream in _STREAM.finditer(pdf):
        content = zlib.decompress(base64.a85decode(stream.group(1).strip().removesuffix(b"~>")))
        for shown in _SHOWN.finditer(content):
            strings.append(_ESCAPE.sub(_unescape, shown.group(1)).decode("utf-16-be"))
    return strings


def rows_through(strings: list[str], header: list[str], last: str) -> list[list[str]]:
    """The rows of the table drawn under the first `header`, through the row that starts with
    `last`: reportlab draws a table's cells row by row, one string each."""
    start = next(i for i in range(len(strings)) if strings[i:i + len(header)] == header) + len(header)
    rows = []
    for i in range(start, len(strings), len(header)):
        rows.append(strings[i:i + len(header)])
        if strings[i] == last:
            return rows
    raise AssertionError(f"no row starting with {last!r} under {header}")
