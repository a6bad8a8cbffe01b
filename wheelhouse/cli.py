"""The ``wheelhouse`` command. The one place errors become a message, a hint and an exit status
(``EXIT_STATUSES``, shown by ``--help`` and in the README)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from wheelhouse import __version__
from wheelhouse.config import Settings, load_settings
from wheelhouse.errors import UsageError, WheelhouseError
from wheelhouse.options import resolve_token

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STATUSES = """
\b
Exit status:
  0  success (or nothing to do)
  1  an unexpected error (a bug: please report it)
  2  bad input: a flag, the config, a requirements line, a lockfile, a target, a --report path
  3  a pin cannot be resolved to files for a target (check, lock: the store lacks it)
  4  the upstream index or a find-links source failed
  5  the store cannot be read or written
  6  builds failed; everything else was still published
  7  the server cannot start
  8  this machine cannot build: no container engine, image or emulation
  9  publishing failed or found conflicting files
130  interrupted
"""

BUILD_EXAMPLES = """
\b
Examples:
  wheelhouse build requirements.txt
  wheelhouse build requirements.txt --dry-run
  wheelhouse build requirements.txt --target cp311-manylinux_x86_64 \\
      --target cp311-musllinux_aarch64
  wheelhouse build requirements.txt --store /srv/wheelhouse --retry-failed
  WHEELHOUSE_UPLOAD_TOKEN=... wheelhouse build requirements.txt \\
      --publish https://wheels.example.com/legacy/
  wheelhouse build requirements.txt --report wheelhouse.json --report junit.xml
