"""The examples in docker/ hold together without an engine: the example's wheelhouse.toml is a
valid config naming files that exist, and compose.yaml builds only Dockerfiles that exist."""

from __future__ import annotations

import re
from pathlib import Path

from wheelhouse.config import load_settings
from wheelhouse.inputs import read_inputs
from wheelhouse.options import build_options

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def test_the_example_config_names_its_requirements_and_targets() -> None:
    settings = load_settings(cwd=DOCKER / "examples", environ={})
    assert settings.requirements == (DOCKER / "examples" / "requirements.txt",)
    targets = {str(t) for t in build_options(settings).targets}
    assert targets == {"cp311-manylinux_x86_64", "cp311-musllinux_x86_64"}
    pins = {r.name for r in read_inputs(settings.requirements).requirements.requirements}
    assert pins == {"requests", "markupsafe", "netifaces"}


def test_compose_builds_dockerfiles_that_exist() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    builds = re.findall(r"context: (\S+)\n\s+dockerfile: (\S+)", text)
    assert len(builds) == 5  # index, warm, the two apps, and the team profile's replicas
    for context, dockerfile in builds:
        assert (DOCKER / context / dockerfile).is_file(), (context, dockerfile)
    assert "--find-links" in (DOCKER / "examples" / "Dockerfile.alpine").read_text()
    assert "--index-url" in (DOCKER / "examples" / "Dockerfile.slim").read_text()


def test_the_team_profiles_replicas_have_a_valid_shared_store() -> None:
    """The settings the team profile gives its replicas are ones wheelhouse accepts."""
    text = (DOCKER / "compose.yaml").read_text()
    env = dict(re.findall(r"^    (WHEELHOUSE_(?:STORE|CATALOGUE)): (\S+)$", text, re.M))
    settings = load_settings(cwd=DOCKER, environ=env)
    assert settings.store_url == "s3://wheelhouse/index"
    assert settings.catalogue is not None and settings.catalogue.startswith("postgresql://")
