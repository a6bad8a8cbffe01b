"""One BUILD step, from sdist to published wheel: download the sdist, skip what failed before
with the same inputs, take the build lock, resolve the build requirements into the store,
build and repair, check the wheel where the target runs, publish. A failure is recorded in the
ledger with the lines of its log that say why and the setting that fixes it.

``Building`` is given what it reads (the store, the ledger, the builders, the package
settings, the time limit, who hears of progress) and the executor's three services it uses
(downloads, sub-resolves of build requirements, the wheels met so far); the executor makes it
and hands it its BUILD steps.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wheelhouse import __version__
from wheelhouse.builder.builders import Builder
from wheelhouse.builder.causes import explain
from wheelhouse.builder.recipe import BuiltWheel
from wheelhouse.builder.sdist import build_requirements
from wheelhouse.errors import BuildFailed, EngineError, PublishConflict
from wheelhouse.execute.outcome import Outcome, Progress, Status, kept
from wheelhouse.ledger import Failure, Ledger, LogFile
from wheelhouse.plan.choose import best_stored
from wheelhouse.plan.model import Pin, Step
from wheelhouse.settings import PackageSettings
from wheelhouse.store.model import Origin
from wheelhouse.store.protocols import StoreWriter
from wheelhouse.targets import Target
from wheelhouse.util import utc_now

if TYPE_CHECKING:
    from wheelhouse.simple.pages import Candidate


class Download(Protocol):
    def __call__(self, cand: Candidate, pin: Pin, dest: Path) -> str:
        """Download ``cand`` to ``dest`` with the pin's hashes checked; its sha256."""
        ...


class ResolveRequirements(Protocol):
    def __call__(self, requires: Sequence[str], source: str, target: Target, work: Path,
                 package: PackageSettings) -> Path:
        """Wheels for ``requires`` on ``target`` in the store, linked into a directory of
        ``work`` that is returned; raises BuildFailed when they cannot be had."""
        ...


def failure_key(step: Step, builder: Builder, sdist_sha256: str,
                package: PackageSettings) -> str:
    """What names a build's failure: its pin, target, sdist, builder and package settings."""
    pin, target = step.pin, step.target
    return hashlib.sha256("|".join((
        pin.project, pin.version, target.identifier, sdist_sha256,
        builder.identity(target), repr(package),
    )).encode()).hexdigest()


def failed_before(step: Step, failure: Failure) -> Outcome:
    return Outcome(step=step, status=Status.FAILED, log=failure.log, cause=failure.cause,
                   hint=failure.hint,
                   message=f"failed before with the same inputs: {failure.message}")


