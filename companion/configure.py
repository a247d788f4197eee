"""`omniroute configure <tool>`: point a coding tool at the gateway (base URL, API key, model).

Each tool is a row: the file it reads its settings from (relative to the home directory), the format, the
settings to merge into it (templates filled with the gateway's URL, the key and the model), the variables
the user must export, or, for tools whose settings live where no file can be edited reliably, the steps to
follow in their settings UI. `companion.tool_files` does the careful writing (merge, backup, atomic
replace, permissions).

    omniroute configure claude-code                 # merge into ~/.claude/settings.json
    omniroute configure codex --model cx/gpt-5.2-codex --print
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from companion.admin_client import AdminClient, AdminFailure, DataDirOption, TokenOption, exit_with
from companion.target import current_target
from companion.tool_files import (
    Assignment,
    Edit,
    Format,
    KeyPath,
    ListEntry,
    Unreadable,
    fresh_content,
    plan_edit,
    write_plan,
)
from shared.domain.keys import mask_secret

KEY_ENV = "OMNIROUTE_API_KEY"
PROVIDER_ID = "omniroute"  # the provider/table name every tool's settings file gets
PLACEHOLDER_KEY = "<your OmniRoute API key>"
CHECK_TIMEOUT_SECONDS = 5.0

# A setting's path and value are templates: {gateway} (the gateway's root URL, for Anthropic clients),
# {v1} (the OpenAI-compatible base URL), {key} and {model}.
Template = str | ListEntry


@dataclass(frozen=True, slots=True)
class ToolSetup:
    name: str
    title: str
    docs: str  # where the keys below were checked
    default_model: str
    file: tuple[str, ...] = ()  # relative to the home directory; () = no file (UI steps instead)
    fmt: Format = Format.JSON
    settings: tuple[tuple[tuple[str, ...], Template], ...] = ()
    exports: tuple[tuple[str, str], ...] = ()  # variables the user exports (the key, when not in the file)
    steps: tuple[str, ...] = ()  # for tools configured in their own UI
    shorthand: tuple[str, ...] | None = None  # an object the tool also accepts as a plain string
    public_url_only: bool = False  # the tool calls the URL from its vendor's servers, not from this machine
    notes: tuple[str, ...] = ()

    @property
    def key_in_file(self) -> bool:
        return any(isinstance(v, str) and "{key}" in v for _, v in self.settings)


TOOLS: tuple[ToolSetup, ...] = (
    # Settings `env` values apply to every session; ANTHROPIC_BASE_URL is the root (Claude Code appends
    # /v1/messages); ANTHROPIC_AUTH_TOKEN goes out as `Authorization: Bearer` and, unlike ANTHROPIC_API_KEY,
    # needs no interactive approval; the DEFAULT_*_MODEL variables map the opus/sonnet/haiku aliases
    # (haiku = background tasks) so nothing asks the gateway for a model it does not serve.
    ToolSetup(
        name="claude-code",
        title="Claude Code",
        docs="https://code.claude.com/docs/en/settings (`env`), https://code.claude.com/docs/en/env-vars, "
        "https://code.claude.com/docs/en/model-config",
        default_model="cc/claude-sonnet-4-6",
        file=(".claude", "settings.json"),
        settings=(
            (("env", "ANTHROPIC_BASE_URL"), "{gateway}"),
            (("env", "ANTHROPIC_AUTH_TOKEN"), "{key}"),
            (("env", "ANTHROPIC_MODEL"), "{model}"),
            (("env", "ANTHROPIC_DEFAULT_OPUS_MODEL"), "{model}"),
            (("env", "ANTHROPIC_DEFAULT_SONNET_MODEL"), "{model}"),
            (("env", "ANTHROPIC_DEFAULT_HAIKU_MODEL"), "{model}"),
        ),
        exports=(
            ("ANTHROPIC_BASE_URL", "{gateway}"),
            ("ANTHROPIC_AUTH_TOKEN", "{key}"),
            ("ANTHROPIC_MODEL", "{model}"),
        ),
    ),
    # A custom entry of `model_providers`; Codex reads the key from the variable `env_key` names (so the key
    # is never written into config.toml) and speaks the Responses API (`wire_api = "responses"`).
    ToolSetup(
        name="codex",
        title="Codex CLI",
        docs="https://developers.openai.com/codex/config-advanced#custom-model-providers, "
        "https://developers.openai.com/codex/config-reference",
        default_model="cx/gpt-5.2-codex",
        file=(".codex", "config.toml"),
        fmt=Format.TOML,
        settings=(
            (("model",), "{model}"),
            (("model_provider",), PROVIDER_ID),
            (("model_providers", PROVIDER_ID, "name"), "OmniRoute"),
            (("model_providers", PROVIDER_ID, "base_url"), "{v1}"),
            (("model_providers", PROVIDER_ID, "env_key"), KEY_ENV),
            (("model_providers", PROVIDER_ID, "wire_api"), "responses"),
        ),
        exports=((KEY_ENV, "{key}"),),
        notes=(f"Codex reads the API key from ${KEY_ENV} (config.toml names the variable, not the key).",),
    ),
    # A custom provider on the AI SDK's OpenAI-compatible package (Chat Completions), selected as
    # `omniroute/<model id>`; model ids may contain slashes (the provider is the part before the first).
    ToolSetup(
        name="opencode",
        title="OpenCode",
        docs="https://opencode.ai/docs/providers/#custom-provider, https://opencode.ai/docs/config/#global",
        default_model="cc/claude-sonnet-4-6",
        file=(".config", "opencode", "opencode.json"),
        settings=(
            (("provider", PROVIDER_ID, "npm"), "@ai-sdk/openai-compatible"),
            (("provider", PROVIDER_ID, "name"), "OmniRoute"),
            (("provider", PROVIDER_ID, "options", "baseURL"), "{v1}"),
            (("provider", PROVIDER_ID, "options", "apiKey"), "{key}"),
            (("provider", PROVIDER_ID, "models", "{model}", "name"), "{model}"),
            (("model",), f"{PROVIDER_ID}/{{model}}"),
        ),
    ),
    # `models.providers.<id>` with the OpenAI Chat Completions adapter; a custom provider's models must be
    # listed (by id) for `agents.defaults.model.primary` to resolve. The model may also be written as a
    # plain string (shorthand for {primary}).
    ToolSetup(
        name="openclaw",
        title="OpenClaw",
        docs="https://docs.openclaw.ai/concepts/model-providers, https://docs.openclaw.ai/gateway/configuration",
        default_model="cc/claude-sonnet-4-6",
        file=(".openclaw", "openclaw.json"),
        settings=(
            (("models", "providers", PROVIDER_ID, "baseUrl"), "{v1}"),
            (("models", "providers", PROVIDER_ID, "apiKey"), "{key}"),
            (("models", "providers", PROVIDER_ID, "api"), "openai-completions"),
            (("models", "providers", PROVIDER_ID, "models"), ListEntry({"id": "{model}", "name": "{model}"})),
            (("agents", "defaults", "model", "primary"), f"{PROVIDER_ID}/{{model}}"),
        ),
        shorthand=("agents", "defaults", "model"),
        notes=(
            "openclaw.json may be JSON5; a file with comments or trailing commas is refused rather than "
            "rewritten without them (use --print and merge by hand). Restart the OpenClaw gateway afterwards.",
        ),
    ),
    # Cline keeps its provider settings in VS Code's extension storage (and secrets in its secret store):
    # there is no documented file to edit.
    ToolSetup(
        name="cline",
        title="Cline",
        docs="https://docs.cline.bot/provider-config/openai-compatible",
        default_model="cc/claude-sonnet-4-6",
        steps=(
            "Open the Cline panel in your editor and click the settings (gear) icon.",
            "API Provider: OpenAI Compatible",
            "Base URL: {v1}",
            "API Key: {key}",
            "Model ID: {model}",
            "Save (Done).",
        ),
    ),
    # Cursor's custom endpoint is a UI setting only (no reliable file), and Cursor calls it from its own
    # servers, so it must be reachable from the internet.
    ToolSetup(
        name="cursor",
        title="Cursor",
        docs="https://cursor.com/help/models-and-usage/api-keys, "
        "https://developers.cloudflare.com/ai-gateway/integrations/coding-agents/cursor/",
        default_model="cc/claude-sonnet-4-6",
        steps=(
            "Open Cursor Settings → Models and expand API Keys.",
            "Turn on OpenAI API Key and paste: {key}",
            "Turn on Override OpenAI Base URL and enter: {v1}",
            "Click + Add Custom Model, enter {model} and turn it on; then Verify.",
        ),
        public_url_only=True,
        notes=(
            "The override applies to all of Cursor's OpenAI models while it is on; chat uses it, Tab "
            "completion keeps Cursor's own models. Custom models need a paid Cursor plan.",
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Target:
    """What the templates are filled with."""

    gateway: str
    key: str
    model: str

    @property
    def v1(self) -> str:
        return self.gateway + "/v1"

    def fill(self, template: str) -> str:
        return template.format(gateway=self.gateway, v1=self.v1, key=self.key, model=self.model)

    def masked(self) -> Target:
        return Target(self.gateway, _mask(self.key), self.model)


def assignments(tool: ToolSetup, target: Target) -> list[Assignment]:
    out = []
    for path, template in tool.settings:
        filled_path: KeyPath = tuple(target.fill(p) for p in path)
        if isinstance(template, ListEntry):
            value: str | ListEntry = ListEntry({k: target.fill(v) for k, v in template.item.items()}, template.key)
            secret = any("{key}" in v for v in template.item.values())
        else:
            value, secret = target.fill(template), "{key}" in template
        out.append(Assignment(filled_path, value, secret))
    return out


# --------------------------------------------------------------------------------------------
# The gateway: its URL, its model list, a new key
# --------------------------------------------------------------------------------------------


def gateway_root(url: str) -> str:
    """The gateway's root URL: without a trailing slash or `/v1` (each tool gets the form it expects)."""
    root = url.strip().rstrip("/")
    return root.removesuffix("/v1").rstrip("/")


