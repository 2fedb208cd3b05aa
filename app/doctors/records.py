"""The doctor's medical records (routes of the doctors blueprint): the encounter of a visit (notes, vitals,
ICD-10 diagnoses, prescriptions; sign; amend), the patient's chart (allergies, visit history with every
version) and break-glass access.

Every route asks the access policy (`app.policy`, through `authorize`). Reading is audited once per request
with `record_read`; each change is audited by the event of its service. Only the appointment's doctor writes
its encounter and reads its drafts; another doctor with access (or a break-glass grant) reads it once signed.
"""
from __future__ import annotations

from functools import wraps

from flask import abort, flash, make_response, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.models import Role, User
from app.accounts.queries import find_patients, patients_in_care_of
from app.doctors.views import bp
from app.extensions import db
from app.policy import BREAK_GLASS_MINUTES, Resource, Verb
from app.records import icd10
from app.records import services as records
from app.records.forms import (AllergyForm, AmendForm, BreakGlassForm, DiagnosisForm, NotesForm, PrescriptionForm,
                               VitalsForm)
from app.records.models import Diagnosis, Encounter, Prescription, Severity, VITAL_COLUMNS
from app.timeutil import to_clinic_time
from app.web.access import authorize
from app.web.rendering import failure, is_htmx, redirect_to, render

ENCOUNTER_READ = ["encounter", "vitals", "diagnosis", "prescription", "allergy"]


@bp.app_template_filter("localdate")
def localdate(value) -> str:
    """A UTC instant as the clinic's calendar day, e.g. 23 Nov 2026."""
    return to_clinic_time(value).strftime("%d %b %Y") if value else ""


def _locked(error: Exception) -> Response:
    db.session.rollback()
    return failure(409, "This encounter cannot be changed", str(error))


def _me() -> User:
    return current_user._get_current_object()


def _patient(patient_id: int) -> User:
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role is not Role.PATIENT:
        abort(404)
    return patient


@bp.before_request
def _warm_icd10_index() -> None:
    """Build the ICD-10 index in the background on a doctor's first page, before the first search."""
    icd10.warm()


class EncounterPage:
    """What the encounter templates ask: the forms, whether the doctor may write, the history."""

    def __init__(self, encounter: Encounter, **forms):
        self.encounter = encounter
        self.writable = not encounter.signed and encounter.appointment.doctor_id == current_user.id
        self.can_amend = (encounter.signed and encounter.appointment.doctor_id == current_user.id
                          and records.latest_version(encounter.appointment_id).id == encounter.id)
        self.superseded_by = records.superseding(encounter) if encounter.signed else None
        self.notes_form = forms.get("notes_form") or NotesForm(formdata=None, obj=encounter)
        vitals = {name: getattr(encounter, name) for name in VITAL_COLUMNS}
        self.vitals_form = forms.get("vitals_form") or VitalsForm(formdata=None, data={
            name: "" if value is None else str(value) for name, value in vitals.items()})
        self.diagnosis_form = forms.get("diagnosis_form") or DiagnosisForm(formdata=None)
        self.prescription_form = forms.get("prescription_form") or PrescriptionForm(formdata=None)
        self.amend_form = forms.get("amend_form") or AmendForm(formdata=None)
        self.allergy_warning: list[records.AllergyMatch] = forms.get("allergy_warning") or []
        self.acknowledged: set[int] = forms.get("acknowledged") or set()
        self.sign_error: str | None = forms.get("sign_error")
        self.saved: str | None = forms.get("saved")

    @property
    def versions(self) -> list[Encounter]:
        return records.encounter_versions(self.encounter)

    def url(self, name: str, **kwargs) -> str:
        return url_for(f"doctors.{name}", encounter_id=self.encounter.id, **kwargs)


def _encounter_for_reading(encounter_id: int):
    encounter = records.get_encounter(encounter_id)
    decision = authorize(Verb.READ, Resource.encounter(encounter_id, encounter), category="encounter")
    return encounter, decision


