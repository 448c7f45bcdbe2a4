"""Replica positions: whether a replica has replayed up to a writer's insert position (WAL page headers included),
and how far behind it is from successive probes."""

from nutrimatch.db.replica import WAL_PAGE_BYTES, LagTracker, ReplayPosition, lsn_bytes, replayed_up_to

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


def behind(received, replayed, since_last_commit, *, receiving=True):
    return ReplayPosition(True, received, replayed, since_last_commit, receiving)


def test_everything_received_replayed_is_no_lag_however_old_the_last_commit():
    assert LagTracker().lag(10.0, behind(500, 500, 3600.0)) == 0.0
    assert LagTracker().lag(10.0, ReplayPosition(False, None, None, None, False)) == 0.0  # the writer itself


def test_wal_without_commits_after_a_quiet_spell_is_not_an_hour_of_lag():
    # An hour without commits, then a checkpoint's WAL arrives: received runs ahead of replay for a moment.
    tracker = LagTracker()
    assert tracker.lag(100.0, behind(500, 500, 3600.0)) == 0.0
    assert tracker.lag(101.0, behind(900, 500, 3601.0)) == 1.0  # all it had at 100.0 is replayed
    assert tracker.lag(102.0, behind(900, 900, 3602.0)) == 0.0


def test_a_stalled_replay_grows_from_the_last_probe_it_had_caught_up_with():
    tracker = LagTracker()
    tracker.lag(100.0, behind(500, 500, 0.5))
    assert tracker.lag(101.0, behind(700, 500, 1.5)) == 1.0
    assert tracker.lag(102.5, behind(800, 500, 3.0)) == 2.5
    assert tracker.lag(104.0, behind(900, 700, 4.0)) == 3.0  # replayed what it had at 101.0
    assert tracker.lag(105.0, behind(950, 700, 0.2)) == 0.2  # a commit replayed just now is the closer bound


def test_without_a_probe_to_go_by_the_age_of_the_last_commit_is_the_lag():
    assert LagTracker().lag(100.0, behind(700, 500, 42.0)) == 42.0
    tracker = LagTracker(remembered=3)
    tracker.lag(100.0, behind(500, 500, 0.0))
    for second in (101.0, 102.0, 103.0):
        tracker.lag(second, behind(500 + second, 500, 9.0))
    assert tracker.lag(104.0, behind(700, 500, 9.0)) == 9.0  # the caught-up probe was forgotten
    assert LagTracker().lag(100.0, ReplayPosition(True, None, 500, 7.0, False)) == 7.0  # not streaming


def test_a_replica_cut_off_from_the_writer_lags_by_the_age_of_its_last_commit():
    tracker = LagTracker()
    assert tracker.lag(100.0, behind(500, 500, 0.5)) == 0.0
    # The stream broke: all it received is replayed, yet the writer may have moved on since.
    assert tracker.lag(130.0, behind(500, 500, 30.5, receiving=False)) == 30.5
    assert tracker.lag(131.0, behind(800, 500, 31.5)) == 31.5  # back, catching up: no caught-up probe to go by
    assert tracker.lag(132.0, behind(800, 800, 0.1)) == 0.0