@dataclass(frozen=True, kw_only=True)
class _Inputs:
    """What a build's result depends on; its key names the failure, if any."""

    step: Step
    builder: Builder
    sdist: Path
    sdist_sha256: str
    key: str
    work: Path
    #: seconds per phase of this build (download, wait, requirements, setup, build, repair,
    #: check, publish), added up over its attempts.
    phases: dict[str, float] = field(default_factory=dict)

    def took(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds


#: the log line that starts a retry with a known fix.
_RETRY_MARK = "# wheelhouse: retrying with the known fix"


def last_attempt(log: str) -> str:
    """The part of a build log a failure is explained from: after a retry with a known fix,
    the last attempt only (psycopg2 2.8.6 built with libpq, then failed its import check,
    and was reported as "pg_config executable not found")."""
    return log[max(log.rfind(_RETRY_MARK), 0):]


#: how many known fixes one build may be retried with (pyyaml 5.4.1 needs two: cython<3, then
#: libyaml's headers).
_MAX_FIXES = 3


class Building:
    def __init__(
        self, *, store: StoreWriter, ledger: Ledger, builders: Callable[[Target], Builder],
        package: Callable[[str], PackageSettings], timeout: float, retry_failed: bool,
        progress: Progress, download: Download, resolve_requirements: ResolveRequirements,
        available_wheels: Callable[[Target], list[Path]], auto_fix: bool = True,
        cancelled: Callable[[], bool] = lambda: False, compiling_at_once: int = 1,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.builders = builders
        #: a project's package settings.
        self.package = package
        #: seconds a build, and a check, may take.
        self.timeout = timeout
        self.retry_failed = retry_failed
        self.progress = progress
        self.download = download
        self.resolve_requirements = resolve_requirements
        #: the store's wheels of a target's pins met so far in this run (for checks).
        self.available_wheels = available_wheels
        #: retry a build that failed for a cause with a known fix, with it.
        self.auto_fix = auto_fix
        #: whether the run is being stopped (Ctrl-C, SIGTERM): its builds are not failures.
        self.cancelled = cancelled
        #: what each checked wheel's check said of its interpreter, until it is published.
        self._checked: dict[str, str] = {}
        #: builds compiling at once (``--jobs``), across targets. Only the build backend's
        #: run holds a slot: copies, the repair, a finished build's check and publishing,
        #: and the next sdists' downloads and build requirements go on beside the compiles.
        self._slots = threading.BoundedSemaphore(max(1, compiling_at_once))

    def __call__(self, step: Step) -> Outcome:
        builder = self.builders(step.target)
        try:
            return self._build_with(step, builder)
        except EngineError as e:
            # The machine's fault, not the sdist's: reported, never recorded as a failure.
            return Outcome(step=step, status=Status.FAILED, message=e.message, hint=e.hint,
                           environment=True)

    def _build_with(self, step: Step, builder: Builder) -> Outcome:
        cand, pin, target = step.candidate, step.pin, step.target
        assert cand is not None
        with tempfile.TemporaryDirectory(dir=self.store.tmp_dir(), prefix="build-") as tmp:
            work = Path(tmp)
            sdist = work / cand.filename
            phases: dict[str, float] = {}
            began = time.monotonic()
            sdist_sha = self.download(cand, pin, sdist)
            phases["download"] = time.monotonic() - began
            key = failure_key(step, builder, sdist_sha, self.package(pin.project))
            failure = None if self.retry_failed else self.ledger.failure(key)
            if failure is not None:
                return failed_before(step, failure)
            # It will build: its containers start while it waits for the build lock and its
            # requirements are resolved, and the consumer's while it compiles.
            builder.prepare(target, self.package(pin.project))
            # One build of a release per platform at a time, across targets and processes:
            # a wheel one of them makes that fits the others (abi3 serves every later CPython
            # of the platform) is then found below, and built once.
            began = time.monotonic()
            with self.ledger.build_lock(pin.project, pin.version, target.policy_tag):
                phases["wait"] = time.monotonic() - began
                # Another build may have made a fitting wheel while we waited for the lock.
                stored = best_stored(self.store, pin.project, pin.version, target)
                if stored is not None and not self.package(pin.project).build_from_source:
                    made_for = stored.provenance.get("target")
                    note = (f"built for {made_for}, which fits {target} too"
                            if made_for and made_for != target.identifier else "")
                    return kept(self.store, step, stored, message=note)
                inputs = _Inputs(step=step, builder=builder, sdist=sdist,
                                 sdist_sha256=sdist_sha, key=key, work=work, phases=phases)
                return self._build_locked(inputs)

    def _build_locked(self, inputs: _Inputs) -> Outcome:
        pin = inputs.step.pin
        package = self.package(pin.project)
        log_file = self.ledger.new_log(pin.project, pin.version, inputs.step.target.identifier)
        try:
            return self._build_logged(inputs, package, log_file)
        finally:
            self.ledger.keep_log(log_file)  # a shared store's bucket keeps it too

    def _build_logged(self, inputs: _Inputs, package: PackageSettings, log_file: LogFile
                      ) -> Outcome:
        step, builder, target = inputs.step, inputs.builder, inputs.step.target
        self.progress.started(step, builder.describe(target))
        with log_file.path.open("w", encoding="utf-8") as log:  # the recipe reads it back
            log.write(f"# wheelhouse {__version__}: {inputs.sdist.name} for {target} with "
                      f"{builder.identity(target)}\n")
        fixed: list[str] = []
        tried: set[str] = set()
        while True:
            try:
                built, error = self._attempt(inputs, package, log_file, len(tried))
            except BuildFailed as e:  # stopped from outside: nothing is remembered
                return self._interrupted(inputs, str(e), log_file)
            if error is None or len(tried) >= _MAX_FIXES:
                break
            known = self._known_fix(inputs, package, log_file, tried)
            if known is None:
                break
            package, said, name = known
            tried.add(name)
            fixed.append(said)
            with log_file.path.open("a", encoding="utf-8") as log:
                log.write(f"\n{_RETRY_MARK} for {name}: {said}\n")
        if error is not None or built is None:
            tail = f" (also with the known fix {'; '.join(fixed)})" if fixed else ""
            return self._failed(inputs, (error or "the build failed") + tail, log_file)
        return self._publish(inputs, built, log_file, package, fixed)

    def _attempt(self, inputs: _Inputs, package: PackageSettings, log_file: LogFile,
                 attempt: int) -> tuple[BuiltWheel | None, str | None]:
        """One build and its check, appended to the log: the wheel, or why it failed.
        Each attempt resolves its build requirements into a directory of its own: a retry
        with a fix such as ``cython<3`` must not find the first attempt's Cython 3 there."""
        builder, target = inputs.builder, inputs.step.target
        own = inputs.work / f"attempt-{attempt}"
        own.mkdir(exist_ok=True)
        with log_file.path.open("a", encoding="utf-8") as log:
            try:
                began = time.monotonic()
                deps = (self.resolve_requirements(
                            build_requirements(inputs.sdist),
                            f"{inputs.sdist.name} build-system", target, own, package)
                        if builder.hermetic else None)
                inputs.took("requirements", time.monotonic() - began)
                began = time.monotonic()
                slot = _Slot(self._slots)
                built = builder.build(
                    inputs.sdist, target=target, settings=package, work_dir=inputs.work,
                    log=log, timeout=self.timeout, build_deps=deps,
                    more_requirements=lambda reqs: self.resolve_requirements(
                        reqs, f"{inputs.sdist.name} backend", target, own, package),
                    compiling=slot,
                )
            except BuildFailed as e:
                log.write(f"\n# wheelhouse: the build failed: {e}\n")
                if e.killed or self.cancelled():
                    raise
                return None, str(e)
        # The recipe times its own steps; the rest (a container's start, copies in and out,
        # build requirements' wheels resolved inside) is setup.
        spent = time.monotonic() - began - slot.waited
        inputs.took("wait", slot.waited)
        for phase, seconds in built.phases.items():
            inputs.took(phase, seconds)
        inputs.took("setup", max(spent - sum(built.phases.values()), 0.0))
        began = time.monotonic()
        error = self._check(inputs, built, log_file, package)
        inputs.took("check", time.monotonic() - began)
        return built, error

    def _interrupted(self, inputs: _Inputs, message: str, log_file: LogFile) -> Outcome:
        """A build stopped by a signal (Ctrl-C, a cancelled CI job, the out-of-memory
        killer) failed for no reason of the package's: said, never remembered, so the next
        plain run builds it."""
        why = ("interrupted: the run was stopped" if self.cancelled()
               else "interrupted: a signal stopped the build (out of memory?)")
        return Outcome(step=inputs.step, status=Status.FAILED, log=log_file.relative,
                       message=f"{why}; not remembered, the next run builds it",
                       environment=True, interrupted=True)

    def _known_fix(self, inputs: _Inputs, package: PackageSettings, log_file: LogFile,
                   tried: set[str]) -> tuple[PackageSettings, str, str] | None:
        """The known fix for why the last attempt failed, if there is one to try: the
        package's settings with it, what it adds, and the cause's name."""
        pin = inputs.step.pin
        if not self.auto_fix or package.auto_fix is False:
            return None
        text = log_file.path.read_text(encoding="utf-8", errors="replace")
        why = explain(text, project=pin.project, target=str(inputs.step.target))
        fix = why.fix
        if fix is None or fix.name in tried or not fix.applies(pin.project, pin.version):
            return None
        applied = fix.apply(package)
        if applied is None:
            return None  # the user's own settings decide what this fix would set
        return applied[0], applied[1], fix.name

    def _check(self, inputs: _Inputs, built: BuiltWheel, log_file: LogFile,
               package: PackageSettings) -> str | None:
        """None when the wheel works where the target runs; else why not (and the log says)."""
        step = inputs.step
        test = package.test
        if test == "":
            return None
        available = self.available_wheels(step.target)
        result = inputs.builder.check(
            step.target, built.wheel, requirement=f"{step.pin.project}=={step.pin.version}",
            available=available, test=test, timeout=self.timeout)
        with log_file.path.open("a", encoding="utf-8") as out:
            # A "$ " line opens the section the cause of a failed check is read from.
            out.write(f"\n$ check {built.wheel.name} in a clean environment of {step.target} "
                      f"({'the test command' if test else 'imports and programs'})"
                      f"\n{result.output}\n")
            if result.summary:
                out.write(f"# wheelhouse: {result.summary}\n")
        self._checked[built.wheel.name] = result.summary
        if result.ok:
            return None
        what = ("its test command failed" if test
                else "it does not import or its programs do not run")
        return f"the built wheel does not work on {step.target}: {what}"

    def _failed(self, inputs: _Inputs, message: str, log_file: LogFile) -> Outcome:
        step = inputs.step
        text = log_file.path.read_text(encoding="utf-8", errors="replace")
        text = last_attempt(text)
        why = explain(text, project=step.pin.project, target=str(step.target))
        if self.cancelled():
            return self._interrupted(inputs, message, log_file)
        if why.environment:
            # The machine's fault (no compiler, a full disk): said, not remembered against
            # the package, so the same command builds it once the machine is fixed.
            return Outcome(step=step, status=Status.FAILED, log=log_file.relative,
                           message=f"this machine: {why.summary or message}",
                           cause=why.lines, hint=why.hint, environment=True)
        failure = Failure(
            key=inputs.key, project=step.pin.project, version=step.pin.version,
            target=step.target.identifier, message=message, log=log_file.relative,
            time=utc_now(), cause=why.lines, hint=why.hint)
        self.ledger.record_failure(failure)
        return Outcome(step=step, status=Status.FAILED, message=message,
                       log=log_file.relative, cause=why.lines, hint=why.hint)

    def _publish(self, inputs: _Inputs, built: BuiltWheel, log_file: LogFile,
                 package: PackageSettings, fixed: Sequence[str]) -> Outcome:
        step, target = inputs.step, inputs.step.target
        provenance = {
            "sdist": inputs.sdist.name, "sdist_sha256": inputs.sdist_sha256,
            "sdist_url": step.candidate.url if step.candidate else None,
            "builder": inputs.builder.identity(target), "target": target.identifier,
            "engine": built.engine,
            "auditwheel": dict(built.report), "grafted": list(built.grafted),
            "seconds": round(built.seconds, 1), "log": log_file.relative,
            "checked": package.test != "",
            "check": self._checked.pop(built.wheel.name, "") or None,
            # A fix is part of what the wheel was built with: said wherever it is shown.
            "fix": "; ".join(fixed) or None,
        }
        began = time.monotonic()
        try:
            published = self.store.publish(built.wheel, origin=Origin.BUILT, consume=True,
                                           provenance=provenance)
        except PublishConflict:
            # A concurrent builder published the same filename first: its wheel serves.
            existing = self.store.get(built.wheel.name)
            assert existing is not None
            return kept(self.store, step, existing, message="published by another build")
        self.ledger.clear_failure(inputs.key)
        grafted = len(built.grafted)
        notes = [f"built with a known fix: {'; '.join(fixed)}"] if fixed else []
        if grafted:
            notes.append(f"grafted {grafted} {'library' if grafted == 1 else 'libraries'}")
        inputs.took("publish", time.monotonic() - began)
        return kept(self.store, step, published.file, Status.BUILT, log=log_file.relative,
                    seconds=built.seconds, message="; ".join(notes), fix="; ".join(fixed),
                    phases=_rounded(inputs.phases))


class _Slot:
    """One of the run's compile slots, held while a build's backend runs (the recipe enters
    it); remembers how long it waited for one."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self.slots = slots
        self.waited = 0.0

    def __enter__(self) -> None:
        began = time.monotonic()
        self.slots.acquire()
        self.waited += time.monotonic() - began

    def __exit__(self, *exc: object) -> None:
        self.slots.release()


def _rounded(phases: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in phases.items()}
