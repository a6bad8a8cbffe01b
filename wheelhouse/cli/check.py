"""``wheelhouse check``: the CI gate before ``docker build``. Asks what the store alone installs
for each target (``wheelhouse.installable``) and lists what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wheelhouse.cli.common import (
    config_option,
    report_missing,
    requirements_argument,
    store_option,
    target_option,
    walk_store,
)

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


@click.command(epilog=CHECK_EXAMPLES)
@requirements_argument
@target_option
@store_option
@config_option
@click.option("--json", "as_json", is_flag=True,
              help="Print every target's files, missing pins and problems as JSON.")
@click.pass_context
def check(ctx: click.Context, requirements: tuple[Path, ...],
          requirement_files: tuple[Path, ...], targets: tuple[str, ...], skip: tuple[str, ...],
          store: Path | None, config_file: Path | None, as_json: bool) -> None:
    """Exit 0 only if the store alone installs every pin of REQUIREMENTS, with its closure, on
    every target; else list what is missing per target.

    REQUIREMENTS are requirements files and lockfiles, as for `wheelhouse build` (the config's
    `requirements` when none are named). Nothing is fetched, built or changed: this is the
    gate before `docker build`.
    """
    _, _, checked = walk_store(ctx, requirements + requirement_files, targets, store,
                                config_file, skip)
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
    report_missing(checked)
