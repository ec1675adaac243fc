"""Start `loci serve` / `loci mcp` child processes for tests; they stop with the test (or its parent)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1", MEM0_TELEMETRY="False")
    return env


class Served:
    """A `loci serve` process on a free loopback port."""

    def __init__(self, data_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), "serve", "--port", str(self.port),
             "--parent-pid", str(os.getpid()), *extra],
            env=child_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    @property
    def key(self) -> str:
        return (self.data_dir / "api_key").read_text().strip()

    def wait_ready(self, timeout: float = 120.0) -> "Served":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"loci serve exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(f"{self.url}/v1/ping/", headers={"Authorization": f"Token {self.key}"},
                             timeout=2).status_code == 200:
                    return self
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError("loci serve did not answer in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
