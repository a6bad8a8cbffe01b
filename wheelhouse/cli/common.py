"""What the commands share: reading settings for a command, the options several commands take,
the exit-status table for help texts, and the store walk behind ``check`` and ``lock``. A leaf:
it imports no command module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wheelhouse.config import load_settings
from wheelhouse.errors import ResolutionError, exit_statuses
from wheelhouse.settings import Settings

if TYPE_CHECKING:
    from wheelhouse.inputs import BuildInput
    from wheelhouse.installable import Installable

F = TypeVar("F", bound=Callable[..., Any])


def exit_status_help() -> str:
    """The exit-status table for a command's epilog (click keeps ``\\b`` paragraphs as they are)."""
    rows = "\n".join(f"{code:>3}  {text.replace('`', '')}" for code, text in exit_statuses())
    return f"\n\b\nExit status:\n{rows}\n"


def settings_for(ctx: click.Context, **overrides: Any) -> Settings:
    config = ctx.obj.get("config") if ctx.obj else None
    if ctx.obj and ctx.obj.get("catalogue"):
        overrides.setdefault("catalogue", ctx.obj["catalogue"])
    return load_settings(config_file=config, overrides=overrides)


class _StoreLocation(click.ParamType[Path | str, Any]):
    """A store directory (a Path), or a bucket as ``s3://BUCKET/PREFIX`` (kept as text)."""

    name = "DIRECTORY|s3://BUCKET/PREFIX"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Path | str:
        if isinstance(value, str) and value.startswith("s3://"):
            return value
        if isinstance(value, str) and "://" in value:
            self.fail(f"{value} is neither a directory nor an s3:// URL", param, ctx)
        return Path(value)


def _remember_catalogue(ctx: click.Context, _param: click.Parameter, value: str | None
                        ) -> None:
    if value is not None:
        ctx.ensure_object(dict)["catalogue"] = value


def config_option(f: F) -> F:
    return click.option(
        "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
        help="A TOML file with wheelhouse settings (instead of ./wheelhouse.toml or "
        "./pyproject.toml's [tool.wheelhouse]).",
    )(f)


def store_option(f: F) -> F:
    f = click.option(
        "--catalogue", metavar="postgresql://…", expose_value=False,
        callback=_remember_catalogue,
        help="Keep the catalogue and build ledger in this PostgreSQL database (needed for an "
        "s3:// store; shared by replicas and runners) [env WHEELHOUSE_CATALOGUE].",
    )(f)
    return click.option(
        "--store", type=_StoreLocation(),
        help="The store: a directory, or s3://BUCKET/PREFIX for a bucket (endpoint and keys "
        "from AWS_* / ~/.aws) [default: $XDG_DATA_HOME/wheelhouse/store; "
        "env WHEELHOUSE_STORE].",
    )(f)


TARGET_HELP = ("A target such as cp311-manylinux_x86_64 or cp314t-musllinux_aarch64, or a glob "
               "over the known ones such as 'cp31*-musllinux_*' (repeatable) [default: the "
               "config's targets, else this machine's own platform].")
SKIP_HELP = ("Drop the targets matching this glob, e.g. '*t-*' for no free-threaded builds "
             "(repeatable) [config: skip].")


def target_option(f: click.decorators.FC) -> click.decorators.FC:
    """``--target`` (identifiers or globs) and ``--skip`` (globs)."""
    f = click.option("--skip", "skip", multiple=True, metavar="GLOB", help=SKIP_HELP)(f)
    return click.option("-t", "--target", "targets", multiple=True, metavar="ID",
                        help=TARGET_HELP)(f)


def requirements_argument(f: click.decorators.FC) -> click.decorators.FC:
    """REQUIREMENTS as arguments, and as ``-r FILE`` as pip takes them."""
    f = click.option("-r", "--requirement", "requirement_files", multiple=True,
                     metavar="FILE", type=click.Path(path_type=Path, dir_okay=False),
                     help="A requirements file or lockfile, as pip takes it (repeatable; "
                     "the same as naming it as an argument).")(f)
    return click.argument("requirements", nargs=-1,
                          type=click.Path(path_type=Path, dir_okay=False))(f)


def walk_store(ctx: click.Context, requirements: tuple[Path, ...], targets: tuple[str, ...],
               store: Path | None, config_file: Path | None, skip: tuple[str, ...] = ()
               ) -> tuple[Settings, BuildInput, list[Installable]]:
    """The settings' store read-only, and what it installs for each target."""
    from wheelhouse.builder.builders import default_policies
    from wheelhouse.inputs import read_inputs
    from wheelhouse.installable import installable
    from wheelhouse.ledger import open_ledger
    from wheelhouse.options import build_options
    from wheelhouse.store.backends import open_store

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store, targets=targets, skip=skip)
    options = build_options(settings, policies=default_policies(settings))
    inputs = read_inputs(requirements or settings.requirements)
    st = open_store(settings.store_location, catalogue=settings.catalogue, readonly=True)
    failures = open_ledger(st.root, catalogue=settings.catalogue, readonly=True).failures()
    results = [installable(inputs.for_target(t), t, st, settings, failures)
               for t in options.targets]
    return settings, inputs, results


def report_missing(results: list[Installable]) -> None:
    bad = [r for r in results if not r.ok]
    if not bad:
        return
    pins = sum(len(r.missing) for r in bad)
    failed = any(m.reason.startswith("its build failed") for r in bad for m in r.missing)
    raise ResolutionError(
        f"the store cannot install {pins} {'pin' if pins == 1 else 'pins'} on "
        f"{len(bad)} of {len(results)} {'target' if len(results) == 1 else 'targets'} "
        "(listed above)",
        hint=("fix what the build logs named above say, then run `wheelhouse build "
              "--retry-failed` with the same requirements and targets, and check again"
              if failed else "run `wheelhouse build` with the same requirements and targets, "
              "then check again"))


def human_size(size: int) -> str:
    """Bytes for people: ``812 KB``, ``1.4 GB``."""
    n = float(size)
    for unit in ("bytes", "KB", "MB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "bytes" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"
