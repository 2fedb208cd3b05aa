"""Fixtures: one schema per session (built by the migrations), each test starting from empty tables."""
from __future__ import annotations

import os
import socket
import threading
from datetime import date
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa


def _database_of_this_process(url: str) -> str:
    """Each pytest-xdist worker (gw0, gw1, ...) has a database of its own: hms_test -> hms_gw0_test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    parsed = sa.make_url(url)
    name = parsed.database or ""
    assert name.endswith("_test"), f"TEST_DATABASE_URL must name a database ending in _test: {name}"
    return parsed.set(database=f"{name[:-len('_test')]}_{worker}_test").render_as_string(hide_password=False)


TEST_DATABASE_URL = _database_of_this_process(
    os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://hms:hms@127.0.0.1:3306/hms_test?charset=utf8mb4"))
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["HMS_ENV"] = "test"
os.environ["SECRET_KEY"] = "test-secret-key"
os.environ["AUDIT_HMAC_KEY"] = "test-audit-key"
# Cheap Argon2id for the suite's thousands of sign-ins (production keeps RFC 9106's, see app/accounts/passwords.py).
os.environ.update(HMS_ARGON2_TIME_COST="1", HMS_ARGON2_MEMORY_KIB="8", HMS_ARGON2_PARALLELISM="1")

from flask_migrate import upgrade  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.models import Role, Sex, User  # noqa: E402
from app.accounts.passwords import hash_password  # noqa: E402
from app.accounts.services import PatientRegistration, create_user as create_user_service, register_patient  # noqa: E402
from app.extensions import db  # noqa: E402
from app.timeutil import pin_clock_from_environment  # noqa: E402
from devtools.broker import Broker  # noqa: E402
from devtools.mailbox import Mailbox  # noqa: E402
from devtools.sms_gateway import SmsGatewayServer  # noqa: E402
from app.accounts.second_factor import set_authenticator  # noqa: E402
from tests.helpers import TEST_TOTP_SECRET, Client  # noqa: E402
from tests.services import WorkerProcess, worker_env  # noqa: E402

PINNED_AT = pin_clock_from_environment()  # HMS_TEST_NOW: see `make test-clock`
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DEFAULT_PASSWORD = "correct horse battery"
APPEND_ONLY = ("audit_log", "encounters")  # tables whose triggers refuse DELETE
_serial = count(1)


def _reset_database(url: str) -> None:
    """Drop and recreate the test database, so the migrations build the schema from nothing."""
    engine_url = sa.make_url(url)
    name = engine_url.database
    assert name and name.endswith("_test"), f"refusing to reset a database not named *_test: {name}"
    server = sa.create_engine(engine_url.set(database=""))
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    server.dispose()


class Services:
    """The real services of one test session, with the settings that point the app and worker at them."""

    def __init__(self, root: Path):
        self.broker = Broker(log_path=root / "broker.log")
        self.mailbox_dir = root / "mailbox"
        self.mailbox = Mailbox(self.mailbox_dir)
        self.sms = SmsGatewayServer(outbox_dir=root / "sms")
        self.root = root

    def start(self) -> None:
        self.broker.start()
        self.mailbox.start()
        self.sms.start()

    def stop(self) -> None:
        self.sms.stop()
        self.mailbox.stop()
        self.broker.stop()

    def settings(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "MAIL_PORT": str(self.mailbox.port),
            "SMS_GATEWAY_URL": self.sms.url,
            "SMS_ACCOUNT_SID": self.sms.account_sid,
            "SMS_AUTH_TOKEN": self.sms.auth_token,
            "SMS_FROM_NUMBER": "+12025550100",
            "HMS_EVENTS_PARTITIONS": "3",
            "HMS_RELAY_POLL_SECONDS": "0.5",
            "HMS_WORKER_BACKOFF_SECONDS": "0.05",
            "HMS_NOTIFY_BACKOFF_SECONDS": "0.2",
            "HMS_NOTIFY_SENDING_TIMEOUT": "2",
            "HMS_HEARTBEAT_SECONDS": "1",
            "KAFKA_MESSAGE_TIMEOUT_MS": "3000",
        }

    def restart_broker(self, app) -> None:
        """tansu keeps everything in memory: a restart loses the topics, so the init step runs again."""
        from app.events.kafka import create_topics

        self.broker.stop()
        self.broker = Broker(port=self.broker.port, log_path=self.root / "broker.log")
        self.broker.start()
        create_topics(app.config)


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    services = Services(tmp_path_factory.mktemp("services"))
    services.start()
    os.environ.update(services.settings())
    yield services
    services.stop()


@pytest.fixture(scope="session")
def app(services):
    from app.events.kafka import create_topics

    _reset_database(TEST_DATABASE_URL)
    app = create_app({"TESTING": True, "SERVER_NAME": None})
    with app.app_context():
        upgrade()
    create_topics(app.config)
    yield app
    relay = app.extensions.get("hms_relay")
    if relay is not None:
        relay.stop()


def _start_groups_at_the_end(config, prefix: str) -> None:
    """Commit the current end of the topic as the new groups' positions, so the worker's consumers
    begin exactly there (no race with a lazily resolved "latest")."""
    from confluent_kafka import Consumer, TopicPartition

    from app.events.kafka import consumer_settings

    topic = config["HMS_EVENTS_TOPIC"]
    for role in ("notifications", "audit"):
        consumer = Consumer(consumer_settings(config, f"{prefix}-{role}"))
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                    for p in partitions]
            consumer.commit(offsets=ends, asynchronous=False)
        finally:
            consumer.close()


@pytest.fixture
def worker(app, services, tmp_path):
    """A worker process (every role) for this test alone: its consumer groups are new and start at the
    end of the topic, so it sees only what this test does, and it is running before the test acts."""
    import uuid

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    _start_groups_at_the_end(app.config, prefix)
    env = worker_env({**services.settings(), "HMS_CONSUMER_GROUP_PREFIX": prefix})
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    yield process
    if process.running():
        process.terminate()


@pytest.fixture
def mailbox(services):
    """The mailbox directory, emptied for the test."""
    for path in services.mailbox_dir.glob("*.eml"):
        path.unlink()
    return services.mailbox_dir


@pytest.fixture(autouse=True)
def _empty_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    empty_tables(request.getfixturevalue("app"))


def _filled_tables() -> str:
    """One query naming every table that holds a row (built when every model is known)."""
    return " UNION ALL ".join(f"SELECT '{table.name}' FROM DUAL WHERE EXISTS (SELECT 1 FROM `{table.name}`)"
                              for table in db.metadata.sorted_tables)


def empty_tables(app) -> None:
    """Every table emptied (the schema stays): after each test, or after a module that builds one world for all
    its tests (and overrides `_empty_tables`)."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            filled = set(conn.exec_driver_sql(_filled_tables()).scalars())  # one query, not one per table
            for name in APPEND_ONLY:  # first: with them gone, their children's triggers allow the DELETE
                if name in filled:
                    conn.exec_driver_sql(f"TRUNCATE TABLE {name}")  # triggers refuse DELETE; TRUNCATE is DDL
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in APPEND_ONLY and table.name in filled:
                    conn.execute(table.delete())
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app) -> Client:
    return Client(app)


