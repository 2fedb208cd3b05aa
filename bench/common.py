"""Helpers shared by the benchmarks (`bench/events.py`, `bench/booking.py`, `bench/billing.py`): a run's start
(logging, its time limit, one run at a time) and end, the app in the benchmark process, ports, waiting,
percentiles, CPU accounting on a shared machine, and a throw-away database of their own. The HTTP benchmarks'
harness (gunicorn, clients, phases) is `bench/web.py`."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DB_USER, DB_PASSWORD, DB_HOST, DB_PORT = "hms", "hms", "127.0.0.1", 3306
SERVER_URL = f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{DB_HOST}:{DB_PORT}/?charset=utf8mb4"

log = logging.getLogger("bench")


def database_url(name: str) -> str:
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{DB_HOST}:{DB_PORT}/{name}?charset=utf8mb4"


class BenchError(RuntimeError):
    """The benchmark could not run (not: the system was slow)."""


# --- a run's start and end ---------------------------------------------------------------------------------

def begin_run(prog: str, argv: list[str] | None, max_seconds: int) -> str:
    """The start of a benchmark's main(): logging set up, the whole run bounded by `max_seconds` (SIGALRM raises
    BenchError; the caller cancels it with `signal.alarm(0)`), and the command line as the report quotes it."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)

    def on_alarm(signum, frame):
        raise BenchError(f"the run exceeded --max-seconds={max_seconds}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max_seconds)
    return " ".join([".venv/bin/python", "-m", prog, *(argv if argv is not None else sys.argv[1:])])


def take_run_lock(prog: str, owns: str):
    """One run of `prog` at a time on this machine (every run creates and drops the same database): the open lock
    file, to be held until the process exits, or None (said on stderr) when another run holds it."""
    lock_file = open(Path(tempfile.gettempdir()) / f"hms-{prog.replace('.', '-')}.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        print(f"{prog}: could not run: another run is in progress (it owns {owns})", file=sys.stderr)
        return None
    return lock_file


def own_database_options(parser, db_name: str, logs: str) -> None:
    """The options of a benchmark with a database of its own: --max-seconds, --json, --keep-db, --keep-logs."""
    parser.add_argument("--max-seconds", type=int, default=900, help="abort the whole run after this, default 900")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--keep-db", action="store_true", help=f"keep {db_name} at the end")
    parser.add_argument("--keep-logs", action="store_true", help=f"keep the {logs}")


@dataclass
class Run:
    command: str  # as the report quotes it
    lock_file: object  # held until the process exits
    tmp: Path  # the work files (logs)
    database: Database  # named, not created yet


def start_run(prog: str, argv: list[str] | None, args, db_name: str) -> Run | None:
    """The start of a benchmark with a database of its own (`own_database_options`): `begin_run`, the run lock
    (None when another run holds it), a folder for the work files, the database named."""
    command = begin_run(prog, argv, args.max_seconds)
    lock_file = take_run_lock(prog, db_name)
    if lock_file is None:
        return None
    return Run(command, lock_file, Path(tempfile.mkdtemp(prefix=f"hms-{prog.replace('.', '-')}-")), Database(db_name))


def push_app(env: dict[str, str], relay: bool):
    """The app for the benchmark process's own seeding and reads, configured by `env` (also put in os.environ,
    which the servers and workers it starts inherit), with its context pushed: (app, context)."""
    os.environ.update(env)
    from app import create_app

    app = create_app({"HMS_RELAY_IN_PROCESS": relay})
    ctx = app.app_context()
    ctx.push()
    return app, ctx


def close_app(app, ctx) -> None:
    """The benchmark process's app: its connections closed, its context popped (either None: not made)."""
    if app is not None:
        from app.extensions import db

        db.session.remove()
        db.engine.dispose()
    if ctx is not None:
        ctx.pop()


def clean_up(prog: str, database: "Database", keep_db: bool, tmp: Path, keep_logs: bool) -> None:
    """The end of a run with a database of its own: the database dropped (unless kept), the work files removed
    (unless kept: then their place is said on stderr)."""
    if not keep_db:
        try:
            database.drop()
        except Exception as error:  # noqa: BLE001 - reported, the run's result stands
            print(f"{prog}: could not drop {database.name}: {error}", file=sys.stderr)
    if keep_logs:
        print(f"{prog}: logs kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def run_date() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --- small helpers ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of the values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def summary(values_s: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "max": max(ms) if ms else None}


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


# --- CPU on a shared machine ----------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_pid(*names: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    return int(entry.name)
            except OSError:
                continue
    return None


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores, not idle or iowait), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Cores used by each process group over a window, and by the rest of the (shared) machine.

    A group is a list of pids or a callable returning one (e.g. gunicorn's current workers). A process
    that exits during the window makes its group's figure unknown (None) rather than wrong."""

    def __init__(self, groups: dict) -> None:
        self.groups = groups
        self._start: dict[str, float | None] = {}
        self._t0 = 0.0

    def _pids(self, name: str) -> list[int]:
        pids = self.groups[name]
        return list(pids() if callable(pids) else pids)

    def _sample(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name in self.groups:
            values = [cpu_seconds(pid) for pid in self._pids(name)]
            out[name] = sum(values) if values and None not in values else None
        out["_machine"] = machine_busy_seconds()
        return out

    def start(self) -> None:
        self._start, self._t0 = self._sample(), time.monotonic()

    def stop(self) -> dict[str, float | None]:
        end, elapsed = self._sample(), time.monotonic() - self._t0
        cores = {name: (end[name] - self._start[name]) / elapsed
                 if end[name] is not None and self._start.get(name) is not None else None for name in end}
        ours = sum(v for k, v in cores.items() if k != "_machine" and v is not None)
        cores["_other"] = max(0.0, cores["_machine"] - ours)
        cores["_elapsed"] = elapsed
        return cores


def cpu_meter(groups: dict) -> CpuMeter:
    """A CpuMeter over these groups, then the (shared) MariaDB server and this process ("bench process")."""
    mariadb_pid = find_pid("mariadbd", "mysqld")
    return CpuMeter({**groups, "MariaDB (shared)": [mariadb_pid] if mariadb_pid else [],
                     "bench process": [os.getpid()]})


def broker_pids(broker) -> list[int]:
    """The tansu broker's process (devtools.broker.Broker), as a CpuMeter group; none without a broker."""
    return [broker._process.pid] if broker is not None and broker._process else []


def ram_fact() -> str:
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:")).split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        return "RAM unknown"


def mariadb_facts(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            version, flush = conn.execute(sa.text("SELECT VERSION(), @@innodb_flush_log_at_trx_commit")).one()
    finally:
        engine.dispose()
    return f"MariaDB {version} (innodb_flush_log_at_trx_commit={flush})"


def machine_facts_line(url: str) -> str:
    return f"{os.cpu_count()} CPUs, {ram_fact()}, Python {sys.version.split()[0]}, {mariadb_facts(url)}"


# --- a database of the benchmark's own ------------------------------------------------------------------

@dataclass
class Database:
    """A database created for one run and dropped at its end (never one of the project's own)."""

    name: str
    how: str = ""
    granted: bool = False

    def __post_init__(self) -> None:
        if self.name in {"hms", "hms_test", "lead_test"} or self.name.startswith("helper_") \
                or not self.name.startswith("hms_bench"):
            raise BenchError(f"refusing to create or drop database {self.name!r}: bench databases are hms_bench*")

    @property
    def url(self) -> str:
        return database_url(self.name)

    def create(self) -> None:
        """Create it as the app user if allowed, else as MariaDB's root over the local socket."""
        engine = sa.create_engine(SERVER_URL)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.name}`")
                conn.exec_driver_sql(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            self.how = f"created by the `{DB_USER}` user"
            return
        except sa.exc.DBAPIError as error:
            log.info("%s cannot create %s (%s); using mysql -uroot", DB_USER, self.name, error.orig)
        finally:
            engine.dispose()
        already = self._hms_has_grant()
        statements = (f"DROP DATABASE IF EXISTS `{self.name}`; "
                      f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
        if not already:
            statements += f" GRANT ALL PRIVILEGES ON `{self.name}`.* TO '{DB_USER}'@'{DB_HOST}';"
        self._root(statements)
        self.granted = not already
        self.how = ("created with `mysql -uroot` (local socket)"
                    + (f", which granted `{DB_USER}`@`{DB_HOST}` ALL on `{self.name}`.* for the run" if self.granted
                       else f"; `{DB_USER}` already had ALL on it"))

    def _hms_has_grant(self) -> bool:
        engine = sa.create_engine(SERVER_URL)
        try:
            with engine.connect() as conn:
                grants = [row[0] for row in conn.exec_driver_sql("SHOW GRANTS")]
        finally:
            engine.dispose()
        return any(f"`{self.name}`.*" in g and "ALL PRIVILEGES" in g for g in grants)

    def _root(self, sql: str) -> None:
        result = subprocess.run(["mysql", "-uroot", "-e", sql], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise BenchError(f"cannot create {self.name}: the app user may not, and `mysql -uroot` failed:"
                             f" {result.stderr.strip()}")

    def drop(self) -> None:
        engine = sa.create_engine(SERVER_URL)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.name}`")
        except sa.exc.DBAPIError:
            self._root(f"DROP DATABASE IF EXISTS `{self.name}`;")
        finally:
            engine.dispose()
        if self.granted:
            self._root(f"REVOKE ALL PRIVILEGES ON `{self.name}`.* FROM '{DB_USER}'@'{DB_HOST}';")
