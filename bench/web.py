"""The harness of the HTTP benchmarks (`bench/booking.py`, `bench/billing.py`, `bench/api.py`): the app and a bare
baseline app served by gunicorn with the Procfile's command, signed-in `http.client` clients, timed phases of
client threads, and the bare baseline apps' Flask app with its one database connection per worker."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (DB_HOST, DB_PASSWORD, DB_PORT, DB_USER, ROOT, BenchError, CpuMeter, close_app, fmt,
                          free_port, log, percentile, wait_for)

PASSWORD = "bench-password-1234"  # every seeded user's
CSRF_META = re.compile(rb'<meta name="csrf-token" content="([^"]+)"')
HOST = "127.0.0.1"


def app_env(database_url: str, relay: bool) -> dict[str, str]:
    """The environment of the benchmark process's app and of the gunicorn servers it starts."""
    return {
        "HMS_ENV": "development",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "AUDIT_HMAC_KEY": "bench-audit-key",
        "HMS_RELAY_IN_PROCESS": "true" if relay else "false",
        "SMS_GATEWAY_URL": "",
        "PYTHONUNBUFFERED": "1",
    }


# --- the bare baseline apps' Flask and PyMySQL ---------------------------------------------------------------

def bare_flask():
    """For a bare baseline app (Flask + PyMySQL and nothing else): the Flask app, and `fetch(sql, args)`, which runs
    one statement on the worker process's one connection (opened on first use, autocommit, to the database that
    `start_servers` put in BARE_DATABASE) and returns its rows."""
    import pymysql
    from flask import Flask

    app = Flask("bare")
    where, user, password, database = os.environ["BARE_DATABASE"].split("/")  # host:port/user/password/database
    host, port = where.split(":")
    state: dict = {}

    def connection():
        if "conn" not in state:
            state["conn"] = pymysql.connect(host=host, port=int(port), user=user, password=password,
                                            database=database, charset="utf8mb4", autocommit=True)
        return state["conn"]

    def fetch(sql: str, args: tuple | None = None) -> tuple:
        with connection().cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()

    return app, fetch


# --- a client: one session, one connection at a time ------------------------------------------------------

