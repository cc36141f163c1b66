"""Run ``partialface serve`` as a child process and wait until it is ready (tests, benchmarks, demos).

    with serve_in_child(["--model", "default", "--gallery", "sqlite:///G.db"], log="server.log") as server:
        Client(server.url, key).identify(...)

The child binds 127.0.0.1 on a free port, is polled on ``/readyz`` until it answers 200, and is killed
with SIGKILL when the block ends, whatever happened (:meth:`ServerChild.kill` may also be called
earlier, which is how the reliability tests crash it on purpose).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["ServerChild", "free_port", "serve_in_child"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerChild:
    def __init__(self, process: subprocess.Popen, url: str, log: Path):
        self.process, self.url, self.log = process, url, log

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def serve_in_child(
    args: Sequence[str], log: str | os.PathLike, env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None, timeout: float = 240.0,
) -> Iterator[ServerChild]:
    """``python -m partialface serve ARGS --host 127.0.0.1 --port FREE``, ready when yielded."""
    port = free_port()
    log = Path(log)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "partialface", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
        )
    server = ServerChild(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode} before it was ready:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready after {timeout:.0f} s:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        server.kill()
