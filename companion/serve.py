"""`omniroute serve`: the whole gateway on this machine, on an embedded DynamoDB, no AWS account needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.", envvar="OMNIROUTE_PORT")] = 20128,
    host: Annotated[
        str, typer.Option(help="Address to bind. Keep loopback unless API keys are required.", envvar="OMNIROUTE_HOST")
    ] = "127.0.0.1",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where configuration, the encryption key and the admin token live.", envvar="OMNIROUTE_DATA_DIR"
        ),
    ] = None,
    store: Annotated[
        str, typer.Option(help="Embedded DynamoDB backend: inprocess (fast) or server (moto on a loopback port).")
    ] = "inprocess",
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
    new_secret_key: Annotated[
        bool,
        typer.Option(help="secret.key is lost: start with a new one anyway; stored API keys must then be sent again."),
    ] = False,
) -> None:
    """Run the gateway (/v1) and admin API (/api) locally."""
    import logging

    import uvicorn

    from companion.local import StartupError, build_local, create_local_app
    from shared.services.auth import require_api_key
    from shared.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if store not in ("inprocess", "server"):
        raise typer.BadParameter("must be inprocess or server", param_hint="--store")
    if data_dir is not None:
        os.environ["OMNIROUTE_DATA_DIR"] = str(data_dir)
    settings = Settings.from_env()
    if os.environ.get("OMNIROUTE_COUNT_STORE_CALLS", "").strip().lower() in ("1", "true", "yes"):
        from shared.adapters.dynamo import call_counter

        call_counter.install()  # GET /api/health then shows `storeCalls` (benchmarks)
    backend: Literal["inprocess", "server"] = "server" if store == "server" else "inprocess"
    try:
        runtime = build_local(settings, backend, new_secret_key=new_secret_key)
    except StartupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    unreadable = runtime.unreadable_connections()
    if unreadable:
        console.print(
            f"[yellow]warning:[/yellow] the stored API keys of {', '.join(unreadable)} cannot be decrypted with "
            f"{settings.data_dir / 'secret.key'}; they are not used until you restore the original key file "
            "or send the keys again (PATCH /api/providers/<id>)"
        )
    base = f"http://{host}:{port}"
    if runtime.token_is_new:
        console.print(
            f"Admin token (shown once, stored 0600 in {settings.data_dir}): [bold]{runtime.services.admin_token}[/bold]"
        )
    keys_required = require_api_key(
        runtime.services.config.snapshot.settings.require_api_key, default=settings.require_api_key, cloud=False
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not keys_required:
        console.print(
            "[yellow]warning:[/yellow] listening beyond loopback while API keys are not required: anyone who "
            "can reach this port can spend your provider credit (set OMNIROUTE_REQUIRE_API_KEY=true)"
        )
    console.print(f"OmniRoute Edge on {base}  (OpenAI base URL {base}/v1, admin {base}/api, data {settings.data_dir})")
    try:
        uvicorn.run(
            create_local_app(runtime.services),
            host=host,
            port=port,
            log_level="warning",
            access_log=access_log,
            loop="auto",
            http="auto",
            timeout_graceful_shutdown=5,
        )
    finally:
        runtime.stop()