def writes_encounter(view=None, *, amends: bool = False):
    """A change to an encounter: its author, the appointment's doctor, only (the policy answers 404 to anyone
    else), the row locked, and a signed
    encounter refused with 409 before the view runs (except for an amendment, which starts from one)."""
    if view is None:
        return lambda v: writes_encounter(v, amends=amends)

    @wraps(view)
    def wrapped(encounter_id: int, *args, **kwargs):
        encounter = records.get_encounter(encounter_id, for_update=True)
        authorize(Verb.WRITE, Resource.encounter(encounter_id, encounter), category="encounter")
        if encounter.signed and not amends:
            return _locked(records.RecordLocked(
                f"Version {encounter.version} of this encounter is signed and cannot be changed. Amend it instead."))
        try:
            return view(encounter, *args, **kwargs)
        except records.RecordLocked as error:
            return _locked(error)

    return wrapped


def _fragment(template: str, encounter: Encounter, *, status: int = 200, **forms) -> Response:
    page = EncounterPage(encounter, **forms)
    allergies = records.allergies(encounter.patient_id)
    if is_htmx():
        return make_response(render_template(template, page=page, e=encounter, allergies=allergies), status)
    if status >= 400:
        return make_response(render_template("doctors/records/encounter.html", page=page, e=encounter,
                                             allergies=allergies, patient=encounter.patient), status)
    return redirect_to(url_for("doctors.encounter", encounter_id=encounter.id))


# --- opening and reading -------------------------------------------------------------------------------

@bp.route("/appointments/<int:appointment_id>/encounter", methods=["POST"])
def open_encounter(appointment_id: int):
    """From the appointment row: the visit's encounter (the latest version), created as a draft if needed."""
    appointment = records.lock_appointment(appointment_id)
    authorize(Verb.WRITE, Resource.appointment(appointment_id, appointment))
    try:
        encounter, _created = records.open_encounter(_me(), appointment)
    except records.RecordLocked as error:
        return _locked(error)
    return redirect_to(url_for("doctors.encounter", encounter_id=encounter.id))


@bp.route("/encounters/<int:encounter_id>")
def encounter(encounter_id: int):
    encounter, decision = _encounter_for_reading(encounter_id)
    page = EncounterPage(encounter)
    allergies = records.allergies(encounter.patient_id)
    records.record_read(encounter.patient_id, ENCOUNTER_READ, view="doctor.encounter", entity_type="encounter",
                        entity_id=encounter.id, decision=decision)
    return render("doctors/records/encounter.html", fragment="doctors/records/_encounter_body.html", page=page,
                  e=encounter, allergies=allergies, patient=encounter.patient, decision=decision)


@bp.route("/icd10")
def icd10_search():
    """Reference data, not clinical data: no audit. Answers the results list (a fragment) for HTMX."""
    query = request.args.get("q", "")
    encounter_id = request.args.get("encounter", type=int)
    results = icd10.search(query)
    return render("doctors/records/_icd_results.html", fragment="doctors/records/_icd_results.html",
                  results=results, query=query, encounter_id=encounter_id, min_query=icd10.MIN_QUERY)


# --- writing a draft -------------------------------------------------------------------------------------

@bp.route("/encounters/<int:encounter_id>/notes", methods=["POST"])
@writes_encounter
def save_notes(encounter: Encounter):
    form = NotesForm()
    if not form.validate_on_submit():
        return _fragment("doctors/records/_notes.html", encounter, status=422, notes_form=form)
    try:
        records.save_notes(encounter, **{name: form[name].data for name in
                                         ("chief_complaint", "subjective", "objective", "assessment", "plan")})
    except records.InvalidInput as error:
        for name, message in error.errors.items():
            form[name].errors = [message]
        return _fragment("doctors/records/_notes.html", encounter, status=422, notes_form=form)
    return _fragment("doctors/records/_notes.html", encounter, saved="Draft saved.")


@bp.route("/encounters/<int:encounter_id>/vitals", methods=["POST"])
@writes_encounter
def save_vitals(encounter: Encounter):
    form = VitalsForm()
    if not form.validate_on_submit():
        return _fragment("doctors/records/_vitals.html", encounter, status=422, vitals_form=form)
    try:
        records.save_vitals(encounter, {name: (form[name].data or "").strip() or None for name in VITAL_COLUMNS})
    except records.InvalidInput as error:
        db.session.rollback()
        for name, message in error.errors.items():
            form[name].errors = [message]
        encounter = records.get_encounter(encounter.id)
        return _fragment("doctors/records/_vitals.html", encounter, status=422, vitals_form=form)
    return _fragment("doctors/records/_vitals.html", encounter, saved="Vitals saved.")


