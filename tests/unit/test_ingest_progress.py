"""How long a running job still needs: the current stage at its own pace, later stages by their weights."""

from datetime import UTC, datetime, timedelta

import pytest

from nutrimatch.ingest import jobs
from nutrimatch.ingest.jobs import Stage, job_stages, seconds_left

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("stages", "now", "left"), [
    # loading half done in 10 s: 10 s more, then merging as long as loading (equal weights)
    ([Stage(0.5, 0.5, at(0)), Stage(0.5, 0.0, None)], 10, 30.0),
    # loading took 2 s, merging a quarter done 5 s later: merging's own pace, not loading's
    ([Stage(0.5, 1.0, at(0)), Stage(0.5, 0.25, at(2))], 7, 15.0),
    # merging started 1 s ago, nothing merged yet: as long as loading took (4 s), 3 s of it left
    ([Stage(0.5, 1.0, at(0)), Stage(0.5, 0.0, at(4))], 5, 3.0),
    # bulk load: a tenth loading (6 s), then merging half done in 30 s: 30 s more, and indexing half as long as
    # merging (weights 0.3 and 0.6)
    ([Stage(0.1, 1.0, at(0)), Stage(0.6, 0.5, at(6)), Stage(0.3, 0.0, None)], 36, 60.0),
    # indexing 5 of 16 leaves 3 s after merging ended
    ([Stage(0.1, 1.0, at(0)), Stage(0.6, 1.0, at(6)), Stage(0.3, 5 / 16, at(66))], 69, 6.6),
])
def test_the_time_left_follows_the_pace_of_the_stage_under_way(stages, now, left):
    assert seconds_left(stages, at(now)) == pytest.approx(left)


def test_no_estimate_before_a_pace_is_measured_or_after_the_last_stage():
    assert seconds_left([Stage(0.5, 0.0, at(0)), Stage(0.5, 0.0, None)], at(3)) is None
    assert seconds_left([Stage(0.5, 0.0, None), Stage(0.5, 0.0, None)], at(3)) is None
    assert seconds_left([Stage(0.5, 1.0, at(0)), Stage(0.5, 1.0, at(2))], at(9)) is None
    # merging started after a 1 s load and has run 3 s with nothing merged: "0 s left" would be a guess proved wrong
    assert seconds_left([Stage(0.5, 1.0, at(0)), Stage(0.5, 0.0, at(1))], at(4)) is None


def _counts(leaves_total: int, **done: int) -> dict[str, int]:
    return {"bytes_total": 1000, "bytes_loaded": 0, "chunks_total": 4, "chunks_loaded": 0, "chunks_merged": 0,
            "leaves_total": leaves_total, "leaves_indexed": 0, **done}


def test_loading_weighs_the_same_whether_the_job_turns_out_a_bulk_load_or_an_upsert():
    # Whether a job bulk-loads is decided once its rows are loaded: the bar must not go back at that moment.
    for leaves in (0, 16):
        stages = job_stages(_counts(leaves, bytes_loaded=1000, chunks_loaded=4), at(0), at(10), None)
        assert sum(s.weight * s.done for s in stages) == 0.1
        assert sum(s.weight for s in stages) == pytest.approx(1.0)
        assert stages[1].started_at == at(10)  # merging is timed from the last chunk loaded
    half_merged = job_stages(_counts(0, bytes_loaded=1000, chunks_loaded=4, chunks_merged=2), at(0), at(10), at(20))
    assert sum(s.weight * s.done for s in half_merged) == pytest.approx(0.55)


def test_a_job_planned_before_plans_held_a_rows_version_stamps_rows_with_its_planned_version():
    assert jobs.rows_version({"plan": {"rows_version": 3}, "catalog_version": None}) == 3
    assert jobs.rows_version({"plan": {"merge": "upsert"}, "catalog_version": 5}) == 5
