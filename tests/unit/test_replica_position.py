"""Whether a replica has replayed up to a writer's insert position, WAL page headers included."""

from nutrimatch.db.replica import WAL_PAGE_BYTES, lsn_bytes, replayed_up_to

PAGE = 7 * WAL_PAGE_BYTES  # the start of a WAL page


def test_positions_read_as_byte_counts():
    assert lsn_bytes("0/0") == 0
    assert lsn_bytes("16/B374D848") == (0x16 << 32) | 0xB374D848


def test_replay_at_or_past_the_target_has_everything():
    assert replayed_up_to(PAGE + 100, PAGE + 100)
    assert replayed_up_to(PAGE + 200, PAGE + 100)
    assert not replayed_up_to(PAGE + 92, PAGE + 100)


def test_an_insert_position_just_past_a_page_header_is_reached_at_the_page_start():
    # The last record ended where the page starts: the writer's position skips the page's header (24 bytes, or
    # 40 at a segment's start), replay stops at the boundary, and nothing lies between.
    assert replayed_up_to(PAGE, PAGE + 24)
    assert replayed_up_to(PAGE, PAGE + 40)
    assert not replayed_up_to(PAGE - 8, PAGE + 24)  # a record before the boundary is still missing
    assert not replayed_up_to(PAGE, PAGE + 32)  # past a header, inside the page: a record is missing
