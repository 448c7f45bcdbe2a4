"""The `nutrimatch` command line: the local stack, migrations, demo data and operator tools."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from nutrimatch.settings import REPO_ROOT, get_settings

console = Console(soft_wrap=True)
app = typer.Typer(help="nutrimatch: multi-tenant nutrition platform", no_args_is_help=True)
local_app = typer.Typer(help="The embedded local stack (PostgreSQL + replica, Redis, moto, gateway)")
db_app = typer.Typer(help="Database migrations")
app.add_typer(local_app, name="local")
app.add_typer(db_app, name="db")
auth_app = typer.Typer(help="Authentication helpers")
app.add_typer(auth_app, name="auth")

MIGRATIONS_DIR = REPO_ROOT / "sql" / "migrations"


@local_app.command("up")
def local_up() -> None:
    """Start the whole product locally and serve it until Ctrl-C."""
    from nutrimatch.local.stack import LocalStack, LocalStackError

    settings = get_settings()
    stack = LocalStack(settings)
    console.print(f"Starting the local stack in [bold]{stack.state_dir}[/] …")
    try:
        stack.start()
    except LocalStackError as error:
        console.print(f"[red]Cannot start:[/] {error}")
        raise typer.Exit(1) from error
    os.environ.update(stack.environment)
    get_settings.cache_clear()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    assert stack.gateway is not None
    base = stack.gateway.url
    console.print(f"""
[green]nutrimatch is running.[/]
  health     {base}/api/v1/health
  API docs   {base}/api/v1/docs   (OpenAPI: {base}/api/v1/openapi.json)
  PostgreSQL {stack.environment['DATABASE_ADMIN_URL']}  (replica on port {stack.ports.replica})
  Redis      {stack.environment['REDIS_URL']}
  S3/SQS     {stack.environment['AWS_ENDPOINT_URL']} (moto)
Press Ctrl-C to stop.""")
    try:
        stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("Stopping …")
        stack.stop()
        console.print("Stopped.")


@local_app.command("reset")
def local_reset(yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation")) -> None:
    """Wipe all local state (databases, Redis, uploads)."""
    from nutrimatch.local.stack import LocalStack, LocalStackError

    stack = LocalStack(get_settings())
    if not yes:
        typer.confirm(f"Delete everything under {stack.state_dir}?", abort=True)
    try:
        stack.reset()
    except LocalStackError as error:
        console.print(f"[red]Cannot reset:[/] {error}")
        raise typer.Exit(1) from error
    console.print(f"Wiped {stack.state_dir}.")


@db_app.command("migrate")
def db_migrate(directory: Path = typer.Option(MIGRATIONS_DIR, help="Directory of NNNN_name.sql files")) -> None:
    """Apply pending migrations."""
    from nutrimatch.db import admin_connect
    from nutrimatch.db.migrations import migrate

    with admin_connect() as conn:
        applied = migrate(conn, directory)
    for migration in applied:
        console.print(f"applied {migration.path.name}")
    console.print(f"{len(applied)} migration(s) applied.")


@db_app.command("status")
def db_status(directory: Path = typer.Option(MIGRATIONS_DIR)) -> None:
    """List migrations and whether each is applied."""
    from nutrimatch.db import admin_connect
    from nutrimatch.db.migrations import status

    table = Table("version", "name", "state")
    with admin_connect() as conn:
        for entry in status(conn, directory):
            state = "[red]CHANGED[/]" if entry.changed else ("applied" if entry.applied else "[yellow]pending[/]")
            table.add_row(f"{entry.migration.version:04d}", entry.migration.name, state)
    console.print(table)


@auth_app.command("token")
def auth_token(
    role: str = typer.Option(..., help="platform_admin, vendor_admin, catalog_manager, clinician, analyst, api_client"),
    vendor: str = typer.Option(None, help="Vendor slug or id (not needed for platform_admin)"),
    user: str = typer.Option("local-user", help="The token's subject"),
    ttl: int = typer.Option(3600, help="Lifetime in seconds"),
) -> None:
    """Mint a local HS256 token (for demos and tests; never for production issuers)."""
    from nutrimatch.auth.tokens import mint_local_token
    from nutrimatch.db import get_database
    from nutrimatch.routes import Role
    from nutrimatch.tenancy.vendors import find_by_slug_or_id

    try:
        chosen = Role(role)
    except ValueError as error:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from error
    vendor_id = str(find_by_slug_or_id(get_database(), vendor).id) if vendor else None
    if vendor_id is None and chosen is not Role.PLATFORM_ADMIN:
        raise typer.BadParameter("every role but platform_admin belongs to a vendor", param_hint="--vendor")
    print(mint_local_token(get_settings(), role=chosen, vendor_id=vendor_id, user_id=user, ttl_seconds=ttl))


def main() -> None:
    app()
