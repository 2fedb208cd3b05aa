"""The real services the suite runs against: broker, SMTP mailbox, SMS gateway and the worker process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05,
               message: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail clearly after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class WorkerProcess:
    """`python -m workers run` as a child process, started, stopped and killed by the tests."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, wait: bool = True) -> None:
        """Start the worker; with `wait`, return once both consumers hold their partitions."""
        self._starts = getattr(self, "_starts", 0) + 1
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen([sys.executable, "-m", "workers", "run"], cwd=ROOT, env=self.env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        if wait:
            wait_until(lambda: all(self.log().count(f"{role}: assigned partitions") >= self._starts
                                   for role in ("audit", "notifications")) or not self.running(),
                       timeout=60, interval=0.1, message="the worker's consumers to join their groups")
            assert self.running(), self.log()[-3000:]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close()
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self._close()

    def _close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(overrides: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(overrides)
    return env
