"""Sniffing an uploaded CSV's dialect (encoding, delimiter, line ending, decimal comma) from its first bytes.

Encodings, and what the loader does with each:

- UTF-8, with or without a BOM: COPY ... ENCODING 'UTF8'.
- UTF-16 LE/BE, recognised only by its BOM: PostgreSQL has no UTF-16 client encoding, so `pg_encoding` is
  None and the loader must transcode each byte range to UTF-8 before COPY. Byte ranges of a UTF-16 object
  start and end on code-unit boundaries just after a line feed, so each one decodes on its own.
- Anything else that is not valid UTF-8 is single-byte: cp1252 (WIN1252) when the head holds bytes 0x80-0x9F
  that cp1252 defines (curly quotes, euro sign, dashes: in latin-1 those bytes are control characters that
  real text never contains), otherwise latin-1 (LATIN1), which decodes every byte and so cannot fail.

The verdict rests on the head alone: a file that is ASCII in its head and latin-1 further down is sniffed as
UTF-8, and COPY will reject the range holding the first latin-1 byte.

The BOM is never part of a range: `bom_length` says how many bytes it takes, and `encoding` names the codec
of what follows it (so "utf-8", not "utf-8-sig").
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from nutrimatch.errors import InvalidInput

SNIFF_BYTES = 64 * 1024
"""How much of the object's head the Plan step reads for `sniff` and `parse_header`."""

DELIMITERS = (",", ";", "\t", "|")
"""Candidate delimiters; on a tie the earlier wins."""

QUOTECHAR = '"'

_BOMS = (
    (codecs.BOM_UTF8, "utf-8", "UTF8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", None),
    (codecs.BOM_UTF16_BE, "utf-16-be", None),
)
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
_PG_ENCODINGS = {"utf-8": "UTF8", "cp1252": "WIN1252", "latin-1": "LATIN1"}

_C1_BYTES = frozenset(range(0x80, 0xA0))
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})

# "1,234" and "1.234" may be thousands separators, so only other shapes count as evidence of a decimal mark.
_THOUSANDS_LIKE = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
_DOT_DECIMAL = re.compile(r"[+-]?\d+\.\d+")


@dataclass(frozen=True)
class Dialect:
    encoding: str
    """Python codec of the bytes after the BOM: utf-8, utf-16-le, utf-16-be, cp1252 or latin-1."""
    pg_encoding: str | None
    """PostgreSQL's name for it in COPY ... ENCODING; None for UTF-16, which must be transcoded to UTF-8."""
    bom_length: int
    delimiter: str
    line_terminator: str
    """"\\r\\n", "\\n" or "\\r"; a record ends at its last character."""
    decimal_comma: bool
    """Numbers are written like 12,5: replace the comma with a dot before casting."""
    quotechar: str = QUOTECHAR

    @property
    def code_unit_bytes(self) -> int:
        """Bytes per code unit: offsets into the object must be multiples of this (after the BOM)."""
        return 2 if self.encoding.startswith("utf-16") else 1


def sniff(head: bytes) -> Dialect:
    """The dialect of a CSV object whose first bytes (see SNIFF_BYTES) are `head`.

    `head` may end anywhere, even inside a character or a quoted field. Raises InvalidInput for content that
    is not CSV text this pipeline can load (binary files such as Excel workbooks, UTF-32).
    """
    encoding, pg_encoding, bom_length = _detect_encoding(head)
    text = _decode_partial(head[bom_length:], encoding)
    line_terminator = _detect_line_terminator(text)
    complete = _complete_records(text, line_terminator[-1])
    delimiter = _detect_delimiter(_unquoted(complete).split(line_terminator))
    rows = csv.reader(io.StringIO(complete, newline=""), delimiter=delimiter, quotechar=QUOTECHAR)
    next(rows, None)  # the header row holds names, not numbers
    return Dialect(
        encoding=encoding,
        pg_encoding=pg_encoding,
        bom_length=bom_length,
        delimiter=delimiter,
        line_terminator=line_terminator,
        decimal_comma=_uses_decimal_comma(rows),
    )


