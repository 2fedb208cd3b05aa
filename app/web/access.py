"""The pages' door to the access policy (`app.policy`): ask it, and turn a refusal into the answer the
visitor must get, audited the same way everywhere.

- `guard_blueprint(bp, area)` and `@requires(area)`: the role's workspace (anonymous visitors go to sign in).
- `authorize(verb, resource)`: a resource; the decision, or the request ends with 404 (the resource's
  existence is not confirmed) or 403 (a doctor without a care relationship gets the break-glass form).
Every refusal of a signed-in user is audited as `access.denied`: who, which route, which resource, why.
"""
from __future__ import annotations

from functools import wraps
from typing import NoReturn

from flask import Blueprint, abort, make_response, render_template, request
from flask_login import current_user

from app.policy import Actor, Decision, Kind, Resource, Verb, decide


def current_actor() -> Actor:
    return Actor(current_user._get_current_object())


def authorize(verb: Verb, resource: Resource, *, category: str | None = None) -> Decision:
    """The policy's decision for the signed-in user, or the request ends (see the module's docstring)."""
    decision = decide(current_actor(), verb, resource)
    if not decision.allowed:
        refuse(decision, verb, resource, category=category)
    return decision


def refuse(decision: Decision, verb: Verb, resource: Resource, *, category: str | None = None) -> NoReturn:
    """End the request with the refusal's status, audited; nothing else of the request is saved (see
    `app.web.unit_of_work`): the audit row is written after the rollback."""
    from app.audit.denials import record_denial
    from app.extensions import login_manager

    if not current_user.is_authenticated:
        if resource.kind is Kind.AREA:
            abort(login_manager.unauthorized())
        abort(decision.status)
    record_denial(decision, verb, resource, category=category)
    if decision.offers_break_glass:
        from app.accounts.models import User
        from app.extensions import db
        from app.policy import BREAK_GLASS_MINUTES
        from app.records.forms import BreakGlassForm

        patient = db.session.get(User, resource.patient_id)
        abort(make_response(render_template("doctors/records/break_glass.html", patient=patient,
                                            form=BreakGlassForm(), minutes=BREAK_GLASS_MINUTES), 403))
    abort(decision.status)


def may(area: str) -> bool:
    """For templates: may the signed-in user work in `area` (e.g. "billing_desk")? Offers only what the
    policy will allow."""
    return decide(current_actor(), Verb.WRITE, Resource.area_of(area)).allowed


def guard_blueprint(bp: Blueprint, area: str) -> None:
    """Every view of `bp` is in `area` (see `app.policy.AREAS`)."""
    def enter() -> None:
        authorize(Verb.READ, Resource.area_of(area))

    bp.before_request(enter)


def requires(area: str):
    """Decorate a view that needs `area` on top of its blueprint's (e.g. the billing desk, refund decisions)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            authorize(Verb.WRITE, Resource.area_of(area))
            return view(*args, **kwargs)

        return wrapped

    return decorator