class Client:
    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.cookies: dict[str, str] = {}
        self.keep_cookies = True  # False once signed in: the session stays the one from sign-in
        self.csrf = ""

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None,
                json_body: dict | None = None) -> tuple[int, bytes, http.client.HTTPMessage, float]:
        """One request: a form (urlencoded) or a JSON body, or none."""
        send = {"Host": f"{HOST}:{self.port}", **(headers or {})}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            send["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            send["Content-Type"] = "application/json"
        if self.cookies:
            send["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=send)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        elapsed = time.perf_counter() - started
        if response.will_close:
            self.conn.close()
        if self.keep_cookies:
            for header in response.msg.get_all("Set-Cookie") or ():
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
        return response.status, data, response.msg, elapsed

    def csrf_from(self, path: str) -> str:
        status, body, _, _ = self.request("GET", path)
        match = CSRF_META.search(body)
        if status != 200 or not match:
            raise BenchError(f"GET {path}: status {status}, no <meta name=csrf-token>")
        self.csrf = match.group(1).decode()
        return self.csrf

    @classmethod
    def signed_in(cls, port: int, timeout: float, email: str, landing: str) -> "Client":
        client = cls(port, timeout)
        client.sign_in(email, landing)
        return client

    def sign_in(self, email: str, landing: str) -> None:
        token = self.csrf_from("/login")
        status, body, _, _ = self.request("POST", "/login", {"csrf_token": token, "email": email, "password": PASSWORD})
        if status != 303:
            raise BenchError(f"sign-in of {email} answered {status}: {body[:300]!r}")
        self.csrf_from(landing)  # the session now holds the CSRF secret of this token
        self.keep_cookies = False


# --- running a phase --------------------------------------------------------------------------------------

@dataclass
class Sample:
    started: float
    seconds: float
    outcome: str


@dataclass
class PhaseResult:
    name: str
    clients: int
    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warmup: Counter = field(default_factory=Counter)  # outcomes of the unrecorded warm-up requests

    @property
    def ok(self) -> list[float]:
        return [s.seconds for s in self.samples]

    def rate(self) -> float | None:
        return len(self.samples) / self.wall if self.wall > 0 and self.samples else None

    def pct(self, q: float) -> float | None:
        value = percentile(self.ok, q)
        return None if value is None else value * 1000

    def outcomes(self) -> Counter:
        return Counter(s.outcome for s in self.samples)

    def as_dict(self) -> dict:
        """The phase as the `--json` dumps write it."""
        return {"name": self.name, "clients": self.clients, "requests": len(self.samples), "rate": self.rate(),
                "p50": self.pct(50), "p95": self.pct(95), "p99": self.pct(99), "max": self.pct(100),
                "outcomes": dict(self.outcomes()), "cpu": self.cpu, "notes": self.notes}


def outcome_text(result: PhaseResult) -> str:
    return ", ".join(f"{name} {count}" for name, count in result.outcomes().most_common())


def phase_table(phases: dict[str, PhaseResult]) -> list[str]:
    """The reports' table of phases: rate, latency and outcomes."""
    lines = ["| Phase | clients | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | outcomes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for result in phases.values():
        lines.append(f"| {result.name} | {result.clients} | {len(result.samples)} | {fmt(result.rate())} |"
                     f" {fmt(result.pct(50))} | {fmt(result.pct(95))} | {fmt(result.pct(99))} |"
                     f" {fmt(result.pct(100))} | {outcome_text(result)} |")
    return lines


def cpu_table(phases: dict[str, PhaseResult]) -> list[str]:
    """The reports' table of the cores each process group used in each phase (`bench.common.cpu_meter`)."""
    lines = ["CPU (cores busy on average over the recorded window; 1.0 = one core; \"rest of machine\" = other users"
             " of this shared machine plus the kernel):", "",
             "| Phase | wall s | HMS gunicorn | bare gunicorn | MariaDB (shared) | tansu | bench clients"
             " | rest of machine |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in phases.values():
        cpu = result.cpu
        lines.append(f"| {result.name} | {fmt(cpu.get('_elapsed'))} | {fmt(cpu.get('HMS gunicorn'), 2)} |"
                     f" {fmt(cpu.get('bare gunicorn'), 2)} | {fmt(cpu.get('MariaDB (shared)'), 2)} |"
                     f" {fmt(cpu.get('tansu broker'), 2)} | {fmt(cpu.get('bench process'), 2)} |"
                     f" {fmt(cpu.get('_other'), 2)} |")
    return lines


def classify_page(status: int, body: bytes) -> str:
    return "ok" if status == 200 else (f"server error ({status})" if status >= 500 else f"other ({status})")


def page_step(path: str, headers: dict | None = None):
    """A phase step: GET `path`, the outcome as `classify_page` names it."""
    def step(i: int, client: Client, _round) -> tuple[str, float]:
        status, body, _, seconds = client.request("GET", path, headers=headers)
        return classify_page(status, body), seconds

    return step


def load_options(parser) -> None:
    """The options of the load of an HTTP benchmark: --duration, --warmup, --workers, --timeout."""
    parser.add_argument("--duration", type=float, default=20.0, help="seconds recorded per phase, default 20")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per phase, default 3")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app, default 2")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request socket timeout, default 30 s")


def run_phase(name: str, clients: list[Client], step, *, duration: float, warmup: float, meter: CpuMeter,
              hard_timeout: float, barrier_rounds: bool = False) -> PhaseResult:
    """Each client thread calls `step(i, client, round)` -> (outcome, seconds) until the time is up; the
    first `warmup` seconds are not recorded. With `barrier_rounds`, all clients start each round together."""
    result = PhaseResult(name, len(clients))
    per_client: list[list[Sample]] = [[] for _ in clients]
    warm: list[Counter] = [Counter() for _ in clients]
    state = {"round": 0, "stop": False, "record": False}
    t_start = time.perf_counter()
    t_record = t_start + warmup
    t_end = t_record + duration

    def next_round() -> None:
        now = time.perf_counter()
        state["round"] += 1
        state["stop"] = now >= t_end
        state["record"] = now >= t_record

    barrier = threading.Barrier(len(clients), action=next_round, timeout=hard_timeout) if barrier_rounds else None
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        own = per_client[i]
        try:
            while True:
                if barrier is not None:
                    barrier.wait()
                    if state["stop"]:
                        return
                    record, round_no = state["record"], state["round"]
                else:
                    now = time.perf_counter()
                    if now >= t_end:
                        return
                    record, round_no = now >= t_record, None
                started = time.perf_counter()
                try:
                    outcome, seconds = step(i, clients[i], round_no)
                except (OSError, http.client.HTTPException) as error:
                    outcome, seconds = f"connection error ({type(error).__name__})", time.perf_counter() - started
                if record:
                    own.append(Sample(started, seconds, outcome))
                else:
                    warm[i][outcome] += 1
        except threading.BrokenBarrierError:
            return
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            if barrier is not None:
                barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), name=f"client-{i}", daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    # CPU is metered over the recorded window only.
    wait_for(lambda: time.perf_counter() >= t_record, warmup + 5, 0.005)
    meter.start()
    deadline = t_end + hard_timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.perf_counter()))
    result.cpu = meter.stop()
    if any(thread.is_alive() for thread in threads):
        if barrier is not None:
            barrier.abort()
        result.notes.append(f"some clients were still busy {hard_timeout:.0f} s after the end; their requests are"
                            " not counted")
    if errors:
        raise BenchError(f"{name}: a client failed: {errors[0]!r}")
    for own in per_client:
        result.samples.extend(own)
    for counts in warm:
        result.warmup.update(counts)
    bad = {k: v for k, v in result.warmup.items() if "error" in k}
    if bad:
        result.notes.append("during the warm-up (not in the table): "
                            + ", ".join(f"{k} {v}" for k, v in sorted(bad.items())))
    if result.samples:
        # From the start of the recorded window (rounds: the first recorded round) to the last answer.
        first = t_record if barrier is None else min(s.started for s in result.samples)
        result.wall = max(s.started + s.seconds for s in result.samples) - first
    return result


