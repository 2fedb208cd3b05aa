"""`flask audit verify`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.audit.chain import verify

audit_cli = click.Group("audit", help="The audit trail.")


@audit_cli.command("verify")
@with_appcontext
def verify_command() -> None:
    """Check the hash chain; exit 1 and name the first bad row if it was tampered with."""
    result = verify()
    click.echo(str(result))
    if not result.intact:
        raise SystemExit(1)
