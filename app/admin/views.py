"""Administration: overview, notification templates and log, audit trail."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, request, stream_with_context, url_for
from flask_login import current_user

from app.accounts.services import accounts_by_role, recent_accounts
from app.admin.forms import AuditFilterForm, NotificationFilterForm, TemplateForm
from app.audit.queries import AuditFilter, count_rows, csv_rows, flagged, json_rows, known_actions
from app.events.outbox import emit
from app.extensions import db
from app.notifications.catalog import EVENTS
from app.notifications.models import NotificationTemplate
from app.notifications.rendering import TemplateProblem
from app.notifications.services import check_template, notification_log, templates_by_event, update_template
from app.web.access import guard_blueprint
from app.web.pagination import paginate
from app.timeutil import utcnow
from app.web.rendering import failure, redirect_to, render, render_form_errors

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, "admin")

PER_PAGE = 50


@bp.route("/")
def home():
    return render("admin/home.html", counts=accounts_by_role(), recent=recent_accounts(limit=10))


# --- notification templates -----------------------------------------------------------------------

@bp.route("/templates")
def templates():
    return render("admin/templates.html", groups=templates_by_event())


def _template_or_404(template_id: int) -> NotificationTemplate:
    template = db.session.get(NotificationTemplate, template_id)
    if template is None:
        abort(404)
    return template


def _form_values(form: TemplateForm) -> dict:
    """What the admin typed; a field missing from the request (e.g. a preview sent without it) is empty."""
    return {"subject": (form.subject.data or "").strip() if "subject" in form else None,
            "body_text": form.body_text.data or "",
            "body_html": form.body_html.data if "body_html" in form else None}


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
def edit_template(template_id: int):
    template = _template_or_404(template_id)
    event = EVENTS[template.event_type]
    form = TemplateForm(obj=template, channel=template.channel)
    context = {"template": template, "event": event, "form": form}
    if not form.validate_on_submit():
        if form.is_submitted():
            return render_form_errors("admin/template_edit.html", **context)
        return render("admin/template_edit.html", preview=_preview(event, _form_values(form)), **context)
    try:
        update_template(template, active=form.active.data, editor=current_user, **_form_values(form))
    except TemplateProblem as problem:
        form[problem.field].errors.append(f"This template does not render: {problem}")
        return render_form_errors("admin/template_edit.html", **context)
    flash(f"Template “{event.title}” ({template.channel.label}) saved.", "success")
    return redirect_to(url_for("admin.templates"))


def _preview(event, values: dict):
    try:
        return {"rendered": check_template(event, **values)}
    except TemplateProblem as problem:
        return {"error": str(problem), "field": problem.field}


@bp.route("/templates/<int:template_id>/preview", methods=["POST"])
def preview_template(template_id: int):
    """The sample rendering of what is in the form now (HTMX, as the admin types)."""
    template = _template_or_404(template_id)
    form = TemplateForm(channel=template.channel)
    return render("admin/_template_preview.html", preview=_preview(EVENTS[template.event_type], _form_values(form)),
                  template=template)


# --- notification log -----------------------------------------------------------------------------

@bp.route("/notifications")
def notifications():
    form = NotificationFilterForm(request.args)
    valid = form.validate()
    query = notification_log(status=form.status.data, channel=form.channel.data,
                             recipient=form.recipient.data) if valid else notification_log(
        status=None, channel=None, recipient=None)
    page = paginate(query, per_page=PER_PAGE)
    return render("admin/notifications.html", fragment="admin/_notifications_table.html", form=form, page=page,
                  status=200 if valid else 422)


# --- audit trail ----------------------------------------------------------------------------------

def _audit_filter(form: AuditFilterForm) -> AuditFilter:
    return AuditFilter(actor_id=form.actor_id.data, patient_id=form.patient_id.data,
                       action=(form.action.data or "").strip() or None,
                       entity_type=(form.entity_type.data or "").strip() or None,
                       entity_id=(form.entity_id.data or "").strip() or None,
                       date_from=form.date_from.data, date_to=form.date_to.data,
                       break_glass=bool(form.break_glass.data))


@bp.route("/audit")
def audit():
    form = AuditFilterForm(request.args)
    valid = form.validate()
    audit_filter = _audit_filter(form) if valid else AuditFilter()
    page = paginate(audit_filter.select(), per_page=PER_PAGE)
    return render("admin/audit.html", fragment="admin/_audit_table.html", form=form, page=page,
                  actions=known_actions(), audit_flagged=flagged, status=200 if valid else 422)


# Exports of the audit page's filters (the same form: actor, patient, action, entity, break-glass, and the days
# from/to in the clinic's zone), streamed from the database in batches. A range holding more than
# HMS_AUDIT_EXPORT_MAX_ROWS rows is refused with the count, so one click cannot tie up a worker for minutes:
# narrow the dates, or read it through the API's cursor (`GET /api/v1/audit-events`).
EXPORTS = {"csv": ("text/csv", csv_rows), "json": ("application/json", json_rows)}


def _export(kind: str) -> Response:
    form = AuditFilterForm(request.args)
    if not form.validate():
        return redirect(url_for("admin.audit", **request.args), code=303)  # the page shows the messages
    audit_filter = _audit_filter(form)
    limit = current_app.config["HMS_AUDIT_EXPORT_MAX_ROWS"]
    if (total := count_rows(audit_filter)) > limit:
        return failure(422, "Too many entries to export",
                       f"These filters match {total:,} audit entries; an export holds at most {limit:,}. "
                       "Choose a shorter date range or more filters.")
    emit("audit.exported", "audit_log", "export", {"filters": audit_filter.as_data(), "format": kind, "rows": total})
    mimetype, rows = EXPORTS[kind]
    chunks = rows(audit_filter) if kind == "csv" else rows(audit_filter, exported_at=utcnow())
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename=audit.{kind}"
    return response


@bp.route("/audit.csv")
def audit_csv():
    return _export("csv")


@bp.route("/audit.json")
def audit_json():
    return _export("json")


from app.admin import clients, clinic, staff  # noqa: E402,F401  (register the client, department, doctor, staff routes)
