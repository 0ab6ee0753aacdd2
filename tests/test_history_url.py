"""``[history] path`` naming a PostgreSQL server (the console's store, say): the CLI's runs are
recorded there, the run lock and reports stay beside the configuration, and a URL with a password,
of another database or of no database is refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_sync.config.load import ConfigFindingsError, loads_config
from entra_sync.runs.history import History
from tests.postgres import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]

pytestmark = pytest.mark.usefixtures("clean_env")


def test_a_sync_is_recorded_in_the_postgresql_store_the_configuration_names(
    run_cli, tmp_path: Path, postgres_database: str
) -> None:
    d = tmp_path / "demo"
    assert run_cli("demo", "--dir", d, "-q").exit_code == 0
    (d / "history.sqlite").unlink()
    cfg = d / "entra-sync.toml"
    cfg.write_text(cfg.read_text().replace('path = "history.sqlite"', f'path = "{postgres_database}"'))
    r = run_cli("sync", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert f"Recorded as run 1 in {postgres_database}." in r.stderr
    with History(postgres_database) as h:
        (run,) = h.list_runs(5)
    assert run.kind == "sync" and run.status == "succeeded"
    assert not (d / "history.sqlite").exists()  # no file store was made on the side
    assert (d / "entra-sync-history.lock").exists() and (d / "reports" / f"run-{run.run_id}.html").exists()
    r = run_cli("history", "list", "--config", cfg)
    assert r.exit_code == 0 and f"#{run.run_id}" in r.stdout, r.output


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql+psycopg://entra:s3cret@db/entra", "holds a password; leave it out"),
        ("mysql://entra@db/entra", "names a 'mysql' database"),
        ("postgresql+psycopg://entra@db", "names no database"),
    ],
)
def test_a_store_url_that_cannot_serve_is_refused_by_name(url: str, fragment: str) -> None:
    with pytest.raises(ConfigFindingsError) as info:
        loads_config(f'[history]\npath = "{url}"\n')
    text = str(info.value)
    assert "history.path" in text and fragment in text
    assert "s3cret" not in text


def test_a_store_url_is_kept_as_a_url_and_a_file_path_as_a_path() -> None:
    cfg = loads_config('[history]\npath = "postgresql+psycopg://entra@db.internal:5432/entra"\n')
    assert cfg.history.target == "postgresql+psycopg://entra@db.internal:5432/entra"
    assert cfg.history.url is not None and cfg.history.path.name == "entra-sync-history.sqlite"
    cfg = loads_config('[history]\npath = "runs/h.sqlite"\n')
    assert cfg.history.url is None and cfg.history.target == cfg.history.path
    assert cfg.history.path.name == "h.sqlite"
