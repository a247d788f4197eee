"""`omniroute sync push|pull|status`: carry configuration between this machine's gateway and a target.

    omniroute sync status                      what push and pull would do
    omniroute sync push [--dry-run] [--force] [--secrets]
    omniroute sync pull [--dry-run] [--force] [--secrets]

Both sides list their records with etags (`GET /api/sync/records`); the etags both last agreed on are kept
per pair of sides in `sync-state.json` in the data dir (0600, no secrets), so each record is judged by a
three-way comparison (companion/sync_plan.py); the changes go out with `POST /api/sync/apply`, each
conditioned on the etag just read. The design, and what never syncs, is in docs/sync.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from companion.admin_client import DEFAULT_URL, AdminClient, AdminFailure, DataDirOption, exit_with
from companion.sync_plan import Agreed, Change, Direction, Entry, Key, Listed, agreed_after, plan
from companion.target import config_dir, current_target
from companion.tool_files import atomic_write

app = typer.Typer(help="Carry configuration between this gateway and a target, record by record.", no_args_is_help=True)

STATE_FILE = "sync-state.json"
STATE_FORMAT = "omniroute-sync-state"
BATCH = 1000  # changes per apply request: the server's limit

FromOption = Annotated[
    str, typer.Option("--from", help="Admin URL of this side (default: the local gateway).", envvar="OMNIROUTE_URL")
]
FromTokenOption = Annotated[
    str | None,
    typer.Option(
        "--from-token",
        help="Admin token of this side (default: the admin-token file in the data dir).",
        envvar="OMNIROUTE_ADMIN_TOKEN",
        show_default=False,
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Admin URL of the other side (default: the saved target, see `omniroute target show`).",
        show_default=False,
    ),
]
ToTokenOption = Annotated[
    str | None,
    typer.Option(
        "--to-token",
        help="Admin token of the other side, when it is a gateway run by `omniroute serve`.",
        show_default=False,
    ),
]
SecretsOption = Annotated[
    bool,
    typer.Option(
        "--secrets",
        help="Compare and carry provider API keys (sent decrypted over the admin API, sealed again by the "
        "receiver). Without it connections sync their settings and each side keeps its own key.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show the changes, field by field, and have them checked; write nothing.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="On a conflict, take this side's version.")]


@dataclass(frozen=True, slots=True)
class Sides:
    here: AdminClient
    there: AdminClient
    state: Path

    @property
    def pair(self) -> str:
        """The state file's key for this pair of sides (push and pull share it)."""
        return f"{self.here.url.rstrip('/')} -> {self.there.url.rstrip('/')}"


def _sides(source: str, source_token: str | None, to: str | None, to_token: str | None, data_dir: Path | None) -> Sides:
    here = AdminClient.resolve(source, source_token, data_dir)
    there = _other_side(here, to, to_token, data_dir)
    if _same(here.url, there.url):
        raise _both_sides(here.url)
    return Sides(here, there, config_dir() / STATE_FILE)


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _both_sides(url: str) -> AdminFailure:
    return AdminFailure(f"both sides are {url}: pass --to, or save the other side with `omniroute target cloud ...`")


def _other_side(here: AdminClient, to: str | None, to_token: str | None, data_dir: Path | None) -> AdminClient:
    """`--to` with its token, or the saved target (a cloud stack's admin API is called SigV4-signed). This
    side's admin token never goes to another URL."""
    if to is None:
        saved = current_target()
        if saved.kind == "local" and _same(saved.admin_url, here.url):
            raise _both_sides(here.url)
        return AdminClient.resolve(None, to_token, data_dir)
    if to_token:
        return AdminClient(to, to_token, "--to-token")
    saved = current_target()
    if saved.kind == "cloud" and _same(saved.admin_url, to):
        return AdminClient.resolve(None, None, data_dir)
    raise AdminFailure(f"no admin token for {to}: pass --to-token (a cloud target is saved with `omniroute target`)")


# ----- the state file: the etags both sides last agreed on -------------------------------------------------


