"""``wheelhouse lock``: lockfiles of what the store holds, per target (requirements files with
``--hash`` lines and ``pylock.toml``), written only when the store installs every pin."""

from __future__ import annotations

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


@click.command(epilog=LOCK_EXAMPLES)
@requirements_argument
@target_option
@store_option
@config_option
@click.option("-o", "--output-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("."), show_default=True,
              help="Where requirements.TARGET.txt and pylock.TARGET.toml are written.")
@click.option("--base-url", metavar="URL",
              help="Where the store is served (the server's root or its /simple/ URL), for "
              "the URLs in the pylock files [default: from the config's `publish`; without "
              "either, lock stops with exit 2].")
@click.pass_context
def lock(ctx: click.Context, requirements: tuple[Path, ...],
         requirement_files: tuple[Path, ...], targets: tuple[str, ...], skip: tuple[str, ...],
         store: Path | None, config_file: Path | None, output_dir: Path,
         base_url: str | None) -> None:
    """Write, for every target, the store's files of REQUIREMENTS' closure as a requirements
    file with --hash lines and as a pylock.toml pointing at the index.

    A lock made against PyPI never admits a wheel built here; these do, so `pip install
    --require-hashes` and pylock installers take the wheels this store built. Nothing is
    written unless every pin is in the store for every target (see `wheelhouse check`).
    """
    from wheelhouse.lockfiles.write import index_root, write_locks

    settings, inputs, checked = walk_store(ctx, requirements + requirement_files,
                                           targets, store, config_file, skip)
    for r in checked:
        for m in r.missing:
            click.echo(f"{r.target}: missing  {m.label} ({m.requested_by}): {m.reason}")
        for p in r.problems:
            click.echo(f"{r.target}: problem  {p}")
    report_missing(checked)
    base = index_root(base_url, publish=settings.publish)
    for path in write_locks(checked, output_dir, base=base, inputs=inputs.files):
        click.echo(f"wrote {path}")
    click.echo(f"{sum(len(r.files) for r in checked)} files for {len(checked)} "
               f"{'target' if len(checked) == 1 else 'targets'}, served from {base}")
