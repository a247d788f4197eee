"""`omniroute translate`: the translator playground on the command line (no server needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def translate(
    source_file: Annotated[
        str, typer.Argument(help="JSON file with a request or response body, or - for standard input.")
    ],
    to: Annotated[str, typer.Option("--to", help="Target format: openai, anthropic, gemini or responses.")],
    source: Annotated[str | None, typer.Option("--from", help="Source format (detected when left out).")] = None,
    kind: Annotated[str | None, typer.Option(help="request or response (detected when left out).")] = None,
    model: Annotated[str | None, typer.Option(help="Model id, for Gemini bodies (their model is in the URL).")] = None,
    canonical: Annotated[bool, typer.Option(help="Also print the canonical form (to standard error).")] = False,
) -> None:
    """Translate a request or answer body from one wire format to another, as the gateway does."""
    from shared.errors import GatewayError
    from shared.services.translator import translate as run

    raw = sys.stdin.read() if source_file == "-" else Path(source_file).read_text(encoding="utf-8")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        console.print(f"[red]error:[/red] not JSON: {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(body, dict):
        console.print("[red]error:[/red] the body must be a JSON object")
        raise typer.Exit(2)
    try:
        result = run(body, to=to, source=source, kind=kind, model=model)
    except GatewayError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    console.print(f"{result['from']} {result['kind']} → {result['to']}")
    if canonical:
        console.print_json(data=result["canonical"])
    typer.echo(json.dumps(result["body"], indent=2, ensure_ascii=False))
