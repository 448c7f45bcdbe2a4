"""The `nutrimatch` command line: the local stack, migrations, demo data and operator tools."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nutrimatch.settings import REPO_ROOT, get_settings

if TYPE_CHECKING:
    from nutrimatch.uploads.client import Api

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
def local_up(demo: bool = typer.Option(False, "--demo", help="Seed the demo vendor (catalog, customers)")) -> None:
    """Start the whole product locally and serve it until Ctrl-C."""
    from nutrimatch.local.console import function_logs_to, requests_on_console
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
    log_file = stack.state_dir / "logs" / "functions.log"
    try:
        with function_logs_to(log_file) as terminal:
            out = Console(file=terminal, soft_wrap=True)
            token_line = _seed_demo(base, out) if demo else ""
            out.print(f"""
[green]nutrimatch is running.[/]
  health     {base}/api/v1/health
  API docs   {base}/api/v1/docs   (OpenAPI: {base}/api/v1/openapi.json)
  PostgreSQL {stack.environment['DATABASE_ADMIN_URL']}  (replica on port {stack.ports.replica})
  Redis      {stack.environment['REDIS_URL']}
  S3/SQS     {stack.environment['AWS_ENDPOINT_URL']} (moto)
  logs       {log_file}  (the functions' JSON logs; here: requests and warnings){token_line}
Press Ctrl-C to stop.""")
            with requests_on_console(terminal):
                stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        console.print("Stopping …")
        stack.stop()
        console.print("Stopped.")


def _seed_demo(base: str, out: Console) -> str:
    """Seed the demo vendor through the running API; the banner's lines about it."""
    from nutrimatch.demo.seed import DEMO_SLUG, seed

    demo_vendor = seed(get_settings(), base, say=lambda text: out.print(f"  demo: {text}"))
    return f"""
  demo vendor {DEMO_SLUG} ({demo_vendor.vendor_id}); vendor_admin token, valid 12 h:
    {demo_vendor.token}
  try:
    curl -s -H "Authorization: Bearer <token>" "{base}/api/v1/search/products?q=greek+yog&limit=3"
    .venv/bin/nutrimatch auth token --vendor {DEMO_SLUG} --role clinician   # other roles"""


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


demo_app = typer.Typer(help="Demo data")
app.add_typer(demo_app, name="demo")


@demo_app.command("seed")
def demo_seed(
    api: str = typer.Option(None, help="API base URL of a running stack (default: the local gateway)"),
    products: int = typer.Option(20_000, min=1, help="Catalog size"),
    customers: int = typer.Option(200, min=0, help="Customers, each with a health profile"),
) -> None:
    """Create the demo vendor with a generated catalog and customers, through the API of a running stack."""
    from nutrimatch.demo.seed import seed

    settings = get_settings()
    base = api or f"http://{settings.local_host}:{settings.local_gateway_port}"
    demo = seed(settings, base, products=products, customers=customers, say=console.print)
    console.print(f"vendor {demo.vendor_id}; vendor_admin token:\n{demo.token}")


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


ApiUrl = Annotated[str | None, typer.Option(envvar="NUTRIMATCH_API",
                                             help="API base URL (default: the local gateway)")]
Token = Annotated[str, typer.Option(envvar="NUTRIMATCH_TOKEN", help="Bearer token or API key")]
VendorId = Annotated[str | None, typer.Option(help="Vendor id, for platform admins (X-Vendor-Id)")]


def _api(api: str | None, token: str, vendor: str | None) -> Api:
    from nutrimatch.uploads.client import Api

    settings = get_settings()
    return Api(api or f"http://{settings.local_host}:{settings.local_gateway_port}", token, vendor)


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")],
    token: Token,
    kind: str = typer.Option("products", help="products or customers"),
    mode: str = typer.Option("upsert", help="upsert, or replace (products only: retire what the file does not list)"),
    tus: bool = typer.Option(False, "--tus", help="Upload through the tus endpoint instead of presigned multipart"),
    api: ApiUrl = None,
    vendor: VendorId = None,
    parallel: int = typer.Option(4, min=1, max=32, help="Parts in flight at once (multipart)"),
    checksum: bool = typer.Option(True, "--checksum/--no-checksum",
                                  help="Declare the file's SHA-256 so ingestion refuses a file that arrived different "
                                       "(multipart; reads the file once before uploading)"),
    state_dir: Path = typer.Option(None, help="Where interrupted uploads are remembered (~/.nutrimatch/uploads)"),
    follow: bool = typer.Option(True, "--follow/--no-follow", help="Follow the ingestion job to its end"),
) -> None:
    """Upload a CSV (resumable: after Ctrl-C or a dropped connection, run the same command again)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from nutrimatch.uploads.client import DEFAULT_STATE_DIR, UploadError, upload_file

    client = _api(api, token, vendor)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"{file.name} ({'tus' if tus else 'multipart'})", total=file.stat().st_size)
            result = upload_file(client, file, kind=kind, mode=mode, use_tus=tus, parallel=parallel,
                                 state_dir=state_dir or DEFAULT_STATE_DIR, checksum=checksum,
                                 progress=lambda sent: bar.advance(task, sent))
    except UploadError as error:
        console.print(f"[red]Upload failed:[/] {escape(str(error))}")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/] Run the same command again to resume where it stopped.")
        raise typer.Exit(130) from None
    console.print(f"Uploaded {result.size_bytes:,} bytes in {result.seconds:.1f} s "
                  f"({result.size_bytes / 1024**2 / max(result.seconds, 1e-9):.1f} MiB/s"
                  f"{', resumed' if result.resumed else ''}): job [bold]{result.job_id}[/]")
    if follow:
        _follow(client, result.job_id)


@app.command("job")
def job(
    job_id: Annotated[str, typer.Argument(help="The ingestion job's id (`nutrimatch upload` prints it)")],
    token: Token,
    api: ApiUrl = None,
    vendor: VendorId = None,
    follow: bool = typer.Option(True, "--follow/--no-follow", help="Follow the job to its end"),
) -> None:
    """Follow an ingestion job to its end and say what it did (or, with --no-follow, where it is now)."""
    from nutrimatch.uploads.client import FINAL_STATUSES, UploadError, describe_progress, get_job

    client = _api(api, token, vendor)
    if follow:
        _follow(client, job_id)
        return
    try:
        found = get_job(client, job_id)
    except UploadError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(1) from error
    if found is None:
        console.print("This API has no job status route.")
        raise typer.Exit(1)
    if found["status"] in FINAL_STATUSES:
        _print_summary(found)
    else:
        console.print(f"Job {job_id} {found['status']}: {describe_progress(found)}", highlight=False, markup=False)


def _follow(client: Api, job_id: str) -> None:
    """A progress bar until the job ends, then what it did; exits 1 unless it completed."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn

    from nutrimatch.uploads.client import UploadError, describe_progress, follow_job

    try:
        with Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("ingestion queued", total=1.0)
            found = follow_job(client, job_id, lambda job: bar.update(
                task, description=describe_progress(job),
                completed=(job.get("progress") or {}).get("fraction_done", 0.0)))
    except UploadError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        console.print(f"[yellow]Stopped following.[/] The job goes on; follow it again with "
                      f"`nutrimatch job {job_id}`.")
        raise typer.Exit(130) from None
    if found is None:
        console.print("This API has no job status route; the upload is done.")
        return
    _print_summary(found)


