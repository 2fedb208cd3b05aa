"""python -m workers run | init-topics | health"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from app import create_app
from workers.roles import ROLES


def _run(args) -> int:
    app = create_app({"HMS_RELAY_IN_PROCESS": False})
    roles = args.role or list(ROLES)
    stop = threading.Event()

    def request_stop(signum, frame):
        logging.getLogger("hms.worker").info("signal %s: finishing the current events", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threads = [threading.Thread(target=ROLES[role], args=(app, stop), name=role) for role in roles]
    for thread in threads:
        thread.start()
    logging.getLogger("hms.worker").info("worker running: %s", ", ".join(roles))
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(0.5)
        if not stop.is_set() and not all(t.is_alive() for t in threads):
            logging.getLogger("hms.worker").error("a role stopped unexpectedly; stopping the worker")
            stop.set()
    return 0


def _init_topics(args) -> int:
    from app.events.kafka import create_topics, topics

    app = create_app()
    create_topics(app.config, timeout=args.timeout)
    print("topics ready: " + ", ".join(topics(app.config)))
    return 0


def _health(args) -> int:
    from workers.health import check

    report = check(create_app())
    for line in report:
        print(line.line())
    return 0 if all(r.alive for r in report) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description="HMS background worker")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run worker roles (all of them unless --role is given)")
    run.add_argument("--role", action="append", choices=list(ROLES), help="a role to run; repeat for several")
    run.set_defaults(func=_run)
    init = commands.add_parser("init-topics", help="create the Kafka topics (idempotent)")
    init.add_argument("--timeout", type=float, default=60)
    init.set_defaults(func=_init_topics)
    health = commands.add_parser("health", help="say whether each role is alive and how far behind it is")
    health.set_defaults(func=_health)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