def target_gateway_url() -> str:
    """Where the saved target (`omniroute target`) takes coding tools: the local gateway by default."""
    return current_target().gateway_url


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The model ids `GET /v1/models` lists, and which of them are combos."""

    ids: tuple[str, ...]
    combos: tuple[str, ...]


def fetch_catalogue(v1: str, key: str | None) -> Catalogue | str:
    """The gateway's models, or why they could not be listed (a sentence for a note)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(timeout=CHECK_TIMEOUT_SECONDS, trust_env=False) as client:
            response = client.get(v1 + "/models", headers=headers)
    except httpx.InvalidURL:
        return f"{v1} is not a URL"
    except httpx.TransportError as exc:
        return f"no gateway answered at {v1} ({type(exc).__name__})"
    if response.status_code == 401:
        return "the gateway refused the API key (HTTP 401)" if key else "the gateway wants an API key (HTTP 401)"
    try:
        data = response.json().get("data") if response.is_success else None
    except ValueError:
        data = None
    if not isinstance(data, list):
        return f"GET {v1}/models answered HTTP {response.status_code} without a model list"
    models = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
    return Catalogue(
        ids=tuple(m["id"] for m in models), combos=tuple(m["id"] for m in models if m.get("owned_by") == "combo")
    )


def create_key(admin_url: str | None, token: str | None, data_dir: Path | None, tool: ToolSetup) -> str:
    """A new gateway API key, from the admin API at `admin_url` (None: the saved target's, SigV4-signed
    for a deployed stack)."""
    client = AdminClient.resolve(admin_url, token, data_dir)
    created = client.post("/api/keys", {"name": f"{tool.title} (omniroute configure)"})
    key = created.get("key")
    if not isinstance(key, str) or not key:
        raise AdminFailure("POST /api/keys answered without a key", 1)
    return key


