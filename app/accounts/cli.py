"""`flask users …`: staff accounts from the command line."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.accounts.models import STAFF_ROLES, Role
from app.accounts.passwords import password_problem
from app.accounts.services import AccountError, create_user
from app.extensions import db
from app.accounts.phones import normalize_phone

users_cli = click.Group("users", help="Manage user accounts.")


def _validate_password(ctx, param, value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise click.BadParameter(problem)
    return value


@users_cli.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in STAFF_ROLES]),
              help="Staff role. Patients sign up on the website.")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True, help="Full name.")
@click.option("--phone")
@click.password_option(callback=_validate_password, help="Prompted for when not given.")
@with_appcontext
def create(role: str, email: str, full_name: str, phone: str | None, password: str) -> None:
    """Create a staff account (doctor, clerk or admin)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise click.BadParameter(str(error), param_hint="--email") from None
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError:
            raise click.BadParameter("not a valid phone number", param_hint="--phone") from None
    if len(full_name.strip()) == 0 or len(full_name) > 120:
        raise click.BadParameter("give a name of 1 to 120 characters", param_hint="--name")
    try:
        user = create_user(role=Role(role), email=email, full_name=full_name, password=password, phone=phone)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created {user.role.label.lower()} {user.full_name} <{user.email}> (id {user.id}).")
