from __future__ import annotations

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
