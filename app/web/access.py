"""Who may see what: the role guard and the ownership checks, in one place; every refusal is audited."""
from __future__ import annotations

from functools import wraps
from typing import NoReturn

from flask import Blueprint, abort, request
from flask_login import current_user

from app.accounts.models import Role


def _check_roles(roles: tuple[Role, ...]) -> None:
    if not current_user.is_authenticated:
        from app.extensions import login_manager

        abort(login_manager.unauthorized())
    if current_user.role not in roles:
        deny(403, "route", request.path, reason=f"role_{current_user.role.value}")


def deny(status: int, resource: str, resource_id: object, *, reason: str, patient_id: int | None = None) -> NoReturn:
    """Refuse the request with `status` (404 where the resource's existence must not be confirmed) and audit
    the refusal as `access.denied`: who, which route, which resource, why. The refusal is committed on its own;
    nothing else of the request is saved."""
    from app.events.outbox import emit
    from app.extensions import db

    if current_user.is_authenticated:
        db.session.rollback()
        emit("access.denied", resource, resource_id if resource_id is not None else "-",
             {"endpoint": request.endpoint, "method": request.method, "path": request.path[:500], "status": status,
              "reason": reason}, patient_id=patient_id, outcome="denied")
        db.session.commit()
    abort(status)


def role_required(*roles: Role):
    """Decorate a view: anonymous users go to the login page, other roles get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            _check_roles(roles)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def guard_blueprint(bp: Blueprint, *roles: Role) -> None:
    """Every view of `bp` is for `roles` only."""
    bp.before_request(lambda: _check_roles(roles))


def require_own(resource: str, resource_id: object, patient_user_id: int | None) -> None:
    """Ownership: a patient reaches only their own `resource` (a missing one is `patient_user_id=None`). Anything
    else answers 404, not 403, so that another patient's resource does not even confirm it exists; the attempt
    is audited with the owner as the patient concerned."""
    if patient_user_id is None:
        deny(404, resource, resource_id, reason="not_found")
    if current_user.role is not Role.PATIENT or current_user.id != patient_user_id:
        deny(404, resource, resource_id, reason="not_own", patient_id=patient_user_id)