@pytest.fixture(scope="session")
def default_password_hash() -> str:
    return hash_password(DEFAULT_PASSWORD)


@pytest.fixture
def create_user(app, default_password_hash):
    """Factory: a committed user of any role; password DEFAULT_PASSWORD unless given. Staff come with an
    authenticator (key TEST_TOTP_SECRET) unless `authenticator=False`."""

    def make(role: Role = Role.CLERK, *, email: str | None = None, full_name: str | None = None,
             password: str | None = None, authenticator: bool = True, **fields) -> User:
        if role is Role.PATIENT:
            return make_patient(email=email, full_name=full_name, password=password, **fields)
        n = next(_serial)
        with app.app_context():
            user = create_user_service(
                role=role, email=email or f"{role.value}{n}@example.com", full_name=full_name or f"{role.label} {n}",
                password=password, password_hash=None if password else default_password_hash, phone="+12025550100")
            for name, value in fields.items():
                setattr(user, name, value)
            if authenticator:
                set_authenticator(user, TEST_TOTP_SECRET)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    def make_patient(*, email=None, full_name=None, password=None, **fields) -> User:
        n = next(_serial)
        registration = PatientRegistration(
            full_name=full_name or f"Patient {n}", email=email or f"patient{n}@example.com",
            password=password or DEFAULT_PASSWORD, date_of_birth=fields.pop("date_of_birth", date(1980, 1, 2)),
            sex=fields.pop("sex", Sex.FEMALE), phone=fields.pop("phone", "+12025550123"),
            address=fields.pop("address", "1 Main Street"), emergency_contact_name="Sam Contact",
            emergency_contact_phone="+12025550199", **fields)
        with app.app_context():
            user = register_patient(registration, password_hash=None if password else default_password_hash)
            db.session.commit()
            user_id = user.id
        with app.app_context():
            user = db.session.get(User, user_id)
            _ = user.patient
            db.session.expunge_all()
            return user

    make.patient = make_patient
    return make


@pytest.fixture
def create_patient(create_user):
    return create_user.patient


@pytest.fixture
def login(client):
    def sign_in(user: User, password: str = DEFAULT_PASSWORD) -> Client:
        response = client.sign_in(user.email, password)
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return client

    return sign_in


# --- live server and browser ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def base_url(live_server):
    return live_server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def create_department(app):
    from app.clinic.services import save_department

    def make(name: str | None = None) -> int:
        with app.app_context():
            department = save_department(None, name=name or f"Department {next(_serial)}", description=None)
            db.session.commit()
            return department.id

    return make


@pytest.fixture
def create_doctor(app, create_user, create_department):
    """Factory: an active doctor with a profile (and a password), in the given departments."""
    from decimal import Decimal

    from app.clinic.models import Department, DoctorProfile

    def make(*, full_name: str | None = None, specialty: str = "General practitioner",
             department_ids: list[int] | None = None, fee: str = "100.00", **user_fields) -> User:
        user = create_user(Role.DOCTOR, full_name=full_name, **user_fields)
        ids = department_ids or [create_department()]
        with app.app_context():
            profile = DoctorProfile(user_id=user.id, specialty=specialty, licence_number=f"LIC-{user.id}-{next(_serial)}",
                                    consultation_fee=Decimal(fee))
            profile.departments = list(db.session.scalars(sa.select(Department).where(Department.id.in_(ids))))
            db.session.add(profile)
            db.session.commit()
        return user

    return make


@pytest.fixture
def default_templates(app):
    """The shipped notification templates (the database starts empty in every test)."""
    from app.notifications.services import install_default_templates

    with app.app_context():
        install_default_templates()
        db.session.commit()
