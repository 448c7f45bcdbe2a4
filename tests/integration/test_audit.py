"""The HIPAA audit trail: one row per access in the access's transaction, append-only, a verifiable chain."""

import itertools
import threading
from uuid import UUID

import psycopg
import pytest
from pydantic import ValidationError

from nutrimatch.api import Caller
from nutrimatch.audit import RequestInfo, read_changes, record, verify
from nutrimatch.audit.chain import GENESIS_HASH, canonical_bytes, row_hash
from nutrimatch.customers import health
from nutrimatch.db import get_database, scoped_transaction
from nutrimatch.health import HealthProfile
from nutrimatch.health.store import load_profile
from nutrimatch.routes import Role
from nutrimatch.tenancy import vendors
from tests.e2e.customer_samples import SAMPLE_PROFILE, sample_customer

NOTE = "lives with her daughter in Bergen"
REQUEST = RequestInfo(request_id="req-42", ip="198.51.100.7", user_agent="clinic-app/5 (ünïcode)",
                      justification="annual review")


def _clinician(vendor_id: UUID) -> Caller:
    return Caller(user_id="dr-okafor", role=Role.CLINICIAN, vendor_id=vendor_id)


def _rows(database, vendor_id: UUID) -> list[dict]:
    with database.admin() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute("SELECT * FROM audit_log WHERE vendor_id = %s ORDER BY seq", (vendor_id,)).fetchall()


def _verify(vendor_id: UUID):
    with scoped_transaction(get_database().writer, vendor_id, read_only=True) as conn:
        return verify(conn, vendor_id)


def _append(vendor_id: UUID, count: int, action: str = "test.event") -> None:
    with scoped_transaction(get_database().writer, vendor_id) as conn:
        for n in range(count):
            record(conn, vendor_id=vendor_id, actor_user_id="tester", actor_role="vendor_admin", action=action,
                   entity="thing", entity_id=str(n), request=REQUEST)


