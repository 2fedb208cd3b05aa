"""Helpers shared by the benchmarks (`bench/events.py`, `bench/booking.py`): ports, waiting, percentiles,
CPU accounting on a shared machine, and a throw-away database of their own."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
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
