from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName

from tests.test_store import make_wheel
from wheelhouse.plan.choose import best_stored, choose, newest_version
from wheelhouse.plan.model import Action, Pin
from wheelhouse.plan.resolver import dependencies_for
from wheelhouse.simple.pages import Candidate, candidate_from, parse_html_links
from wheelhouse.store.model import Origin
from wheelhouse.store.store import Store
from wheelhouse.targets import parse_target

T = parse_target("cp311-manylinux_x86_64")
M = parse_target("cp311-musllinux_aarch64")


def cand(filename: str, **kw: object) -> Candidate:
    c = candidate_from(filename, f"https://files.example/{filename}",
                       sha256=kw.get("sha256"), requires_python=kw.get("rp"),  # type: ignore[arg-type]
                       yanked=kw.get("yanked"), source="https://pypi.example/simple/")  # type: ignore[arg-type]
    assert c is not None
    return c


def pin(name: str = "demo", version: str = "1.0", hashes: frozenset[str] = frozenset()) -> Pin:
    return Pin(project=NormalizedName(name), version=version, extras=frozenset(), hashes=hashes,
               requested_by="r.txt:1")


FILES = [
    cand("demo-1.0.tar.gz"),
    cand("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    cand("demo-1.0-cp311-cp311-manylinux_2_34_x86_64.whl"),
    cand("demo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl"),
    cand("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
    cand("demo-2.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
]


def test_fetch_the_best_fitting_wheel_for_each_target() -> None:
    step = choose(pin(), T, stored=None, candidates=lambda: FILES)
    assert step.action is Action.FETCH
    assert step.candidate and "manylinux_2_17" in step.candidate.filename
    newer = parse_target("cp311-manylinux_2_36_x86_64")
    step = choose(pin(), newer, stored=None, candidates=lambda: FILES)
    assert step.candidate and "manylinux_2_34" in step.candidate.filename


def test_build_when_only_an_sdist_fits() -> None:
    step = choose(pin(), M, stored=None, candidates=lambda: FILES)
    assert step.action is Action.BUILD and step.candidate
    assert step.candidate.filename == "demo-1.0.tar.gz"
    forced = choose(pin(), T, stored=None, candidates=lambda: FILES, build_from_source=True)
    assert forced.action is Action.BUILD and "build-from-source" in forced.reason


def test_missing_says_what_exists() -> None:
    wheels_only = [c for c in FILES if c.kind.value == "wheel"]
    step = choose(pin(), M, stored=None, candidates=lambda: wheels_only)
    assert step.action is Action.MISSING and "manylinux" in step.reason
    step = choose(pin(version="9.9"), T, stored=None, candidates=lambda: FILES)
    assert step.action is Action.MISSING and "no files" in step.reason


def test_hashes_and_requires_python_filter_candidates() -> None:
    files = [cand("demo-1.0-py3-none-any.whl", sha256="a" * 64),
             cand("demo-1.0.tar.gz", sha256="b" * 64)]
    step = choose(pin(hashes=frozenset({"sha256:" + "b" * 64})), T, stored=None,
                  candidates=lambda: files)
    assert step.action is Action.BUILD
    old = [cand("demo-1.0-py3-none-any.whl", rp="<3.8")]
    step = choose(pin(), T, stored=None, candidates=lambda: old)
    assert step.action is Action.MISSING and "Python" in step.reason


def test_present_needs_no_candidates(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    store.publish(make_wheel(tmp_path), origin=Origin.UPSTREAM)
    stored = best_stored(store, "demo", "1.0", T)
    assert stored is not None

    def boom() -> list[Candidate]:
        raise AssertionError("a warm store must not read the upstream")

    assert choose(pin(), T, stored=stored, candidates=boom).action is Action.KEEP


def test_newest_version_respects_target_and_yanks() -> None:
    files = [cand("x-1.0-py3-none-any.whl"), cand("x-2.0-cp311-cp311-musllinux_1_2_x86_64.whl"),
             cand("x-1.5-py3-none-any.whl", yanked=""), cand("x-3.0b1-py3-none-any.whl")]
    assert newest_version(files, SpecifierSet(">=1"), T, prereleases=False) == "1.0"
    assert newest_version(files, SpecifierSet(">=1"), T, prereleases=True) == "3.0b1"


def test_dependencies_follow_target_markers_and_extras() -> None:
    reqs = [Requirement("a"), Requirement("b; platform_machine == 'aarch64'"),
            Requirement("c; extra == 'socks'"), Requirement("d; python_version < '3.8'")]
    assert [r.name for r in dependencies_for(reqs, T, ())] == ["a"]
    assert [r.name for r in dependencies_for(reqs, M, ["socks"])] == ["a", "b", "c"]


def test_html_page_parsing_resolves_relative_links_and_attributes() -> None:
    html = ('<html><head><base href="../files/"></head><body>'
            '<a href="demo-1.0.tar.gz#sha256=' + "c" * 64 + '" data-requires-python="&gt;=3.9"'
            ' data-yanked="bad">demo-1.0.tar.gz</a>'
            '<a href="notadist.txt">x</a></body></html>')
    (c,) = parse_html_links(html, "https://idx.example/simple/demo/", "idx")
    assert c.url == "https://idx.example/simple/files/demo-1.0.tar.gz"
    assert c.sha256 == "c" * 64 and c.requires_python == ">=3.9" and c.yanked == "bad"