# --- gunicorn ---------------------------------------------------------------------------------------------

def stop_all(servers: list["Gunicorn"], app, ctx) -> None:
    """The end of an HTTP benchmark: its servers stopped, the seeding app's connections closed, its context popped."""
    for server in servers:
        server.stop()
    close_app(app, ctx)


def start_servers(env: dict[str, str], bare_target: str, database: str, workers: int, log_dir: Path,
                  bare_ready: str, servers: list["Gunicorn"]) -> tuple["Gunicorn", "Gunicorn"]:
    """The real app (`wsgi:app`) and the bare app `bare_target` (connected to `database`, see `bare_connection`)
    under gunicorn, each answering; both are added to `servers` before they start, for `stop_all`."""
    child_env = {**os.environ, **env}
    hms = Gunicorn("hms", "wsgi:app", child_env, workers, log_dir)
    bare_env = {**child_env, "BARE_DATABASE": f"{DB_HOST}:{DB_PORT}/{DB_USER}/{DB_PASSWORD}/{database}"}
    bare = Gunicorn("bare", bare_target, bare_env, workers, log_dir)
    servers += [hms, bare]
    log.info("starting gunicorn: %s", " ".join(hms.command))
    hms.start("/login")
    bare.start(bare_ready)
    return hms, bare


def status_text(statuses: dict) -> str:
    """HTTP statuses counted in an access log (`Gunicorn.statuses`), as the reports write them."""
    return ", ".join(f"{k} ×{v}" for k, v in sorted(statuses.items()))


class Gunicorn:
    def __init__(self, name: str, target: str, env: dict[str, str], workers: int, log_dir: Path) -> None:
        self.name, self.target, self.env, self.workers, self.log_dir = name, target, env, workers, log_dir
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"{HOST}:{self.port}", "--workers",
                str(self.workers), "--access-logfile", str(self.log_dir / f"{self.name}-access.log"), self.target]

    def start(self, ready_path: str, timeout: float = 60) -> None:
        self._log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        def answering() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn ({self.name}) exited:\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
                conn.request("GET", ready_path)
                status = conn.getresponse().status
                conn.close()
                return status == 200 and len(self.worker_pids()) == self.workers
            except OSError:
                return False

        if not wait_for(answering, timeout, 0.1):
            raise BenchError(f"gunicorn ({self.name}) did not answer {ready_path} within {timeout} s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def pids(self) -> list[int]:
        return [self.process.pid, *self.worker_pids()] if self.process is not None else []

    def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # our own session: gunicorn and its workers
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def version(self) -> str:
        return subprocess.run([self.command[0], "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip().split()[-1].strip("()")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join((self.log_dir / f"{self.name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def statuses(self) -> Counter:
        """HTTP statuses in the access log (the whole run, warm-ups and sign-ins included)."""
        try:
            text = (self.log_dir / f"{self.name}-access.log").read_text(errors="replace")
        except OSError:
            return Counter()
        return Counter(match.group(1) for match in re.finditer(r'" (\d{3}) ', text))

