from __future__ import annotations

import pytest
from packaging.tags import Tag

from wheelhouse.errors import TargetError
from wheelhouse.targets import host_target, known_targets, parse_target


def test_identifier_round_trip_and_defaults() -> None:
    t = parse_target("cp311-manylinux_x86_64")
    assert (t.python, t.family, t.arch, t.policy) == ((3, 11), "manylinux", "x86_64", (2, 28))
    assert t.identifier == "cp311-manylinux_x86_64"
    m = parse_target("cp312-musllinux_aarch64")
    assert m.policy == (1, 2) and m.platform == "musllinux_aarch64"
    explicit = parse_target("cp311-manylinux_2_36_x86_64")
    assert explicit.policy == (2, 36) and explicit.identifier == "cp311-manylinux_2_36_x86_64"


def test_manylinux_tags_run_down_to_the_oldest_policy_with_aliases() -> None:
    x86 = parse_target("cp311-manylinux_x86_64").platform_tags()
    assert x86[0] == "manylinux_2_28_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(x86)
    assert x86[-1] == "manylinux1_x86_64"
    arm = parse_target("cp311-manylinux_aarch64").platform_tags()
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("manylinux1" in p for p in arm)


def test_musllinux_tags() -> None:
    tags = parse_target("cp311-musllinux_x86_64").platform_tags()
    assert tags == ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64"]


def test_tag_rank_prefers_specific_and_rejects_foreign() -> None:
    t = parse_target("cp311-manylinux_x86_64")
    native = frozenset({Tag("cp311", "cp311", "manylinux_2_17_x86_64")})
    abi3 = frozenset({Tag("cp38", "abi3", "manylinux_2_17_x86_64")})
    pure = frozenset({Tag("py3", "none", "any")})
    assert t.tag_rank(native) < t.tag_rank(abi3) < t.tag_rank(pure)  # type: ignore[operator]
    assert t.tag_rank(frozenset({Tag("cp311", "cp311", "manylinux_2_34_x86_64")})) is None
    assert t.tag_rank(frozenset({Tag("cp311", "cp311", "musllinux_1_2_x86_64")})) is None
    assert t.tag_rank(frozenset({Tag("cp312", "cp312", "manylinux_2_17_x86_64")})) is None
    assert t.tag_rank(frozenset({Tag("cp311", "cp311", "linux_x86_64")})) is None


def test_foreign_target_computed_without_the_host() -> None:
    t = parse_target("cp313-musllinux_aarch64")
    assert Tag("cp313", "cp313", "musllinux_1_2_aarch64") in t.tags()
    assert t.marker_environment()["platform_machine"] == "aarch64"
    assert t.marker_environment()["python_version"] == "3.13"


@pytest.mark.parametrize("bad", ["cp311-manylinux_x86_65", "cp27-manylinux_x86_64",
                                 "py311-manylinux_x86_64", "cp311-manylinux_2_12_aarch64",
                                 "cp311-windows_x86_64"])
def test_bad_identifiers_list_valid_ones(bad: str) -> None:
    with pytest.raises(TargetError) as e:
        parse_target(bad)
    assert bad in str(e.value)
    assert e.value.hint


def test_host_target_and_known_targets() -> None:
    host = host_target()
    assert host.tag_rank(frozenset({Tag("py3", "none", "any")})) is not None
    ids = {t.identifier for t in known_targets()}
    assert {"cp311-manylinux_x86_64", "cp311-manylinux_aarch64", "cp311-musllinux_x86_64",
            "cp311-musllinux_aarch64"} <= ids


def test_a_builder_image_sets_the_default_policy_of_its_platform() -> None:
    """The stand-in manylinux builder is glibc 2.31 (its image says so): a target naming no
    policy accepts what that image makes; one naming a policy keeps it."""
    defaults = {"manylinux_x86_64": (2, 31)}
    t = parse_target("cp311-manylinux_x86_64", defaults=defaults)
    assert t.policy == (2, 31) and t.policy_tag == "manylinux_2_31_x86_64"
    assert t.identifier == "cp311-manylinux_x86_64", "still the name the user gave"
    assert t.tag_rank(frozenset({Tag("cp311", "cp311", "manylinux_2_31_x86_64")})) is not None
    named = parse_target("cp311-manylinux_2_28_x86_64", defaults=defaults)
    assert named.policy == (2, 28) and named.identifier == "cp311-manylinux_2_28_x86_64"
    other = parse_target("cp311-manylinux_aarch64", defaults=defaults)
    assert other.policy == (2, 28), "only the platform the image is for"
    nonsense = parse_target("cp311-manylinux_x86_64", defaults={"manylinux_x86_64": (1, 2)})
    assert nonsense.policy == (2, 28), "a label that names no policy of the family is ignored"
