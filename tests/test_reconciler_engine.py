"""The run record: how a run ends up in the history, whatever stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_sync.pipeline import RunRecord
from entra_sync.runs.history import History
from reconciler.clock import VirtualClock
from reconciler.errors import DirectoryError, SafetyError


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (SafetyError(["too many deletes"]), "refused", "too many deletes"),
        (DirectoryError("Graph said no"), "failed", "Graph said no"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
        (ValueError("bug"), "failed", "ValueError: bug"),
    ],
)
def test_an_exception_ends_the_run_with_its_status(
    tmp_path: Path, exc: BaseException, status: str, error: str
) -> None:
    with History(tmp_path / "h.db", VirtualClock()) as h:
        with pytest.raises(type(exc)), RunRecord(h, "sync") as record:
            raise exc
        run = h.get_run(record.run_id or 0)
    assert run.summary.status == status
    assert error in (run.summary.error or "")


def test_a_run_with_nothing_to_apply_succeeds_and_no_history_records_nothing(tmp_path: Path) -> None:
    with History(tmp_path / "h.db", VirtualClock()) as h:
        with RunRecord(h, "sync") as record:
            pass
        assert h.get_run(record.run_id or 0).summary.status == "succeeded"
    with RunRecord(None, "sync") as nowhere:
        nowhere.finish("failed", "ignored")
    assert nowhere.run_id is None
