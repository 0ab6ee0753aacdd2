"""The ``entra-sync`` command. Only this package reads the environment, wires real clients and
prints; every command module registers its commands on the one Typer app.

Files: the process umask is 0o077 (:func:`main`), so every file written holds personal data
safely: readable by its owner only.

Errors: any :class:`reconciler.errors.EntraSyncError` becomes one clear message on stderr and a
non-zero exit; an unexpected exception too, with a traceback only under ``--debug``. Tracebacks
never show local variables (they can hold secrets).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer

from entra_sync import __version__
from entra_sync.cli import console as _console
from entra_sync.cli import emulator as _emulator
from entra_sync.cli import fleet as _fleet
from entra_sync.cli import graph as _graph
from entra_sync.cli import history as _history
from entra_sync.cli import runs as _runs
from entra_sync.cli import setup as _setup
from entra_sync.cli import validate as _validate
from entra_sync.cli.logs import LogFormat, configure_logging
from entra_sync.cli.running import AFTER_ERROR
from reconciler.errors import EntraSyncError

__all__ = ["app", "main"]

app = typer.Typer(
    name="entra-sync",
    help=(
        "Realsmart Entra Sync: keep a school's or a trust's Microsoft Entra ID (groups, "
        "administrative units, Teams) in step with its school data.\n\n"
        "Typical use: `entra-sync validate desired.json` in CI; `entra-sync plan` to review; "
        "`entra-sync apply` or `entra-sync sync` on a schedule; `entra-sync demo` to try it "
        "against a built-in Graph emulator with no Azure account."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"entra-sync {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each Graph request (INFO).")] = False,
    log_format: Annotated[LogFormat, typer.Option(
        "--log-format", envvar="ENTRA_SYNC_LOG_FORMAT", show_envvar=True,
        help="Log lines on stderr as text, or as one JSON object per line (ts, level, logger, message, run).",
    )] = LogFormat.text,
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    configure_logging(level, log_format)
    # our client logs each request without query values; httpx's and MSAL's own lines would show
    # whole URLs (filters, tokens in redirects), so they stay quiet unless --debug
    for noisy in ("httpx", "httpcore", "msal"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)


for _module in (_validate, _runs, _graph, _history, _setup, _emulator, _console, _fleet):
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning our errors into one clear message each.

    Returns the exit code (click's own usage errors and ``--help`` exit through SystemExit).
    Every file the run creates (history database, reports, plans, exports, tenant files) is
    readable by its owner only: the umask is set to 0o077 first.
    """
    os.umask(0o077)
    AFTER_ERROR.clear()
    try:
        return _main(argv)
    finally:  # where a failed run was recorded: after its error message
        for line in AFTER_ERROR:
            typer.echo(line, err=True)
        AFTER_ERROR.clear()


def _command() -> Any:
    """The app as a click command, with no ``<bool>`` type shown beside its flags in --help."""
    command = typer.main.get_command(app)
    todo: list[Any] = [command]
    while todo:
        cmd = todo.pop()
        _help_flag(cmd)
        for param in cmd.params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        todo.extend(getattr(cmd, "commands", {}).values())
    return command


def _help_flag(cmd: Any) -> None:
    """Make ``cmd``'s -h/--help option now (click makes it lazily) so it shows no type either."""
    try:
        from typer._click.decorators import help_option
    except ImportError:  # another typer: its help option keeps its own look
        return
    if getattr(cmd, "_help_option", False) is None and cmd.add_help_option:
        help_option(["-h", "--help"])(cmd)
        cmd._help_option = cmd.params.pop()
        cmd._help_option.metavar = ""


def _main(argv: list[str] | None) -> int:
    try:
        _command()(args=argv, prog_name="entra-sync")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except EntraSyncError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        return 1
    return 0


def entry() -> None:
    """The ``entra-sync`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
