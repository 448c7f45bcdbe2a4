from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutrimatch.ingest.ranges import ByteRange, RangePlan, plan_ranges, range_reader_for_bytes
from nutrimatch.ingest.sniff import Dialect, sniff

HEADER = ["sku", "name", "note"]


def to_csv(rows: list[list[str]], line_terminator: str = "\n") -> str:
    """RFC 4180, quoting only fields that need it (csv.writer leaves a bare CR unquoted in an LF file)."""

    def cell(value: str) -> str:
        if any(char in value for char in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(",".join(map(cell, row)) + line_terminator for row in [HEADER, *rows])


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def plan(data: bytes, target: int, *, block_bytes: int = 8192, dialect: Dialect | None = None) -> RangePlan:
    return plan_ranges(range_reader_for_bytes(data), len(data), target, dialect or sniff(data), block_bytes=block_bytes)


def assert_ranges_hold_whole_records(data: bytes, result: RangePlan, dialect: Dialect) -> None:
    """The ranges tile the data after the header, and parsing each alone yields the rows of the whole."""
    assert [r.start for r in result.ranges[1:]] == [r.end for r in result.ranges[:-1]]
    assert all(r.length > 0 for r in result.ranges)
    chunks = [data[r.start : r.end] for r in result.ranges]
    assert b"".join(chunks) == data[result.data_start :]
    whole = parse(data[result.data_start :].decode(dialect.encoding))
    assert [row for chunk in chunks for row in parse(chunk.decode(dialect.encoding))] == whole


def expected_ends(data: bytes, data_start: int, target: int) -> list[int]:
    """Range ends by the rule, from a byte-by-byte oracle: just past the first line feed outside quotes at or
    after each range's start + target; the last range ends at the end of the data."""
    record_ends, in_quotes = [], False
    for offset in range(data_start, len(data)):
        in_quotes ^= data[offset] == ord('"')
        if data[offset] == ord("\n") and not in_quotes:
            record_ends.append(offset + 1)
    ends, start = [], data_start
    while start < len(data):
        start = next((end for end in record_ends if end - 1 >= start + target and end < len(data)), len(data))
        ends.append(start)
    return ends


def test_ranges_start_after_the_header_and_end_on_record_ends() -> None:
    data = to_csv([[str(n), f"product {n}", "x" * n] for n in range(20)]).encode()

    result = plan(data, 40)

    assert result.header_length == len(b"sku,name,note\n")
    assert result.data_start == result.header_length
    assert result.ranges[0].start == result.data_start
    assert result.ranges[-1].end == len(data)
    assert len(result.ranges) > 3
    assert all(data[r.end - 1 : r.end] == b"\n" for r in result.ranges)
    assert not result.ends_inside_quotes
    assert_ranges_hold_whole_records(data, result, sniff(data))


def test_boundary_is_the_first_record_end_at_or_after_the_target() -> None:
    data = b"h\naaaa\nbbbb\ncccc\n"  # records start at 2, 7, 12

    result = plan(data, 5)

    # targets: 2 + 5 = 7 is where a record starts, so that record is finished first; then 12 + 5 = 17 = size.
    assert result.ranges == (ByteRange(2, 12), ByteRange(12, 17))


def test_bom_is_outside_the_header_length() -> None:
    data = codecs.BOM_UTF8 + b"sku,name\n1,a\n2,b\n"

    result = plan(data, 1)

    assert (result.data_start, result.header_length) == (3 + 9, 9)
    assert result.ranges == (ByteRange(12, 16), ByteRange(16, 20))


def test_quoted_newlines_straddling_the_target_are_never_split() -> None:
    long_note = "line one\nline two, still the same field\n" * 5
    data = to_csv([["1", "a", long_note], ["2", "b", "short"], ["3", "c", long_note]]).encode()
    inside_the_first_note = data.index(b"line two") - len(b"sku,name,note\n")

    result = plan(data, inside_the_first_note, block_bytes=16)

    assert parse(data[result.ranges[0].start : result.ranges[0].end].decode()) == [["1", "a", long_note]]
    assert_ranges_hold_whole_records(data, result, sniff(data))


def test_doubled_quotes_and_newlines_together() -> None:
    data = to_csv([[str(n), 'say "hi"\n"there"', '""\n'] for n in range(30)], "\r\n").encode()

    result = plan(data, 7, block_bytes=5)

    assert len(result.ranges) == 30
    assert all(data[r.end - 2 : r.end] == b"\r\n" for r in result.ranges)
    assert_ranges_hold_whole_records(data, result, sniff(data))


def test_header_with_a_quoted_newline() -> None:
    data = b'sku,"Energy\n(kcal)"\n1,2\n'

    result = plan(data, 100)

    assert result.header_length == len(b'sku,"Energy\n(kcal)"\n')
    assert result.ranges == (ByteRange(result.data_start, len(data)),)


def test_bare_cr_line_endings() -> None:
    data = to_csv([[str(n), "a\rb", "c"] for n in range(10)], "\r").encode()

    result = plan(data, 9, block_bytes=7)  # each record is 10 bytes: the target falls on its last

    assert len(result.ranges) == 10
    assert_ranges_hold_whole_records(data, result, sniff(data))


def test_the_object_is_read_once_front_to_back_in_blocks() -> None:
    data = codecs.BOM_UTF8 + to_csv([[str(n), "a\nb", "c"] for n in range(200)]).encode()

    @dataclass
    class RecordingReader:
        calls: list[tuple[int, int]] = field(default_factory=list)

        def read_range(self, start: int, end: int) -> bytes:
            self.calls.append((start, end))
            return data[start:end]

    reader = RecordingReader()
    plan_ranges(reader, len(data), 100, sniff(data), block_bytes=64)

    assert reader.calls[0][0] == 3
    assert [start for start, _ in reader.calls[1:]] == [end for _, end in reader.calls[:-1]]
    assert reader.calls[-1][1] == len(data)
    assert max(end - start for start, end in reader.calls) == 64


def test_a_target_beyond_the_end_gives_one_range() -> None:
    data = to_csv([["1", "a", "b"], ["2", "c", "d"]]).encode()

    assert plan(data, 10**9).ranges == (ByteRange(len(b"sku,name,note\n"), len(data)),)


@pytest.mark.parametrize("data", [b"sku,name\n", b"sku,name", b"", codecs.BOM_UTF8 + b"sku,name\r\n"])
def test_no_data_rows_no_ranges(data: bytes) -> None:
    result = plan(data, 10)

    assert result.ranges == ()
    assert result.data_start == len(data)
    assert result.header_length == len(data.removeprefix(codecs.BOM_UTF8))


def test_last_record_without_a_line_ending() -> None:
    data = b"sku,name\n1,a\n2,b"

    assert plan(data, 1).ranges == (ByteRange(9, 13), ByteRange(13, 16))


def test_a_quote_never_closed_is_reported() -> None:
    data = b'sku,name\n1,"a\n2,b\n3,c\n4,d\n'

    result = plan(data, 1, block_bytes=4)

    assert result.ends_inside_quotes
    assert result.ranges == (ByteRange(9, len(data)),)


def test_bad_arguments() -> None:
    data = b"sku\n1\n"
    with pytest.raises(ValueError, match="target_chunk_bytes"):
        plan(data, 0)
    with pytest.raises(ValueError, match="block_bytes"):
        plan(data, 1, block_bytes=0)
    utf16 = codecs.BOM_UTF16_LE + "sku\n1\n".encode("utf-16-le")
    with pytest.raises(ValueError, match="multiple of 2"):
        plan(utf16, 1, block_bytes=3)


def test_a_short_read_is_an_error_not_a_silently_wrong_plan() -> None:
    class TruncatingReader:
        def read_range(self, start: int, end: int) -> bytes:
            return b"sku\n1\n"[start : end - 1]

    with pytest.raises(ValueError, match="returned"):
        plan_ranges(TruncatingReader(), 6, 1, sniff(b"sku\n1\n"))


@pytest.mark.parametrize(("bom", "codec"), [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_boundaries_fall_on_code_units_after_a_line_feed(bom: bytes, codec: str) -> None:
    # "∀Ā" encodes (LE) as 00 22 00 01: a quote pattern at an odd offset; "ਅĀ" likewise holds a line feed one.
    rows = [[str(n), "∀Ā ਅĀ 😀", 'a "quoted"\nnote'] for n in range(20)]
    data = bom + to_csv(rows, "\r\n").encode(codec)
    dialect = sniff(data)

    result = plan(data, 9, block_bytes=6, dialect=dialect)

    assert result.header_length == len("sku,name,note\r\n".encode(codec))
    assert len(result.ranges) == 20
    assert all(r.start % 2 == 0 and r.end % 2 == 0 for r in result.ranges)
    assert all(data[r.end - 2 : r.end] == "\n".encode(codec) for r in result.ranges)
    assert_ranges_hold_whole_records(data, result, dialect)


def test_utf16_odd_trailing_byte_stays_in_the_last_range() -> None:
    data = codecs.BOM_UTF16_LE + "sku\n1\n2\n".encode("utf-16-le") + b"\x00"

    result = plan(data, 1, block_bytes=4)

    assert result.ranges[-1].end == len(data)
    assert b"".join(data[r.start : r.end] for r in result.ranges) == data[result.data_start :]


FIELD = st.text(alphabet='ab,;"\n\r é😀∀Āਅ', max_size=12)
ROWS = st.lists(st.lists(FIELD, min_size=3, max_size=3), max_size=25)


@settings(deadline=None)
@given(
    rows=ROWS,
    line_terminator=st.sampled_from(["\n", "\r\n"]),
    with_bom=st.booleans(),
    target=st.integers(1, 200),
    block_bytes=st.integers(1, 64),
)
def test_property_utf8_ranges_parse_to_the_rows_of_the_whole(
    rows: list[list[str]], line_terminator: str, with_bom: bool, target: int, block_bytes: int
) -> None:
    text = to_csv(rows, line_terminator)
    assert parse(text) == [HEADER, *rows]
    data = (codecs.BOM_UTF8 if with_bom else b"") + text.encode()
    dialect = sniff(data)

    result = plan(data, target, block_bytes=block_bytes, dialect=dialect)

    assert result.header_length == len(f"sku,name,note{line_terminator}".encode())
    assert not result.ends_inside_quotes
    assert_ranges_hold_whole_records(data, result, dialect)
    assert [r.end for r in result.ranges] == expected_ends(data, result.data_start, target)


@settings(deadline=None)
@given(
    rows=ROWS,
    codec=st.sampled_from(["utf-16-le", "utf-16-be"]),
    target=st.integers(1, 400),
    half_block=st.integers(1, 32),
)
def test_property_utf16_ranges_parse_to_the_rows_of_the_whole(
    rows: list[list[str]], codec: str, target: int, half_block: int
) -> None:
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    data = bom + to_csv(rows, "\r\n").encode(codec)
    dialect = sniff(data)

    result = plan(data, target, block_bytes=2 * half_block, dialect=dialect)

    assert dialect.encoding == codec
    assert_ranges_hold_whole_records(data, result, dialect)
