"""A patient's access report ("Who has seen my record"): the audit trail of their record, as they read it.

What it lists, newest first, from `audit_log` rows whose patient is them:

- `record.viewed`: someone read parts of the record (a doctor's chart or visit note, a program's read through
  the API or FHIR, which includes `demographics`, the Patient resource); read under a break-glass grant, the row
  is flagged with the grant's reason;
- `record.break_glass`: a doctor opened the record in an emergency, with the reason they gave;
- `access.denied`: the access policy refused someone something of theirs (their record, a visit note, an
  appointment, a bill, their profile).

Who: staff by name and role; the patient's own reads in the browser are left out (they are the patient's own
page views, and would bury the others), but a program reading for them is listed as "You, through the app …";
another patient (refused something of theirs) is "Another patient", never named. A program acting for anyone is
named ("through the app Heart Diary").
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from app.accounts.models import Role, User
from app.audit.models import AuditEntry
from app.audit.queries import BREAK_GLASS_ACTION, flagged, is_break_glass, spreadsheet_safe, within_days
from app.extensions import db
from app.oauth.models import OAuthClient
from app.records.models import BreakGlassGrant
from app.timeutil import clinic_zone, to_clinic_time

READ, DENIED = "record.viewed", "access.denied"
REPORTED_ACTIONS = (READ, BREAK_GLASS_ACTION, DENIED)

# The data categories of `app.records.services.record_read` (and a grant's "record"), in plain words.
CATEGORY_WORDS = {"encounter": "visit notes", "diagnosis": "diagnoses", "prescription": "prescriptions",
                  "allergy": "allergies", "vitals": "vital signs", "demographics": "personal details",
                  "record": "whole record"}
# What a refusal was about when it names no category: the resource kind (`app.policy.Kind`).
RESOURCE_WORDS = {"record": "your record", "encounter": "a visit note of yours",
                  "appointment": "one of your appointments", "invoice": "one of your bills", "patient": "your profile",
                  "audit": "your access report"}
ROLES = (Role.DOCTOR, Role.CLERK, Role.ADMIN, Role.PATIENT)


def _client_id() -> sa.ColumnElement:
    return sa.func.json_value(AuditEntry.details, "$.client_id")  # MariaDB, MySQL


@dataclass(frozen=True)
class AccessFilter:
    date_from: date | None = None
    date_to: date | None = None
    role: Role | None = None
    break_glass: bool = False

    def select(self, patient_id: int) -> sa.Select:
        """The report's rows for `patient_id`, newest first (served by the index on patient and time)."""
        query = sa.select(AuditEntry).where(
            AuditEntry.patient_id == patient_id, AuditEntry.action.in_(REPORTED_ACTIONS),
            # not the patient's own page views; a program reading for them is listed
            sa.or_(AuditEntry.actor_id.is_(None), AuditEntry.actor_id != patient_id, _client_id().is_not(None)))
        query = within_days(query, self.date_from, self.date_to)
        if self.role is not None:
            query = query.where(AuditEntry.actor_role == self.role.value)
        if self.break_glass:
            query = query.where(is_break_glass())
        return query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())


@dataclass(frozen=True)
class AccessRow:
    """One line of the report."""

    at: datetime  # UTC
    who: str
    role: str  # the role's label, "" when nobody was signed in
    app: str | None  # the program that acted, by its registered name
    event: str  # "Read", "Emergency access", "Refused"
    what: str  # the parts of the record, in plain words: "your visit notes, diagnoses and allergies"
    break_glass: bool
    reason: str | None  # the break-glass reason
    refused: bool


def _what(entry: AuditEntry) -> str:
    details = entry.details or {}
    if entry.action == BREAK_GLASS_ACTION:
        return "your whole record"
    categories = details.get("categories") or ([details["category"]] if details.get("category") else [])
    words = list(dict.fromkeys(CATEGORY_WORDS.get(c, str(c)) for c in categories))
    if words:
        return "your " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1])
    return RESOURCE_WORDS.get(entry.entity_type, "your " + entry.entity_type.replace("_", " "))


def _event(entry: AuditEntry) -> str:
    if entry.action == DENIED:
        return "Refused"
    if entry.action == BREAK_GLASS_ACTION:
        return "Emergency access"
    return "Read"


def describe(patient_id: int, entries: Iterable[AuditEntry]) -> list[AccessRow]:
    """The rows in plain words: names, programs and break-glass reasons read once for all of `entries`."""
    entries = list(entries)
    staff_ids = {e.actor_id for e in entries if e.actor_id and e.actor_role != Role.PATIENT.value}
    client_ids = {e.details["client_id"] for e in entries if (e.details or {}).get("client_id")}
    grant_ids = {e.details["break_glass_grant_id"] for e in entries
                 if isinstance((e.details or {}).get("break_glass_grant_id"), int)}
    names = dict(db.session.execute(sa.select(User.id, User.full_name).where(User.id.in_(staff_ids))).all()) \
        if staff_ids else {}
    apps = dict(db.session.execute(sa.select(OAuthClient.client_id, OAuthClient.name)
                                   .where(OAuthClient.client_id.in_(client_ids))).all()) if client_ids else {}
    reasons = dict(db.session.execute(sa.select(BreakGlassGrant.id, BreakGlassGrant.reason)
                                      .where(BreakGlassGrant.id.in_(grant_ids))).all()) if grant_ids else {}
    rows = []
    for entry in entries:
        details = entry.details or {}
        if entry.actor_id is None:
            who, role = "Someone not signed in", ""
        elif entry.actor_id == patient_id:
            who, role = "You", Role.PATIENT.label
        elif entry.actor_role == Role.PATIENT.value:
            who, role = "Another patient", Role.PATIENT.label
        else:
            who = names.get(entry.actor_id, f"A former staff member (#{entry.actor_id})")
            role = Role(entry.actor_role).label if entry.actor_role in Role._value2member_map_ else ""
        client_id = details.get("client_id")
        app = apps.get(client_id, "an app no longer registered") if client_id else None
        reason = details.get("reason") if entry.action == BREAK_GLASS_ACTION else \
            reasons.get(details.get("break_glass_grant_id"))
        rows.append(AccessRow(at=entry.occurred_at, who=who, role=role, app=app, event=_event(entry),
                              what=_what(entry), break_glass=flagged(entry), reason=reason,
                              refused=entry.action == DENIED))
    return rows


CSV_COLUMNS = ("when", "time_zone", "who", "role", "through_app", "event", "what", "break_glass", "reason")


def csv_rows(patient_id: int, access_filter: AccessFilter) -> Iterator[str]:
    """The filtered report as CSV text (times in the clinic's zone), streamed in batches."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    zone = clinic_zone().key
    result = db.session.scalars(access_filter.select(patient_id).execution_options(yield_per=500))
    for batch in result.partitions():
        for row in describe(patient_id, batch):
            writer.writerow([spreadsheet_safe(value) for value in (
                to_clinic_time(row.at).isoformat(timespec="seconds"), zone, row.who, row.role, row.app or "",
                row.event, row.what, "yes" if row.break_glass else "no", row.reason or "")])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
