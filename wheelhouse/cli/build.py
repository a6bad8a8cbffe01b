"""``wheelhouse build``: the warm-up. Reads the inputs, opens the store, runs the pipeline with
the output a person or CI reads, then publishes what a shared index lacks."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import click

from wheelhouse.cli.common import (
    config_option,
    exit_status_help,
    requirements_argument,
    settings_for,
    store_option,
    target_option,
)
from wheelhouse.errors import UsageError
from wheelhouse.options import resolve_token

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


@click.command(epilog=BUILD_EXAMPLES + exit_status_help())
@requirements_argument
@target_option
@store_option
@config_option
@click.option("--index-url", help="The upstream simple index [default: PyPI].")
@click.option("-f", "--find-links", "find_links", multiple=True, metavar="DIR_OR_URL",
              help="Also look for sdists and wheels here, as pip's --find-links (a directory "
              "or an HTML page; repeatable) [config: find-links].")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Builds compiling at once; downloads, build requirements and checks of "
              "finished wheels go on beside them [config: jobs].")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--retry-failed", is_flag=True, default=None,
              help="Build again what failed before with the same inputs.")
@click.option("--upgrade", is_flag=True,
              help="Re-resolve unpinned requirements instead of reusing the last lock.")
@click.option("--publish", "publish_url", metavar="URL",
              help="Then upload to this wheelhouse index (its /legacy/ URL) whatever it lacks "
              "of the files these requirements need [config: publish; token: env "
              "WHEELHOUSE_UPLOAD_TOKEN].")
@click.option("--engine", "engines", multiple=True, metavar="KEY=ENGINE",
              help="Build the targets of KEY (an architecture, a platform or a target glob) "
              "on ENGINE: unix:///PATH.sock, tcp://HOST:PORT, ssh://HOST or a Docker context "
              "name (repeatable; over the config's [tool.wheelhouse.engines]).")
@click.option("--report", "reports", multiple=True, metavar="PATH",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the outcome of every pin on every target to PATH, as JSON "
              "(*.json), Markdown (*.md) or JUnit XML (*.xml) (repeatable). With "
              "GITHUB_STEP_SUMMARY set, the Markdown summary is appended there too.")
@click.pass_context
def build(
    ctx: click.Context, requirements: tuple[Path, ...], requirement_files: tuple[Path, ...],
    targets: tuple[str, ...], skip: tuple[str, ...], store: Path | None,
    config_file: Path | None, index_url: str | None, find_links: tuple[str, ...],
    jobs: int | None, dry_run: bool,
    retry_failed: bool | None, upgrade: bool, publish_url: str | None,
    engines: tuple[str, ...], reports: tuple[Path, ...],
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
    from wheelhouse.builder.builders import default_policies
    from wheelhouse.inputs import read_inputs
    from wheelhouse.options import build_options
    from wheelhouse.pipeline import Pipeline
    from wheelhouse.report.output import BuildOutput, run_error
    from wheelhouse.report.plain import plural

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx, store=store, targets=targets, skip=skip, index_url=index_url,
                            find_links=_locations(find_links), jobs=jobs,
                            retry_failed=retry_failed)
    if engines:
        settings = dataclasses.replace(settings, engines={**settings.engines,
                                                          **_engines(engines)})
    # A configured builder image says which policy it makes; a target naming none gets it.
    options = build_options(settings, policies=default_policies(settings), dry_run=dry_run,
                            upgrade=upgrade)
    if settings.engines and not dry_run:
        from wheelhouse.builder.engines import Engines

        # An engine named for a target must answer before any work starts.
        Engines(settings.engine, settings.engines).check(options.targets)
    inputs = read_inputs((requirements + requirement_files) or settings.requirements)
    publish_url = publish_url or settings.publish
    with contextlib.ExitStack() as cleanup:
        store_obj, ledger = _open_store(settings.store_location, settings.catalogue, dry_run,
                                        cleanup)
        output = BuildOutput(echo=click.echo, stream=sys.stdout, environ=os.environ,
                             root=store_obj.root, dry_run=dry_run, reports=reports,
                             store=store_obj.location)
        progress = cleanup.enter_context(output.progress())
        pipeline = Pipeline(options=options, store=store_obj, ledger=ledger, inputs=inputs,
                            progress=progress)
        cleanup.callback(pipeline.close)
        names = ", ".join(str(t) for t in options.targets)
        click.echo(f"{'Planning' if dry_run else 'Building'} "
                   f"{plural(inputs.size, 'requirement')} for {names} into "
                   f"{settings.store_location}")
        result = pipeline.run()
    try:
        output.finish(result, lookup=store_obj.get)
    except UsageError as e:  # a report that could not be written: said, never the run's fate
        report_error: UsageError | None = e
    else:
        report_error = None
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return
    if publish_url:
        # Publish what did build even when some pins failed: other runners can use it.
        from wheelhouse.publish.remote import publish_missing

        report = publish_missing(store_obj, result.filenames, publish_url,
                                 resolve_token("upload"),
                                 report=click.echo)
        click.echo(f"published to {publish_url}: {len(report.uploaded)} uploaded, "
                   f"{len(report.present)} already there")
    error = run_error(result)
    if report_error is not None:
        if error is None:
            raise report_error
        click.echo(f"error: {report_error.message}", err=True)
    if error is not None:
        raise error


def _open_store(path: Path | str, catalogue: str | None, dry_run: bool,
                cleanup: contextlib.ExitStack) -> tuple[Any, Any]:
    """The store and its ledger. A dry run opens both read-only if they exist, otherwise an
    empty store in a temporary place: it never creates or changes the real one."""
    import tempfile

    from wheelhouse.ledger import Ledger, open_ledger
    from wheelhouse.store import backends
    from wheelhouse.store.store import Store

    if not dry_run or backends.exists(path, catalogue):
        # The bucket is checked when first used: a no-op build never uses it.
        store = backends.open_store(path, catalogue=catalogue, readonly=dry_run,
                                    check_bucket=False)
        return store, open_ledger(store.root, catalogue=catalogue, readonly=dry_run,
                                  blobs=store.blobs)
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="wheelhouse-dry-run-")))
    return Store(tmp), Ledger(tmp)


def _engines(given: tuple[str, ...]) -> dict[str, str]:
    """``--engine KEY=ENGINE`` values as the config's ``engines`` table, keys checked."""
    from wheelhouse.selectors import key_kind

    out = {}
    for value in given:
        key, sep, spec = value.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise UsageError(f"--engine {value!r} is not KEY=ENGINE",
                             hint="e.g. --engine aarch64=ssh://arm-builder or "
                             "--engine musllinux_x86_64=unix:///run/second.sock")
        key_kind(key.strip(), setting="--engine")
        out[key.strip()] = spec.strip()
    return out


def _locations(given: tuple[str, ...]) -> tuple[str, ...]:
    """--find-links values as the config takes them: local directories made absolute."""
    out = []
    for value in given:
        path = Path(value)
        out.append(str(path.resolve()) if "://" not in value else value)
    return tuple(out)