def test_profile_reads_and_writes_are_audited_with_their_context(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    customer_id = UUID(sample_customer(vendor))  # customer.created + health_profile.created (version 1)
    caller = _clinician(vendor.id)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        health.write(conn, caller, REQUEST, customer_id, HealthProfile.model_validate({**SAMPLE_PROFILE,
                                                                                         "notes": NOTE}))
        health.read(conn, caller, REQUEST, customer_id)
    rows = _rows(database, vendor.id)
    assert [r["action"] for r in rows] == ["customer.created", "health_profile.created", "health_profile.updated",
                                           "health_profile.read"]
    update, read = rows[2], rows[3]
    for row in (update, read):
        assert (row["actor_user_id"], row["actor_role"], row["entity"], row["entity_id"]) == (
            "dr-okafor", "clinician", "customer_health_profile", str(customer_id))
        assert (row["ip"], row["ua"], row["request_id"], row["justification"]) == (
            "198.51.100.7", "clinic-app/5 (ünïcode)", "req-42", "annual review")
    assert read["before"] is None and read["after"] is None
    # before/after are sealed: no plaintext PHI in the row, yet the investigator can open them.
    assert NOTE.encode() not in bytes(update["after"]) and b"hypertension" not in bytes(update["before"])
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        changes = read_changes(conn, vendor.id, update["seq"])
    assert changes.before["version"] == 1 and changes.before["profile"]["notes"] == "sample note"
    assert changes.after["version"] == 2 and changes.after["profile"]["notes"] == NOTE


def test_a_failure_after_the_access_rolls_back_the_access_and_its_audit_row(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    customer_id = UUID(sample_customer(vendor))
    caller = _clinician(vendor.id)
    before = len(_rows(database, vendor.id))

    def access_then_fail() -> None:
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            health.write(conn, caller, REQUEST, customer_id,
                         HealthProfile.model_validate({**SAMPLE_PROFILE, "notes": NOTE}))
            health.read(conn, caller, REQUEST, customer_id)
            raise RuntimeError("the response could not be sent")

    with pytest.raises(RuntimeError):
        access_then_fail()
    assert len(_rows(database, vendor.id)) == before
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        stored = load_profile(conn, vendor.id, customer_id)
    assert (stored.version, stored.profile.notes) == (1, "sample note")


def test_no_access_when_its_audit_row_cannot_be_written(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    customer_id = UUID(sample_customer(vendor))
    with database.admin() as conn:  # the trail refuses every new row from now on
        conn.execute("ALTER TABLE audit_log ADD CONSTRAINT closed CHECK (false) NOT VALID")
    with pytest.raises(psycopg.errors.CheckViolation):
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            health.write(conn, _clinician(vendor.id), REQUEST, customer_id,
                         HealthProfile.model_validate({**SAMPLE_PROFILE, "notes": NOTE}))
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        assert load_profile(conn, vendor.id, customer_id).version == 1


def test_the_python_serialization_matches_the_sql_one(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    sample_customer(vendor)  # rows with sealed before/after and a data key version
    _append(vendor.id, 2)  # rows with neither
    with database.admin() as conn:
        in_sql = [bytes(r[0]) for r in conn.execute(
            "SELECT audit_canonical(a) FROM audit_log a WHERE vendor_id = %s ORDER BY seq", (vendor.id,))]
    rows = _rows(database, vendor.id)
    assert [canonical_bytes(row) for row in rows] == in_sql
    assert bytes(rows[0]["prev_hash"]) == GENESIS_HASH
    assert all(row_hash(bytes(r["prev_hash"]), r) == bytes(r["row_hash"]) for r in rows)


def test_a_row_altered_in_the_database_is_found_at_its_seq(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    _append(vendor.id, 6)
    _append(other.id, 3)
    assert _verify(vendor.id).ok and _verify(vendor.id).checked == 6
    with database.admin() as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET ip = '10.6.6.6' WHERE vendor_id = %s AND seq = 4", (vendor.id,))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    result = _verify(vendor.id)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 4, 3)
    assert "content" in result.reason
    assert _verify(other.id).ok  # chains are per vendor


def test_a_rehashed_row_breaks_the_next_link_and_removed_rows_are_found(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    _append(vendor.id, 5)
    _append(other.id, 4)
    with database.admin() as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off for this owner session only
        # A forger who also recomputes the altered row's own hash still breaks the following link.
        conn.execute("""UPDATE audit_log a SET action = 'forged', row_hash = sha256(a.prev_hash || audit_canonical(
                            ROW(a.vendor_id, a.seq, a."timestamp", a.actor_user_id, a.actor_role, 'forged', a.entity,
                                a.entity_id, a.request_id, a.ip, a.ua, a.justification, a.before, a.after,
                                a.data_key_version, a.prev_hash, a.row_hash)::audit_log))
                         WHERE vendor_id = %s AND seq = 2""", (vendor.id,))
        conn.execute("DELETE FROM audit_log WHERE vendor_id = %s AND seq = 4", (other.id,))
    forged = _verify(vendor.id)
    assert (forged.ok, forged.first_broken_seq) == (False, 3) and "prev_hash" in forged.reason
    gap = _verify(other.id)
    assert (gap.ok, gap.first_broken_seq, gap.checked) == (False, 4, 3)
    with database.admin() as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM audit_log WHERE vendor_id = %s AND seq >= 4", (vendor.id,))
        conn.execute("DELETE FROM audit_log WHERE vendor_id = %s AND seq = 2", (vendor.id,))
    tail = _verify(vendor.id)  # rows 1 and 3 left: the gap at 2 is reported first
    assert (tail.ok, tail.first_broken_seq) == (False, 2)


def test_a_removed_tail_is_found_through_the_chain_head(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    _append(vendor.id, 5)
    with database.admin() as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM audit_log WHERE vendor_id = %s AND seq > 3", (vendor.id,))
    result = _verify(vendor.id)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 3, 4)
    assert "head" in result.reason


class _AuditedMeanwhile:
    """A verifier's connection during which other requests' audited accesses commit: before each statement."""

    def __init__(self, conn: psycopg.Connection, vendor_id: UUID) -> None:
        self.conn, self.vendor_id, self.appended = conn, vendor_id, 0

    def _another_access(self) -> None:
        worker = threading.Thread(target=_append, args=(self.vendor_id, 1))
        worker.start()
        worker.join()
        self.appended += 1

    def execute(self, *args, **kwargs):
        self._another_access()
        return self.conn.execute(*args, **kwargs)

    def cursor(self, *args, **kwargs):
        self._another_access()
        return self.conn.cursor(*args, **kwargs)


def test_accesses_audited_while_the_chain_is_verified_do_not_break_it(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    _append(vendor.id, 5)
    with scoped_transaction(get_database().writer, vendor.id, read_only=True) as conn:  # as GET /audit/verify
        meanwhile = _AuditedMeanwhile(conn, vendor.id)
        result = verify(meanwhile, vendor.id)  # type: ignore[arg-type]
    assert meanwhile.appended == 2
    assert (result.ok, result.checked) == (True, 6)
    assert _verify(vendor.id).checked == 7


def test_the_head_rotates_over_64_rows_so_no_row_is_updated_by_every_append(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    _append(vendor.id, 70)
    _append(other.id, 2)
    with database.admin() as conn:
        heads = conn.execute("SELECT slot, seq FROM audit_chain_heads WHERE vendor_id = %s ORDER BY slot",
                             (vendor.id,)).fetchall()
    # rows 65..70 took over slots 1..6 from rows 1..6; slot 0 holds row 64
    assert [seq for _, seq in heads] == [64, *range(65, 71), *range(7, 64)]
    assert all(seq % 64 == slot for slot, seq in heads)
    assert _verify(vendor.id).ok and _verify(other.id).checked == 2
    with database.admin() as conn:  # a removed tail is still found through the newest head row
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM audit_log WHERE vendor_id = %s AND seq > 66", (vendor.id,))
    result = _verify(vendor.id)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 66, 67)
    assert "head is at row 70" in result.reason


def test_update_delete_truncate_and_direct_inserts_are_refused(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    _append(vendor.id, 2)
    for statement in ("UPDATE audit_log SET ip = NULL", "DELETE FROM audit_log", "TRUNCATE audit_log",
                      "UPDATE audit_chain_heads SET seq = 0",
                      "INSERT INTO audit_log SELECT * FROM audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # as the application role
            with scoped_transaction(get_database().writer, vendor.id) as conn:
                conn.execute(statement)
    for statement in ("UPDATE audit_log SET ip = NULL", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with database.admin() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)  # as the owner (a superuser here): the triggers refuse
    assert len(_rows(database, vendor.id)) == 2 and _verify(vendor.id).ok


def test_rows_are_appended_only_for_the_transactions_vendor(two_vendors, aws_resources, database):
    vendor, other = two_vendors
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with scoped_transaction(get_database().writer, vendor.id) as conn:
            record(conn, vendor_id=other.id, actor_user_id="x", actor_role="vendor_admin", action="a",
                   entity="e", entity_id="1", request=REQUEST)


def test_concurrent_writers_keep_one_unbroken_chain(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    writers, per_writer = 8, 15
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            start.wait()
            for _ in range(per_writer):
                _append(vendor.id, 1, action=f"writer-{index}")
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    rows = _rows(database, vendor.id)
    assert [r["seq"] for r in rows] == list(range(1, writers * per_writer + 1))
    assert len({r["action"] for r in rows}) == writers
    assert all(bytes(r["prev_hash"]) == bytes(p["row_hash"]) for p, r in itertools.pairwise(rows))
    assert _verify(vendor.id).ok and _verify(vendor.id).checked == writers * per_writer


def test_the_cli_verifies_by_slug_or_id_and_fails_on_a_broken_chain(two_vendors, aws_resources, database):
    from typer.testing import CliRunner

    from nutrimatch import cli

    vendor, _ = two_vendors
    _append(vendor.id, 3)
    ok = CliRunner().invoke(cli.app, ["audit", "verify", "--vendor", "vendor-a"])
    assert ok.exit_code == 0 and "3 audit row(s)" in ok.output
    with database.admin() as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_log SET entity_id = 'x' WHERE vendor_id = %s AND seq = 2", (vendor.id,))
    broken = CliRunner().invoke(cli.app, ["audit", "verify", "--vendor", str(vendor.id)])
    assert broken.exit_code == 1 and "seq 2" in broken.output
    unknown = CliRunner().invoke(cli.app, ["audit", "verify", "--vendor", "nobody"])
    assert unknown.exit_code == 2


def test_search_filters_pages_newest_first_and_exports_safe_csv(two_vendors, aws_resources, database):
    from datetime import timedelta

    from nutrimatch.audit.search import AuditQuery, export_csv, search

    vendor, other = two_vendors
    admin = Caller(user_id="boss", role=Role.VENDOR_ADMIN, vendor_id=vendor.id)
    _append(vendor.id, 4, action="first")
    with database.admin() as conn:
        middle = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    hostile = RequestInfo(request_id="r-9", ip=None, user_agent="=HYPERLINK(\"http://evil\")", justification=None)
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        record(conn, vendor_id=vendor.id, actor_user_id="mallory", actor_role="clinician", action="second",
               entity="thing", entity_id="9", request=hostile)
    _append(other.id, 2, action="first")
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        everything = search(conn, admin, AuditQuery())
        by_actor = search(conn, admin, AuditQuery(actor="mallory"))
        later = search(conn, admin, AuditQuery(since=middle))
        earlier = search(conn, admin, AuditQuery(until=middle, action="first", entity_id="2"))
        none_yet = search(conn, admin, AuditQuery(until=middle - timedelta(days=1)))
        pages, cursor = [], None
        while True:
            page = search(conn, admin, AuditQuery(limit=2, cursor=cursor))
            pages.append([e.seq for e in page.items])
            if not (cursor := page.next_cursor):
                break
        export = export_csv(conn, admin, hostile, AuditQuery(actor="mallory", format="csv"))
    assert [e.seq for e in everything.items] == [5, 4, 3, 2, 1] and everything.next_cursor is None
    assert [e.seq for e in by_actor.items] == [5] == [e.seq for e in later.items]
    assert [(e.seq, e.entity_id) for e in earlier.items] == [(3, "2")] and none_yet.items == []
    assert pages == [[5, 4], [3, 2], [1]]
    assert export.rows == 1 and "'=HYPERLINK" in export.csv_text and ",=HYPERLINK" not in export.csv_text
    with pytest.raises(ValidationError):
        AuditQuery(limit=500)  # JSON pages stay small; exports may be larger
    assert AuditQuery(limit=500, format="csv").page_size == 500
    assert [r["action"] for r in _rows(database, vendor.id)][-1] == "audit.exported"


def test_the_audited_changes_of_a_purged_vendor_can_still_be_opened(two_vendors, aws_resources, database):
    vendor, _ = two_vendors
    customer_id = UUID(sample_customer(vendor))
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        health.write(conn, _clinician(vendor.id), REQUEST, customer_id,
                     HealthProfile.model_validate({**SAMPLE_PROFILE, "notes": NOTE}))
    update = _rows(database, vendor.id)[-1]
    vendors.offboard(get_database(), vendor.id)
    vendors.purge(get_database(), vendor.id)
    with database.admin() as conn:  # the vendor and its profiles are gone
        assert conn.execute("SELECT count(*) FROM vendors WHERE id = %s", (vendor.id,)).fetchone() == (0,)
    assert _verify(vendor.id).ok
    with scoped_transaction(get_database().writer, vendor.id) as conn:
        changes = read_changes(conn, vendor.id, update["seq"])
    assert changes.after["profile"]["notes"] == NOTE
