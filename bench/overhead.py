"""Added latency and throughput of the gateway against the fake upstream and the barest FastAPI + httpx proxy.

    python -m bench.overhead [--requests 2000] [--concurrency 16] [--duration 6] [--rounds 3] [--quick]

Three servers, each in its own subprocess on a free loopback port: the fake OpenAI upstream (request log
off), the bare pass-through proxy (`bench.bare_proxy`) pointed at it, and the real gateway
(`python -m companion.cli serve`, temp data dir, API keys required) configured through its admin API with a
provider node `bench` on the fake. Every gateway request carries a real gateway API key, so the key check is
part of what is measured.

Three targets are measured side by side (DESIGN §8):
    direct   the fake upstream itself            model "gpt-4o-mini"
    bare     the bare proxy in front of it        model "gpt-4o-mini"
    gateway  `omniroute serve` in front of it     model "bench/gpt-4o-mini"

1. Latency at concurrency 1 over one persistent keep-alive connection per target, non-stream and stream,
   interleaved round by round (direct, bare, gateway, rotating the order) so machine noise hits all three
   alike. Stream latency is the time until the whole body, `data: [DONE]` included, has been read; TTFB is
   the time until the first body byte (the first SSE chunk) arrived. The client is a raw-socket HTTP/1.1
   client written here (sendall + recv + a minimal response parser): the same few microseconds for every
   target, and far less than httpx would add.
2. Throughput at concurrency C (default 16): C keep-alive connections per target driven by an asyncio
   client (uvloop when installed) built on `asyncio.Protocol` and the same parser, for a fixed time per
   target (split into rounds that alternate between targets), bounded in count as well.

Everything is on 127.0.0.1; every loop is bounded in count and time; the servers are torn down on exit,
on Ctrl-C and on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, cast

import httpx
import orjson

from bench.stats import percentile

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
HOST: Final = "127.0.0.1"
UPSTREAM_MODEL: Final = "gpt-4o-mini"
GATEWAY_MODEL: Final = "bench/" + UPSTREAM_MODEL
PROMPT: Final = "hi"
DONE_FRAME: Final = b"data: [DONE]\n\n"
SOCKET_TIMEOUT: Final = 10.0


# --------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 response parser and the two clients built on it
# --------------------------------------------------------------------------------------------


class ResponseParser:
    """Incremental parser of one HTTP/1.1 response (Content-Length or chunked), reusable across responses.

    `feed()` returns True once the response is complete; `body_seen` turns True when the first byte after
    the header block has arrived (time to first byte of the body).
    """

    __slots__ = ("_buf", "_chunked", "_remaining", "body", "body_seen", "head_done", "status")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buf = bytearray()
        self._chunked = False
        self._remaining = 0
        self.body = bytearray()
        self.body_seen = False
        self.head_done = False
        self.status = 0

    def feed(self, data: bytes) -> bool:
        buf = self._buf
        buf += data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            self.status = int(head[9:12])
            self.head_done = True
            if b"\r\ntransfer-encoding: chunked" in head:
                self._chunked = True
            else:
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise ValueError("response without Content-Length or chunked encoding")
                line_end = head.find(b"\r\n", at + 2)
                self._remaining = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if buf:
            self.body_seen = True
        if not self._chunked:
            if len(buf) < self._remaining:
                return False
            self.body += buf[: self._remaining]
            del buf[: self._remaining]
            return True
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                # Last chunk; no trailers are sent by these servers, so the response ends with one more CRLF.
                if len(buf) < line_end + 4:
                    return False
                del buf[: line_end + 4]
                return True
            if len(buf) < line_end + 2 + size + 2:
                return False
            self.body += buf[line_end + 2 : line_end + 2 + size]
            del buf[: line_end + 2 + size + 2]


def build_request(port: int, model: str, *, stream: bool, api_key: str) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    payload = orjson.dumps(body)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {HOST}:{port}\r\ncontent-type: application/json\r\n"
        f"accept: {'text/event-stream' if stream else 'application/json'}\r\n"
        f"authorization: Bearer {api_key}\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def check_response(status: int, body: bytes | bytearray, *, stream: bool) -> str | None:
    """None when the answer is what the fake upstream sends; otherwise what is wrong with it."""
    if status != 200:
        return f"HTTP {status}: {bytes(body[:200])!r}"
    if stream:
        if not body.endswith(DONE_FRAME) or b"Hello from fake-openai" in body:
            # Streamed text comes word by word, so the whole reply must never appear in one piece.
            return f"bad stream: ...{bytes(body[-120:])!r}"
    elif not body.startswith(b"{") or b'"chat.completion"' not in body:
        return f"bad JSON answer: {bytes(body[:200])!r}"
    return None


class KeepAliveClient:
    """Blocking client over one persistent connection: sendall, then recv until the parser says done."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ResponseParser()

    def request(self, raw: bytes) -> tuple[float, float]:
        """(seconds until the response was complete, seconds until the first body byte)."""
        parser = self.parser
        parser.reset()
        recv = self.sock.recv
        t0 = time.perf_counter()
        self.sock.sendall(raw)
        ttfb = 0.0
        while True:
            data = recv(65536)
            now = time.perf_counter()
            if not data:
                raise ConnectionError("server closed the connection")
            done = parser.feed(data)
            if ttfb == 0.0 and parser.body_seen:
                ttfb = now - t0
            if done:
                return now - t0, ttfb

    def close(self) -> None:
        self.sock.close()


