"""Billing reports for clerks and admins: one page per report with a date range, a chart and a CSV export.

Its own blueprint (under /billing/reports) because the billing blueprint is for clerks only and admins read
these too. The filter is a GET form: HTMX swaps the report body in place and pushes the URL, so a filtered
report can be bookmarked and the CSV link carries the same range.
"""
from __future__ import annotations

from flask import Blueprint, abort, make_response, request, url_for

from app.billing.reports import REPORTS, Period, Report, default_period
from app.clerks.forms import PeriodForm
from app.web.access import guard_blueprint
from app.web.rendering import redirect_to, render

bp = Blueprint("reports", __name__, url_prefix="/billing/reports")
guard_blueprint(bp, "billing")


def _report_or_404(key: str) -> Report:
    report = REPORTS.get(key)
    if report is None:
        abort(404)
    return report


def _period(report: Report) -> tuple[PeriodForm, Period | None]:
    form = PeriodForm(request.args)
    return form, form.period(default_period(report))


@bp.route("/")
def index():
    return redirect_to(url_for("reports.report", key=next(iter(REPORTS))))


@bp.route("/<key>")
def report(key: str):
    report = _report_or_404(key)
    form, period = _period(report)
    context = {"reports": REPORTS.values(), "report": report, "form": form, "period": period}
    if period is None:
        return render("billing/reports/report.html", fragment="billing/reports/_body.html", status=422, **context)
    table = report.build(period)
    csv_url = url_for("reports.export", key=key, start=period.start.isoformat(), end=period.end.isoformat())
    return render("billing/reports/report.html", fragment="billing/reports/_body.html", table=table,
                  chart=report.chart.spec(table), csv_url=csv_url, **context)


@bp.route("/<key>.csv")
def export(key: str):
    report = _report_or_404(key)
    form, period = _period(report)
    if period is None:
        errors = "; ".join(f"{form[name].label.text}: {' '.join(form[name].errors)}" for name in ("start", "end")
                           if form[name].errors)
        return make_response(errors, 422, {"Content-Type": "text/plain; charset=utf-8"})
    body = report.build(period).csv()
    response = make_response(body.encode("utf-8"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (f'attachment; filename="{key}_{period.start.isoformat()}'
                                               f'_{period.end.isoformat()}.csv"')
    return response