def load_state(path: Path) -> dict[str, dict[Key, Agreed]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AdminFailure(f"cannot read {path} ({exc}); move it aside to start over") from exc
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise AdminFailure(f"{path} is not a sync state file; move it aside to start over")
    pairs: dict[str, dict[Key, Agreed]] = {}
    for pair, records in (doc.get("pairs") or {}).items():
        pairs[pair] = {}
        for name, agreed in records.items():
            kind, _, id = name.partition(":")
            pairs[pair][(kind, id)] = Agreed(str(agreed["etag"]), agreed.get("keyTag"))
    return pairs


def save_state(path: Path, pairs: Mapping[str, Mapping[Key, Agreed]]) -> None:
    """Written whole, 0600, through a temporary file: a crash leaves the old state or the new one."""
    doc = {
        "format": STATE_FORMAT,
        "version": 1,
        "pairs": {
            pair: {
                f"{kind}:{id}": {"etag": a.etag, **({"keyTag": a.key_tag} if a.key_tag else {})}
                for (kind, id), a in sorted(records.items())
            }
            for pair, records in sorted(pairs.items())
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True).encode(), 0o600)


# ----- the commands ----------------------------------------------------------------------------------------


@app.command()
def status(
    source: FromOption = DEFAULT_URL,
    source_token: FromTokenOption = None,
    to: ToOption = None,
    to_token: ToTokenOption = None,
    data_dir: DataDirOption = None,
    secrets: Annotated[bool, typer.Option("--secrets", help="Compare provider API keys too (by their tags).")] = False,
) -> None:
    """Show what push and pull would do, record by record."""
    try:
        sides = _sides(source, source_token, to, to_token, data_dir)
        entries = _plan(sides, load_state(sides.state), keys=secrets, carry=None)
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    out = Console()
    pending = [e for e in entries if e.change is not Change.SAME]
    out.print(_summary(sides, entries), soft_wrap=True, highlight=False)
    if pending:
        table = _table("Kind", "Record", "State", "push", "pull")
        for e in pending:
            push_does, pull_does = (escape(e.action(d, force=False)) for d in (Direction.PUSH, Direction.PULL))
            table.add_row(e.kind, escape(e.label), _why(e), push_does, pull_does)
        out.print(table)
    if any(e.change is Change.CONFLICT for e in entries):
        raise typer.Exit(1)


@app.command()
def push(
    source: FromOption = DEFAULT_URL,
    source_token: FromTokenOption = None,
    to: ToOption = None,
    to_token: ToTokenOption = None,
    data_dir: DataDirOption = None,
    secrets: SecretsOption = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Send what changed here to the target; what changed there is left for pull."""
    _carry(Direction.PUSH, source, source_token, to, to_token, data_dir, secrets=secrets, dry_run=dry_run, force=force)


@app.command()
def pull(
    source: FromOption = DEFAULT_URL,
    source_token: FromTokenOption = None,
    to: ToOption = None,
    to_token: ToTokenOption = None,
    data_dir: DataDirOption = None,
    secrets: SecretsOption = False,
    dry_run: DryRunOption = False,
    force: ForceOption = False,
) -> None:
    """Take what changed on the target; what changed here is left for push."""
    _carry(Direction.PULL, source, source_token, to, to_token, data_dir, secrets=secrets, dry_run=dry_run, force=force)


def _carry(
    direction: Direction,
    source: str,
    source_token: str | None,
    to: str | None,
    to_token: str | None,
    data_dir: Path | None,
    *,
    secrets: bool,
    dry_run: bool,
    force: bool,
) -> None:
    out = Console()
    try:
        sides = _sides(source, source_token, to, to_token, data_dir)
        state = load_state(sides.state)
        entries = _plan(sides, state, keys=secrets, carry=direction)
        carried = [e for e in entries if e.carried(direction, force=force)]
        destination = sides.there if direction is Direction.PUSH else sides.here
        results = _apply(destination, [e.request(direction) for e in carried], dry_run=dry_run, secrets=secrets)
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    outcome = dict(zip(((e.kind, e.id) for e in carried), results, strict=True))
    out.print(_summary(sides, entries, direction), soft_wrap=True, highlight=False)
    shown = [e for e in entries if e.change is not Change.SAME]
    if shown:
        out.print(_result_table(shown, outcome, direction, force=force, dry_run=dry_run))
    if not dry_run:
        base = {
            (e.kind, e.id): agreed
            for e in entries
            if (agreed := agreed_after(e, outcome.get((e.kind, e.id)), direction, keys=secrets)) is not None
        }
        state[sides.pair] = base
        save_state(sides.state, state)
    failed = [r for r in results if r.get("status") in ("conflict", "invalid")]
    unforced = [e for e in entries if e.change is Change.CONFLICT and not force]
    if dry_run:
        out.print("Dry run: nothing was written.")
    if failed or unforced:
        raise typer.Exit(1)


def _plan(
    sides: Sides, state: Mapping[str, Mapping[Key, Agreed]], *, keys: bool, carry: Direction | None
) -> list[Entry]:
    """Both listings, judged against the base. Only the side changes come from, and only when keys are
    carried, lists them in the clear; the other lists their tags."""

    def listing(client: AdminClient, plaintext: bool) -> dict[Key, Listed]:
        params = {"secrets": "true"} if plaintext else {"keyTags": "true"} if keys else None
        answer = client.get("/api/sync/records", params=params)
        records = answer.get("records")
        if not isinstance(records, list):
            raise AdminFailure(f"{client.url} did not list its records (is it an OmniRoute Edge gateway?)", 1)
        return {(r["kind"], r["id"]): Listed.from_json(r) for r in records}

    here = listing(sides.here, keys and carry is Direction.PUSH)
    there = listing(sides.there, keys and carry is Direction.PULL)
    return plan(here, there, state.get(sides.pair, {}), keys=keys)


def _apply(
    client: AdminClient, changes: Sequence[Mapping[str, Any]], *, dry_run: bool, secrets: bool
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(changes), BATCH):
        chunk = list(changes[start : start + BATCH])
        answer = client.post("/api/sync/apply", {"changes": chunk, "dryRun": dry_run, "secrets": secrets})
        batch = answer.get("results")
        if not isinstance(batch, list) or len(batch) != len(chunk):
            raise AdminFailure(f"{client.url} answered the sync with no result per change", 1)
        results.extend(batch)
    return results


# ----- rendering -------------------------------------------------------------------------------------------


def _table(*columns: str) -> Table:
    table = Table(show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _why(entry: Entry) -> str:
    fields = f" ({', '.join(entry.fields)})" if entry.fields else ""
    style = "red" if entry.change is Change.CONFLICT else ""
    text = escape(entry.why + fields)
    return f"[{style}]{text}[/{style}]" if style else text


def _summary(sides: Sides, entries: Sequence[Entry], direction: Direction | None = None) -> str:
    counts = {change: sum(1 for e in entries if e.change is change) for change in Change}
    arrow = "→" if direction is not Direction.PULL else "←"
    verb = direction.value.capitalize() if direction else "Sync status"
    head = f"{verb}: {sides.here.url} (here) {arrow} {sides.there.url} (there)"
    parts = [
        f"{counts[Change.SAME]} in sync",
        f"{counts[Change.HERE]} changed here",
        f"{counts[Change.THERE]} changed there",
        f"{counts[Change.CONFLICT]} conflict{'' if counts[Change.CONFLICT] == 1 else 's'}",
    ]
    return escape(f"{head}: {', '.join(parts)}")


def _result_table(
    entries: Sequence[Entry],
    outcome: Mapping[Key, Mapping[str, Any]],
    direction: Direction,
    *,
    force: bool,
    dry_run: bool,
) -> Table:
    table = _table("Kind", "Record", "State", "Action", "Result")
    for e in entries:
        result = outcome.get((e.kind, e.id))
        table.add_row(
            e.kind, escape(e.label), _why(e), escape(e.action(direction, force=force)), _result(result, dry_run)
        )
    return table


def _result(result: Mapping[str, Any] | None, dry_run: bool) -> str:
    if result is None:
        return ""
    status = str(result.get("status"))
    message = result.get("message")
    if status in ("applied", "unchanged"):
        done = "would apply" if dry_run else "done"
        return "[green]already there[/green]" if status == "unchanged" else f"[green]{done}[/green]"
    return f"[red]{escape(status)}[/red]" + (f": {escape(str(message))}" if message else "")
