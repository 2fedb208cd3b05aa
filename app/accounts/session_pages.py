"""Your sessions: every signed-in person sees where and when they are signed in, and ends one or all the others;
the warning dialog's "Stay signed in"; and the emailed link that ends a session begun from a new browser (no
sign-in needed: the person it warns may have lost their password)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, request, url_for
from flask_login import current_user

from app.accounts import sessions
from app.timeutil import utcnow
from app.web.access import guard_blueprint
from app.web.rendering import redirect_to, render, safe_next

bp = Blueprint("sessions", __name__)
guard_blueprint(bp, "account")
link_bp = Blueprint("session_link", __name__)


@bp.app_context_processor
def session_timer_context() -> dict:
    return {"session_timer": session_timer}


def session_timer() -> dict | None:
    """What the idle-timeout warning needs to know on this page, if a session is signed in."""
    live = sessions.current_session()
    if live is None or not current_user.is_authenticated:
        return None
    ends = sessions.deadline(current_user, live)
    return {"remaining": max(0, int((ends - utcnow()).total_seconds())),
            "idle_minutes": int(sessions.idle_limit(current_user).total_seconds() // 60),
            "lifetime": ends == live.created_at + sessions.max_lifetime()}


@bp.after_app_request
def tell_the_time_left(response):
    """Every answer of a signed-in session says how long it has left, so that the page's warning follows the
    requests HTMX makes (the dashboard's polling does not extend it)."""
    timer = session_timer() if sessions.current_session() is not None else None
    if timer is not None:
        response.headers["HMS-Session-Remaining"] = str(timer["remaining"])
    return response


def _back() -> str:
    return safe_next(request.form.get("next"), url_for("sessions.index"))


@bp.get("/account/sessions")
def index():
    return render("accounts/sessions.html",
                  sessions=sessions.live_sessions(current_user, sessions.current_session()))


@bp.post("/account/sessions/<int:session_id>/end")
def end(session_id: int):
    ended = sessions.end_one_session(current_user, session_id, sessions.current_session())
    if ended is None:
        abort(404)
    flash(f"The session of {ended.browser or 'that browser'} has ended.", "success")
    return redirect_to(_back())


@bp.post("/account/sessions/end-others")
def end_others():
    count = sessions.end_other_sessions(current_user, sessions.current_session())
    flash("Every other session has ended." if count else "You had no other session.", "success")
    return redirect_to(_back())


@bp.post("/account/session/keep-alive")
def keep_alive():
    """The warning dialog's "Stay signed in": activity now; answers the seconds left."""
    live = sessions.current_session()
    sessions.keep_alive(live)
    remaining = (sessions.deadline(current_user, live) - utcnow()).total_seconds()
    return jsonify(remaining_seconds=max(0, int(remaining)))


@link_bp.route("/account/sessions/end/<token>", methods=["GET", "POST"])
def end_by_link(token: str):
    live = sessions.session_of_link(token)
    if live is None:
        return render("accounts/end_session_link.html", state="unknown", status=404)
    if request.method == "GET":
        return render("accounts/end_session_link.html", state="open" if sessions.is_open(live) else "over",
                      live=live)
    ended = sessions.end_by_link(live)
    return render("accounts/end_session_link.html", state="ended" if ended else "over", live=live)
