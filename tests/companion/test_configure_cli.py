"""`omniroute configure <tool>` with CliRunner on temporary home directories, against a real local gateway
(the embedded store and admin API on loopback, saved as the companion's target)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from companion.cli import app
from companion.configure import is_private_host
from tests.companion.cli_runner import ISOLATED, LocalTarget, local_target
from tests.fakes.server import free_port

FILES = {
    "claude-code": Path(".claude/settings.json"),
    "codex": Path(".codex/config.toml"),
    "opencode": Path(".config/opencode/opencode.json"),
    "openclaw": Path(".openclaw/openclaw.json"),
}
MODEL = "ds/deepseek-chat"  # served once the gateway has a DeepSeek connection


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    with local_target(tmp_path_factory.mktemp("owner")) as target:
        target.call("POST", "/api/providers", {"provider": "deepseek", "apiKey": "sk-upstream-not-used"}, 201)
        yield target


@pytest.fixture(scope="module")
def key(gateway: LocalTarget) -> str:
    created: str = gateway.call("POST", "/api/keys", {"name": "tests"}, 201)["key"]
    return created


def configure(gateway: LocalTarget, tool: str, home: Path, *args: str, key: str | None = None) -> Result:
    """`omniroute configure <tool> --home <home> ...`; the key never appears in the output unless --print."""
    result = gateway.run("configure", tool, "--home", str(home), *args, *(("--key", key) if key else ()))
    if key and "--print" not in args:
        assert key not in result.output
    return result


def expected(tool: str, url: str, key: str, model: str = MODEL) -> dict[str, Any]:
    """Exactly what each tool's file holds after `configure` on an empty home."""
    if tool == "claude-code":
        return {
            "env": {
                "ANTHROPIC_BASE_URL": url,
                "ANTHROPIC_AUTH_TOKEN": key,
                "ANTHROPIC_MODEL": model,
                "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
                "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
                "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            }
        }
    if tool == "codex":
        return {
            "model": model,
            "model_provider": "omniroute",
            "model_providers": {
                "omniroute": {
                    "name": "OmniRoute",
                    "base_url": url + "/v1",
                    "env_key": "OMNIROUTE_API_KEY",
                    "wire_api": "responses",
                }
            },
        }
    if tool == "opencode":
        return {
            "provider": {
                "omniroute": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "OmniRoute",
                    "options": {"baseURL": url + "/v1", "apiKey": key},
                    "models": {model: {"name": model}},
                }
            },
            "model": f"omniroute/{model}",
        }
    assert tool == "openclaw"
    return {
        "models": {
            "providers": {
                "omniroute": {
                    "baseUrl": url + "/v1",
                    "apiKey": key,
                    "api": "openai-completions",
                    "models": [{"id": model, "name": model}],
                }
            }
        },
        "agents": {"defaults": {"model": {"primary": f"omniroute/{model}"}}},
    }


