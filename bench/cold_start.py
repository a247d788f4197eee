"""Cold start of the packaged gateway, its import profile, artifact sizes, and store calls per request.

    python -m bench.cold_start [--runs 7] [--quick]

What it does, all on loopback:
1. builds the gateway artifact for this machine with infra/Makefile (the recipe `sam build` runs for arm64);
2. starts moto's server (DynamoDB + KMS), creates the tables from template.yaml and a key, and seeds a
   provider node on a fake OpenAI upstream, its API key (KMS-sealed) and a gateway API key;
3. N times: starts the artifact's `run.sh` in a clean interpreter (only the standard library and the
   artifact importable), as Lambda Web Adapter does, and measures process start → readiness (`/healthz`)
   and process start → first answered chat completion (a real keyed request through to the upstream);
4. runs `python -X importtime` on the entry module and prints the heaviest imports;
5. counts the requests the gateway makes to DynamoDB and KMS during a warm burst (moto's server logs
   every request), which is what a request costs in store calls;
6. prints each function's artifact size (unzipped and zipped) from the same recipe.

Figures are printed, never asserted (bench/README.md keeps them).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import botocore.session
import httpx

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
FUNCTIONS = ("GatewayFunction", "AdminFunction", "TokenRefreshFunction", "UsageRollupFunction", "QuotaPollFunction")
UPSTREAM_KEY = "sk-bench-upstream-0123456789"


def python_version(exe: str) -> str:
    out = subprocess.run(
        [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    )
    return out.stdout.strip()


def build(function: str, root: Path, python: str) -> Path:
    """The function's artifact for this machine and `python`, whose directory goes first on PATH so the
    recipe compiles bytecode with it."""
    target = root / function
    subprocess.run(
        [
            "make", "--no-print-directory", "-f", str(REPO / "infra" / "Makefile"), f"build-{function}",
            f"ARTIFACTS_DIR={target}", f"TARGET_PLATFORM=manylinux2014_{platform.machine()}",
            f"TARGET_PYTHON={python_version(python)}", f"PYTHON={sys.executable}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PATH": f"{Path(python).parent}:{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    return target


def sizes(artifact: Path) -> tuple[float, float]:
    """(unzipped MB, zipped MB as Lambda would get it)."""
    files = [f for f in artifact.rglob("*") if f.is_file()]
    raw = sum(f.stat().st_size for f in files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f.relative_to(artifact))
    return raw / 1e6, buf.tell() / 1e6


class CountingHandler(logging.Handler):
    """moto's server logs one werkzeug line per request it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if '"POST / HTTP' in record.getMessage():
            self.count += 1


