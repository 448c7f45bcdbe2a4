"""Splitting a CSV object into byte ranges that each hold whole records, for loading in parallel.

A record ends at a line ending outside quotes; a quoted field may itself hold line endings. In RFC 4180 CSV a
quote inside a quoted field is doubled, so a position is inside a quoted field exactly when an odd number of
quote characters precede it (PostgreSQL's COPY splits records by the same rule). The planner reads the object
once, front to back, one block at a time, counts quotes with C-speed `bytes.count`, and places each boundary
just past the first record end at or after its target offset.

The first range starts after the BOM and the header row; `RangePlan.header_length` is the header row's size in
bytes, line ending included. Each range is a whole number of records: the loader COPYs it without HEADER.

UTF-16 is planned like any other encoding, in 2-byte code units: every boundary falls on a code-unit boundary
just after a line feed, so each range decodes on its own (see sniff.py: it must be transcoded to UTF-8 for
COPY). In UTF-8, cp1252 and latin-1 the quote and line-feed bytes never occur inside a multi-byte character,
so counting bytes is exact.

If the object ends inside a quoted field (`ends_inside_quotes`), a quote was never closed: the rest of the
file after it is one quoted field, and COPY will reject it; the Plan step should fail the job and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from nutrimatch.ingest.sniff import Dialect

DEFAULT_BLOCK_BYTES = 8 * 1024 * 1024


class RangeReader(Protocol):
    def read_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object (S3: GetObject with Range: bytes=start-(end-1))."""
        ...


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Exclusive."""

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class RangePlan:
    data_start: int
    """Where the first record after the header starts: BOM length + header_length."""
    header_length: int
    """Bytes of the header row, its line ending included, BOM excluded."""
    ranges: tuple[ByteRange, ...]
    """Cover [data_start, size) without gap or overlap; empty when the object has no data rows."""
    ends_inside_quotes: bool


@dataclass(frozen=True)
class _BytesRangeReader:
    data: bytes

    def read_range(self, start: int, end: int) -> bytes:
        return self.data[start:end]


def range_reader_for_bytes(data: bytes) -> RangeReader:
    """A RangeReader over an object held in memory (tests, small objects)."""
    return _BytesRangeReader(data)


def plan_ranges(
    reader: RangeReader,
    size: int,
    target_chunk_bytes: int,
    dialect: Dialect,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> RangePlan:
    """Split the `size`-byte object `reader` reads into ranges of about `target_chunk_bytes` (longer by at
    most the rest of the record the target offset falls in), reading it once in blocks of `block_bytes`."""
    unit = dialect.code_unit_bytes
    if target_chunk_bytes < 1:
        raise ValueError(f"target_chunk_bytes must be positive, not {target_chunk_bytes}")
    if block_bytes < unit or block_bytes % unit:
        raise ValueError(f"block_bytes must be a positive multiple of {unit}, not {block_bytes}")
    scanner = _RecordScanner(reader, size, dialect, block_bytes)
    header_end = scanner.next_record_end()
    data_start = size if header_end is None else header_end
    starts = [data_start] if data_start < size else []
    while starts:
        target = _round_up(starts[-1] + target_chunk_bytes, unit)
        if target >= size:
            break
        scanner.skip_to(target)
        record_end = scanner.next_record_end()
        if record_end is None or record_end >= size:
            break
        starts.append(record_end)
    scanner.skip_to(size)
    return RangePlan(
        data_start=data_start,
        header_length=data_start - dialect.bom_length,
        ranges=tuple(ByteRange(start, end) for start, end in pairwise([*starts, size])),
        ends_inside_quotes=scanner.in_quotes,
    )


def _round_up(offset: int, unit: int) -> int:
    return -(-offset // unit) * unit


class _RecordScanner:
    """A cursor that walks the object forward only, holding one block, and knows whether it is in quotes.

    Offsets within the block are always multiples of the code unit (blocks start on one), so a match of a
    2-byte UTF-16 pattern at an odd offset, which straddles two code units, is skipped.
    """

    def __init__(self, reader: RangeReader, size: int, dialect: Dialect, block_bytes: int) -> None:
        self._reader = reader
        self._size = size
        self._block_bytes = block_bytes
        self._unit = dialect.code_unit_bytes
        self._codec = dialect.encoding
        self._quotechar = dialect.quotechar
        self._quote = dialect.quotechar.encode(dialect.encoding)
        self._record_end = dialect.line_terminator[-1].encode(dialect.encoding)
        self._block = b""
        self._block_start = dialect.bom_length
        self._cursor = 0
        self.in_quotes = False

    def skip_to(self, offset: int) -> None:
        """Move forward to `offset` (or the end of the object), keeping count of the quotes passed."""
        while offset > self._block_start + len(self._block):
            if not self._next_block():
                return
        self._pass_quotes_to(offset - self._block_start)

    def next_record_end(self) -> int | None:
        """Move just past the next record end outside quotes and return its offset; None at the end."""
        while True:
            if self.in_quotes:
                closing = self._find(self._quote, self._cursor, len(self._block))
                if closing != -1:
                    self._cursor, self.in_quotes = closing + self._unit, False
                elif not self._next_block():
                    return None
                continue
            record_end = self._find(self._record_end, self._cursor, len(self._block))
            opening = self._find(self._quote, self._cursor, len(self._block) if record_end == -1 else record_end)
            if opening != -1:
                self._cursor, self.in_quotes = opening + self._unit, True
            elif record_end != -1:
                self._cursor = record_end + self._unit
                return self._block_start + self._cursor
            elif not self._next_block():
                return None

    def _next_block(self) -> bool:
        """Count the rest of this block's quotes and load the next; False at the end of the object."""
        self._pass_quotes_to(len(self._block))
        start = self._block_start + len(self._block)
        if start >= self._size:
            return False
        end = min(start + self._block_bytes, self._size)
        block = self._reader.read_range(start, end)
        if len(block) != end - start:
            raise ValueError(f"read_range({start}, {end}) returned {len(block)} bytes, not {end - start}")
        self._block, self._block_start, self._cursor = block, start, 0
        return True

    def _pass_quotes_to(self, end: int) -> None:
        if self._count_quotes(self._cursor, end) % 2:
            self.in_quotes = not self.in_quotes
        self._cursor = end

    def _count_quotes(self, start: int, end: int) -> int:
        if self._unit == 1:
            return self._block.count(self._quote, start, end)
        # bytes.count would also match a quote pattern straddling two code units; decoded characters cannot.
        # surrogatepass: a block may end between the two halves of a surrogate pair.
        aligned_end = end - (end - start) % self._unit
        return self._block[start:aligned_end].decode(self._codec, "surrogatepass").count(self._quotechar)

    def _find(self, pattern: bytes, start: int, end: int) -> int:
        found = self._block.find(pattern, start, end)
        while found != -1 and found % self._unit:
            found = self._block.find(pattern, found + 1, end)
        return found
