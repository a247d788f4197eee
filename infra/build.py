"""Build one Lambda function's artifact without Docker: wheels for the target platform, then our code.

    python infra/build.py GatewayFunction <artifacts dir> [--platform manylinux2014_aarch64] [--python-version 3.13]

`sam build` runs it through infra/Makefile (BuildMethod: makefile) with the cloud's target, arm64 and
Python 3.13. Any other manylinux platform and CPython version gives a variant built by the same recipe,
e.g. one this machine can import in tests. Standard library only: it runs before anything is installed.

What an artifact holds:
- the function's pinned requirements (infra/requirements/<group>.txt) as binary wheels for the target,
  nothing compiled here, nothing from the dev or local extras (moto, typer, test tools);
- botocore's service models cut down to the services we call (DynamoDB, KMS): the rest is ~20 MB of JSON;
- `shared/` and the function's own package; the gateway also gets `run.sh` at the root (its handler);
- bytecode compiled by the target interpreter when one is on PATH (`unchecked-hash` .pyc, which stay
  valid in SAM's zip whose timestamps are all 1980), since /var/task is read-only and Lambda would
  otherwise compile every module at each cold start;
- `omniroute-build.json`, saying what was built for which target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Logical id in template.yaml → (requirements group, packages of ours beside `shared`).
FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "GatewayFunction": ("gateway", ("functions/gateway",)),
    "AdminFunction": ("admin", ("functions/admin",)),
    "TokenRefreshFunction": ("scheduled", ("functions/scheduled",)),
    "UsageRollupFunction": ("scheduled", ("functions/scheduled",)),
    "QuotaPollFunction": ("scheduled", ("functions/scheduled",)),
}
BOTOCORE_SERVICES = ("dynamodb", "kms")
_PLATFORM = re.compile(r"^manylinux(2014|_2_\d+)_(x86_64|aarch64)$")
_SKIP_CODE = {"__pycache__", "tests"}


def platform_tags(platform: str) -> list[str]:
    """`manylinux2014_aarch64` also admits the newer manylinux_2_28 wheels (Amazon Linux 2023 has glibc 2.34)."""
    m = _PLATFORM.match(platform)
    if not m:
        raise SystemExit(f"--platform must be a manylinux tag such as manylinux2014_aarch64, got {platform!r}")
    arch = m.group(2)
    return [platform, *(t for t in (f"manylinux_2_17_{arch}", f"manylinux_2_28_{arch}") if t != platform)]


def install_requirements(group: str, target: Path, platform: str, python_version: str) -> None:
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--target", str(target),
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--no-compile",
        "--requirement", str(ROOT / "infra" / "requirements" / f"{group}.txt"),
    ]  # fmt: skip
    for tag in platform_tags(platform):
        command += ["--platform", tag]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # pip's own chatter (e.g. about unreachable find-links) only when it failed
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"pip could not install infra/requirements/{group}.txt for {platform} / {python_version}")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts point at this machine's interpreter


def prune_botocore(target: Path) -> None:
    data = target / "botocore" / "data"
    if not data.is_dir():
        return
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)


def copy_code(target: Path, packages: tuple[str, ...]) -> None:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SKIP_CODE or n.endswith((".pyc", ".pyo"))}

    shutil.copytree(ROOT / "shared", target / "shared", ignore=ignore)
    (target / "functions").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "functions" / "__init__.py", target / "functions" / "__init__.py")
    for package in packages:
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    run_sh = target / "functions" / "gateway" / "run.sh"
    if run_sh.exists():
        shutil.copy2(run_sh, target / "run.sh")
        os.chmod(target / "run.sh", 0o755)
        os.chmod(run_sh, 0o755)


def target_interpreter(python_version: str) -> str | None:
    """An interpreter of the target version, to write bytecode Lambda can use; None when there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return sys.executable
    exe = shutil.which(f"python{python_version}")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    return exe if probe.returncode == 0 else None  # e.g. a pyenv shim for a version that is not selected


def compile_bytecode(target: Path, python_version: str) -> bool:
    exe = target_interpreter(python_version)
    if exe is None:
        print(
            f"note: no python{python_version} on PATH, so no bytecode was compiled; "
            "Lambda will compile modules at each cold start",
            file=sys.stderr,
        )
        return False
    command = [exe, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(target)]
    # A module written for another Python (none known in our pins) would fail to compile; it still ships.
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    return True


def build(function: str, target: Path, platform: str, python_version: str) -> dict[str, object]:
    if function not in FUNCTIONS:
        raise SystemExit(f"unknown function {function!r}; one of: {', '.join(FUNCTIONS)}")
    group, packages = FUNCTIONS[function]
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise SystemExit(f"{target} is not empty; give an empty (or new) directory")
    install_requirements(group, target, platform, python_version)
    prune_botocore(target)
    copy_code(target, packages)
    compiled = compile_bytecode(target, python_version)
    manifest: dict[str, object] = {
        "function": function,
        "requirements": group,
        "platform": platform,
        "pythonVersion": python_version,
        "bytecode": compiled,
        "botocoreServices": list(BOTOCORE_SERVICES),
    }
    (target / "omniroute-build.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="logical id in template.yaml, e.g. GatewayFunction")
    parser.add_argument("artifacts_dir", type=Path)
    parser.add_argument("--platform", default="manylinux2014_aarch64")
    parser.add_argument("--python-version", default="3.13")
    args = parser.parse_args(argv)
    build(args.function, args.artifacts_dir, args.platform, args.python_version)


if __name__ == "__main__":
    main()
