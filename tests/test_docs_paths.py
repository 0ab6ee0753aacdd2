"""Every file the README and docs/*.md cite exists in the repository: a path under one of its
folders (`docs/x.md`, `deploy/...`, `examples/...`, `schemas/...`, `benchmarks/...`), a bare
document name (`entra-sync.example.toml`, `compose.yaml`, `configuration.md`), or a relative link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FOLDERS = ("docs", "deploy", "examples", "schemas", "benchmarks", "tests", "entra_sync", "reconciler",
           "providers", ".ci")
#: a path under one of the repository's folders, anywhere in the text (code blocks too)
IN_FOLDER = re.compile(r"(?<![\w/.~-])((?:\./)?(?:" + "|".join(re.escape(f) for f in FOLDERS)
                       + r")/[\w./-]*\w)")
#: a bare file name in backticks that names one of the repository's documents or configuration files
BARE = re.compile(r"`([\w.-]+\.(?:md|toml|yaml|yml|json|csv))`")
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)")
#: bare names that are the reader's own files in examples, not the repository's
THEIRS = frozenset({"desired.json", "plan.json", "PLAN.json", "users.csv", "tenant.json", "report.json",
                    "entra-sync.toml", "history.json", "people.json"})


def cited(doc: Path) -> list[tuple[str, Path]]:
    text = doc.read_text(encoding="utf-8")
    out = [(m.group(1), ROOT / m.group(1).split("::")[0]) for m in IN_FOLDER.finditer(text)]
    for m in BARE.finditer(text):
        name = m.group(1)
        if name not in THEIRS and not IN_FOLDER.fullmatch(name):
            where = [ROOT / name, ROOT / "docs" / name, doc.parent / name]
            out.append((name, next((p for p in where if p.exists()), where[0])))
    out += [(m.group(1), doc.parent / m.group(1)) for m in LINK.finditer(text)]
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_file_exists(doc: Path) -> None:
    missing = sorted({name for name, path in cited(doc) if not path.exists()})
    assert missing == [], f"{doc.relative_to(ROOT)} cites files that are not in the repository: {missing}"


def test_the_check_finds_what_it_should(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("See `docs/nowhere.md`, `graph-facts.md`, [the guide](guide.md) and\n"
                   "```\nentra-sync seed examples/missing.csv\n```\n")
    names = {name for name, path in cited(doc) if not path.exists()}
    assert names == {"docs/nowhere.md", "graph-facts.md", "guide.md", "examples/missing.csv"}