def parse(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    parsed: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return parsed


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------------------------
# A fresh home
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", list(FILES))
def test_a_fresh_home_gets_a_file_with_exactly_the_gateway_settings(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    result = configure(gateway, tool, tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 0, result.output
    path = tmp_path / FILES[tool]
    assert parse(path) == expected(tool, gateway.url, key)
    assert backups(path) == []
    assert mode(path) == (0o644 if tool == "codex" else 0o600)  # only Codex's file holds no key
    assert f"created ~/{FILES[tool].as_posix()}" in result.output
    assert "warning" not in result.output  # the model is one the gateway serves


def test_codex_names_the_key_variable_and_never_writes_the_key(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    result = configure(gateway, "codex", tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 0, result.output
    path = tmp_path / FILES["codex"]
    assert key not in path.read_text(encoding="utf-8")
    assert mode(path) == 0o644  # holds no secret
    assert "export OMNIROUTE_API_KEY=sk-o…" in result.output  # what to export, masked


@pytest.mark.parametrize("tool", ["claude-code", "opencode", "openclaw"])
def test_a_file_holding_the_key_is_readable_only_by_its_owner(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    path = tmp_path / FILES[tool]
    path.parent.mkdir(parents=True)
    path.write_text("{}\n")
    path.chmod(0o644)
    assert configure(gateway, tool, tmp_path, "--model", MODEL, key=key).exit_code == 0
    assert mode(path) == 0o600
    assert all(mode(b) == 0o600 for b in backups(path))


def test_changed_settings_are_listed_with_the_key_masked(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    result = configure(gateway, "claude-code", tmp_path, "--model", MODEL, key=key)
    assert f'env.ANTHROPIC_BASE_URL: (unset) → "{gateway.url}"' in result.output
    assert f"env.ANTHROPIC_AUTH_TOKEN: (unset) → {key[:4]}…{key[-4:]}" in result.output


def test_the_default_url_is_the_saved_target_and_a_v1_suffix_is_dropped(
    gateway: LocalTarget, key: str, tmp_path: Path
) -> None:
    assert configure(gateway, "claude-code", tmp_path / "a", "--model", MODEL, key=key).exit_code == 0
    assert parse(tmp_path / "a" / FILES["claude-code"])["env"]["ANTHROPIC_BASE_URL"] == gateway.url
    given = configure(gateway, "codex", tmp_path / "b", "--model", MODEL, "--base-url", gateway.url + "/v1/", key=key)
    assert given.exit_code == 0, given.output
    assert parse(tmp_path / "b" / FILES["codex"])["model_providers"]["omniroute"]["base_url"] == gateway.url + "/v1"


# --------------------------------------------------------------------------------------------
# Existing files: merged, backed up, idempotent
# --------------------------------------------------------------------------------------------

EXISTING = {
    "claude-code": '{\n    "permissions": {"allow": ["Bash(ls:*)"]},\n    "env": {"DISABLE_TELEMETRY": "1",'
    ' "ANTHROPIC_MODEL": "claude-opus-4-6"},\n    "model": "opus"\n}\n',
    "codex": '# my settings\nmodel = "gpt-5"\napproval_policy = "on-request"\nnotify = [\n  "notify-send",\n]\n\n'
    '# the proxy I use\n[model_providers.omniroute]\nname = "Old"\nrequest_max_retries = 3\n\n'
    '[projects."/home/me/a.b"]\ntrust_level = "trusted"  # keep\n',
    "opencode": '{"$schema": "https://opencode.ai/config.json", "theme": "tokyonight",'
    ' "provider": {"anthropic": {"options": {"timeout": 600000}},'
    ' "omniroute": {"models": {"other": {"name": "Other"}}}}, "model": "anthropic/claude-sonnet-4-5"}',
    "openclaw": '{"agents": {"defaults": {"model": "anthropic/claude-opus-4-6", "workspace": "~/clawd"}},'
    ' "models": {"providers": {"omniroute": {"models": [{"id": "other", "name": "Other", "contextWindow": 1000}]}}},'
    ' "channels": {"telegram": {"enabled": true}}}',
}


def kept(tool: str, doc: dict[str, Any]) -> None:
    """The user's own settings in each EXISTING file are all still there."""
    if tool == "claude-code":
        assert doc["permissions"] == {"allow": ["Bash(ls:*)"]} and doc["model"] == "opus"
        assert doc["env"]["DISABLE_TELEMETRY"] == "1"
    elif tool == "codex":
        assert doc["approval_policy"] == "on-request" and doc["notify"] == ["notify-send"]
        assert doc["model_providers"]["omniroute"]["request_max_retries"] == 3
        assert doc["projects"] == {"/home/me/a.b": {"trust_level": "trusted"}}
    elif tool == "opencode":
        assert doc["theme"] == "tokyonight" and doc["$schema"] == "https://opencode.ai/config.json"
        assert doc["provider"]["anthropic"] == {"options": {"timeout": 600000}}
        assert doc["provider"]["omniroute"]["models"]["other"] == {"name": "Other"}
    else:
        assert doc["agents"]["defaults"]["workspace"] == "~/clawd" and doc["channels"] == {
            "telegram": {"enabled": True}
        }
        assert {"id": "other", "name": "Other", "contextWindow": 1000} in doc["models"]["providers"]["omniroute"][
            "models"
        ]


def write_existing(home: Path, tool: str) -> Path:
    path = home / FILES[tool]
    path.parent.mkdir(parents=True)
    path.write_text(EXISTING[tool], encoding="utf-8")
    return path


@pytest.mark.parametrize("tool", list(FILES))
def test_other_settings_are_kept_and_the_original_is_backed_up(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    path = write_existing(tmp_path, tool)
    result = configure(gateway, tool, tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 0, result.output
    doc = parse(path)
    kept(tool, doc)
    [backup] = backups(path)
    assert backup.read_text(encoding="utf-8") == EXISTING[tool]  # the original bytes
    assert f"backup: ~/{FILES[tool].as_posix()}.bak-" in result.output
    # ... and every managed setting holds the gateway's value (merged over the user's own)
    fresh = tmp_path / "fresh"
    assert configure(gateway, tool, fresh, "--model", MODEL, key=key).exit_code == 0
    assert _managed(parse(fresh / FILES[tool])) <= _managed(doc)


def _managed(doc: dict[str, Any], prefix: str = "") -> set[tuple[str, str]]:
    """Every (path, leaf value) in a document, lists as their JSON."""
    out: set[tuple[str, str]] = set()
    for name, value in doc.items():
        if isinstance(value, dict):
            out |= _managed(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            out |= {(f"{prefix}{name}[]", json.dumps(item, sort_keys=True)) for item in value}
        else:
            out.add((prefix + name, json.dumps(value)))
    return out


def test_codex_edits_keep_comments_and_layout(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    path = write_existing(tmp_path, "codex")
    assert configure(gateway, "codex", tmp_path, "--model", MODEL, key=key).exit_code == 0
    assert path.read_text(encoding="utf-8") == (
        f'# my settings\nmodel = "{MODEL}"\napproval_policy = "on-request"\nnotify = [\n  "notify-send",\n]\n'
        'model_provider = "omniroute"\n\n# the proxy I use\n[model_providers.omniroute]\nname = "OmniRoute"\n'
        f'request_max_retries = 3\nbase_url = "{gateway.url}/v1"\nenv_key = "OMNIROUTE_API_KEY"\n'
        'wire_api = "responses"\n\n[projects."/home/me/a.b"]\ntrust_level = "trusted"  # keep\n'
    )


def test_openclaw_model_written_as_a_string_becomes_the_primary(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    path = write_existing(tmp_path, "openclaw")
    result = configure(gateway, "openclaw", tmp_path, "--model", MODEL, key=key)
    assert parse(path)["agents"]["defaults"]["model"] == {"primary": f"omniroute/{MODEL}"}
    assert f'agents.defaults.model.primary: "anthropic/claude-opus-4-6" → "omniroute/{MODEL}"' in result.output


@pytest.mark.parametrize("tool", list(FILES))
@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
def test_a_second_run_changes_nothing_and_makes_no_second_backup(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str, existing: bool
) -> None:
    path = write_existing(tmp_path, tool) if existing else tmp_path / FILES[tool]
    assert configure(gateway, tool, tmp_path, "--model", MODEL, key=key).exit_code == 0
    first, first_backups = path.read_bytes(), backups(path)
    again = configure(gateway, tool, tmp_path, "--model", MODEL, key=key)
    assert again.exit_code == 0, again.output
    assert path.read_bytes() == first
    assert backups(path) == first_backups and len(first_backups) == int(existing)
    assert "nothing changed" in again.output


def test_a_new_model_updates_only_the_model_settings(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    assert configure(gateway, "opencode", tmp_path, "--model", MODEL, key=key).exit_code == 0
    result = configure(gateway, "opencode", tmp_path, "--model", "ds/deepseek-reasoner", key=key)
    assert result.exit_code == 0, result.output
    doc = parse(tmp_path / FILES["opencode"])
    assert doc["model"] == "omniroute/ds/deepseek-reasoner"
    assert set(doc["provider"]["omniroute"]["models"]) == {MODEL, "ds/deepseek-reasoner"}
    assert "apiKey" not in result.output  # the key did not change, so it is not listed


def test_a_symlinked_settings_file_is_written_through_the_link(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "claude-settings.json"
    real.parent.mkdir()
    real.write_text('{"model": "opus"}\n')
    link = tmp_path / FILES["claude-code"]
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert configure(gateway, "claude-code", tmp_path, "--model", MODEL, key=key).exit_code == 0
    assert link.is_symlink() and parse(real)["model"] == "opus"
    assert parse(real)["env"]["ANTHROPIC_BASE_URL"] == gateway.url
    assert [b.name.split(".bak-")[0] for b in backups(real)] == ["claude-settings.json"]


# --------------------------------------------------------------------------------------------
# Files that do not parse
# --------------------------------------------------------------------------------------------

BROKEN = {
    "claude-code": '{"env": {"A": "1",}, // trailing comma and a comment\n}',
    "codex": 'model = "gpt-5"\n[model_providers.omniroute\nname = "x"\n',
    "opencode": "[1, 2]",  # parses, but is not an object
    # JSON5, which OpenClaw reads but this command cannot edit without losing the comment
    "openclaw": "{\n  // my agents\n  agents: {},\n}",
}


@pytest.mark.parametrize("tool", list(FILES))
def test_a_file_that_does_not_parse_is_refused_and_left_untouched(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    path = tmp_path / FILES[tool]
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN[tool], encoding="utf-8")
    result = configure(gateway, tool, tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 1
    assert f"~/{FILES[tool].as_posix()} was left untouched" in result.output and "--force" in result.output
    assert path.read_text(encoding="utf-8") == BROKEN[tool]
    assert backups(path) == []


@pytest.mark.parametrize("tool", list(FILES))
def test_force_backs_up_a_file_that_does_not_parse_and_replaces_it(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    path = tmp_path / FILES[tool]
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN[tool], encoding="utf-8")
    result = configure(gateway, tool, tmp_path, "--model", MODEL, "--force", key=key)
    assert result.exit_code == 0, result.output
    assert parse(path) == expected(tool, gateway.url, key)
    [backup] = backups(path)
    assert backup.read_text(encoding="utf-8") == BROKEN[tool]
    assert "was replaced" in result.output


def test_a_settings_value_of_the_wrong_type_is_refused(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    path = tmp_path / FILES["claude-code"]
    path.parent.mkdir(parents=True)
    path.write_text('{"env": ["not", "an", "object"]}')
    result = configure(gateway, "claude-code", tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 1
    assert "`env` is a list where an object is expected" in result.output
    assert path.read_text() == '{"env": ["not", "an", "object"]}'


# --------------------------------------------------------------------------------------------
# --print
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", list(FILES))
def test_print_writes_nothing_and_shows_the_settings_with_the_key(
    gateway: LocalTarget, key: str, tmp_path: Path, tool: str
) -> None:
    result = configure(gateway, tool, tmp_path, "--model", MODEL, "--print", key=key)
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
    assert f"merge into ~/{FILES[tool].as_posix()}" in result.output
    assert key in result.output and "holds your API key in full" in result.output
    snippet = result.stdout.split("\n", 1)[1].split("\n\n# ", 1)[0].split("\nnote: ", 1)[0]
    loaded = tomllib.loads(snippet) if tool == "codex" else json.loads(snippet)
    assert loaded == expected(tool, gateway.url, key)


def test_print_shows_the_variables_to_export(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    codex = configure(gateway, "codex", tmp_path, "--model", MODEL, "--print", key=key)
    assert f"export OMNIROUTE_API_KEY={key}" in codex.stdout
    claude = configure(gateway, "claude-code", tmp_path, "--model", MODEL, "--print", key=key)
    assert f"export ANTHROPIC_BASE_URL={gateway.url}" in claude.stdout
    assert f"export ANTHROPIC_AUTH_TOKEN={key}" in claude.stdout


def test_print_without_a_key_shows_a_placeholder(gateway: LocalTarget, tmp_path: Path) -> None:
    result = configure(gateway, "codex", tmp_path, "--model", MODEL, "--print")
    assert result.exit_code == 0, result.output
    assert "export OMNIROUTE_API_KEY='<your OmniRoute API key>'" in result.stdout
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Keys and models
# --------------------------------------------------------------------------------------------


def test_without_a_key_nothing_is_written(gateway: LocalTarget, tmp_path: Path) -> None:
    result = configure(gateway, "claude-code", tmp_path, "--model", MODEL)
    assert result.exit_code == 2
    assert "no API key" in result.output and "--create-key" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_key_comes_from_the_environment(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    env = gateway.env | {"OMNIROUTE_API_KEY": key}
    args = ["configure", "opencode", "--home", str(tmp_path), "--model", MODEL]
    result = CliRunner().invoke(app, args, env=ISOLATED | env)
    assert result.exit_code == 0, result.output
    assert key not in result.output
    assert parse(tmp_path / FILES["opencode"])["provider"]["omniroute"]["options"]["apiKey"] == key


def test_a_model_the_gateway_does_not_serve_is_written_with_a_warning(
    gateway: LocalTarget, key: str, tmp_path: Path
) -> None:
    result = configure(gateway, "claude-code", tmp_path, "--model", "nope/missing", key=key)
    assert result.exit_code == 0, result.output
    assert "does not list the model 'nope/missing'" in result.output and MODEL in result.output
    assert parse(tmp_path / FILES["claude-code"])["env"]["ANTHROPIC_MODEL"] == "nope/missing"


def test_an_unreachable_gateway_only_skips_the_model_check(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    result = configure(gateway, "codex", tmp_path, "--base-url", nobody, key=key)
    assert result.exit_code == 0, result.output
    assert "could not check the model" in result.output
    doc = parse(tmp_path / FILES["codex"])
    assert doc["model"] == "cx/gpt-5.2-codex"  # the tool's default
    assert doc["model_providers"]["omniroute"]["base_url"] == nobody + "/v1"


# The embedded store is one per process, so these change the module's gateway and put it back.


@pytest.fixture
def keys_required(gateway: LocalTarget) -> Iterator[LocalTarget]:
    gateway.call("PATCH", "/api/settings", {"requireApiKey": True})
    try:
        yield gateway
    finally:
        gateway.call("PATCH", "/api/settings", {"requireApiKey": False})


@pytest.fixture
def combo(gateway: LocalTarget) -> Iterator[str]:
    gateway.call("POST", "/api/combos", {"name": "daily", "models": [MODEL, "ds/deepseek-reasoner"]}, 201)
    try:
        yield "daily"
    finally:
        gateway.call("DELETE", "/api/combos/daily", status=204)


def test_the_default_model_is_the_first_combo(gateway: LocalTarget, key: str, combo: str, tmp_path: Path) -> None:
    result = configure(gateway, "openclaw", tmp_path, key=key)
    assert result.exit_code == 0, result.output
    assert parse(tmp_path / FILES["openclaw"])["agents"]["defaults"]["model"]["primary"] == f"omniroute/{combo}"
    assert "warning" not in result.output


def test_create_key_writes_a_new_key_the_gateway_accepts(keys_required: LocalTarget, tmp_path: Path) -> None:
    keyed_gateway = keys_required
    result = configure(keyed_gateway, "claude-code", tmp_path, "--create-key", "--model", MODEL)
    assert result.exit_code == 0, result.output
    written = parse(tmp_path / FILES["claude-code"])["env"]["ANTHROPIC_AUTH_TOKEN"]
    assert written not in result.output
    names = [k["name"] for k in keyed_gateway.call("GET", "/api/keys")["keys"]]
    assert "Claude Code (omniroute configure)" in names
    models = httpx.get(keyed_gateway.url + "/v1/models", headers={"authorization": f"Bearer {written}"})
    assert models.status_code == 200 and MODEL in {m["id"] for m in models.json()["data"]}
    assert "could not check" not in result.output  # the new key listed the models


def test_create_key_for_a_tool_that_reads_it_from_the_environment_needs_print(
    keys_required: LocalTarget, tmp_path: Path
) -> None:
    keyed_gateway = keys_required
    before = len(keyed_gateway.call("GET", "/api/keys")["keys"])
    refused = configure(keyed_gateway, "codex", tmp_path, "--create-key")
    assert refused.exit_code == 2 and "add --print" in refused.output
    assert list(tmp_path.iterdir()) == [] and len(keyed_gateway.call("GET", "/api/keys")["keys"]) == before
    shown = configure(keyed_gateway, "codex", tmp_path, "--create-key", "--print")
    assert shown.exit_code == 0, shown.output
    [line] = [line for line in shown.stdout.splitlines() if line.startswith("export OMNIROUTE_API_KEY=")]
    new_key = line.removeprefix("export OMNIROUTE_API_KEY=")
    models = httpx.get(keyed_gateway.url + "/v1/models", headers={"authorization": f"Bearer {new_key}"})
    assert models.status_code == 200
    assert list(tmp_path.iterdir()) == []


def test_a_key_the_gateway_refuses_is_reported(keys_required: LocalTarget, tmp_path: Path) -> None:
    keyed_gateway = keys_required
    result = configure(keyed_gateway, "opencode", tmp_path, "--model", MODEL, key="sk-omni-not-a-key-of-this-gateway")
    assert result.exit_code == 0, result.output
    assert "the gateway refused the API key (HTTP 401)" in result.output


# --------------------------------------------------------------------------------------------
# Tools configured in their own UI
# --------------------------------------------------------------------------------------------


def test_cline_prints_its_ui_steps_and_writes_nothing(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    result = configure(gateway, "cline", tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 0, result.output
    assert "API Provider: OpenAI Compatible" in result.output
    assert f"Base URL: {gateway.url}/v1" in result.output and f"Model ID: {MODEL}" in result.output
    assert f"API Key: {key[:4]}…{key[-4:]}" in result.output and "nothing was written" in result.output
    assert list(tmp_path.iterdir()) == []
    shown = configure(gateway, "cline", tmp_path, "--model", MODEL, "--print", key=key)
    assert f"API Key: {key}" in shown.output


def test_cursor_warns_that_it_cannot_reach_a_local_gateway(gateway: LocalTarget, key: str, tmp_path: Path) -> None:
    result = configure(gateway, "cursor", tmp_path, "--model", MODEL, key=key)
    assert result.exit_code == 0, result.output
    assert "Override OpenAI Base URL" in result.output and f"{gateway.url}/v1" in result.output
    assert "cannot reach" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "private"),
    [
        ("http://127.0.0.1:20128", True),
        ("http://localhost:20128", True),
        ("http://192.168.1.20:20128", True),
        ("http://[::1]:20128", True),
        ("https://abc123.lambda-url.eu-west-1.on.aws", False),
        ("https://8.8.8.8", False),
    ],
)
def test_which_gateway_urls_a_vendors_servers_cannot_reach(url: str, private: bool) -> None:
    assert is_private_host(url) is private


def test_help_says_which_tools_get_no_file(gateway: LocalTarget) -> None:
    result = gateway.run("configure", "--help")
    assert result.exit_code == 0
    for tool in ("claude-code", "codex", "opencode", "openclaw", "cline", "cursor"):
        assert tool in result.output
    assert "nothing is written" in gateway.run("configure", "cline", "--help").output


def test_home_defaults_to_the_users_home(gateway: LocalTarget, key: str) -> None:
    result = gateway.run("configure", "claude-code", "--key", key, "--model", MODEL)
    assert result.exit_code == 0, result.output
    path = gateway.home / FILES["claude-code"]
    try:
        assert parse(path)["env"]["ANTHROPIC_AUTH_TOKEN"] == key
    finally:
        os.remove(path)
