""""Who has seen my record": the patient's own access report from the audit trail (`app.audit.access_report`),
filtered by dates (the clinic's zone), role and emergency access, paged, and downloadable as CSV with the same
filters.

Routes of the patients blueprint. The access policy decides (`Resource.access_report`: the patient alone); the
report is always the signed-in patient's own, so no other patient's id is ever named in its address.
"""
from __future__ import annotations

from flask import Response, redirect, request, stream_with_context, url_for
from flask_login import current_user

from app.accounts.models import Role
from app.audit.access_report import AccessFilter, csv_rows, describe
from app.patients.forms import AccessReportFilterForm
from app.patients.views import bp
from app.policy import Resource, Verb
from app.timeutil import clinic_today
from app.web.access import authorize
from app.web.pagination import paginate
from app.web.rendering import render

PER_PAGE = 25


def _filter(form: AccessReportFilterForm) -> AccessFilter:
    return AccessFilter(date_from=form.date_from.data, date_to=form.date_to.data,
                        role=Role(form.role.data) if form.role.data else None, break_glass=bool(form.break_glass.data))


def _page(form: AccessReportFilterForm, access_filter: AccessFilter, status: int):
    page = paginate(access_filter.select(current_user.id), per_page=PER_PAGE)
    return render("patients/access_report.html", fragment="patients/_access_report.html", form=form, page=page,
                  rows=describe(current_user.id, page.items), filtered=access_filter != AccessFilter(), status=status)


@bp.route("/access-report")
def access_report():
    authorize(Verb.READ, Resource.access_report(current_user.id))
    form = AccessReportFilterForm(request.args)
    if not form.validate():
        return _page(form, AccessFilter(), 422)
    return _page(form, _filter(form), 200)


@bp.route("/access-report.csv")
def access_report_csv():
    """The filtered rows as CSV; filters that do not validate lead to the page, which shows their messages."""
    authorize(Verb.READ, Resource.access_report(current_user.id))
    form = AccessReportFilterForm(request.args)
    if not form.validate():
        return redirect(url_for("patients.access_report", **request.args), code=303)
    response = Response(stream_with_context(csv_rows(current_user.id, _filter(form))), mimetype="text/csv")
    filename = f"record-access-{clinic_today().isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
