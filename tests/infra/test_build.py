"""`sam build` of template.yaml without Docker, and what the arm64/python3.13 artifacts contain.

They cannot run here (aarch64 extension modules, another Python), so they are inspected: handlers and
run.sh, wheel tags of every installed distribution, extension modules' ABI, and nothing from the local or
dev extras. The host-compatible variant of the same recipe is run in test_artifacts_*.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from shared.adapters.dynamo.tables import _CfnLoader
from tests.infra.conftest import FUNCTIONS, HOST_PYTHON, REPO

# Packages that must never ship: the embedded store, the CLI, test and lint tools, local-only crypto.
FORBIDDEN = {
    "moto", "typer", "rich", "click_default_group", "pytest", "_pytest", "hypothesis", "openai", "anthropic",
    "google", "mypy", "ruff", "importlinter", "boto3", "cryptography", "yaml", "responses", "werkzeug", "flask",
    "tests", "companion", "bench",
}  # fmt: skip
HANDLER_MODULES = {
    "GatewayFunction": "functions/gateway/cloud.py",
    "AdminFunction": "functions/admin/cloud.py",
    "TokenRefreshFunction": "functions/scheduled/token_refresh.py",
    "UsageRollupFunction": "functions/scheduled/usage_rollup.py",
    "QuotaPollFunction": "functions/scheduled/quota_poll.py",
}
_WHEEL_TAG = re.compile(r"^Tag: (\S+)$", re.M)


def _built_template(build_dir: Path) -> dict[str, object]:
    doc: dict[str, object] = yaml.load((build_dir / "template.yaml").read_text(), Loader=_CfnLoader)
    return doc


def _tags(artifact: Path) -> dict[str, list[str]]:
    return {wheel.parent.name: _WHEEL_TAG.findall(wheel.read_text()) for wheel in artifact.glob("*.dist-info/WHEEL")}


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def test_sam_build_makes_every_function(sam_build_dir: Path) -> None:
    template = _built_template(sam_build_dir)
    resources = template["Resources"]
    assert isinstance(resources, dict)
    for function in FUNCTIONS:
        props = resources[function]["Properties"]
        assert props["CodeUri"] == function  # built artifacts, one folder per function
        artifact = sam_build_dir / function
        manifest = json.loads((artifact / "omniroute-build.json").read_text())
        assert manifest["function"] == function and manifest["pythonVersion"] == "3.13"
        assert manifest["platform"] == "manylinux2014_aarch64"
        assert (artifact / HANDLER_MODULES[function]).is_file()
        handler = props["Handler"]
        if function != "GatewayFunction":
            module, _, attr = handler.rpartition(".")
            source = (artifact / (module.replace(".", "/") + ".py")).read_text()
            assert re.search(rf"^(def {attr}\(|{attr} = )", source, re.M), f"{handler} not defined"
    print("\nartifact sizes (MB unzipped): " + ", ".join(f"{f} {_size_mb(sam_build_dir / f):.1f}" for f in FUNCTIONS))


def test_gateway_run_sh_is_the_lwa_entry_point(sam_build_dir: Path) -> None:
    run_sh = sam_build_dir / "GatewayFunction" / "run.sh"
    assert run_sh.stat().st_mode & 0o111 == 0o111, "run.sh must be executable by Lambda"
    raw = run_sh.read_bytes()
    assert raw.startswith(b"#!/bin/sh\n") and b"\r" not in raw  # CRLF would break the shebang
    text = raw.decode()
    assert "functions.gateway.cloud:app" in text and "AWS_LWA_PORT" in text and "127.0.0.1" in text


@pytest.mark.parametrize("function", FUNCTIONS)
def test_arm64_wheels_match_the_target(sam_build_dir: Path, function: str) -> None:
    artifact = sam_build_dir / function
    tags = _tags(artifact)
    assert tags, "no installed distributions"
    for dist, dist_tags in tags.items():
        for tag in dist_tags:
            interpreter, abi, plat = tag.split("-")
            if plat == "any":
                assert abi == "none" and interpreter.startswith(("py3", "py2")), f"{dist}: {tag}"
                continue
            assert plat.endswith("_aarch64") and plat.startswith("manylinux"), f"{dist}: {tag}"
            assert interpreter in ("cp313",) or abi == "abi3", f"{dist}: {tag}"
    for ext in artifact.rglob("*.so"):
        assert "cpython-313-aarch64-linux-gnu" in ext.name or ".abi3." in ext.name, ext.relative_to(artifact)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_local_dev_or_test_packages_ship(sam_build_dir: Path, function: str) -> None:
    artifact = sam_build_dir / function
    top_level = {p.name.split(".")[0].split("-")[0] for p in artifact.iterdir()}
    assert not (top_level & FORBIDDEN), sorted(top_level & FORBIDDEN)
    assert not [p for top in ("shared", "functions") for p in (artifact / top).rglob("test_*.py")]
    assert not (artifact / "bin").exists()
    # botocore ships every AWS service's model (~20 MB of JSON); we keep the two we call
    services = {p.name for p in (artifact / "botocore" / "data").iterdir() if p.is_dir()}
    assert services == {"dynamodb", "kms"}
    # only the function's own package of ours
    ours = {p.name for p in (artifact / "functions").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert ours == {Path(HANDLER_MODULES[function]).parent.name}


def test_host_variant_comes_from_the_same_recipe(host_artifacts: dict[str, Path], sam_build_dir: Path) -> None:
    """Same files of ours, and every distribution the cloud gets at the same version (the host's Python may
    need a backport more); only platform and Python differ."""
    for function in FUNCTIONS:
        host, arm = host_artifacts[function], sam_build_dir / function
        manifest = json.loads((host / "omniroute-build.json").read_text())
        assert manifest["pythonVersion"] == HOST_PYTHON and manifest["bytecode"] is True

        def ours(root: Path) -> set[str]:
            return {
                str(p.relative_to(root))
                for top in ("shared", "functions")
                for p in (root / top).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            }

        assert ours(host) == ours(arm)
        assert {p.name for p in arm.glob("*.dist-info")} <= {p.name for p in host.glob("*.dist-info")}
        assert (host / "run.sh").exists() == (arm / "run.sh").exists()


def test_pinned_requirements_are_declared_in_pyproject() -> None:
    import tomllib

    declared = {
        re.split(r"[<>=\[ ]", dep, maxsplit=1)[0].lower()
        for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    for req in (REPO / "infra" / "requirements").glob("*.txt"):
        for line in req.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                assert version, f"{req.name}: {line} is not pinned"
                assert name.lower() in declared, f"{req.name}: {name} is not in pyproject.toml's dependencies"