def is_private_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

PrintOption = Annotated[
    bool,
    typer.Option(
        "--print", help="Print the settings and the variables to export (key in full) instead of writing anything."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        help="The model the tool uses (default: your first combo if the gateway has one, else a model per tool).",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(help=f"The gateway API key (default: ${KEY_ENV}).", envvar=KEY_ENV, show_default=False),
]
CreateKeyOption = Annotated[
    bool, typer.Option("--create-key", help="Create a new gateway API key for this tool (admin API, POST /api/keys).")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="The gateway's URL (default: the saved target's, see `omniroute target show`).",
        envvar="OMNIROUTE_URL",
        show_default=False,
    ),
]
HomeOption = Annotated[
    Path | None, typer.Option(help="The home directory whose tool settings are changed (default: yours).")
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace a settings file that cannot be parsed (after backing it up) instead of refusing."
    ),
]


app = typer.Typer(
    help="Point a coding tool at the gateway: write its settings (merged, with a backup) or print them.",
    no_args_is_help=True,
)


def _command(tool: ToolSetup) -> Any:
    def command(
        print_only: PrintOption = False,
        model: ModelOption = None,
        key: KeyOption = None,
        create_key_: CreateKeyOption = False,
        base_url: BaseUrlOption = None,
        home: HomeOption = None,
        force: ForceOption = False,
        token: TokenOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        run(
            tool,
            Options(
                print_only=print_only,
                model=model,
                key=key,
                create_key=create_key_,
                base_url=base_url,
                home=home or Path.home(),
                force=force,
                token=token,
                data_dir=data_dir,
            ),
        )

    command.__doc__ = _help(tool)
    return command


def _help(tool: ToolSetup) -> str:
    if tool.file:
        where = "~/" + "/".join(tool.file)
        what = f"Point {tool.title} at the gateway: merge its settings into {where} (backed up first)."
    else:
        what = (
            f"Print the steps to point {tool.title} at the gateway in its settings UI ({tool.title} keeps these "
            "settings where no file can be edited reliably, so nothing is written)."
        )
    return f"{what}\n\nSettings as documented in: {tool.docs}"


for _tool in TOOLS:
    app.command(_tool.name)(_command(_tool))


@dataclass(frozen=True, slots=True)
class Options:
    print_only: bool
    model: str | None
    key: str | None
    create_key: bool
    base_url: str | None  # None: the saved target's
    home: Path
    force: bool
    token: str | None
    data_dir: Path | None


def run(tool: ToolSetup, opts: Options) -> None:
    out, err = Console(highlight=False, soft_wrap=True), Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        gateway = gateway_root(opts.base_url or target_gateway_url())
    except AdminFailure as failure:
        raise exit_with(failure) from failure
    # The key has to reach the user when the tool does not read it from a file we write; a new key is
    # only ever shown with --print, so without it there would be no way to see it.
    if opts.create_key and not tool.key_in_file and not opts.print_only:
        err.print(
            f"[red]error:[/red] {tool.title} takes the key from "
            + ("your environment" if tool.file else "its settings UI")
            + ", so a new key must be shown to you: add --print to create and show it once, or pass --key."
        )
        raise typer.Exit(2)
    key = _resolve_key(tool, opts, gateway, err)
    catalogue = fetch_catalogue(gateway + "/v1", None if key == PLACEHOLDER_KEY else key)
    model = _choose_model(tool, opts.model, catalogue, err)
    target = Target(gateway, key, model)
    if tool.file:
        _configure_file(tool, target, opts, out, err)
    else:
        _print_steps(tool, target, opts, out, err)


def _resolve_key(tool: ToolSetup, opts: Options, gateway: str, err: Console) -> str:
    if opts.key and opts.create_key:
        raise typer.BadParameter("--key and --create-key do not go together", param_hint="--create-key")
    if opts.key:
        return opts.key
    create = opts.create_key
    if not create and not opts.print_only and tool.key_in_file and sys.stdin.isatty():
        create = typer.confirm(f"No API key (--key / ${KEY_ENV}). Create one on the gateway at {gateway}?")
    if create:
        try:
            return create_key(opts.base_url, opts.token, opts.data_dir, tool)
        except AdminFailure as failure:
            raise exit_with(failure) from failure
    if opts.print_only:
        return PLACEHOLDER_KEY
    err.print(
        f"[red]error:[/red] no API key: pass --key, set ${KEY_ENV}, or add --create-key to create one on the "
        f"gateway (or --print to see the settings with a placeholder)."
    )
    raise typer.Exit(2)


def _choose_model(tool: ToolSetup, asked: str | None, catalogue: Catalogue | str, err: Console) -> str:
    if isinstance(catalogue, str):
        err.print(f"[yellow]note:[/yellow] could not check the model: {escape(catalogue)}.")
        return asked or tool.default_model
    model = asked or (catalogue.combos[0] if catalogue.combos else tool.default_model)
    if model not in catalogue.ids:
        listed = ", ".join(catalogue.ids[:8]) + (", ..." if len(catalogue.ids) > 8 else "")
        err.print(
            f"[yellow]warning:[/yellow] the gateway does not list the model {escape(model)!r} "
            + (f"(it serves: {escape(listed)}); " if catalogue.ids else "(it lists no models yet); ")
            + "pick one with --model."
        )
    return model


def _configure_file(tool: ToolSetup, target: Target, opts: Options, out: Console, err: Console) -> None:
    path = opts.home.joinpath(*tool.file)
    shown = _shown_path(path, opts.home)
    settings = assignments(tool, target)
    if opts.print_only:
        out.print(f"# {tool.title}: merge into {shown}", markup=False)
        out.print(fresh_content(tool.fmt, settings, tool.shorthand), markup=False, end="")
        _print_exports(tool, target, out, reveal=True)
        _print_notes(tool, out)
        _reveal_note(target, err)
        return
    try:
        plan = plan_edit(path, tool.fmt, settings, force=opts.force, shorthand=tool.shorthand)
        written = write_plan(plan, datetime.now(UTC))
    except Unreadable as exc:
        err.print(
            f"[red]error:[/red] {escape(shown)} was left untouched: {escape(str(exc))}. Fix it, merge the "
            f"settings by hand (--print shows them), or add --force to back it up and replace it."
        )
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot write {escape(shown)}: {escape(exc.strerror or str(exc))}")
        raise typer.Exit(1) from exc
    if plan.replaced:
        err.print(
            f"[yellow]warning:[/yellow] {escape(shown)} was replaced ({escape(plan.replaced)}); its old content "
            "is in the backup."
        )
    if not written.wrote:
        tightened = " (made it readable only by you: it holds the key)" if written.mode_tightened else ""
        out.print(f"{tool.title}: {escape(shown)} already points at the gateway; nothing changed{tightened}.")
    else:
        verb = "created" if plan.before is None else "updated"
        backup = f" (backup: {escape(_shown_path(written.backup, opts.home))})" if written.backup else ""
        out.print(f"{tool.title}: {verb} {escape(shown)}{backup}")
        for edit in plan.edits:
            out.print(f"  {edit.label}: {_shown_value(edit, edit.old)} → {_shown_value(edit, edit.new)}", markup=False)
    _print_exports(tool, target, out, reveal=False)
    _print_notes(tool, out)


def _print_steps(tool: ToolSetup, target: Target, opts: Options, out: Console, err: Console) -> None:
    shown = target if opts.print_only else target.masked()
    out.print(f"{tool.title} keeps these settings in its own UI; nothing was written. In {tool.title}:")
    for number, step in enumerate(tool.steps, start=1):
        out.print(f"  {number}. {escape(shown.fill(step))}")
    if tool.public_url_only and is_private_host(target.gateway):
        err.print(
            f"[yellow]warning:[/yellow] {tool.title} calls the base URL from its own servers, which cannot reach "
            f"{escape(target.gateway)}: use your deployed gateway's URL (--base-url) or a tunnel."
        )
    _print_notes(tool, out)
    if opts.print_only:
        _reveal_note(target, err)
    elif target.key != PLACEHOLDER_KEY:
        out.print("(The key is shown masked; add --print to show it in full.)")


def _print_exports(tool: ToolSetup, target: Target, out: Console, *, reveal: bool) -> None:
    """The variables to export: with --print ready to paste (the key in full); otherwise only when the tool
    needs them (the key is not in its file), with the key masked."""
    if not tool.exports or (tool.key_in_file and not reveal):
        return
    if reveal:
        out.print("\n# export in your shell profile:" if not tool.key_in_file else "\n# or export instead:")
        for name, template in tool.exports:
            out.print(f"export {name}={shlex.quote(target.fill(template))}", markup=False)
        return
    out.print(f"{tool.title} reads these from the environment; export them in your shell profile:")
    for name, template in tool.exports:
        masked = "{key}" in template and target.key != PLACEHOLDER_KEY
        suffix = "   (masked here: --print shows it in full)" if masked else ""
        out.print(f"  export {name}={target.masked().fill(template)}{suffix}", markup=False)


def _print_notes(tool: ToolSetup, out: Console) -> None:
    for note in tool.notes:
        out.print(f"note: {escape(note)}")


def _reveal_note(target: Target, err: Console) -> None:
    if target.key != PLACEHOLDER_KEY:
        err.print("[yellow]note:[/yellow] this output holds your API key in full: keep it out of shared logs.")


def _mask(key: str) -> str:
    return key if key == PLACEHOLDER_KEY else mask_secret(key)


def _shown_value(edit: Edit, value: object) -> str:
    if value is None:
        return "(unset)"
    if edit.secret:
        return _masked_deep(value)
    return json.dumps(value, ensure_ascii=False)


def _masked_deep(value: object) -> str:
    if isinstance(value, str):
        return mask_secret(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_masked_deep(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_masked_deep(v) for v in value) + "]"
    return "****"


def _shown_path(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)