@bp.route("/encounters/<int:encounter_id>/diagnoses", methods=["POST"])
@writes_encounter
def add_diagnosis(encounter: Encounter):
    form = DiagnosisForm()
    if form.validate_on_submit():
        try:
            records.add_diagnosis(encounter, form.code.data, primary=form.primary.data)
        except records.InvalidInput as error:
            form.code.errors = [error.errors["code"]]
        else:
            return _fragment("doctors/records/_diagnoses.html", encounter, saved="Diagnosis added.")
    return _fragment("doctors/records/_diagnoses.html", encounter, status=422, diagnosis_form=form)


def _child(model, encounter: Encounter, child_id: int):
    child = db.session.get(model, child_id)
    if child is None or child.encounter_id != encounter.id:
        abort(404)
    return child


@bp.route("/encounters/<int:encounter_id>/diagnoses/<int:diagnosis_id>/delete", methods=["POST"])
@writes_encounter
def remove_diagnosis(encounter: Encounter, diagnosis_id: int):
    records.remove_diagnosis(encounter, _child(Diagnosis, encounter, diagnosis_id))
    return _fragment("doctors/records/_diagnoses.html", encounter, saved="Diagnosis removed.")


@bp.route("/encounters/<int:encounter_id>/diagnoses/<int:diagnosis_id>/primary", methods=["POST"])
@writes_encounter
def primary_diagnosis(encounter: Encounter, diagnosis_id: int):
    records.make_primary(encounter, _child(Diagnosis, encounter, diagnosis_id))
    return _fragment("doctors/records/_diagnoses.html", encounter, saved="Primary diagnosis changed.")


@bp.route("/encounters/<int:encounter_id>/prescriptions", methods=["POST"])
@writes_encounter
def add_prescription(encounter: Encounter):
    form = PrescriptionForm()
    if not form.validate_on_submit():
        return _fragment("doctors/records/_prescriptions.html", encounter, status=422, prescription_form=form)
    acknowledged = {int(v) for v in request.form.getlist("acknowledge_allergy") if v.isdigit()}
    data = records.PrescriptionInput(**{name: form[name].data for name in (
        "drug_name", "strength", "form", "dose", "route", "frequency", "duration_days", "quantity", "refills")},
        instructions=form.instructions.data or "")
    try:
        records.add_prescription(encounter, data, _me(), acknowledged_allergy_ids=acknowledged)
    except records.AllergyWarning as warning:
        return _fragment("doctors/records/_prescriptions.html", encounter, status=422, prescription_form=form,
                         allergy_warning=warning.matches, acknowledged=acknowledged)
    return _fragment("doctors/records/_prescriptions.html", encounter, saved="Prescription added.")


@bp.route("/encounters/<int:encounter_id>/prescriptions/<int:prescription_id>/delete", methods=["POST"])
@writes_encounter
def remove_prescription(encounter: Encounter, prescription_id: int):
    records.remove_prescription(encounter, _child(Prescription, encounter, prescription_id))
    return _fragment("doctors/records/_prescriptions.html", encounter, saved="Prescription removed.")


@bp.route("/encounters/<int:encounter_id>/sign", methods=["POST"])
@writes_encounter
def sign_encounter(encounter: Encounter):
    try:
        records.sign(encounter, _me())
    except records.InvalidInput as error:
        db.session.rollback()
        encounter = records.get_encounter(encounter.id)
        page = EncounterPage(encounter, sign_error=" ".join(error.errors.values()))
        return make_response(render_template("doctors/records/encounter.html", page=page, e=encounter,
                                             allergies=records.allergies(encounter.patient_id),
                                             patient=encounter.patient), 422)
    flash("Encounter signed. It can no longer be edited; corrections are made as amendments.", "success")
    return redirect_to(url_for("doctors.encounter", encounter_id=encounter.id))


@bp.route("/encounters/<int:encounter_id>/amend", methods=["POST"])
@writes_encounter(amends=True)
def amend_encounter(encounter: Encounter):
    form = AmendForm()
    if form.validate_on_submit():
        try:
            amendment = records.amend(encounter, _me(), form.reason.data)
        except records.InvalidInput as error:
            form.reason.errors = [error.errors["reason"]]
        else:
            flash(f"Version {amendment.version} opened as a draft. Sign it when the correction is done.", "success")
            return redirect_to(url_for("doctors.encounter", encounter_id=amendment.id))
    page = EncounterPage(encounter, amend_form=form)
    return make_response(render_template("doctors/records/encounter.html", page=page, e=encounter,
                                         allergies=records.allergies(encounter.patient_id),
                                         patient=encounter.patient), 422)


