"""What translation costs: per streamed chunk for every direction, and added time to first byte.

    python -m bench.translation [--quick]

1. Per chunk: a realistic answer (reasoning, 300 text pieces, a tool call with 40 argument fragments)
   is encoded as each upstream format's stream; the gateway's path (SSE framing → upstream decoder →
   client encoder) runs over it for every client format, and the time per upstream chunk is printed.
   Target (DESIGN §8): ≤ 20 µs per chunk.
2. Time to first byte: a real `omniroute serve` in front of the fake OpenAI upstream; TTFB of a streamed
   request answered in the same format (relayed) and in Anthropic's (translated), interleaved, c=1.
   Target: translation adds ≤ 2 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.stats import percentile
from shared.domain.usage import Usage
from shared.formats.canonical import FinishReason
from shared.formats.codecs import feed_decoder, new_decoder, new_encoder
from shared.formats.sse import SseFramer, frame_data
from shared.formats.stream import (
    PartEnd,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from shared.providers.spec import WireFormat

FORMATS = (WireFormat.OPENAI, WireFormat.ANTHROPIC, WireFormat.GEMINI, WireFormat.RESPONSES)
REPO = Path(__file__).resolve().parents[1]


def realistic_events() -> list[StreamEvent]:
    """An answer as a model streams it: many small pieces, not one delta per part."""
    usage = Usage(input=1200, output=380, cached=1000, reasoning=40)
    arguments = ['{"path":"app.py","content":"', *(f"line {i}\\n" for i in range(38)), '"}']
    return [
        StreamStart("resp_bench", "bench-model"),
        *(ReasoningDelta(0, f"think{i} ") for i in range(40)),
        PartEnd(0),
        *(TextDelta(1, f"word{i} ") for i in range(300)),
        PartEnd(1),
        ToolCallStart(2, "call_1", "edit_file"),
        *(ToolCallDelta(2, piece) for piece in arguments),
        PartEnd(2),
        StreamEnd(FinishReason.TOOL_CALLS, usage),
    ]


def per_chunk_cost(rounds: int) -> None:
    events = realistic_events()
    print(f"Translation per upstream chunk ({len(events)} events per answer, best of {rounds} rounds), µs:")
    print("  upstream \\ client " + "".join(f"{f.value:>12}" for f in FORMATS))
    for upstream in FORMATS:
        encoder = new_encoder(upstream, include_usage=True)
        wire = b"".join(encoder.feed(e) for e in events)
        frames = SseFramer().feed(wire)
        row = []
        for client in FORMATS:
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                framer, decoder, out = SseFramer(), new_decoder(upstream), new_encoder(client, include_usage=True)
                for frame in framer.feed(wire):
                    data = frame_data(frame)
                    if data is not None:
                        for event in feed_decoder(decoder, upstream, frame, data):
                            out.feed(event)
                for event in decoder.finish():
                    out.feed(event)
                best = min(best, time.perf_counter() - started)
            row.append(best / len(frames) * 1e6)
        print(f"  {upstream.value:>18}" + "".join(f"{us:12.2f}" for us in row))
    print("  (target ≤ 20 µs per chunk; same-format streams are relayed without decoding, except Anthropic")
    print("   and Gemini, which are read to notice a cut stream)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} never answered")


def ttfb(client: httpx.Client, url: str, body: dict[str, object]) -> float:
    started = time.perf_counter()
    with client.stream("POST", url, json=body) as resp:
        chunks = resp.iter_raw()
        next(chunks)
        first = time.perf_counter()
        for _ in chunks:
            pass
    return (first - started) * 1000


def added_ttfb(samples: int) -> None:
    fake_port, gw_port = free_port(), free_port()
    env = {**os.environ, "OMNIROUTE_ADMIN_TOKEN": "bench-admin"}
    data = tempfile.mkdtemp(prefix="omniroute-bench-")
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_upstream", "--port", str(fake_port), "--no-record"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    gw = subprocess.Popen(
        [sys.executable, "-m", "companion", "serve", "--port", str(gw_port), "--data-dir", data],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{gw_port}"
        wait(f"http://127.0.0.1:{fake_port}/v1/models")
        wait(base + "/healthz")
        admin = httpx.Client(base_url=base + "/api", headers={"authorization": "Bearer bench-admin"})
        node = admin.post(
            "/provider-nodes", json={"name": "b", "prefix": "bench", "baseUrl": f"http://127.0.0.1:{fake_port}/v1"}
        ).json()["node"]
        admin.post("/providers", json={"provider": node["id"], "apiKey": "sk-bench-0000"})
        admin.close()
        messages = [{"role": "user", "content": "hello there, stream something"}]
        relayed = {"model": "bench/gpt-4o-mini", "messages": messages, "stream": True}
        translated = {**relayed, "max_tokens": 256}
        with httpx.Client(base_url=base) as client:
            for _ in range(50):  # warm up both paths
                ttfb(client, "/v1/chat/completions", relayed)
                ttfb(client, "/v1/messages", translated)
            same, cross = [], []
            for _ in range(samples):
                same.append(ttfb(client, "/v1/chat/completions", relayed))
                cross.append(ttfb(client, "/v1/messages", translated))
        print(f"\nTime to first byte through the gateway, c=1, {samples} interleaved samples each (ms):")
        for label, values in (("relayed (OpenAI client)", same), ("translated (Anthropic client)", cross)):
            ordered = sorted(values)
            print(f"  {label:34s} p50 {percentile(ordered, 50):6.3f}   p90 {percentile(ordered, 90):6.3f}")
        added = statistics.median(c - s for c, s in zip(cross, same, strict=True))
        print(f"  added by translation: paired median {added:+.3f} ms (target ≤ 2 ms)")
    finally:
        gw.terminate()
        fake.terminate()
        gw.wait(10)
        fake.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    per_chunk_cost(rounds=3 if args.quick else 20)
    added_ttfb(samples=30 if args.quick else 400)
    print("Finished in", f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
