"""Start the real `omniroute serve` in a subprocess on a free loopback port, and talk to its admin API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.server import free_port

ADMIN_TOKEN = "omni-admin-test-token"


@dataclass
class Gateway:
    data_dir: Path
    port: int = field(default_factory=free_port)
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return self.base_url + "/v1"

    def start(self, timeout: float = 30.0, args: tuple[str, ...] = ()) -> Gateway:
        env = {
            **os.environ,
            "OMNIROUTE_ADMIN_TOKEN": ADMIN_TOKEN,
            "OMNIROUTE_DATA_DIR": str(self.data_dir),
            **self.env_extra,
        }
        self.log_path = self.data_dir.parent / f"serve-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        # The installed console script, exactly what a user runs.
        omniroute = Path(sys.executable).with_name("omniroute")
        self.proc = subprocess.Popen(
            [str(omniroute), "serve", "--port", str(self.port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"omniroute serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"omniroute serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM, as a service manager or Ctrl-C would)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url + "/api", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )

    def admin_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.admin() as client:
            resp = client.post(path, json=body)
        assert resp.status_code in (200, 201), resp.text
        result: dict[str, Any] = resp.json()
        return result
