"""`flask notifications install-templates`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.extensions import db
from app.notifications.services import install_default_templates

notifications_cli = click.Group("notifications", help="Notification templates.")


@notifications_cli.command("install-templates")
@with_appcontext
def install_templates() -> None:
    """Add the shipped default templates that are missing; edited templates are kept."""
    added = install_default_templates()
    db.session.commit()
    click.echo(f"{added} default templates added.")
