"""Fixtures: one schema per session (built by the migrations), each test starting from empty tables."""
from __future__ import annotations

import os
import socket
import threading
from datetime import date
from itertools import count
from pathlib import Path

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL",
                                   "mysql+pymysql://hms:hms@127.0.0.1:3306/hms_test?charset=utf8mb4")
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["HMS_ENV"] = "test"

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts.models import Role, Sex, User  # noqa: E402
from app.accounts.passwords import hash_password  # noqa: E402
from app.accounts.services import PatientRegistration, create_user as create_user_service, register_patient  # noqa: E402
from app.extensions import db  # noqa: E402
from tests.helpers import Client  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DEFAULT_PASSWORD = "correct horse battery"
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


@pytest.fixture(scope="session")
def app():
    _reset_database(TEST_DATABASE_URL)
    app = create_app({"TESTING": True, "SERVER_NAME": None})
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(autouse=True)
def _empty_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for table in reversed(db.metadata.sorted_tables):
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
    """Factory: a committed user of any role; password DEFAULT_PASSWORD unless given."""

    def make(role: Role = Role.CLERK, *, email: str | None = None, full_name: str | None = None,
             password: str | None = None, **fields) -> User:
        if role is Role.PATIENT:
            return make_patient(email=email, full_name=full_name, password=password, **fields)
        n = next(_serial)
        with app.app_context():
            user = create_user_service(
                role=role, email=email or f"{role.value}{n}@example.com", full_name=full_name or f"{role.label} {n}",
                password=password, password_hash=None if password else default_password_hash, phone="+12025550100")
            for name, value in fields.items():
                setattr(user, name, value)
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
        response = client.post_form("/login", {"email": user.email, "password": password})
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
