"""The ``wheelhouse`` group and the one place errors become a message, a hint and an exit
status. Commands live one per module and are imported only when named (or listed by
``--help``), so ``wheelhouse build`` loads nothing of ``serve`` and importing this module
does no work."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import click

from wheelhouse import __version__
from wheelhouse.cli.common import exit_status_help
from wheelhouse.errors import WheelhouseError


def _build() -> click.Command:
    from wheelhouse.cli.build import build

    return build


def _check() -> click.Command:
    from wheelhouse.cli.check import check

    return check


def _export() -> click.Command:
    from wheelhouse.cli.export import export

    return export


def _list() -> click.Command:
    from wheelhouse.cli.listing import list_

    return list_


def _gc() -> click.Command:
    from wheelhouse.cli.gc import gc

    return gc


def _lock() -> click.Command:
    from wheelhouse.cli.lock import lock

    return lock


def _serve() -> click.Command:
    from wheelhouse.cli.serve import serve

    return serve


def _targets() -> click.Command:
    from wheelhouse.cli.targets import targets

    return targets


#: every command, in the order ``--help`` lists them (the order of the data flow).
COMMANDS: dict[str, Callable[[], click.Command]] = {
    "build": _build, "check": _check, "lock": _lock, "list": _list, "serve": _serve,
    "export": _export, "gc": _gc, "targets": _targets,
}


class _Commands(click.Group):
    """A group whose commands are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load = COMMANDS.get(cmd_name)
        return load() if load is not None else None


@click.group(cls=_Commands,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=exit_status_help())
@click.version_option(__version__, prog_name="wheelhouse")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A TOML file with wheelhouse settings (instead of ./wheelhouse.toml or "
              "./pyproject.toml's [tool.wheelhouse]).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Build wheels once per (package version, platform), store them, and serve them.

    \b
    Settings come from, later winning: built-in defaults, ./wheelhouse.toml or
    [tool.wheelhouse] in ./pyproject.toml (or --config FILE), WHEELHOUSE_* environment
    variables, flags.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_file


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (docker stop, a CI job cancelled, kill) unwinds like Ctrl-C, so builder
    # containers are removed and staging files cleaned instead of being left behind.
    raise KeyboardInterrupt


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line and exit with the status its outcome maps to."""
    import signal

    with contextlib.suppress(ValueError):  # not in the main thread (tests calling main)
        signal.signal(signal.SIGTERM, _terminate)
    try:
        rv = cli.main(args=argv, prog_name="wheelhouse", standalone_mode=False)
        if isinstance(rv, int):
            sys.exit(rv)
    except WheelhouseError as e:
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"  hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
