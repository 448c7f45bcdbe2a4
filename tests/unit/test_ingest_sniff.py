from __future__ import annotations

import codecs

import pytest

from nutrimatch.errors import InvalidInput
from nutrimatch.ingest.sniff import Dialect, parse_header, sniff

CSV = "sku,name,kcal\n1,Apple,52\n2,Pear,57\n"


def test_plain_utf8_comma_lf() -> None:
    dialect = sniff(CSV.encode())

    assert dialect == Dialect(
        encoding="utf-8",
        pg_encoding="UTF8",
        bom_length=0,
        delimiter=",",
        line_terminator="\n",
        decimal_comma=False,
    )
    assert dialect.code_unit_bytes == 1


def test_utf8_bom_is_measured_and_not_part_of_the_codec() -> None:
    head = codecs.BOM_UTF8 + "sku,name\n1,Crème brûlée\n".encode()

    dialect = sniff(head)

    assert (dialect.encoding, dialect.pg_encoding, dialect.bom_length) == ("utf-8", "UTF8", 3)
    assert parse_header(head, dialect) == ["sku", "name"]


@pytest.mark.parametrize(("bom", "codec"), [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_with_bom_has_no_copy_encoding(bom: bytes, codec: str) -> None:
    # Excel's "Unicode text" export: UTF-16 LE with a BOM, tab-separated, CRLF.
    head = bom + "sku\tname\tkcal\r\n1\tCrème brûlée\t300\r\n".encode(codec)

    dialect = sniff(head)

    assert (dialect.encoding, dialect.pg_encoding, dialect.bom_length) == (codec, None, 2)
    assert (dialect.delimiter, dialect.line_terminator) == ("\t", "\r\n")
    assert dialect.code_unit_bytes == 2
    assert parse_header(head, dialect) == ["sku", "name", "kcal"]


def test_head_cut_inside_a_utf16_character_still_sniffs() -> None:
    head = codecs.BOM_UTF16_LE + "sku;name\n1;Crème\n2;brûlée 😀\n".encode("utf-16-le")

    assert sniff(head[:-3]).delimiter == ";"


def test_latin1_when_not_utf8() -> None:
    head = "sku;name\n1;Crème brûlée\n".encode("latin-1")

    dialect = sniff(head)

    assert (dialect.encoding, dialect.pg_encoding) == ("latin-1", "LATIN1")
    assert parse_header(head, dialect) == ["sku", "name"]


def test_cp1252_when_its_punctuation_bytes_appear() -> None:
    # 0x80-0x9F are control characters in latin-1; in cp1252 they are €, curly quotes, dashes.
    head = "sku;name;price\n1;“Crème” brûlée \N{EN DASH} fine;3 €\n".encode("cp1252")

    dialect = sniff(head)

    assert (dialect.encoding, dialect.pg_encoding) == ("cp1252", "WIN1252")


def test_latin1_when_bytes_cp1252_leaves_undefined_appear() -> None:
    # 0x81 has no cp1252 character: only latin-1 decodes every byte.
    head = b"sku;name\n1;\x93caf\xe9\x94 \x81\n"

    assert sniff(head).encoding == "latin-1"


def test_utf8_head_cut_inside_a_character_is_still_utf8() -> None:
    head = "sku,name\n1,Crème brûlée\n".encode()
    cut = head[: head.index("û".encode()) + 1]

    assert sniff(cut).encoding == "utf-8"


def test_semicolon_with_decimal_commas() -> None:
    head = b"sku;name;kcal;fat\n1;Apple;52,5;0,2\n2;Pear;57,1;0,1\n"

    dialect = sniff(head)

    assert (dialect.delimiter, dialect.decimal_comma) == (";", True)


def test_semicolon_with_decimal_points() -> None:
    assert sniff(b"sku;name;kcal\n1;Apple;52.5\n2;Pear;57.1\n").decimal_comma is False


def test_thousands_separators_are_no_evidence_of_decimal_commas() -> None:
    assert sniff(b"sku;name;price\n1;Crate;1,250\n2;Pallet;12,500\n").decimal_comma is False


def test_quoted_decimal_commas_in_a_comma_file() -> None:
    dialect = sniff(b'sku,kcal\n1,"52,5"\n2,"0,75"\n')

    assert (dialect.delimiter, dialect.decimal_comma) == (",", True)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter(delimiter: str) -> None:
    head = CSV.replace(",", delimiter).encode()

    assert sniff(head).delimiter == delimiter


def test_delimiters_inside_quoted_fields_are_not_counted() -> None:
    head = b'sku|name|tags\n1|"a;b;c;d"|"x;y;z"\n2|"e;f;g;h"|"w;v"\n'

    assert sniff(head).delimiter == "|"


def test_tab_file_with_stray_commas_in_unquoted_text() -> None:
    head = b"sku\tname\tdescription\n1\tApple\tcrisp, sweet, red\n2\tPear\tsoft\n"

    assert sniff(head).delimiter == "\t"


def test_crlf() -> None:
    assert sniff(CSV.replace("\n", "\r\n").encode()).line_terminator == "\r\n"


def test_bare_cr_of_old_mac_exports() -> None:
    assert sniff(CSV.replace("\n", "\r").encode()).line_terminator == "\r"


def test_line_feeds_inside_quotes_do_not_decide_the_line_ending() -> None:
    head = b'sku,description\r\n1,"two\nlines"\r\n'

    assert sniff(head).line_terminator == "\r\n"


def test_head_cut_inside_a_quoted_field() -> None:
    head = b'sku;name;note\n1;a;"x\n2;b;y\n'  # the quote opened on the last line closes beyond the head

    dialect = sniff(head)

    assert (dialect.delimiter, dialect.line_terminator) == (";", "\n")


@pytest.mark.parametrize(
    "head", [b"PK\x03\x04\x14\x00\x06\x00", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", b"sku,name\n1,a\x00b\n"]
)
def test_binary_content_is_refused(head: bytes) -> None:
    with pytest.raises(InvalidInput, match="not CSV text"):
        sniff(head)


def test_excel_workbooks_are_named_as_such() -> None:
    with pytest.raises(InvalidInput, match="Excel workbook"):
        sniff(b"PK\x03\x04\x14\x00\x06\x00")


def test_utf32_is_refused_not_taken_for_utf16() -> None:
    with pytest.raises(InvalidInput, match="UTF-32"):
        sniff(codecs.BOM_UTF32_LE + "sku,name\n".encode("utf-32-le"))


def test_parse_header_with_quoted_names() -> None:
    head = b'"SKU","Name, full","Energy\n(kcal)"\n1,a,2\n'

    assert parse_header(head, sniff(head)) == ["SKU", "Name, full", "Energy\n(kcal)"]


def test_parse_header_needs_the_whole_header_row_unless_at_eof() -> None:
    head = b"sku,name,kcal"
    dialect = sniff(head)

    with pytest.raises(InvalidInput, match="header row is longer"):
        parse_header(head, dialect)
    assert parse_header(head, dialect, at_eof=True) == ["sku", "name", "kcal"]


def test_parse_header_of_an_empty_file() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        parse_header(b"", sniff(b""), at_eof=True)