def parse_header(head: bytes, dialect: Dialect, *, at_eof: bool = False) -> list[str]:
    """The column names of the header row at the start of `head`.

    The header row must end within `head`, unless `at_eof` says `head` is the whole object (a file of just a
    header without a final line break). Raises InvalidInput when there is no header row to read.
    """
    text = _decode_partial(head[dialect.bom_length :], dialect.encoding)
    end = next(_record_ends(text, dialect.line_terminator[-1]), None)
    if end is None and not at_eof:
        raise InvalidInput(f"The header row is longer than {len(head)} bytes: is this a CSV file?")
    header_text = text if end is None else text[:end]
    rows = csv.reader(io.StringIO(header_text, newline=""), delimiter=dialect.delimiter, quotechar=dialect.quotechar)
    header = next(rows, None)
    if not header:
        raise InvalidInput("The file is empty: expected a header row naming the columns.")
    return header


def _detect_encoding(head: bytes) -> tuple[str, str | None, int]:
    """(Python codec, PostgreSQL encoding, BOM length) of `head`."""
    # The UTF-32 LE BOM starts with the UTF-16 LE one, so it must be ruled out first.
    if head.startswith(_UTF32_BOMS):
        raise InvalidInput("The file is encoded in UTF-32, which is not supported: save it as UTF-8.")
    for bom, encoding, pg_encoding in _BOMS:
        if head.startswith(bom):
            return encoding, pg_encoding, len(bom)
    if b"\x00" in head:
        hint = " (it looks like an Excel workbook)" if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) else ""
        raise InvalidInput(
            f"The file is not CSV text{hint}: it contains NUL bytes. Export it as CSV (UTF-8); UTF-16 is "
            "accepted only with a byte-order mark."
        )
    try:
        _decode_partial(head, "utf-8", errors="strict")
        encoding = "utf-8"
    except UnicodeDecodeError:
        c1_bytes = set(head) & _C1_BYTES
        encoding = "cp1252" if c1_bytes and not c1_bytes & _CP1252_UNDEFINED else "latin-1"
    return encoding, _PG_ENCODINGS[encoding], 0


def _decode_partial(data: bytes, encoding: str, errors: str = "replace") -> str:
    """`data` decoded, ignoring a character cut off at its end."""
    return codecs.getincrementaldecoder(encoding)(errors).decode(data, final=False)


def _unquoted(text: str) -> str:
    """`text` without the content of its quoted fields; RFC 4180's doubled quotes fall out of the split too."""
    return "".join(text.split(QUOTECHAR)[0::2])


def _detect_line_terminator(text: str) -> str:
    unquoted = _unquoted(text)
    first_line_feed = unquoted.find("\n")
    if first_line_feed > 0 and unquoted[first_line_feed - 1] == "\r":
        return "\r\n"
    if first_line_feed == -1 and "\r" in unquoted:
        return "\r"
    return "\n"


def _record_ends(text: str, record_end: str) -> Iterator[int]:
    """Offsets just past each `record_end` character of `text` that is outside quotes."""
    offset = 0
    for index, part in enumerate(text.split(QUOTECHAR)):
        if index % 2 == 0:
            found = part.find(record_end)
            while found != -1:
                yield offset + found + 1
                found = part.find(record_end, found + 1)
        offset += len(part) + len(QUOTECHAR)


def _complete_records(text: str, record_end: str) -> str:
    """`text` up to the end of its last complete record; all of it when no record ends in it."""
    ends = list(_record_ends(text, record_end))
    return text[: ends[-1]] if ends else text


def _detect_delimiter(records: list[str]) -> str:
    """The candidate found the same number of times (the mode) in most records, then the most often."""
    records = [record for record in records if record.strip()]
    best, best_score = DELIMITERS[0], (0.0, 0)
    for delimiter in DELIMITERS:
        counts = Counter(record.count(delimiter) for record in records)
        mode, records_at_mode = counts.most_common(1)[0] if counts else (0, 0)
        score = (records_at_mode / len(records), mode) if mode else (0.0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _uses_decimal_comma(rows: Iterator[list[str]]) -> bool:
    comma_decimals = dot_decimals = 0
    for row in rows:
        for value in row:
            value = value.strip()
            if _THOUSANDS_LIKE.fullmatch(value):
                continue
            if _COMMA_DECIMAL.fullmatch(value):
                comma_decimals += 1
            elif _DOT_DECIMAL.fullmatch(value):
                dot_decimals += 1
    return comma_decimals > dot_decimals
