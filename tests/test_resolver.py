"""The resolver on its own: no network, no engine, no store. An upstream of made-up candidates
and made-up dependencies stands in for PyPI; the resolver decides, these tests only feed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.ledger import Failure
from wheelhouse.plan.model import Action, Plan, Step, TargetPlan
from wheelhouse.plan.resolver import Resolver, Views, requirement_set
from wheelhouse.requirements import parse_requirements
from wheelhouse.simple.pages import Candidate, candidate_from
from wheelhouse.store.model import StoredFile
from wheelhouse.targets import Target, parse_target

X86 = parse_target("cp311-manylinux_x86_64")
ARM = parse_target("cp311-manylinux_aarch64")
MUSL = parse_target("cp312-musllinux_x86_64")

# What the made-up upstream offers: project -> filenames, and what each project depends on.
FILES: dict[str, list[str]] = {
    "app": ["app-1.0-py3-none-any.whl"],
    "web": ["web-2.0-py3-none-any.whl", "web-1.0-py3-none-any.whl"],
    "speedups": ["speedups-0.5.tar.gz",
                 "speedups-0.5-cp311-cp311-manylinux_2_17_x86_64.whl"],
    "armonly": ["armonly-1.1-py3-none-any.whl"],
    "legacy": ["legacy-3.0-py3-none-any.whl"],
    "socks": ["socks-1.0-py3-none-any.whl"],
    "setuptools": ["setuptools-80.0.0-py3-none-any.whl"],
    "cython": ["cython-3.1.0.tar.gz"],
}
DEPENDS: dict[str, list[str]] = {
    "app": ["web>=1", "speedups", "armonly; platform_machine == 'aarch64'",
            "legacy; python_version < '3.12'"],
    "web": ["socks; extra == 'proxy'"],
}


def candidates(name: NormalizedName) -> Sequence[Candidate]:
    out = []
    for filename in FILES.get(name, []):
        c = candidate_from(filename, f"https://files.example/{filename}", sha256="a" * 64,
                           requires_python=None, yanked=None, source="https://pypi.example/")
        assert c is not None
        out.append(c)
    return out


def no_store(name: NormalizedName, version: str, target: Target) -> StoredFile | None:
    return None


def deps_of(step: Step) -> list[Requirement] | None:
    if step.action in (Action.MISSING, Action.FAILED):
        return None
    return [Requirement(r) for r in DEPENDS.get(step.pin.project, [])]


def resolve(text: str, target: Target, tmp_path: Path, *, views: Views | None = None,
            build: bool = True) -> TargetPlan:
    reqs_file = tmp_path / "requirements.txt"
    reqs_file.write_text(text)
    resolver = Resolver(parse_requirements(reqs_file), target,
                        views or Views(stored=no_store, candidates=candidates), build=build)
    batch = resolver.first()
    while batch:
        batch = resolver.next({s.pin.project: deps_of(s) for s in batch})
    return resolver.plan()


def actions(plan: TargetPlan) -> dict[str, str]:
    return {s.pin.label: s.action.value for s in plan.steps}


def test_each_target_walks_its_own_closure(tmp_path: Path) -> None:
    x86 = resolve("app==1.0\n", X86, tmp_path)
    arm = resolve("app==1.0\n", ARM, tmp_path)
    musl = resolve("app==1.0\n", MUSL, tmp_path)
    assert actions(x86) == {"app==1.0": "fetch", "web==2.0": "fetch",
                            "speedups==0.5": "fetch", "legacy==3.0": "fetch"}
    # The aarch64 closure adds a marker-only dependency, and speedups has no arm wheel.
    assert actions(arm) == {"app==1.0": "fetch", "web==2.0": "fetch",
                            "speedups==0.5": "build", "armonly==1.1": "fetch",
                            "legacy==3.0": "fetch"}
    # Python 3.12 drops the python_version < '3.12' dependency; musl must build speedups.
    assert actions(musl) == {"app==1.0": "fetch", "web==2.0": "fetch",
                             "speedups==0.5": "build"}
    assert all("not pinned" in n for n in x86.notes) and len(x86.notes) == 3


def test_top_level_markers_are_evaluated_for_the_target(tmp_path: Path) -> None:
    text = "armonly==1.1; platform_machine == 'aarch64'\nlegacy==3.0\n"
    assert actions(resolve(text, X86, tmp_path)) == {"legacy==3.0": "fetch"}
    assert set(actions(resolve(text, ARM, tmp_path))) == {"armonly==1.1", "legacy==3.0"}


def test_extras_requested_later_add_their_dependencies(tmp_path: Path) -> None:
    plan = resolve("web==2.0\napp==1.0\nweb[proxy]==2.0\n", X86, tmp_path)
    assert "socks==1.0" in actions(plan)
    assert not plan.problems


def test_pins_and_lock_preferences_win_and_conflicts_are_problems(tmp_path: Path) -> None:
    views = Views(stored=no_store, candidates=candidates,
                  preferred={canonicalize_name("web"): "1.0"})
    plan = resolve("app==1.0\n", X86, tmp_path, views=views)
    assert "web==1.0" in actions(plan), "the lock's version is used where it fits"
    plan = resolve("web==1.0\napp==1.0\nweb==2.0\n", X86, tmp_path)
    assert any("web==1.0" in p and "web==2.0" in p for p in plan.problems), plan.problems
    plan = resolve("app==1.0\nnowhere==1.0\nweb>=5\n", X86, tmp_path)
    assert actions(plan)["nowhere==1.0"] == "missing"
    assert any("no version of web satisfies web>=5" in p for p in plan.problems)


def test_a_build_that_failed_before_is_planned_as_failed(tmp_path: Path) -> None:
    failure = Failure(key="k", project="speedups", version="0.5", target=str(ARM),
                      message="the build failed (exit 1)", log="logs/x.log", time="t")

    def failed_before(step: Step) -> Failure | None:
        return failure if step.pin.project == "speedups" else None

    views = Views(stored=no_store, candidates=candidates, failed_before=failed_before)
    plan = resolve("app==1.0\n", ARM, tmp_path, views=views)
    step = next(s for s in plan.steps if s.pin.project == "speedups")
    assert step.action is Action.FAILED and step.failure is failure
    rendered = "\n".join(plan.render())
    assert "failed   speedups==0.5" in rendered and "--retry-failed" in rendered
    # On x86_64 a wheel fits, so the failure of the arm build does not matter there.
    plan = resolve("app==1.0\n", X86, tmp_path, views=views)
    assert actions(plan)["speedups==0.5"] == "fetch"


def test_build_requirements_are_a_fetch_only_sub_resolve(tmp_path: Path) -> None:
    reqs = requirement_set(["setuptools>=70", "cython<3.2"], "speedups-0.5.tar.gz build-system")
    resolver = Resolver(reqs, ARM, Views(stored=no_store, candidates=candidates), build=False)
    batch = resolver.first()
    assert {s.pin.label: s.action for s in batch} == {
        "setuptools==80.0.0": Action.FETCH, "cython==3.1.0": Action.MISSING}
    missing = next(s for s in batch if s.action is Action.MISSING)
    assert "build dependencies are not built from source" in missing.reason
    assert resolver.next({s.pin.project: [] for s in batch}) == ()
    assert not resolver.plan().notes, "build requirements are not the user's pins"


def test_what_the_store_holds_is_kept_without_asking_upstream(tmp_path: Path) -> None:
    stored = StoredFile(
        filename="app-1.0-py3-none-any.whl", project=NormalizedName("app"), version="1.0",
        kind=candidates(NormalizedName("app"))[0].kind, tags=candidates(
            NormalizedName("app"))[0].tags, sha256="b" * 64, size=1, upload_time="t",
        requires_python=None, metadata_sha256=None, yanked=None,
        origin=__import__("wheelhouse.store.model", fromlist=["Origin"]).Origin.UPSTREAM)

    def store(name: NormalizedName, version: str, target: Target) -> StoredFile | None:
        return stored if name == "app" else None

    asked: list[str] = []

    def counting(name: NormalizedName) -> Sequence[Candidate]:
        asked.append(name)
        return candidates(name)

    plan = resolve("app==1.0\n", X86, tmp_path, views=Views(stored=store, candidates=counting))
    assert actions(plan)["app==1.0"] == "keep"
    assert "app" not in asked


def test_a_plan_is_a_value(tmp_path: Path) -> None:
    one = Plan(targets=(resolve("app==1.0\n", X86, tmp_path),
                        resolve("app==1.0\n", ARM, tmp_path)))
    two = Plan(targets=(resolve("app==1.0\n", X86, tmp_path),
                        resolve("app==1.0\n", ARM, tmp_path)))
    assert one == two
    assert one.render() == two.render()
    assert one.render()[0] == "cp311-manylinux_x86_64:"
    changed = replace(one.targets[0], steps=one.targets[0].steps[:-1])
    assert Plan(targets=(changed, one.targets[1])) != one
