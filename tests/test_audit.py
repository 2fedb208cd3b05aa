"""The audit trail: hash-chained, append-only, verifiable; the admin page filters and exports it."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.accounts.models import Role
from app.audit.chain import append, verify
from app.audit.models import AuditEntry
from app.extensions import db
from tests.helpers import text


def event(action="patient.profile_changed", actor=(7, "patient"), patient_id=7, when=None, entity_id="7", **data):
    return {"id": str(uuid.uuid4()), "type": action, "version": 1,
            "occurred_at": (when or datetime.now(timezone.utc)).isoformat(),
            "actor": {"id": actor[0], "role": actor[1]} if actor else None, "aggregate_type": "patient",
            "aggregate_id": entity_id, "patient_id": patient_id, "source_ip": "10.0.0.1", "outcome": "success",
            "data": data}


@pytest.fixture
def chain(app):
    """Five audit rows written through the chain."""
    with app.app_context():
        for n in range(5):
            append(event(n=n))
            db.session.commit()
    yield
    _restore_triggers(app)


def _sql(app, statement: str) -> None:
    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def _without_triggers(app, statement: str) -> None:
    """What someone with DDL rights would do to tamper with the trail."""
    _sql(app, "DROP TRIGGER IF EXISTS audit_log_no_update")
    _sql(app, "DROP TRIGGER IF EXISTS audit_log_no_delete")
    _sql(app, statement)


def _restore_triggers(app) -> None:
    for action in ("UPDATE", "DELETE"):
        _sql(app, f"DROP TRIGGER IF EXISTS audit_log_no_{action.lower()}")
        _sql(app, f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log FOR EACH ROW "
                  f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_log is append-only: {action} refused'")


def run_verify(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output.strip()


def test_an_intact_chain_verifies(app, chain):
    assert run_verify(app) == (0, "intact, 5 rows")


def test_rows_are_linked_by_hmac(app, chain):
    with app.app_context():
        rows = list(db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)))
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0].prev_hash == "0" * 64
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET outcome = 'failure' WHERE seq = 3",
    "DELETE FROM audit_log WHERE seq = 3",
])
def test_the_database_refuses_to_change_audit_rows(app, chain, statement):
    with pytest.raises(OperationalError, match="append-only"):
        _sql(app, statement)
    assert run_verify(app)[0] == 0


def test_verify_names_an_edited_row(app, chain):
    _without_triggers(app, "UPDATE audit_log SET details = JSON_OBJECT('n', 99) WHERE seq = 3")
    assert run_verify(app) == (1, "broken at sequence 3: its content does not match its hash (edited)")


def test_verify_names_a_deleted_row(app, chain):
    _without_triggers(app, "DELETE FROM audit_log WHERE seq = 2")
    assert run_verify(app) == (1, "broken at sequence 2: row 2 is missing (deleted)")


def test_verify_notices_the_newest_rows_deleted(app, chain):
    _without_triggers(app, "DELETE FROM audit_log WHERE seq >= 4")
    code, output = run_verify(app)
    assert code == 1 and output.startswith("broken at sequence 4: rows 4–5 are missing")


def test_verify_names_reordered_rows(app, chain):
    _without_triggers(app, "UPDATE audit_log SET seq = 99 WHERE seq = 2")
    _sql(app, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _sql(app, "UPDATE audit_log SET seq = 3 WHERE seq = 99")
    code, output = run_verify(app)
    assert code == 1 and output.startswith("broken at sequence 2: its link to the previous row does not match")


def test_a_different_key_does_not_verify(app, chain):
    app.config["AUDIT_HMAC_KEY"] = "someone else's key"
    try:
        with app.app_context():
            assert verify().first_bad_seq == 1
    finally:
        app.config["AUDIT_HMAC_KEY"] = "test-audit-key"


# --- the admin page ---------------------------------------------------------------------------------

@pytest.fixture
def admin(client, create_user, login):
    login(create_user(Role.ADMIN))
    return client


@pytest.fixture
def varied_trail(app):
    # Noon in the clinic's zone, where the date filters read the days, whatever HMS_TIMEZONE is.
    base = datetime(2026, 3, 10, 12, 0, tzinfo=ZoneInfo(app.config["HMS_TIMEZONE"]))
    with app.app_context():
        for n in range(60):
            append(event(action="user.login_succeeded" if n % 3 == 0 else "patient.profile_changed",
                         actor=(100 + n % 2, "patient"), patient_id=100 + n % 2, entity_id=str(100 + n % 2),
                         when=base + timedelta(days=n % 10), n=n))
        db.session.commit()


def test_the_audit_page_lists_rows_newest_first_with_pagination(admin, varied_trail):
    html = text(admin.get("/admin/audit"))
    assert "Page 1 of 2 · 60 in all" in html
    assert html.index(">60<") < html.index(">59<")
    page2 = admin.get("/admin/audit?page=2", htmx=True)
    assert "<html" not in text(page2) and ">10<" in text(page2)


@pytest.mark.parametrize("query,expected", [
    ("actor_id=100", 30),
    ("patient_id=101", 30),
    ("action=user.login_succeeded", 20),
    ("entity_type=patient&entity_id=100", 30),
    ("date_from=2026-03-10&date_to=2026-03-11", 12),
    ("action=user.login_succeeded&actor_id=100", 10),
])
def test_the_audit_filters(admin, varied_trail, query, expected):
    response = admin.get(f"/admin/audit?{query}", htmx=True)
    assert response.status_code == 200
    assert f"{expected} in all" in text(response)


def test_bad_filters_are_answered_beside_the_field(admin, varied_trail):
    response = admin.get("/admin/audit?actor_id=abc&date_from=2026-03-12&date_to=2026-03-10")
    assert response.status_code == 422
    html = text(response)
    assert "Not a valid integer value." in html and "The end date is before the start date." in html


def test_csv_export_has_the_filtered_rows_and_is_itself_audited(app, admin, varied_trail):
    response = admin.get("/admin/audit.csv?patient_id=100&action=user.login_succeeded")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text(response))))
    assert len(rows) == 10
    assert {r["patient_id"] for r in rows} == {"100"} and {r["action"] for r in rows} == {"user.login_succeeded"}
    from app.events.models import OutboxEvent

    with app.app_context():
        exported = db.session.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "audit.exported"))
        assert exported.envelope["data"]["filters"] == {"patient_id": 100, "action": "user.login_succeeded"}


def test_json_export_has_the_filtered_rows_of_the_range_in_the_clinics_days(app, admin, varied_trail):
    response = admin.get("/admin/audit.json?patient_id=100&date_from=2026-03-10&date_to=2026-03-11")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["filters"] == {"patient_id": 100, "date_from": "2026-03-10", "date_to": "2026-03-11"}
    assert document["time_zone"] == app.config["HMS_TIMEZONE"]
    events = document["events"]
    zone = ZoneInfo(app.config["HMS_TIMEZONE"])
    assert len(events) == 6 and [e["seq"] for e in events] == sorted((e["seq"] for e in events), reverse=True)
    assert {e["patient_id"] for e in events} == {100}
    assert {datetime.fromisoformat(e["occurred_at"]).astimezone(zone).day for e in events} == {10}
    assert all(e["hash"] and e["prev_hash"] and e["event_id"] and e["break_glass"] is False for e in events)


def test_csv_export_honours_the_date_range(admin, varied_trail):
    rows = list(csv.DictReader(io.StringIO(text(admin.get("/admin/audit.csv?date_from=2026-03-12&date_to=2026-03-14")))))
    assert len(rows) == 18  # 3 of the 10 days, 6 rows each


def test_the_exports_carry_the_filters_of_the_rows_shown(admin, varied_trail):
    html = text(admin.get("/admin/audit?patient_id=100&page=2", htmx=True))
    assert 'href="/admin/audit.csv?patient_id=100"' in html and 'href="/admin/audit.json?patient_id=100"' in html


def test_an_export_too_large_is_refused_with_its_count(app, admin, varied_trail):
    limit, app.config["HMS_AUDIT_EXPORT_MAX_ROWS"] = app.config["HMS_AUDIT_EXPORT_MAX_ROWS"], 59
    try:
        response = admin.get("/admin/audit.json")
        assert response.status_code == 422 and "These filters match 60 audit entries" in text(response)
        assert admin.get("/admin/audit.csv?action=user.login_succeeded").status_code == 200  # 20 rows
    finally:
        app.config["HMS_AUDIT_EXPORT_MAX_ROWS"] = limit


def test_dates_outside_the_calendar_are_refused_beside_the_field(admin, varied_trail):
    response = admin.get("/admin/audit?date_to=9999-12-31")
    assert response.status_code == 422 and "Choose a date from 2000 to 2100." in text(response)
    export = admin.get("/admin/audit.json?date_to=9999-12-31&patient_id=100")
    assert export.status_code == 303 and export.headers["Location"] == "/admin/audit?date_to=9999-12-31&patient_id=100"


@pytest.mark.parametrize("role", [Role.PATIENT, Role.DOCTOR, Role.CLERK])
def test_only_admins_read_the_audit_log(client, create_user, login, role):
    login(create_user(role))
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403
    assert client.get("/admin/audit.json").status_code == 403


@pytest.mark.parametrize("where", ["actor_id = 5", "patient_id = 5", "action = 'x'", "occurred_at > NOW()",
                                   "entity_type = 'patient' AND entity_id = '5'"])
def test_every_filter_is_served_by_an_index(app, where):
    with app.app_context(), db.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN SELECT * FROM audit_log WHERE {where} ORDER BY seq DESC LIMIT 50").mappings().all()
    assert plan[0]["key"] is not None or plan[0]["possible_keys"], plan
