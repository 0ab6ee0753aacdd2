"""Delta reads through the CLI: the run history keeps the delta state, a later run reads only what
changed, a change made by hand in the tenant is corrected, and ``[delta]`` is validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_sync.config.load import ConfigFindingsError, loads_config
from entra_sync.store.delta import SqlDeltaStore
from providers.emulator import Tenant


def _scopes(history: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(history) as db:
        return [r[0] for r in db.execute("SELECT scope FROM delta_snapshots")]


def test_runs_keep_delta_state_and_correct_a_change_made_by_hand(run_cli, tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    r = run_cli("demo", "--dir", demo, "-q")
    assert r.exit_code == 0, r.output
    history = demo / "history.sqlite"
    scopes = _scopes(history)
    assert len(scopes) == 1
    store = SqlDeltaStore(history)
    snap = store.load(scopes[0])
    assert snap is not None and snap.runs_since_full == 0  # the first read was full
    config = demo / "entra-sync.toml"
    r = run_cli("sync", "--config", config, "-q")
    assert r.exit_code == 0, r.output
    assert "No changes" in r.stdout
    snap = store.load(scopes[0])
    assert snap is not None and snap.runs_since_full == 1  # read through delta

    # someone removes a pupil from a class by hand in Entra
    tenant = Tenant.load(demo / "tenant.json")
    gid, group = next((gid, g) for gid, g in sorted(tenant.groups.items()) if g.ext and len(g.members) > 2)
    member = sorted(m for m in group.members if m not in group.owners)[0]
    tenant.unlink(group, "members", member)
    tenant.save(demo / "tenant.json")
    r = run_cli("sync", "--config", config, "-q")
    assert r.exit_code == 0, r.output
    assert "No changes" not in r.stdout
    assert member in Tenant.load(demo / "tenant.json").groups[gid].members
    snap = store.load(scopes[0])
    assert snap is not None and snap.runs_since_full == 2
    store.close()


def test_delta_off_keeps_no_state(run_cli, tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    r = run_cli("demo", "--dir", demo, "-q")
    assert r.exit_code == 0, r.output
    config = demo / "entra-sync.toml"
    config.write_text(config.read_text() + "\n[delta]\nenabled = false\n")
    SqlDeltaStore(demo / "history.sqlite").forget(_scopes(demo / "history.sqlite")[0])
    r = run_cli("sync", "--config", config, "-q")
    assert r.exit_code == 0, r.output
    assert _scopes(demo / "history.sqlite") == []


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("full_every_days = 10", "delta.full_every_days", "at most 7"),
        ("full_every_days = 0", "delta.full_every_days", "more than 0"),
        ("full_every_runs = 0", "delta.full_every_runs", "at least 1"),
        ('enabled = "yes"', "delta.enabled", "boolean"),
        ("every = 3", "delta.every", ""),
    ],
)
def test_delta_section_is_validated(text: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigFindingsError) as err:
        loads_config(f"[delta]\n{text}\n")
    assert [f.path for f in err.value.findings] == [path]
    assert fragment in str(err.value)


def test_delta_defaults() -> None:
    cfg = loads_config("[delta]\nfull_every_days = 2.5\n")
    assert (cfg.delta.enabled, cfg.delta.full_every_runs, cfg.delta.full_every_days) == (True, 50, 2.5)
