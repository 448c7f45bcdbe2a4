"""Reads routed to the real streaming replica, and back to the writer when it is stopped or falls behind."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from nutrimatch.db.routing import Consistency, Freshness, get_router
from nutrimatch.search import service
from nutrimatch.search.models import SearchRequest
from nutrimatch.settings import get_settings
from nutrimatch.status import check_system
from tests.e2e.search_samples import insert_products, wait_for_replica


class RecordedMetrics:
    def __init__(self):
        self.recorded = []

    def add_metric(self, *, name, unit, value):
        self.recorded.append((name, unit, value))

    def named(self, name):
        return [value for recorded, _, value in self.recorded if recorded == name]


@pytest.fixture
def vendor(two_vendors):
    vendor, _ = two_vendors
    insert_products(vendor.id, [{"external_id": "oat-1", "name": "Oat Crunch Granola", "price": 4.2}])
    wait_for_replica()
    return vendor


def _configure(monkeypatch, **values):
    for name, value in values.items():
        monkeypatch.setenv(name.upper(), str(value))
    get_settings.cache_clear()


def _search(vendor, metrics=None):
    return service.search_products(get_router(), vendor.id, SearchRequest(q="granola"),
                                   **({"metrics": metrics} if metrics else {}))


def _replica_admin_url(database):
    parts = urlsplit(database.replica_url)
    return urlunsplit(parts._replace(netloc=f"postgres@{parts.hostname}:{parts.port}"))


def _until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_a_search_is_served_by_the_replica(vendor):
    metrics = RecordedMetrics()
    results = _search(vendor, metrics)
    assert results.served_by == "replica"  # pg_is_in_recovery() on the server that ran the search
    assert results.freshness is Freshness.FRESH
    assert results.replica_lag_seconds is not None and results.replica_lag_seconds < 1
    assert [p.name for p in results.products] == ["Oat Crunch Granola"]
    assert metrics.named("ReplicaLagSeconds") and not metrics.named("ReplicaFallback")


def test_a_strongly_consistent_read_sees_its_own_write_on_the_writer(vendor):
    insert_products(vendor.id, [{"external_id": "new-1", "name": "Just Written"}])
    read = service.get_product(get_router(), vendor.id, "new-1", consistency=Consistency.STRONG)
    assert read.product.name == "Just Written"
    assert read.served_by == "primary" and read.freshness is Freshness.PRIMARY


def test_without_a_configured_replica_reads_go_to_the_writer(vendor, monkeypatch):
    _configure(monkeypatch, database_replica_url="")
    metrics = RecordedMetrics()
    results = _search(vendor, metrics)
    assert results.served_by == "primary" and results.freshness is Freshness.PRIMARY
    assert not metrics.named("ReplicaFallback")  # nothing failed: there is no replica to fall back from


def test_with_the_replica_stopped_search_answers_from_the_writer(vendor, local_stack, monkeypatch):
    replica = local_stack.stack.replica
    _configure(monkeypatch, replica_lag_cache_seconds=0)
    assert _search(vendor).served_by == "replica"  # the reader pool holds connections that are about to break
    metrics = RecordedMetrics()
    replica.stop()
    try:
        started = time.monotonic()
        results = _search(vendor, metrics)
        elapsed = time.monotonic() - started
        again = _search(vendor)  # the failed reader is left alone for a while: no new wait
    finally:
        replica.start()
        replica.wait_ready()
    assert results.served_by == "primary" and results.freshness is Freshness.PRIMARY
    assert results.replica_lag_seconds is None
    assert [p.name for p in results.products] == ["Oat Crunch Granola"]
    assert elapsed < 3, f"falling back took {elapsed:.1f} s"
    assert metrics.named("ReplicaFallback") == [1]
    assert again.served_by == "primary"


def test_routing_falls_back_while_replay_is_paused_and_returns_after_resume(vendor, database, monkeypatch):
    _configure(monkeypatch, replica_max_lag_seconds=0.5, replica_lag_cache_seconds=0)
    assert _search(vendor).served_by == "replica"
    metrics = RecordedMetrics()
    with psycopg.connect(_replica_admin_url(database), autocommit=True) as replica_admin:
        replica_admin.execute("SELECT pg_wal_replay_pause()")
        try:
            def behind_and_routed_to_writer():
                insert_products(vendor.id, [{"external_id": f"w-{time.monotonic_ns()}", "name": "Granola Bites"}])
                return _search(vendor, metrics).freshness is Freshness.PRIMARY

            assert _until(behind_and_routed_to_writer), "lag never exceeded the bound"
            fallen_back = _search(vendor, metrics)
        finally:
            replica_admin.execute("SELECT pg_wal_replay_resume()")
    assert fallen_back.served_by == "primary"
    assert fallen_back.replica_lag_seconds > 0.5
    assert len(fallen_back.products) > 1  # the writer has the rows the replica had not replayed
    assert metrics.named("ReplicaFallback")
    back = _until(lambda: (r := _search(vendor)).served_by == "replica" and r)
    assert back and back.freshness is Freshness.FRESH
    wait_for_replica()  # WAL the writer had not yet shipped is invisible to the replica's own measure
    assert len(_search(vendor).products) == len(fallen_back.products)


def test_a_replica_behind_but_within_the_bound_answers_as_stale(vendor, database, monkeypatch):
    _configure(monkeypatch, replica_stale_lag_seconds=0.2, replica_max_lag_seconds=60, replica_lag_cache_seconds=0)
    with psycopg.connect(_replica_admin_url(database), autocommit=True) as replica_admin:
        replica_admin.execute("SELECT pg_wal_replay_pause()")
        try:
            insert_products(vendor.id, [{"external_id": "unseen", "name": "Granola Unseen"}])
            stale = _until(lambda: (r := _search(vendor)).freshness is Freshness.STALE and r)
        finally:
            replica_admin.execute("SELECT pg_wal_replay_resume()")
    assert stale and stale.served_by == "replica"
    assert [p.name for p in stale.products] == ["Oat Crunch Granola"]  # not yet the new one


def test_wal_without_commits_after_a_quiet_spell_is_not_lag_for_routing_or_health(vendor, database, monkeypatch):
    _configure(monkeypatch, replica_max_lag_seconds=0.5, replica_lag_cache_seconds=0)
    with psycopg.connect(_replica_admin_url(database), autocommit=True) as replica_admin, \
            psycopg.connect(database.admin_url, autocommit=True) as writer_admin:
        def replica(condition):
            return replica_admin.execute(f"SELECT {condition}").fetchone()[0]

        # Other databases of the cluster commit now and then (autovacuum): wait for a quiet moment, and try again
        # when a commit slipped in before replay was paused.
        for _ in range(5):
            assert _until(lambda: replica("pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() AND "
                                          "now() - pg_last_xact_replay_timestamp() > interval '0.6 s'"), timeout=30)
            assert _search(vendor).served_by == "replica"  # a probe that finds the replica caught up
            replica_admin.execute("SELECT pg_wal_replay_pause()")
            try:
                writer_admin.execute("SELECT pg_logical_emit_message(false, 'nutrimatch-test', 'WAL, no commit')")
                assert _until(lambda: replica("pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"), timeout=5)
                last_commit_old = replica("now() - pg_last_xact_replay_timestamp() > interval '0.5 s'")
                routed = _search(vendor)
                status = check_system(get_settings(), get_router())
            finally:
                replica_admin.execute("SELECT pg_wal_replay_resume()")
            if last_commit_old:
                break
    assert last_commit_old  # the age of the last commit alone would have exceeded the bound
    assert routed.served_by == "replica" and routed.replica_lag_seconds < 0.5
    assert status.reader.status == "up" and status.reader.replication_lag_ms < 500  # /health measures it alike


def test_a_replica_cut_off_from_the_writer_is_not_taken_for_fresh(vendor, database, monkeypatch):
    _configure(monkeypatch, replica_max_lag_seconds=0.5, replica_lag_cache_seconds=0)
    assert _search(vendor).served_by == "replica"
    with psycopg.connect(_replica_admin_url(database), autocommit=True) as replica_admin:
        conninfo = replica_admin.execute("SHOW primary_conninfo").fetchone()[0]

        def receiving():
            return replica_admin.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)").fetchone()[0]

        replica_admin.execute("ALTER SYSTEM SET primary_conninfo = ''")
        replica_admin.execute("SELECT pg_reload_conf()")
        try:
            assert _until(lambda: not receiving()), "the WAL receiver did not stop"
            insert_products(vendor.id, [{"external_id": "while-cut-off", "name": "Granola Clusters"}])
            # Everything it received is replayed; only the writer knows it is behind.
            cut_off = _until(lambda: (r := _search(vendor)).freshness is Freshness.PRIMARY and r, timeout=10)
        finally:
            replica_admin.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo)))
            replica_admin.execute("SELECT pg_reload_conf()")
    assert cut_off and cut_off.served_by == "primary" and cut_off.replica_lag_seconds > 0.5
    assert len(cut_off.products) == 2
    assert _until(lambda: _search(vendor).served_by == "replica", timeout=30), "the replica never came back"
    wait_for_replica()