# --- the patient's chart, allergies, break-glass -----------------------------------------------------------

@bp.route("/patients")
def patients():
    """The doctor's patients (those in their care, whose records they may read), and a name search over all
    patients (names only: the record itself needs a care relationship or break-glass)."""
    query = (request.args.get("q") or "").strip()
    own = patients_in_care_of(current_user.id)
    found = find_patients(query)
    own_ids = {p.id for p in own}
    return render("doctors/records/patients.html", fragment="doctors/records/_patient_search.html", own=own,
                  found=found, query=query, own_ids=own_ids)


@bp.route("/patients/<int:patient_id>/chart")
def chart(patient_id: int):
    decision = authorize(Verb.READ, Resource.record(patient_id), category="encounter")
    patient = _patient(patient_id)
    visits = records.current_encounters(patient_id, drafts_of=current_user.id)
    history = {e.appointment_id: records.encounter_versions(e) for e in visits if e.version > 1}
    allergies = records.allergies(patient_id)
    records.record_read(patient_id, ["encounter", "allergy", "vitals", "diagnosis", "prescription"],
                        view="doctor.chart", decision=decision)
    return render("doctors/records/chart.html", patient=patient, visits=visits, history=history,
                  allergies=allergies, decision=decision, allergy_form=AllergyForm(formdata=None),
                  vitals=records.vitals_series(patient_id), severities=list(Severity))


@bp.route("/patients/<int:patient_id>/allergies", methods=["POST"])
def add_allergy(patient_id: int):
    authorize(Verb.WRITE, Resource.record(patient_id), category="allergy")
    patient = _patient(patient_id)
    form = AllergyForm()
    if form.validate_on_submit():
        try:
            records.record_allergy(patient_id, substance=form.substance.data, reaction=form.reaction.data,
                                   severity=Severity(form.severity.data), by=_me())
        except records.InvalidInput as error:
            form.substance.errors = [error.errors["substance"]]
        else:
            if not is_htmx():
                flash("Allergy recorded.", "success")
                return redirect_to(url_for("doctors.chart", patient_id=patient_id))
            return render("doctors/records/_allergies.html", patient=patient, allergies=records.allergies(patient_id),
                          allergy_form=AllergyForm(formdata=None), saved="Allergy recorded.")
    template = "doctors/records/_allergies.html" if is_htmx() else "errors/error.html"
    if template.startswith("errors"):
        return failure(422, "Check the allergy", " ".join(e for errs in form.errors.values() for e in errs))
    return render(template, patient=patient, allergies=records.allergies(patient_id), allergy_form=form, status=422)


@bp.route("/patients/<int:patient_id>/allergies/<int:allergy_id>/delete", methods=["POST"])
def remove_allergy(patient_id: int, allergy_id: int):
    authorize(Verb.WRITE, Resource.record(patient_id), category="allergy")
    patient = _patient(patient_id)
    allergy = records.active_allergy(patient_id, allergy_id, for_update=True)
    if allergy is None:
        abort(404)
    records.remove_allergy(allergy, by=_me())
    if not is_htmx():
        flash("Allergy removed (entered in error).", "success")
        return redirect_to(url_for("doctors.chart", patient_id=patient_id))
    return render("doctors/records/_allergies.html", patient=patient, allergies=records.allergies(patient_id),
                  allergy_form=AllergyForm(formdata=None), saved="Allergy removed.")


@bp.route("/patients/<int:patient_id>/break-glass", methods=["GET", "POST"])
def break_glass(patient_id: int):
    patient = _patient(patient_id)
    form = BreakGlassForm()
    if not form.validate_on_submit():
        return render("doctors/records/break_glass.html", patient=patient, form=form, minutes=BREAK_GLASS_MINUTES,
                      status=422 if form.is_submitted() else 200)
    records.grant_break_glass(_me(), patient_id, form.reason.data)
    flash(f"Emergency access to {patient.full_name}'s record for {BREAK_GLASS_MINUTES} minutes. "
          "This access is recorded and reviewed.", "warning")
    return redirect_to(url_for("doctors.chart", patient_id=patient_id))
