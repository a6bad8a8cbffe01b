"""Platform facts are data: the shipped file loads, a broken one fails naming the key, and a
new architecture or policy needs no code."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from wheelhouse import platforms as pf
from wheelhouse.distributions import platform_problem
from wheelhouse.errors import ConfigError, TargetError
from wheelhouse.targets import known_targets, parse_target


def edited(old: str, new: str) -> str:
    """The shipped file's text with one edit, which must apply."""
    text = pf.resource_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_shipped_file_loads_with_todays_facts() -> None:
    data = pf.platforms()
    assert data is pf.platforms(), "loaded once"
    assert data.pythons == tuple((3, minor) for minor in range(8, 16))
    assert data.free_threaded == ((3, 13), (3, 14), (3, 15))
    assert data.listed_archs == ("x86_64", "aarch64")
    many, musl = data.family("manylinux"), data.family("musllinux")
    assert (many.libc, many.default_policy, many.newest_policy) == ("glibc", (2, 28), (2, 50))
    assert (musl.libc, musl.default_policy, musl.newest_policy) == ("musl", (1, 2), (1, 9))
    assert many.archs["aarch64"].oldest_policy == (2, 17)
    assert many.archs["x86_64"].default_image == "quay.io/pypa/manylinux_2_28_x86_64"
    assert musl.default_image_for("aarch64") == "quay.io/pypa/musllinux_1_2_aarch64"
    assert many.default_consumer_image_for("x86_64", (3, 11)) == "python:3.11-slim-bookworm"
    assert musl.default_consumer_image_for("aarch64", (3, 12)) == "python:3.12-alpine"
    assert many.alias((2, 17), "aarch64") == "manylinux2014"
    assert many.alias((2, 5), "aarch64") is None
    assert data.arch("aarch64").binfmt == "qemu-aarch64"
    assert set(data.archs) == {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le",
                               "s390x", "riscv64", "loongarch64"}
    with pytest.raises(KeyError, match="windows"):
        data.family("windows")


def test_the_builders_facts() -> None:
    data = pf.platforms()
    assert data.python_paths((3, 11)) == ("/opt/python/cp311-cp311/bin/python", "python3.11")
    assert [m.command for m in data.package_managers] == ["apk", "dnf", "yum", "apt-get"]
    assert data.package_managers[0].install_command(["libpq-dev", "a b"]) == \
        "apk add --no-cache libpq-dev 'a b'"
    assert data.source_date_epoch == 315532800
    t = parse_target("cp312-musllinux_aarch64")
    assert t.python_candidates == ("/opt/python/cp312-cp312/bin/python", "python3.12")
    assert t.binfmt_entry == "qemu-aarch64" and t.libc == "musl"
    assert t.default_consumer_image == "python:3.12-alpine"
    assert t.package_managers == data.package_managers


@pytest.mark.parametrize(("machine", "arch"), [
    ("x86_64", "x86_64"), ("amd64", "x86_64"), ("AMD64", "x86_64"), ("arm64", "aarch64"),
    ("aarch64", "aarch64"), ("armhf", "armv7l"), ("sparc64", "sparc64"),
])
def test_normalize_arch(machine: str, arch: str) -> None:
    assert pf.platforms().normalize_arch(machine) == arch


@pytest.mark.parametrize(("tag", "parsed"), [
    ("manylinux_2_17_x86_64", ("manylinux", (2, 17), "x86_64")),
    ("manylinux2014_aarch64", ("manylinux", (2, 17), "aarch64")),
    ("manylinux1_i686", ("manylinux", (2, 5), "i686")),
    ("musllinux_1_2_riscv64", ("musllinux", (1, 2), "riscv64")),
    ("linux_x86_64", None),
    ("macosx_11_0_arm64", None),
    ("manylinux_x86_64", None),
])
def test_parse_platform_tag(tag: str, parsed: tuple[str, tuple[int, int], str] | None) -> None:
    assert pf.platforms().parse_platform_tag(tag) == parsed


def test_riscv64_is_known_from_manylinux_2_39() -> None:
    t = parse_target("cp312-manylinux_riscv64")
    assert t.policy == (2, 39) and t.identifier == "cp312-manylinux_riscv64"
    assert t.platform_tags() == ["manylinux_2_39_riscv64"]
    assert t.default_image == "quay.io/pypa/manylinux_2_39_riscv64"
    assert parse_target("cp312-manylinux_2_39_riscv64") == t
    with pytest.raises(TargetError, match="riscv64") as e:
        parse_target("cp312-manylinux_2_31_riscv64")
    assert "manylinux_2_39" in (e.value.hint or "")
    assert platform_problem(Tag("cp312", "cp312", "manylinux_2_39_riscv64")) is None
    assert platform_problem(Tag("cp312", "cp312", "musllinux_1_2_riscv64")) is None


