"""``wheelhouse targets``: the known target identifiers and how this machine builds each."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wheelhouse.cli.common import config_option, settings_for


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def targets(ctx: click.Context, config_file: Path | None, as_json: bool) -> None:
    """List known target identifiers and how this machine builds each.

    "native" builds run on this machine with no container; the others run in a container
    of the target's platform, under QEMU emulation where the architecture is foreign. The
    engine column says which container engine builds each target (the default one, or the
    one [tool.wheelhouse.engines] names for it) and whether its architecture is the
    target's ("native") or not ("emulated").
    """
    from wheelhouse.builder.builders import Builders
    from wheelhouse.targets import host_platform, host_target, known_targets, parse_target

    if config_file is not None:
        ctx.obj["config"] = config_file
    settings = settings_for(ctx)
    builders = Builders(settings, index_url=settings.index_url, build_env={})
    # A configured image that says which policy it makes sets its platform's default.
    policies = builders.default_policies()
    default = host_target() if host_platform() is not None else None
    rows = []
    for known in ([default] if default else []) + known_targets():
        t = known if known is default else parse_target(known.identifier, defaults=policies)
        how = builders.describe(t)
        accepts = f"{t.policy_tag} and older"
        if policies.get(t.platform) == t.policy:
            accepts += " (its image's policy)"
        rows.append({"target": t.identifier, "accepts": accepts, "builds": how,
                     "engine": builders.engine(t), "default": t == default})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        click.echo(f"{mark} {row['target']:<30} {row['accepts']:<52} {row['engine']:<28} "
                   f"{row['builds']}")
    click.echo("\n* the default target: this interpreter on this machine's platform; engine: "
               "which container engine builds it (- for none), natively or emulated")
