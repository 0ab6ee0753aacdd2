from __future__ import annotations

import pytest

from reconciler import __version__


def test_version(run_cli) -> None:
    r = run_cli("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"entra-sync {__version__}"


def test_help_lists_usage(run_cli) -> None:
    r = run_cli("--help")
    assert r.exit_code == 0
    assert "entra-sync" in r.stdout


def test_unknown_command_is_a_usage_error(run_cli) -> None:
    r = run_cli("no-such-command")
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_short_version_flag(run_cli) -> None:
    r = run_cli("-V")
    assert r.exit_code == 0 and r.stdout.strip() == f"entra-sync {__version__}"


@pytest.mark.parametrize("command", [(), ("sync",), ("plan",), ("history",), ("history", "list"), ("adopt",)])
def test_help_shows_no_type_beside_flags(run_cli, command: tuple[str, ...]) -> None:
    r = run_cli(*command, "--help")
    assert r.exit_code == 0, r.output
    assert "--help" in r.stdout and "Show this message" in r.stdout
    assert "<bool>" not in r.stdout


def test_shell_completion_is_offered_and_completes_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from entra_sync.cli import main

    assert main(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out
    monkeypatch.setenv("_ENTRA_SYNC_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "entra-sync sy")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert main([]) == 0
    assert capsys.readouterr().out.split() == ["sync"]