def test_an_architecture_is_a_data_change(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TargetError, match="loongarch64"):
        parse_target("cp312-musllinux_loongarch64")
    text = edited('riscv64 = { oldest-policy = "1_1" }',
                  'riscv64 = { oldest-policy = "1_1" }\nloongarch64 = { oldest-policy = "1_2" }')
    text = text.replace('listed-archs = ["x86_64", "aarch64"]',
                        'listed-archs = ["x86_64", "aarch64", "loongarch64"]')
    text = text.replace('armv7l = { oldest-policy = "2_17" }',
                        'armv7l = { oldest-policy = "2_17" }\n'
                        'loongarch64 = { oldest-policy = "2_36", default-policy = "2_36" }')
    data = pf.load(text)
    monkeypatch.setattr(pf, "platforms", lambda: data)
    t = parse_target("cp312-musllinux_loongarch64")
    assert t.platform_tags() == ["musllinux_1_2_loongarch64"]
    assert t.default_image == "quay.io/pypa/musllinux_1_2_loongarch64"
    assert Tag("cp312", "cp312", "musllinux_1_2_loongarch64") in t.tags()
    assert "cp312-manylinux_loongarch64" in {k.identifier for k in known_targets()}


def test_a_policy_is_a_data_change(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pf.load(edited('default-policy = "2_28"', 'default-policy = "2_34"'))
    monkeypatch.setattr(pf, "platforms", lambda: data)
    t = parse_target("cp311-manylinux_s390x")
    assert t.policy == (2, 34) and t.platform_tags()[0] == "manylinux_2_34_s390x"
    assert parse_target("cp311-manylinux_2_28_s390x").identifier == \
        "cp311-manylinux_2_28_s390x"


@pytest.mark.parametrize(("old", "new", "words"), [
    ("[python]", "colour = 1\n[python]", ["broken.toml: colour: unknown key"]),
    ('default-policy = "2_28"', 'defualt-policy = "2_28"',
     ["families.manylinux.defualt-policy", "did you mean 'default-policy'"]),
    ('default-policy = "2_28"', 'default-policy = "2.28"',
     ["families.manylinux.default-policy", "MAJOR_MINOR"]),
    ('default-policy = "2_28"', "default-policy = 228", ["families.manylinux.default-policy"]),
    ('aarch64 = { oldest-policy = "2_17" }', 'aarch64 = { oldest-policy = "2_31" }',
     ["families.manylinux.archs.aarch64.oldest-policy", "newer than the default"]),
    ('aarch64 = { oldest-policy = "2_17" }', 'aarch64 = { oldest-policy = "3_1" }',
     ["families.manylinux.archs.aarch64.oldest-policy"]),
    ('newest-policy = "2_50"', 'newest-policy = "2_20"',
     ["families.manylinux.default-policy", "newest-policy"]),
    ('versions = ["3.8",', 'versions = ["3.8", "3",', ["python.versions[1]", "MAJOR.MINOR"]),
    ('versions = ["3.8",', 'versions = ["3.8", "3.8",', ["python.versions[1]", "twice"]),
    ("source-date-epoch = 315532800", 'source-date-epoch = "315532800"',
     ["builds.source-date-epoch", "integer"]),
    ("source-date-epoch = 315532800", "source-date-epoch = 0", ["builds.source-date-epoch"]),
    ('armv7l = { oldest-policy = "2_17" }', 'sparc = { oldest-policy = "2_17" }',
     ["families.manylinux.archs.sparc", "[archs]"]),
    ('archs = ["x86_64", "i686"] }', 'archs = ["x86_64", "vax"] }',
     ["families.manylinux.legacy-aliases.manylinux1.archs", "vax"]),
    ('aliases = ["arm64"]', 'aliases = ["amd64"]', ["archs.aarch64.aliases[0]", "x86_64"]),
    ('default-image = "quay.io/pypa/manylinux_2_28_{arch}"',
     'default-image = "quay.io/pypa/manylinux_2_28_{machine}"',
     ["families.manylinux.default-image", "{machine}"]),
    ('install = "apk add --no-cache {packages}"', 'install = "apk add --no-cache"',
     ["package-managers[0].install", "{packages}"]),
    ('listed-archs = ["x86_64", "aarch64"]', 'listed-archs = ["x86_64", "ppc64"]',
     ["targets.listed-archs[1]", "ppc64"]),
    ("[archs.x86_64]", "[archs.X86]", ["archs.X86"]),
    ('libc = "musl"', "", ["families.musllinux.libc", "missing"]),
    ('listed-archs = ["x86_64", "aarch64"]', "listed-archs = []",
     ["targets.listed-archs", "empty"]),
    ("[python]", "[python", ["not valid TOML"]),
])
def test_a_broken_file_fails_naming_the_key(old: str, new: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        pf.load(edited(old, new), source="broken.toml")
    message = str(e.value)
    assert message.startswith("broken.toml")
    for word in words:
        assert word in message
    assert e.value.hint