def clean_python(bindir: Path, python: str, *, no_bytecode: bool) -> Path:
    """`python3` seeing only the standard library (and, run from the artifact, the artifact)."""
    flags = "-S -s -E -B" if no_bytecode else "-S -s -E"
    wrapper = bindir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" {flags} "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--burst", type=int, default=200, help="warm requests whose store calls are counted")
    parser.add_argument("--quick", action="store_true", help="2 runs, 20 warm requests (a smoke test)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the CPython to build for and run with (e.g. a python3.13, Lambda's version); default: this one",
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="drop the compiled .pyc and never write any (an arm64 build made without python3.13 on PATH)",
    )
    args = parser.parse_args(argv)
    runs, burst = (2, 20) if args.quick else (args.runs, args.burst)
    for var, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ.setdefault(var, value)

    from moto.server import ThreadedMotoServer

    from shared.adapters.dynamo.config_store import DynamoConfigStore, bind_config_model
    from shared.adapters.dynamo.tables import create_tables
    from shared.adapters.kms import KmsCipher
    from shared.services.admin import ConfigService
    from tests.fakes.openai_upstream import create_app as create_fake
    from tests.fakes.server import ServerThread, free_port

    work = Path(tempfile.mkdtemp(prefix="omniroute-cold-"))
    print(f"building the gateway artifact for {platform.machine()} / Python {python_version(args.python)} ...")
    started = time.perf_counter()
    artifact = build("GatewayFunction", work, args.python)
    print(f"  built in {time.perf_counter() - started:.1f} s")
    if args.no_bytecode:
        for cache in list(artifact.rglob("__pycache__")):
            shutil.rmtree(cache)
        print("  bytecode removed: every start compiles every module, as /var/task is read-only")

    counter = CountingHandler()
    logging.getLogger("werkzeug").addHandler(counter)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = botocore.session.get_session()
    suffix = uuid.uuid4().hex[:8]
    tables = {name: f"{name}-{suffix}" for name in ("ConfigTable", "StateTable", "UsageTable")}
    create_tables(session.create_client("dynamodb", region_name=REGION, endpoint_url=endpoint), tables)
    kms = session.create_client("kms", region_name=REGION, endpoint_url=endpoint)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]

    with ServerThread(create_fake(api_key=UPSTREAM_KEY, record=False)) as upstream:
        admin = ConfigService(
            DynamoConfigStore(bind_config_model(tables["ConfigTable"], REGION, endpoint)),
            KmsCipher(key_arn, REGION, client=kms),
            on_change=lambda: None,
        )
        node = admin.create_node({"name": "Bench", "prefix": "bench", "baseUrl": upstream.base_url + "/v1"})
        admin.create_connection({"provider": node["id"], "apiKey": UPSTREAM_KEY})
        api_key = admin.create_key("bench")["key"]

        bindir = work / "bin"
        bindir.mkdir()
        python = clean_python(bindir, args.python, no_bytecode=args.no_bytecode)
        env = {
            "PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
            "AWS_LAMBDA_FUNCTION_NAME": "omniroute-bench-gateway", "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_ENDPOINT_URL_KMS": endpoint,
            "CONFIG_TABLE": tables["ConfigTable"], "STATE_TABLE": tables["StateTable"],
            "USAGE_TABLE": tables["UsageTable"], "OMNIROUTE_KMS_KEY_ID": key_arn,
            "OMNIROUTE_ALLOW_PRIVATE_UPSTREAMS": "true", "POWERTOOLS_METRICS_NAMESPACE": "OmniRouteEdge",
        }  # fmt: skip
        body = {"model": "bench/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {api_key}"}

        ready_ms: list[float] = []
        first_ms: list[float] = []
        calls_at_start: list[int] = []
        for i in range(runs):
            gw_port = free_port()
            counter.count = 0
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [str(artifact / "run.sh")],
                env={**env, "AWS_LWA_PORT": str(gw_port)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            base = f"http://127.0.0.1:{gw_port}"
            ready = None
            with httpx.Client(timeout=5) as client:
                while True:
                    if proc.poll() is not None:
                        print(proc.stderr.read().decode() if proc.stderr else "", file=sys.stderr)
                        raise SystemExit(f"run.sh exited with {proc.returncode}")
                    try:
                        if ready is None and client.get(base + "/healthz").status_code == 200:
                            ready = time.perf_counter()
                        if ready is not None:
                            resp = client.post(base + "/v1/chat/completions", json=body, headers=headers)
                            if resp.status_code != 200:
                                raise SystemExit(f"first request answered {resp.status_code}: {resp.text}")
                            break
                    except httpx.TransportError:
                        time.sleep(0.002)
                first = time.perf_counter()
                ready_ms.append((ready - t0) * 1000)
                first_ms.append((first - t0) * 1000)
                calls_at_start.append(counter.count)
                if i == runs - 1:
                    counter.count = 0
                    for _ in range(burst):
                        resp = client.post(base + "/v1/chat/completions", json=body, headers=headers)
                        if resp.status_code != 200:
                            raise SystemExit(f"warm request answered {resp.status_code}: {resp.text}")
                    warm_calls = counter.count
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)

        print(f"\ncold start over {runs} runs (process start → ...), ms:")
        for label, values in (("readiness (/healthz)", ready_ms), ("first answered chat request", first_ms)):
            median, low, high = statistics.median(values), min(values), max(values)
            print(f"  {label:28s} median {median:7.1f}   min {low:7.1f}   max {high:7.1f}")
        print("  (target: first answer ≤ 800 ms; Lambda adds its own sandbox and LWA start before this)")
        print(
            f"  store calls during start-up and first request: {statistics.median(calls_at_start):.0f}"
            " (DynamoDB Scan of the configuration + one KMS Decrypt per stored credential)"
        )
        print(f"  store calls during {burst} warm requests: {warm_calls} ({warm_calls / burst:.3f} per request)")

        profile = subprocess.run(
            [str(python), "-X", "importtime", "-c", "import functions.gateway.cloud"],
            cwd=artifact, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        print_import_profile(profile.stderr)
    moto.stop()

    print("\nartifact sizes (this machine's variant; the arm64 build is within a few MB):")
    for function in FUNCTIONS[:1] if args.quick else FUNCTIONS:
        path = artifact if function == "GatewayFunction" else build(function, work, args.python)
        raw, zipped = sizes(path)
        print(f"  {function:22s} {raw:6.1f} MB unzipped   {zipped:5.1f} MB zipped")
    print("Finished in", f"{time.perf_counter() - started:.1f} s")
    return 0


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def print_import_profile(stderr: str) -> None:
    """Total import time, and each package's own import (its root module's cumulative time, which
    includes whatever it imported first, so nested packages overlap)."""
    roots: dict[str, int] = {}
    total = 0
    for match in _LINE.finditer(stderr):
        self_us, cumulative_us, _indent, name = match.groups()
        total += int(self_us)
        if "." not in name:
            roots[name] = max(roots.get(name, 0), int(cumulative_us))
    print(f"\nimport profile of functions.gateway.cloud: {total / 1000:.0f} ms in all; heaviest packages:")
    for package, us in sorted(roots.items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {package:28s} {us / 1000:7.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