"""


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    config = ctx.obj.get("config") if ctx.obj else None
    return load_settings(config_file=config, overrides=overrides)


def _config_option(f: F) -> F:
    return click.option(
        "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
        help="A TOML file with wheelhouse settings (instead of ./wheelhouse.toml or "
        "./pyproject.toml's [tool.wheelhouse]).",
    )(f)


def _store_option(f: F) -> F:
    return click.option(
        "--store", type=click.Path(path_type=Path, file_okay=False),
        help="The store directory [default: $XDG_DATA_HOME/wheelhouse/store; "
        "env WHEELHOUSE_STORE].",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_STATUSES)
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


@cli.command(epilog=BUILD_EXAMPLES + EXIT_STATUSES)
@click.argument("requirements", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("-t", "--target", "targets", multiple=True, metavar="ID",
              help="A target such as cp311-manylinux_x86_64 (repeatable) [default: this "
              "machine's own platform].")
@_store_option
@_config_option
@click.option("--index-url", help="The upstream simple index [default: PyPI].")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel downloads and builds.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--retry-failed", is_flag=True, default=None,
              help="Build again what failed before with the same inputs.")
@click.option("--upgrade", is_flag=True,
              help="Re-resolve unpinned requirements instead of reusing the last lock.")
@click.option("--publish", "publish_url", metavar="URL",
              help="Then upload to this wheelhouse index (its /legacy/ URL) whatever it lacks "
              "of the files these requirements need [config: publish; token: env "
              "WHEELHOUSE_UPLOAD_TOKEN].")
@click.option("--report", "reports", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the outcome of every pin on every target to PATH, as JSON "
              "(*.json), Markdown (*.md) or JUnit XML (*.xml) (repeatable). With "
              "GITHUB_STEP_SUMMARY set, the Markdown summary is appended there too.")
@click.pass_context
def build(
    ctx: click.Context, requirements: tuple[Path, ...], targets: tuple[str, ...],
    store: Path | None, config_file: Path | None, index_url: str | None, jobs: int | None,
    dry_run: bool, retry_failed: bool | None, upgrade: bool, publish_url: str | None,
    reports: tuple[Path, ...],
) -> None:
    """Make the store hold wheels for every pin in REQUIREMENTS, for every target.

    REQUIREMENTS are requirements files and lockfiles (pylock.toml, pylock.NAME.toml,
    uv.lock); without any, the config's `requirements` are read, so a bare `wheelhouse
    build` in a project with [tool.wheelhouse] or wheelhouse.toml does the whole warm-up.
    Fitting wheels are fetched from the upstream index (a lockfile's own files for what it
    locks); the rest are built from sdists and repaired with auditwheel. Unchanged inputs
    with a complete store do nothing.

    \b
    On a terminal, progress is live and ends in a table per target; in a pipe or
    with CI set, every event is one plain line.
    """
    from wheelhouse.inputs import read_inputs
    from wheelhouse.options import build_options
    from wheelhouse.pipeline import Pipeline
    from wheelhouse.report import plural
    from wheelhouse.report.output import BuildOutput, run_error

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = _settings(ctx, store=store, targets=targets, index_url=index_url, jobs=jobs,
                         retry_failed=retry_failed)
    options = build_options(settings, dry_run=dry_run, upgrade=upgrade)
    inputs = read_inputs(requirements or settings.requirements)
    publish_url = publish_url or settings.publish
    with contextlib.ExitStack() as cleanup:
        store_obj, ledger = _open_store(settings.store, dry_run, cleanup)
        output = BuildOutput(echo=click.echo, stream=sys.stdout, environ=os.environ,
                             root=store_obj.root, dry_run=dry_run, reports=reports)
        progress = cleanup.enter_context(output.progress())
        pipeline = Pipeline(options=options, store=store_obj, ledger=ledger, inputs=inputs,
                            progress=progress)
        cleanup.callback(pipeline.close)
        names = ", ".join(str(t) for t in options.targets)
        click.echo(f"{'Planning' if dry_run else 'Building'} "
                   f"{plural(inputs.size, 'requirement')} for {names} into "
                   f"{settings.store}")
        result = pipeline.run()
    output.finish(result, lookup=store_obj.get)
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return
    if publish_url:
        # Publish what did build even when some pins failed: other runners can use it.
        from wheelhouse.publish import publish_missing

        report = publish_missing(store_obj, result.filenames, publish_url,
                                 resolve_token("upload"),
                                 report=click.echo)
        click.echo(f"published to {publish_url}: {len(report.uploaded)} uploaded, "
                   f"{len(report.present)} already there")
    error = run_error(result)
    if error is not None:
        raise error


def _open_store(path: Path, dry_run: bool, cleanup: contextlib.ExitStack) -> tuple[Any, Any]:
    """The store and its ledger. A dry run opens both read-only if they exist, otherwise an
    empty store in a temporary place: it never creates or changes the real one."""
    import tempfile

    from wheelhouse.ledger import Ledger
    from wheelhouse.store import Store

    if not dry_run:
        return Store(path), Ledger(path)
    if Store.exists(path):
        return Store(path, readonly=True), Ledger(path, readonly=True)
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="wheelhouse-dry-run-")))
    return Store(tmp), Ledger(tmp)


@cli.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def targets(ctx: click.Context, config_file: Path | None, as_json: bool) -> None:
    """List known target identifiers and how this machine builds each.

    "native" builds run on this machine with no container; the others run in a container
    of the target's platform, under QEMU emulation where the architecture is foreign.
    """
    from wheelhouse.build import Builders
    from wheelhouse.build.engine import image_policies
    from wheelhouse.targets import host_platform, host_target, known_targets, parse_target

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = _settings(ctx)
    builders = Builders(settings, index_url=settings.index_url, build_env={})
    # A configured image that says which policy it makes sets its platform's default.
    policies = image_policies(settings.engine, settings.images) if settings.images else {}
    default = host_target() if host_platform() is not None else None
    rows = []
    for known in ([default] if default else []) + known_targets():
        t = known if known is default else parse_target(known.identifier, defaults=policies)
        how = builders.describe(t)
        accepts = f"{t.policy_tag} and older"
        if policies.get(t.platform) == t.policy:
            accepts += " (its image's policy)"
        rows.append({"target": t.identifier, "accepts": accepts, "builds": how,
                     "default": t == default})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        click.echo(f"{mark} {row['target']:<30} {row['accepts']:<52} {row['builds']}")
    click.echo("\n* the default target: this interpreter on this machine's platform")


@cli.command(name="list")
@click.argument("project", required=False)
@_store_option
@_config_option
@click.option("--failures", is_flag=True, help="List recorded build failures instead.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, project: str | None, store: Path | None,
          config_file: Path | None, failures: bool, as_json: bool) -> None:
    """List what the store holds (optionally for one PROJECT), with origin and size."""
    from wheelhouse.ledger import Ledger, failure_json
    from wheelhouse.store import Store

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = _settings(ctx, store=store)
    st = Store(settings.store, readonly=True)
    if failures:
        fails = Ledger(settings.store, readonly=True).failures()
        if as_json:
            click.echo(json.dumps([failure_json(f) for f in fails], indent=2))
        for failure in [] if as_json else fails:
            click.echo(f"{failure.project}=={failure.version} {failure.target}: "
                       f"{failure.message} (log: {failure.log})")
        return
    files = st.files(project)
    if as_json:
        click.echo(json.dumps([
            {"filename": f.filename, "project": f.project, "version": f.version,
             "sha256": f.sha256, "size": f.size, "upload_time": f.upload_time,
             "origin": f.origin.value, "yanked": f.yanked, "provenance": dict(f.provenance)}
            for f in files], indent=2))
        return
    for f in files:
        click.echo(f"{f.filename:<72} {f.origin.value:<9} {f.size:>10,d}")
    click.echo(f"{len(files)} files in {len({f.project for f in files})} projects "
               f"in {settings.store}")


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (docker stop, a CI job cancelled, kill) unwinds like Ctrl-C, so builder
    # containers are removed and staging files cleaned instead of being left behind.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> NoReturn:
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


__all__ = ["UsageError", "cli", "main"]


def _register() -> None:
    # Defined in their own modules, which use the option helpers above.
    from wheelhouse.cli_lock import check, lock
    from wheelhouse.cli_serve import export, serve

    for command in (check, lock, serve, export):
        cli.add_command(command)


_register()
