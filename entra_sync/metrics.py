"""A Prometheus textfile (node_exporter's textfile collector) describing the last run.

Written from the run-result document (:mod:`entra_sync.runs.result_json`) atomically: to a temporary
file in the same directory, flushed, then renamed over the old one, so the collector never reads
half a file. ``entra_sync_last_success_timestamp_seconds`` is carried over from the previous file
when this run did not succeed.

Metrics (gauges): last run and last success time, the last run's duration and status, its changes
by kind and action (planned, and done), changes not done, safety refusals, people not in Entra and
requests Graph throttled.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["PREFIX", "render_textfile", "write_textfile"]

log = logging.getLogger(__name__)

PREFIX = "entra_sync"
_RUN_STATUSES = ("succeeded", "partial", "failed", "refused", "interrupted", "running")
_SUCCESS = re.compile(rf"^{PREFIX}_last_success_timestamp_seconds\s+([0-9.eE+-]+)\s*$", re.MULTILINE)


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def gauge(self, name: str, help_text: str, samples: list[tuple[Mapping[str, str], float]]) -> None:
        full = f"{PREFIX}_{name}"
        self.lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
        for labels, v in samples:
            text = ",".join(f'{k}="{_label(val)}"' for k, val in labels.items())
            self.lines.append(f"{full}{{{text}}} {_num(v)}" if text else f"{full} {_num(v)}")


def render_textfile(doc: Mapping[str, Any], *, last_success: float | None = None) -> str:
    """The textfile for the run-result ``doc``; ``last_success`` is the previous success time."""
    run = doc["run"]
    needs = doc["needsYou"]
    started = _ts(run["startedAt"]) or 0.0
    finished = _ts(run["finishedAt"])
    ended = finished if finished is not None else started
    if run["status"] == "succeeded":
        last_success = ended
    planned: dict[tuple[str, str], int] = {}
    done: dict[tuple[str, str], int] = {}
    for c in doc["changes"]:
        k = (c["kind"], c["action"])
        planned[k] = planned.get(k, 0) + 1
        if c["status"] in ("done", "partial"):
            done[k] = done.get(k, 0) + 1
    out = _Out()
    out.gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).", [({}, ended)])
    if last_success is not None:
        out.gauge("last_success_timestamp_seconds", "When the last successful run ended (Unix time).",
                  [({}, last_success)])
    total = run["timings"].get("totalSeconds")
    out.gauge("last_run_duration_seconds", "How long the last run took.",
              [({}, total if total is not None else ended - started)])
    out.gauge("last_run_status", "The last run's status (1 for the status it ended with).",
              [({"status": s}, 1 if run["status"] == s else 0) for s in _RUN_STATUSES])
    out.gauge("last_run_dry_run", "1 when the last run only planned.", [({}, 1 if run["dryRun"] else 0)])
    out.gauge("last_run_changes_planned", "Changes the last run planned, by kind and action.",
              [({"kind": k, "action": a}, n) for (k, a), n in sorted(planned.items())])
    out.gauge("last_run_changes_done", "Changes the last run made (in full or in part), by kind and action.",
              [({"kind": k, "action": a}, n) for (k, a), n in sorted(done.items())])
    out.gauge("last_run_memberships_planned", "Memberships the last run planned to move.",
              [({}, doc["summary"]["memberships"])])
    out.gauge("last_run_failures", "Changes of the last run that failed, partly failed or were skipped.",
              [({}, len(needs["failures"]))])
    out.gauge("last_run_refusals", "Safety limits that refused the last run's plan.",
              [({}, len(needs["refusals"]))])
    out.gauge("last_run_conflicts", "Desired objects blocked by an unmanaged object of the same name.",
              [({}, len(needs["conflicts"]))])
    out.gauge("last_run_unresolved_people", "People in the school data not found in Entra.",
              [({}, needs["unresolvedPeople"])])
    throttled = run.get("throttledRequests")
    if throttled is not None:
        out.gauge("last_run_throttled_requests",
                  "Requests Microsoft Graph throttled (HTTP 429) in the last run.", [({}, throttled)])
    return "\n".join(out.lines) + "\n"


def _previous_success(path: Path) -> float | None:
    try:
        m = _SUCCESS.search(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return float(m.group(1)) if m else None


def write_textfile(doc: Mapping[str, Any], path: str | Path) -> Path:
    """Write the textfile for ``doc`` to ``path`` atomically (temporary file, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_textfile(doc, last_success=_previous_success(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("wrote the metrics textfile %s", target)
    return target
