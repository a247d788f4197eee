"""Fixtures for the cloud shape: SAM tools, built artifacts, and a moto "account" the artifacts run against.

- `sam_build_dir`: `sam build` of template.yaml (arm64, python3.13: inspected, not run).
- `host_artifacts`: the same Makefile targets built for this machine's platform and Python, run in a
  clean interpreter (`clean_python`: `-S -s -E`, so nothing but the standard library and the artifact
  can be imported).
- `cloud`: DynamoDB tables from template.yaml and a KMS key on moto's server, the environment a
  function gets from the template, and the cloud's own services to seed configuration with.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest

REPO = Path(__file__).resolve().parents[2]
SAM_VENV = Path(os.environ.get("OMNIROUTE_SAM_VENV") or REPO / ".venv-sam")
FUNCTIONS = ("GatewayFunction", "AdminFunction", "TokenRefreshFunction", "UsageRollupFunction", "QuotaPollFunction")
HOST_PLATFORM = f"manylinux2014_{platform.machine()}"
# The interpreter the host variant is built for and run with: this one, or another CPython on this machine
# (e.g. OMNIROUTE_ARTIFACT_PYTHON=python3.13, Lambda's version, where one is installed).
ARTIFACT_PYTHON = os.environ.get("OMNIROUTE_ARTIFACT_PYTHON") or sys.executable
HOST_PYTHON = subprocess.run(
    [ARTIFACT_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
    capture_output=True,
    text=True,
    check=True,
).stdout.strip()
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: the recorded events use it too


def sam_tool(name: str) -> Path:
    exe = SAM_VENV / "bin" / name
    if not exe.exists():
        pytest.fail(f"{exe} is missing: `./dev test` installs the AWS SAM CLI into {SAM_VENV.name}/")
    return exe


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        shown = " ".join(map(str, command))
        pytest.fail(f"{shown} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def sam_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sam") / "build"
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    run(
        [sam_tool("sam"), "build", "--template-file", REPO / "template.yaml", "--build-dir", out],
        cwd=REPO,
        env=env,
    )
    return out


def build_variant(function: str, target: Path, platform_tag: str, python_version: str) -> Path:
    """Build one function with infra/Makefile, exactly as `sam build` runs it, for another target."""
    run(
        [
            "make", "--no-print-directory", "-f", REPO / "infra" / "Makefile", f"build-{function}",
            f"ARTIFACTS_DIR={target}", f"TARGET_PLATFORM={platform_tag}", f"TARGET_PYTHON={python_version}",
            f"PYTHON={sys.executable}",
        ],
        cwd=target.parent,
        # the target interpreter on PATH, so the recipe compiles bytecode with it
        env={**os.environ, "PATH": f"{Path(ARTIFACT_PYTHON).parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    return target


@pytest.fixture(scope="session")
def host_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("host-artifacts")
    return {fn: build_variant(fn, root / fn, HOST_PLATFORM, HOST_PYTHON) for fn in FUNCTIONS}


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `python3` on PATH that sees only the standard library: no site-packages, no user site, no
    PYTHON* variables. Run from an artifact's root, it imports the artifact and nothing else."""
    bindir = tmp_path_factory.mktemp("clean-bin")
    wrapper = bindir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{ARTIFACT_PYTHON}" -S -s -E "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


@dataclass
class CloudAccount:
    """A moto-backed stand-in for the deployed stack's tables and key."""

    endpoint: str
    tables: dict[str, str]
    key_arn: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, function_name: str, clean_python: Path, **overrides: str) -> dict[str, str]:
        """The environment template.yaml gives a function, pointed at moto, plus what Lambda sets."""
        env = {
            "PATH": f"{clean_python.parent}:/usr/bin:/bin",
            "HOME": str(clean_python.parent),
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
            "AWS_ENDPOINT_URL_KMS": self.endpoint,
            "CONFIG_TABLE": self.tables["ConfigTable"],
            "STATE_TABLE": self.tables["StateTable"],
            "USAGE_TABLE": self.tables["UsageTable"],
            "OMNIROUTE_KMS_KEY_ID": self.key_arn,
            "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": "false",
            "POWERTOOLS_METRICS_NAMESPACE": "OmniRouteEdge",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def client(self, service: str) -> Any:
        return botocore.session.get_session().create_client(service, region_name=REGION, endpoint_url=self.endpoint)

    def services(self) -> Any:
        """The cloud's admin service, in this process, on the same tables and key (to seed and to check)."""
        from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
        from shared.adapters.kms import KmsCipher
        from shared.services.admin import ConfigService

        store = DynamoConfigStore(bind_config_model(self.tables["ConfigTable"], REGION, self.endpoint))
        cipher = KmsCipher(self.key_arn, REGION, client=self.client("kms"))
        return ConfigService(store, cipher, on_change=lambda: None)


@pytest.fixture
def cloud(moto_endpoint: str) -> CloudAccount:
    from shared.adapters.dynamo.tables import create_tables

    suffix = uuid.uuid4().hex[:8]
    names = {logical: f"{logical}-{suffix}" for logical in ("ConfigTable", "StateTable", "UsageTable")}
    session = botocore.session.get_session()
    create_tables(session.create_client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint), names)
    kms = session.create_client("kms", region_name=REGION, endpoint_url=moto_endpoint)
    key_arn = kms.create_key(Description=f"omniroute test {suffix}")["KeyMetadata"]["Arn"]
    return CloudAccount(endpoint=moto_endpoint, tables=names, key_arn=key_arn)
