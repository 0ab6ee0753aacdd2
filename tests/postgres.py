"""A throwaway PostgreSQL server for the store's tests.

``ENTRA_SYNC_TEST_POSTGRES_URL`` (a server where the user may create databases) is used when set;
otherwise the system's PostgreSQL (``/usr/lib/postgresql/*/bin``: initdb, pg_ctl) is started on
127.0.0.1 on a free port in a temporary folder, as the ``postgres`` user when the tests run as
root (PostgreSQL refuses root), and stopped at the end. Each test gets a new database.

When the server cannot be had the tests are skipped with the reason, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

__all__ = ["postgres_database", "postgres_server"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A URL of a server where databases can be created (``.../postgres``)."""
    given = os.environ.get("ENTRA_SYNC_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
        return
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="entra-sync-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            _unavailable("running as root and there is no runuser to start PostgreSQL as another user")
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no postgres user to start PostgreSQL as")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True, text=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                        "-l", str(folder / "log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log = folder / "log"
        if log.exists():
            detail += log.read_text(errors="replace")[-2000:]
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"could not start it ({exc}): {detail.strip()}")
        return
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
