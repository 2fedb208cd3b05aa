"""Who may see what: the role guard and the ownership checks, in one place."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort
from flask_login import current_user

from app.accounts.models import Role


def _check_roles(roles: tuple[Role, ...]) -> None:
    if not current_user.is_authenticated:
        from app.extensions import login_manager

        abort(login_manager.unauthorized())
    if current_user.role not in roles:
        abort(403)


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


def patient_visible_to_current_user(patient_user_id: int) -> bool:
    """Ownership: a patient sees only themself. Staff access rules arrive with their features."""
    if current_user.role is Role.PATIENT:
        return current_user.id == patient_user_id
    return False


def require_patient_access(patient_user_id: int) -> None:
    """404, not 403, so that another patient's record does not even confirm it exists."""
    if not patient_visible_to_current_user(patient_user_id):
        abort(404)
