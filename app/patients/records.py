"""A patient's own medical records ("My records"): visits, diagnoses, prescriptions, allergies and the
vitals trend, read-only, plus a printable visit summary and prescription.

Routes of the patients blueprint (the blueprint's guard admits patients only). A patient sees only
signed records, and of an amended record the newest signed version (earlier versions stay reachable
from its history). What a patient sees of the note is the clinic's choice (`records.PATIENT_NOTES`, which
the API follows too): the reason for the visit, the assessment and the plan, with the diagnoses,
prescriptions and vitals. The subjective and objective sections are the doctor's working notes and stay in
the clinic. Every page records one
audit read event (`app.records.services.record_read`) with its data category; another patient's
visit answers 404.
"""
from __future__ import annotations

from datetime import date

from flask import abort
from flask_login import current_user

from app.clinic.services import get_doctor
from app.patients.views import bp
from app.policy import Resource, Verb
from app.records import services as records
from app.records.models import Encounter
from app.timeutil import utcnow
from app.web.access import authorize
from app.web.rendering import render

# (title, unit, [(label, key of a vitals_series point)], (low, high) the axis shows at least, so that a
# normal value does not look dramatic): one chart each on the vitals page.
CHARTS = [
    ("Blood pressure", "mmHg", [("Systolic", "systolic"), ("Diastolic", "diastolic")], (60, 160)),
    ("Heart rate", "beats/min", [("Heart rate", "heart_rate")], (50, 110)),
    ("Weight", "kg", [("Weight", "weight_kg")], (None, None)),
    ("BMI", "kg/m²", [("BMI", "bmi")], (18, 30)),
    ("SpO₂", "%", [("SpO₂", "spo2")], (90, 100)),
]
TABLE = ("systolic", "diastolic", "heart_rate", "spo2", "temperature_c", "weight_kg", "height_cm", "bmi")


def vitals_trend(points: list[dict]) -> tuple[list[dict], list[dict]]:
    """(charts, rows) from `records.vitals_series` (oldest first). Each chart's `spec` is what
    static/js/vitals-chart.js draws; the rows are the same numbers, as the table under the charts."""
    labels = [date.fromisoformat(point["date"]).strftime("%d %b %Y") for point in points]
    charts = []
    for title, unit, lines, (low, high) in CHARTS:
        datasets = [{"label": label, "data": [point[key] for point in points]} for label, key in lines]
        if any(value is not None for dataset in datasets for value in dataset["data"]):
            charts.append({"title": title, "spec": {"labels": labels, "unit": unit, "datasets": datasets,
                                                    "suggestedMin": low, "suggestedMax": high}})
    rows = [{"label": label, **{key: point[key] for key in TABLE}} for label, point in zip(labels, points)]
    return charts, rows


def _page(template: str, categories: tuple[str, ...], *, view: str, encounter: Encounter | None = None, **context):
    """Render a records page for the signed-in patient and audit it: one `record.viewed` event per page.
    Every page shows the allergies (the banner), so "allergy" is always among its categories."""
    patient_id = current_user.id
    decision = authorize(Verb.READ, Resource.record(patient_id), category=categories[0])
    if encounter is None:
        records.record_read(patient_id, categories, view=view, decision=decision)
    else:
        records.record_read(patient_id, categories, view=view, entity_type="encounter", entity_id=encounter.id,
                            decision=decision)
    response = render(template, allergies=records.allergies(patient_id), patient=current_user,
                      encounter=encounter, **context)
    return response


def _own_signed_encounter(encounter_id: int) -> Encounter:
    """A signed encounter (any version) of the signed-in patient. Another patient's answers 404 (the
    access policy audits the attempt); so do drafts, which patients never see."""
    encounter = records.get_encounter(encounter_id)
    authorize(Verb.READ, Resource.encounter(encounter_id, encounter), category="encounter")
    return encounter


@bp.route("/records", endpoint="records")
def records_home():
    return _page("patients/records/index.html", ("encounter", "diagnosis", "allergy"), view="patient.visits",
                 encounters=records.current_encounters(current_user.id))


@bp.route("/records/diagnoses")
def records_diagnoses():
    return _page("patients/records/diagnoses.html", ("diagnosis", "allergy"), view="patient.diagnoses",
                 diagnoses=records.patient_diagnoses(current_user.id))


@bp.route("/records/prescriptions")
def records_prescriptions():
    return _page("patients/records/prescriptions.html", ("prescription", "allergy"), view="patient.prescriptions",
                 prescriptions=records.patient_prescriptions(current_user.id))


@bp.route("/records/allergies")
def records_allergies():
    return _page("patients/records/allergies.html", ("allergy",), view="patient.allergies")


@bp.route("/records/vitals")
def records_vitals():
    charts, rows = vitals_trend(records.vitals_series(current_user.id))
    return _page("patients/records/vitals.html", ("vitals", "allergy"), view="patient.vitals", charts=charts,
                 rows=rows)


VISIT = ("encounter", "diagnosis", "prescription", "vitals", "allergy")


@bp.route("/records/visits/<int:encounter_id>")
def record_visit(encounter_id: int):
    encounter = _own_signed_encounter(encounter_id)
    versions = [v for v in records.encounter_versions(encounter) if v.signed]
    return _page("patients/records/visit.html", VISIT, view="patient.visit", encounter=encounter,
                 versions=versions, current=versions[-1],
                 visit_prescriptions=[(encounter, rx) for rx in encounter.prescriptions])


def _printable(encounter: Encounter, template: str, categories: tuple[str, ...], title: str, view: str):
    doctor = get_doctor(encounter.doctor_id)
    return _page(template, categories, view=view, encounter=encounter, document_title=title,
                 licence=doctor.licence_number if doctor else None, printed_at=utcnow())


@bp.route("/records/visits/<int:encounter_id>/summary")
def record_print_summary(encounter_id: int):
    return _printable(_own_signed_encounter(encounter_id), "patients/records/print_summary.html", VISIT,
                      "Visit summary", "patient.print_summary")


@bp.route("/records/visits/<int:encounter_id>/prescription")
def record_print_prescription(encounter_id: int):
    encounter = _own_signed_encounter(encounter_id)
    if not encounter.prescriptions:
        abort(404)
    return _printable(encounter, "patients/records/print_prescription.html", ("prescription", "diagnosis", "allergy"),
                      "Prescription", "patient.print_prescription")
