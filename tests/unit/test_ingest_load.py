"""LoadChunk's guard against the line COPY … CSV takes for the end of its data."""

import pytest

from nutrimatch.ingest.load import EndOfDataLine, without_end_of_data_line


@pytest.mark.parametrize("blocks", [
    [b"a,b\n\\.\nc,d\n"],
    [b"\\.\na,b\n"],                       # the range's first line
    [b"a,b\n\\.\r\nc,d\r\n"],
    [b"a,b\r\\.\rc,d\r"],
    [b"a,b\n\\", b".\nc,d\n"],             # across two blocks
    [b"a,b\n", b"\\", b".", b"\nc,d\n"],
    [b"a,b\n\\."],                         # the range's last line, without a line ending
])
def test_a_line_of_just_backslash_dot_stops_the_stream(blocks: list[bytes]) -> None:
    with pytest.raises(EndOfDataLine):
        list(without_end_of_data_line(iter(blocks)))


@pytest.mark.parametrize("blocks", [
    [b"a,\\.\n"],
    [b"a\\.b\n\\.x\n"],
    [b"a,b\n\\", b"x.\n"],
    [b""],
])
def test_other_backslash_dots_pass_through_untouched(blocks: list[bytes]) -> None:
    assert list(without_end_of_data_line(iter(blocks))) == blocks
