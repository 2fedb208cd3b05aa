"""Patient self-service: home and profile."""
from __future__ import annotations

from flask import Blueprint, abort, request, url_for
from flask_login import current_user

from app.accounts.models import User
from app.accounts.services import AccountError
from app.appointments.queries import next_for_patient
from app.extensions import db
from app.accounts.sessions import current_session, live_sessions
from app.oauth.services import connected_apps
from app.patients.profile import SECTIONS
from app.policy import Resource, Verb
from app.web.access import authorize, guard_blueprint
from app.web.rendering import fragment_or_redirect, render, render_form_errors

bp = Blueprint("patients", __name__, url_prefix="/patient")
guard_blueprint(bp, "patient")


def _patient_or_404(patient_id: int, verb: Verb = Verb.READ) -> User:
    user = db.session.get(User, patient_id)
    authorize(verb, Resource.patient(patient_id, user))
    return user


def _section_or_404(key: str):
    section = SECTIONS.get(key)
    if section is None:
        abort(404)
    return section


@bp.route("/")
def home():
    return render("patients/home.html", patient=current_user, next=next_for_patient(current_user.id))


@bp.route("/<int:patient_id>/profile")
def profile(patient_id: int):
    patient = _patient_or_404(patient_id)
    return render("patients/profile.html", patient=patient, sections=SECTIONS.values(), apps=connected_apps(patient),
                  sessions=live_sessions(patient, current_session()))


@bp.route("/<int:patient_id>/profile/<key>", methods=["GET", "POST"])
def profile_section(patient_id: int, key: str):
    """GET: the section as text (HTMX: the fragment, e.g. after Cancel). POST: save the section's form."""
    patient = _patient_or_404(patient_id, Verb.READ if request.method == "GET" else Verb.WRITE)
    section = _section_or_404(key)
    context = {"patient": patient, "sections": SECTIONS.values(), "section": section}
    if request.method == "GET":
        return render("patients/profile.html", fragment="patients/_profile_section.html", **context)
    form = section.form()
    if not form.validate_on_submit():
        return render_form_errors("patients/profile.html", fragment="patients/_profile_section.html",
                                  editing=section.key, form=form, **context)
    try:
        section.save(patient, form)
    except AccountError as error:
        form[error.field].errors.append(str(error))
        return render_form_errors("patients/profile.html", fragment="patients/_profile_section.html",
                                  editing=section.key, form=form, **context)
    return fragment_or_redirect("patients/_profile_section.html",
                                url_for("patients.profile", patient_id=patient.id),
                                flash_message=f"{section.title} saved.", saved=True, **context)


@bp.route("/<int:patient_id>/profile/<key>/edit")
def edit_profile_section(patient_id: int, key: str):
    patient = _patient_or_404(patient_id)
    section = _section_or_404(key)
    form = section.form(data=section.values(patient))
    return render("patients/profile.html", fragment="patients/_profile_section.html", patient=patient,
                  sections=SECTIONS.values(), section=section, editing=section.key, form=form)


from app.patients import appointments  # noqa: E402,F401  (registers the appointment routes on bp)
from app.patients import records  # noqa: E402,F401  (registers the "My records" routes on bp)
from app.patients import bills  # noqa: E402,F401  (registers the bill routes on bp)
from app.patients import access_report  # noqa: E402,F401  (registers "Who has seen my record" on bp)