class _AsyncConnection(asyncio.Protocol):
    """One keep-alive connection for the throughput client: write the request, wake the caller when parsed."""

    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        try:
            done = self.parser.feed(data)
        except ValueError as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return
        if done and waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"server closed the connection ({exc})"))

    async def request(self, raw: bytes) -> None:
        assert self.transport is not None
        self.parser.reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        await self.waiter


# --------------------------------------------------------------------------------------------
# Statistics and formatting
# --------------------------------------------------------------------------------------------


@dataclass
class Dist:
    values: list[float] = field(default_factory=list)

    def summary(self) -> tuple[float, float, float, float]:
        """(p50, p90, p99, mean) in milliseconds."""
        v = sorted(self.values)
        mean = sum(v) / len(v) if v else math.nan
        return percentile(v, 50) * 1e3, percentile(v, 90) * 1e3, percentile(v, 99) * 1e3, mean * 1e3


def ms(value: float, signed: bool = False) -> str:
    return f"{value:+.3f}" if signed else f"{value:.3f}"


# --------------------------------------------------------------------------------------------
# The servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies without tearing down (Linux only)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Servers:
    """Starts the subprocesses and always stops them again (SIGTERM, then SIGKILL after 5 s)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[Server] = []

    def spawn(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> Server:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: a terminal's Ctrl-C reaches only the benchmark, which then stops the
                # servers in order; PR_SET_PDEATHSIG covers the benchmark being killed outright.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        server = Server(name, port, proc, log_path)
        self.servers.append(server)
        return server

    def wait_ready(self, server: Server, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
            try:
                httpx.get(server.base_url + path, timeout=1.0, trust_env=False)
                return  # any HTTP answer means it is accepting requests
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"{server.name} did not become ready in {timeout:.0f} s:\n{server.log_tail()}")

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
        for server in reversed(self.servers):
            try:
                server.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=5)
        self.servers.clear()


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    model: str
    api_key: str
    pid: int | None = None  # the server process, for its CPU time under load

    def request(self, *, stream: bool) -> bytes:
        return build_request(self.port, self.model, stream=stream, api_key=self.api_key)


def configure_gateway(base_url: str, admin_token: str, upstream_url: str) -> str:
    """Provider node `bench` → the fake, a connection with an API key, and a gateway API key (returned)."""
    with httpx.Client(
        base_url=base_url + "/api", headers={"authorization": f"Bearer {admin_token}"}, timeout=10, trust_env=False
    ) as admin:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = admin.post(path, json=body)
            if resp.status_code not in (200, 201):
                raise RuntimeError(f"POST /api{path} answered {resp.status_code}: {resp.text}")
            result: dict[str, Any] = resp.json()
            return result

        node = post(
            "/provider-nodes",
            {"name": "Bench", "prefix": "bench", "baseUrl": upstream_url + "/v1", "apiType": "openai"},
        )["node"]
        post("/providers", {"provider": node["id"], "name": "bench-1", "apiKey": "sk-bench-upstream-0123456789"})
        key: str = post("/keys", {"name": "bench"})["key"]
    # The key check is really on: no key and a wrong key must both be refused.
    for headers in ({}, {"authorization": "Bearer sk-omni-wrong"}):
        resp = httpx.post(
            base_url + "/v1/chat/completions",
            json={"model": GATEWAY_MODEL, "messages": [{"role": "user", "content": PROMPT}]},
            headers=headers,
            timeout=10,
            trust_env=False,
        )
        if resp.status_code != 401:
            raise RuntimeError(f"gateway answered {resp.status_code} to a request without a valid key")
    return key


# --------------------------------------------------------------------------------------------
# Latency at concurrency 1
# --------------------------------------------------------------------------------------------


@dataclass
class LatencyResult:
    total: dict[str, Dist]
    ttfb: dict[str, Dist]
    paired_minus_bare: Dist  # per round: gateway − bare (seconds)
    # CPU seconds per request of each proxy process (the upstream's own CPU is not attributable: it also
    # serves the proxies' calls during the interleaved rounds).
    server_cpu_per_request: dict[str, float | None]


def measure_latency(targets: Sequence[Target], *, stream: bool, warmup: int, rounds: int) -> LatencyResult:
    clients = {t.name: KeepAliveClient(t.port) for t in targets}
    requests = {t.name: t.request(stream=stream) for t in targets}
    total = {t.name: Dist() for t in targets}
    ttfb = {t.name: Dist() for t in targets}
    paired = Dist()
    names = [t.name for t in targets]
    try:
        for _ in range(warmup):
            for name in names:
                clients[name].request(requests[name])
        # Correctness of what is measured: one checked answer per target on the same connection.
        for name in names:
            clients[name].request(requests[name])
            parser = clients[name].parser
            problem = check_response(parser.status, parser.body, stream=stream)
            if problem:
                raise RuntimeError(f"{name}: {problem}")
        gc.collect()
        gc.disable()
        cpu_before = {t.name: process_cpu_seconds(t.pid) for t in targets if t.name != "direct"}
        try:
            for i in range(rounds):
                shift = i % len(names)
                this_round: dict[str, float] = {}
                for name in names[shift:] + names[:shift]:
                    client = clients[name]
                    elapsed, first = client.request(requests[name])
                    problem = check_response(client.parser.status, client.parser.body, stream=stream)
                    if problem:  # checked after the clock stopped
                        raise RuntimeError(f"{name}: {problem}")
                    total[name].values.append(elapsed)
                    ttfb[name].values.append(first)
                    this_round[name] = elapsed
                if "gateway" in this_round and "bare" in this_round:
                    paired.values.append(this_round["gateway"] - this_round["bare"])
        finally:
            gc.enable()
        cpu_per_request: dict[str, float | None] = {}
        for t in targets:
            before, after = cpu_before.get(t.name), process_cpu_seconds(t.pid)
            cpu_per_request[t.name] = None if before is None or after is None else (after - before) / rounds
    finally:
        for client in clients.values():
            client.close()
    return LatencyResult(total, ttfb, paired, cpu_per_request)


# --------------------------------------------------------------------------------------------
# Throughput at concurrency C
# --------------------------------------------------------------------------------------------


@dataclass
class ThroughputResult:
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    first_error: str = ""
    client_cpu: float = 0.0
    server_cpu: float | None = 0.0
    latency: Dist = field(default_factory=Dist)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else math.nan


async def _throughput_run(
    target: Target, *, stream: bool, concurrency: int, duration: float, max_requests: int, result: ThroughputResult
) -> None:
    loop = asyncio.get_running_loop()
    raw = target.request(stream=stream)
    connections: list[_AsyncConnection] = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(_AsyncConnection, HOST, target.port)
        connections.append(protocol)
    count = 0
    latencies = result.latency.values

    async def worker(conn: _AsyncConnection, deadline: float) -> None:
        nonlocal count
        perf = time.perf_counter
        while count < max_requests and perf() < deadline:
            count += 1
            t0 = perf()
            await conn.request(raw)
            latencies.append(perf() - t0)
            parser = conn.parser
            problem = check_response(parser.status, parser.body, stream=stream)
            if problem:
                result.errors += 1
                result.first_error = result.first_error or problem

    try:
        cpu0 = time.process_time()
        start = time.perf_counter()
        deadline = start + duration
        workers = asyncio.gather(*(worker(c, deadline) for c in connections))
        # Mark an interrupted run's outcome as seen, so asyncio does not log it again at exit.
        workers.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait_for(workers, timeout=duration + SOCKET_TIMEOUT)
        result.seconds += time.perf_counter() - start
        result.client_cpu += time.process_time() - cpu0
        result.requests += count
    finally:
        for conn in connections:
            if conn.transport is not None:
                conn.transport.close()


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process from /proc (Linux), None where unavailable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _new_loop() -> asyncio.AbstractEventLoop:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def measure_throughput(
    targets: Sequence[Target], *, stream: bool, concurrency: int, duration: float, rounds: int
) -> dict[str, ThroughputResult]:
    results = {t.name: ThroughputResult() for t in targets}
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        for target in targets:  # warm-up, not counted
            runner.run(
                _throughput_run(
                    target,
                    stream=stream,
                    concurrency=concurrency,
                    duration=min(0.5, duration / rounds),
                    max_requests=100_000,
                    result=ThroughputResult(),
                )
            )
        for i in range(rounds):
            order = list(targets[i % len(targets) :]) + list(targets[: i % len(targets)])
            for target in order:
                gc.collect()
                result = results[target.name]
                cpu_before = process_cpu_seconds(target.pid)
                runner.run(
                    _throughput_run(
                        target,
                        stream=stream,
                        concurrency=concurrency,
                        duration=duration / rounds,
                        max_requests=1_000_000,
                        result=result,
                    )
                )
                cpu_after = process_cpu_seconds(target.pid)
                if cpu_before is None or cpu_after is None or result.server_cpu is None:
                    result.server_cpu = None
                else:
                    result.server_cpu += cpu_after - cpu_before
    return results


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> list[str]:
    uvloop, httptools = _version("uvloop"), _version("httptools")
    auto = (
        "uvloop + httptools"
        if uvloop != "not installed" and httptools != "not installed"
        else "asyncio + h11 (uvloop/httptools missing)"
    )
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"date        {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"machine     {platform.system()} {platform.release()} {platform.machine()}, CPU {_cpu_model()}, "
        f"nproc {affinity} (cpu_count {os.cpu_count()})",
        f"python      {platform.python_implementation()} {platform.python_version()}",
        f"packages    fastapi {_version('fastapi')}, starlette {_version('starlette')}, uvicorn {_version('uvicorn')}, "
        f"httpx {_version('httpx')}, uvloop {uvloop}, httptools {httptools}",
        f"servers     uvicorn loop/http 'auto' -> {auto}; access log off; one process each",
    ]


def print_latency(mode: str, result: LatencyResult, names: Sequence[str], with_ttfb: bool) -> None:
    def rows(label: str, dists: dict[str, Dist], with_cpu: bool) -> None:
        for name in names:
            p50, p90, p99, mean = dists[name].summary()
            cpu = result.server_cpu_per_request.get(name)
            cpu_text = f"{cpu * 1e6:>10.0f} µs" if with_cpu and cpu is not None else f"{'-':>13}"
            print(f"  {label:<22}{name:<9}{ms(p50):>9}{ms(p90):>9}{ms(p99):>9}{ms(mean):>9}{cpu_text}")

    rows(mode, result.total, True)
    if with_ttfb:
        rows(mode.replace("full body", "TTFB"), result.ttfb, False)


def print_added(mode: str, dists: dict[str, Dist], paired: Dist | None) -> bool:
    s = {name: d.summary() for name, d in dists.items()}
    direct, bare, gateway = s["direct"], s["bare"], s["gateway"]
    gw_minus_bare = gateway[0] - bare[0]
    ok = gw_minus_bare <= 0.5
    paired_text = ""
    if paired is not None and paired.values:
        paired_text = f"   paired median {ms(paired.summary()[0], True)}"
    print(
        f"  {mode:<22}bare {ms(bare[0] - direct[0], True)} / {ms(bare[2] - direct[2], True)}"
        f"   gateway {ms(gateway[0] - direct[0], True)} / {ms(gateway[2] - direct[2], True)}"
        f"   gateway-bare {ms(gw_minus_bare, True)} / {ms(gateway[2] - bare[2], True)}"
        f"{paired_text}   {'PASS' if ok else 'FAIL'}"
    )
    return ok


def start_stack(
    servers: Servers, workdir: Path, gateway_env: dict[str, str] | None = None
) -> tuple[Server, Server, Server, str]:
    """The fake upstream, the bare proxy in front of it and `omniroute serve` (API keys required), each on a
    free loopback port and answering; returns them and the gateway's admin token."""
    fake_port, bare_port, gw_port = free_port(), free_port(), free_port()
    fake = servers.spawn(
        "fake-upstream",
        [sys.executable, "-m", "tests.fakes.openai_upstream", "--no-record", "--port", str(fake_port)],
        fake_port,
    )
    bare = servers.spawn(
        "bare-proxy",
        [sys.executable, "-m", "bench.bare_proxy", "--port", str(bare_port), "--upstream", fake.base_url],
        bare_port,
    )
    admin_token = "omni-admin-bench-" + secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTE_")}
    env |= {
        "OMNIROUTE_DATA_DIR": str(workdir / "gateway-data"),
        "OMNIROUTE_ADMIN_TOKEN": admin_token,
        "OMNIROUTE_REQUIRE_API_KEY": "true",
        **(gateway_env or {}),
    }
    gateway = servers.spawn(
        "gateway", [sys.executable, "-m", "companion.cli", "serve", "--port", str(gw_port)], gw_port, env
    )
    servers.wait_ready(fake, "/_fake/health")
    servers.wait_ready(bare, "/")
    servers.wait_ready(gateway, "/healthz")
    return fake, bare, gateway, admin_token


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="omniroute-bench-"))
    servers = Servers(workdir)
    started = time.monotonic()
    try:
        fake, bare, gateway, admin_token = start_stack(servers, workdir)
        fake_port, bare_port, gw_port = fake.port, bare.port, gateway.port
        gateway_key = configure_gateway(gateway.base_url, admin_token, fake.base_url)
        targets = [
            Target("direct", fake_port, UPSTREAM_MODEL, "sk-bench-direct-0123456789", fake.proc.pid),
            Target("bare", bare_port, UPSTREAM_MODEL, "sk-bench-direct-0123456789", bare.proc.pid),
            Target("gateway", gw_port, GATEWAY_MODEL, gateway_key, gateway.proc.pid),
        ]
        names = [t.name for t in targets]
        print("OmniRoute Edge: added latency and throughput (DESIGN §8)")
        for line in machine_info():
            print("  " + line)
        print(f"  setup       servers ready and gateway configured in {time.monotonic() - started:.1f} s")
        print()

        warmup = max(20, args.requests // 10)
        latency = {
            stream: measure_latency(targets, stream=stream, warmup=warmup, rounds=args.requests)
            for stream in (False, True)
        }
        print(
            f"Latency at concurrency 1, keep-alive, {args.requests} requests per target after {warmup} warm-up, "
            "interleaved (ms)"
        )
        print("  client: raw-socket HTTP/1.1 keep-alive client (sendall/recv + minimal parser), this process")
        print(f"  {'':<22}{'target':<9}{'p50':>9}{'p90':>9}{'p99':>9}{'mean':>9}{'server CPU/req':>16}")
        print_latency("non-stream", latency[False], names, with_ttfb=False)
        print_latency("stream full body", latency[True], names, with_ttfb=True)
        print()
        print("Added latency over direct, p50 / p99 (ms); DESIGN §8 bar: gateway p50 within 0.5 ms of bare")
        verdicts = [
            print_added("non-stream", latency[False].total, latency[False].paired_minus_bare),
            print_added("stream full body", latency[True].total, latency[True].paired_minus_bare),
            print_added("stream TTFB", latency[True].ttfb, None),
        ]
        print()

        through = {
            stream: measure_throughput(
                targets, stream=stream, concurrency=args.concurrency, duration=args.duration, rounds=args.rounds
            )
            for stream in (False, True)
        }
        print(
            f"Throughput at concurrency {args.concurrency}, {args.duration:g} s per target in {args.rounds} "
            "alternating rounds"
        )
        print(
            f"  client: asyncio ({'uvloop' if _version('uvloop') != 'not installed' else 'asyncio'} loop) "
            f"+ asyncio.Protocol, {args.concurrency} keep-alive connections per target, same parser, this process"
        )
        print(
            f"  {'':<12}{'target':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'errors':>8}"
            f"{'server CPU':>12}{'CPU/req':>9}{'client CPU/req':>16}"
        )
        for stream in (False, True):
            for name in names:
                r = through[stream][name]
                p50, _, p99, _ = r.latency.summary()
                client_cpu = r.client_cpu / r.requests * 1e6 if r.requests else math.nan
                if r.server_cpu is None or not r.requests:
                    server_text = f"{'n/a':>12}{'n/a':>9}"
                else:
                    server_text = f"{100 * r.server_cpu / r.seconds:>11.0f}%{r.server_cpu / r.requests * 1e6:>6.0f} µs"
                print(
                    f"  {'stream' if stream else 'non-stream':<12}{name:<9}{r.rps:>9.0f}{ms(p50):>9}{ms(p99):>9}"
                    f"{r.requests:>10}{r.errors:>8}{server_text}{client_cpu:>13.0f} µs"
                )
                if r.errors:
                    print(f"    first error: {r.first_error}")
        errors = sum(r.errors for by_target in through.values() for r in by_target.values())
        print()
        print(
            f"Bar (gateway p50 - bare p50 <= 0.5 ms): non-stream {'PASS' if verdicts[0] else 'FAIL'}, "
            f"stream {'PASS' if verdicts[1] else 'FAIL'}, stream TTFB {'PASS' if verdicts[2] else 'FAIL'}"
        )
        print(f"Finished in {time.monotonic() - started:.1f} s")
        for server in servers.servers:
            if server.proc.poll() is not None:
                print(f"warning: {server.name} exited early with {server.proc.returncode}:\n{server.log_tail()}")
                return 1
        return 1 if errors else 0
    except Exception:
        if not _SIGNALLED:  # an interruption surfaces as whatever it broke; the logs would only be noise
            for server in servers.servers:
                print(f"--- {server.name} log (tail) ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


_SIGNALLED: list[int] = []  # the signal that asked us to stop, if any


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT and SIGTERM: stop where we are; `run` tears the servers down on the way out."""
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=None, help="latency samples per target and mode (2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections per target for throughput (16)")
    parser.add_argument("--duration", type=float, default=None, help="throughput seconds per target and mode (6)")
    parser.add_argument("--rounds", type=int, default=None, help="throughput rounds alternating targets (3)")
    parser.add_argument("--quick", action="store_true", help="300 latency samples, 1 s of throughput per target")
    args = parser.parse_args(argv)
    args.requests = args.requests or (300 if args.quick else 2000)
    args.duration = args.duration or (1.0 if args.quick else 6.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.requests < 1 or args.concurrency < 1 or args.duration <= 0 or args.rounds < 1:
        parser.error("--requests, --concurrency, --duration and --rounds must be positive")
    handler: Callable[[int, FrameType | None], Any] = _interrupt
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    try:
        return run(args)
    except BaseException:
        if not _SIGNALLED:
            raise
    # Interrupted: the KeyboardInterrupt may have surfaced as whatever it broke (a connection error, a
    # cancelled task); the servers were stopped by run()'s finally either way.
    print("interrupted; servers stopped", file=sys.stderr)
    return 128 + (_SIGNALLED[0] if _SIGNALLED else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
