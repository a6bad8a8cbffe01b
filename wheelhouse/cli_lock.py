"""``wheelhouse check`` (the CI gate before ``docker build``) and ``wheelhouse lock`` (lockfiles
of what the store holds): both ask what the store alone installs for each target
(``wheelhouse.installable``). Registered on the ``wheelhouse`` group by ``cli``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from wheelhouse.cli import _config_option, _settings, _store_option
from wheelhouse.errors import ResolutionError

if TYPE_CHECKING:
    from wheelhouse.config import Settings
    from wheelhouse.inputs import BuildInput
    from wheelhouse.installable import Installable

CHECK_EXAMPLES = """
\b
Examples:
  wheelhouse check requirements.txt --target cp311-manylinux_x86_64
  wheelhouse check pylock.toml --store /srv/wheelhouse --json
  wheelhouse check          # the config's requirements and targets
\b
Exit status: 0 every pin installs from the store on every target; 3 something is missing
(listed per target); 2 bad input; 5 no store.
"""

LOCK_EXAMPLES = """
\b
Examples:
  wheelhouse lock requirements.txt --target cp311-manylinux_x86_64 \\
      --base-url https://wheels.example.com/ --output-dir locks/
  wheelhouse lock           # the config's requirements and targets, URLs from `publish`
\b
Then, per target:
  pip install --require-hashes --only-binary :all: \\
      --index-url https://wheels.example.com/simple/ -r requirements.TARGET.txt
  pip install -r pylock.TARGET.toml      (pip >= 26.1; or uv pip install -r ...)
"""


def _target_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "-t", "--target", "targets", multiple=True, metavar="ID",
        help="A target such as cp311-manylinux_x86_64 (repeatable) [default: the config's "
        "targets, else this machine's own platform].")(f)


def _requirements_argument(f: click.decorators.FC) -> click.decorators.FC:
    return click.argument("requirements", nargs=-1,
                          type=click.Path(path_type=Path, dir_okay=False))(f)


def _walk(ctx: click.Context, requirements: tuple[Path, ...], targets: tuple[str, ...],
          store: Path | None, config_file: Path | None
          ) -> tuple[Settings, BuildInput, list[Installable]]:
    """The settings' store read-only, and what it installs for each target."""
    from wheelhouse.inputs import read_inputs
    from wheelhouse.installable import installable
    from wheelhouse.options import build_options
    from wheelhouse.store import Store

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = _settings(ctx, store=store, targets=targets)
    options = build_options(settings)
    inputs = read_inputs(requirements or settings.requirements)
    st = Store(settings.store, readonly=True)
    results = [installable(inputs.for_target(t), t, st, settings) for t in options.targets]
    return settings, inputs, results


def _report_missing(results: list[Installable]) -> None:
    bad = [r for r in results if not r.ok]
    if not bad:
        return
    pins = sum(len(r.missing) for r in bad)
    raise ResolutionError(
        f"the store cannot install {pins} {'pin' if pins == 1 else 'pins'} on "
        f"{len(bad)} of {len(results)} {'target' if len(results) == 1 else 'targets'} "
        "(listed above)",
        hint="run `wheelhouse build` with the same requirements and targets, then check again")


@click.command(epilog=CHECK_EXAMPLES)
@_requirements_argument
@_target_option
@_store_option
@_config_option
@click.option("--json", "as_json", is_flag=True,
              help="Print every target's files, missing pins and problems as JSON.")
@click.pass_context
def check(ctx: click.Context, requirements: tuple[Path, ...], targets: tuple[str, ...],
          store: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Exit 0 only if the store alone installs every pin of REQUIREMENTS, with its closure, on
    every target; else list what is missing per target.

    REQUIREMENTS are requirements files and lockfiles, as for `wheelhouse build` (the config's
    `requirements` when none are named). Nothing is fetched, built or changed: this is the
    gate before `docker build`.
    """
    _, _, checked = _walk(ctx, requirements, targets, store, config_file)
    if as_json:
        click.echo(json.dumps([{
            "target": str(r.target), "ok": r.ok,
            "files": [f.filename for f in r.files],
            "missing": [{"pin": m.label, "requested_by": m.requested_by, "reason": m.reason}
                        for m in r.missing],
            "problems": list(r.problems)} for r in checked], indent=2))
    for r in [] if as_json else checked:
        total = len(r.files) + len(r.missing)
        if r.ok:
            click.echo(f"{r.target}: ok, all {total} pins are in the store")
            continue
        click.echo(f"{r.target}: {len(r.missing)} of {total} pins missing")
        for m in r.missing:
            click.echo(f"  missing  {m.label} ({m.requested_by}): {m.reason}")
        for p in r.problems:
            click.echo(f"  problem  {p}")
    _report_missing(checked)


@click.command(epilog=LOCK_EXAMPLES)
@_requirements_argument
@_target_option
@_store_option
@_config_option
@click.option("-o", "--output-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("."), show_default=True,
              help="Where requirements.TARGET.txt and pylock.TARGET.toml are written.")
@click.option("--base-url", metavar="URL",
              help="Where the store is served (the server's root or its /simple/ URL), for "
              "the URLs in the pylock files [default: from the config's `publish`, else "
              "http://HOST:PORT/ of `wheelhouse serve`'s settings].")
@click.pass_context
def lock(ctx: click.Context, requirements: tuple[Path, ...], targets: tuple[str, ...],
         store: Path | None, config_file: Path | None, output_dir: Path,
         base_url: str | None) -> None:
    """Write, for every target, the store's files of REQUIREMENTS' closure as a requirements
    file with --hash lines and as a pylock.toml pointing at the index.

    A lock made against PyPI never admits a wheel built here; these do, so `pip install
    --require-hashes` and pylock installers take the wheels this store built. Nothing is
    written unless every pin is in the store for every target (see `wheelhouse check`).
    """
    from wheelhouse.lockfiles.write import base_url as root_of
    from wheelhouse.lockfiles.write import write_locks

    settings, inputs, checked = _walk(ctx, requirements, targets, store, config_file)
    for r in checked:
        for m in r.missing:
            click.echo(f"{r.target}: missing  {m.label} ({m.requested_by}): {m.reason}")
        for p in r.problems:
            click.echo(f"{r.target}: problem  {p}")
    _report_missing(checked)
    base = root_of(base_url or settings.publish or f"http://{settings.host}:{settings.port}/")
    for path in write_locks(checked, output_dir, base=base, inputs=inputs.files):
        click.echo(f"wrote {path}")
    click.echo(f"{sum(len(r.files) for r in checked)} files for {len(checked)} "
               f"{'target' if len(checked) == 1 else 'targets'}, served from {base}")
