"""README's command table matches `entra-sync --help`: every command (and every subcommand of a
group) is listed, nothing is listed that does not exist, and every flag a row shows is one its
command takes."""

from __future__ import annotations

import re
from typing import Any

from entra_sync.cli import _command
from tests.conftest import ROOT

SPAN = re.compile(r"`([^`]+)`")


def table_spans() -> list[str]:
    """The code spans of the first column of README's command table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = text[text.index("| command | what it does |"):].splitlines()[2:]
    rows = lines[:next(i for i, line in enumerate(lines) if not line.startswith("|"))]
    return [s.replace("\\|", "|") for row in rows for s in SPAN.findall(row.split(" | ")[0])]


def named(span: str, cli: Any) -> tuple[list[tuple[str, ...]], list[str]]:
    """The (sub)commands a span names (``history list|show RUN``: two) and the flags it shows."""
    words = span.split()
    if words[0] == "entra-sync":
        words = words[1:]
    top = words[0]
    group = cli.commands.get(top)
    paths: list[tuple[str, ...]] = [(top,)]
    if hasattr(group, "commands") and len(words) > 1 and re.fullmatch(r"[a-z|-]+", words[1]):
        paths = [(top, sub) for sub in words[1].split("|")]
    flags = [re.sub(r"[\[\]]", "", w).split("=")[0] for w in words if w.lstrip("[").startswith("--")]
    return paths, flags


def resolve(cli: Any, path: tuple[str, ...]) -> Any:
    cmd = cli
    for name in path:
        cmd = getattr(cmd, "commands", {}).get(name)
        assert cmd is not None, f"README lists `entra-sync {' '.join(path)}`, which does not exist"
    return cmd


def every_command(cli: Any) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            out |= {(name, sub) for sub in subs}
            if getattr(cmd, "invoke_without_command", False):
                out.add((name,))
        else:
            out.add((name,))
    return out


def test_readme_lists_every_command_and_only_those() -> None:
    cli = _command()
    listed: set[tuple[str, ...]] = set()
    for span in table_spans():
        paths, flags = named(span, cli)
        options = {o for p in paths for param in resolve(cli, p).params for o in getattr(param, "opts", ())}
        for flag in flags:
            assert flag in options, f"README shows `{flag}` on `{span}`, which its command does not take"
        listed |= set(paths)
    missing = sorted(" ".join(p) for p in every_command(cli) - listed)
    assert missing == [], f"commands missing from README's table: {missing}"


def test_the_check_sees_a_missing_row_and_a_wrong_flag() -> None:
    cli = _command()
    paths, flags = named("entra-sync history list|show RUN --config FILE [--format json]", cli)
    assert paths == [("history", "list"), ("history", "show")] and flags == ["--config", "--format"]
    listed = {p for span in table_spans() for p in named(span, cli)[0]}
    assert ("console",) in listed and ("history", "prune") in listed and ("show",) in listed
    assert len(every_command(cli)) == len(listed & every_command(cli)) > 25