def _print_summary(found: dict[str, Any]) -> None:
    from nutrimatch.uploads.client import summarize

    for line in summarize(found):
        console.print(line, highlight=False, markup=False)
    if found.get("status") != "completed":
        raise typer.Exit(1)


audit_app = typer.Typer(help="The HIPAA audit trail")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(vendor: str = typer.Option(..., "--vendor", help="Vendor slug or id")) -> None:
    """Recompute a vendor's audit hash chain; exits 1 at the first broken link."""
    from nutrimatch.audit import verify
    from nutrimatch.db import get_database, scoped_transaction
    from nutrimatch.errors import NotFound
    from nutrimatch.tenancy.vendors import find_by_slug_or_id

    database = get_database()
    try:
        vendor_id = find_by_slug_or_id(database, vendor).id
    except NotFound as error:
        raise typer.BadParameter(error.message, param_hint="--vendor") from error
    with scoped_transaction(database.writer, vendor_id, read_only=True) as conn:
        result = verify(conn, vendor_id)
    if result.ok:
        console.print(f"[green]ok[/]: {result.checked} audit row(s) of {vendor}, chain unbroken")
        return
    console.print(f"[red]BROKEN[/] at seq {result.first_broken_seq} of {vendor}: {result.reason} "
                  f"({result.checked} row(s) verified before it)")
    raise typer.Exit(1)


def main() -> None:
    app()
