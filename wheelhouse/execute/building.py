"""One BUILD step, from sdist to published wheel: download the sdist, skip what failed before
with the same inputs, take the build lock, resolve the build requirements into the store,
build and repair, check the wheel where the target runs, publish. A failure is recorded in the
ledger with the lines of its log that say why and the setting that fixes it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wheelhouse import __version__
from wheelhouse.builder.builders import Builder
from wheelhouse.builder.causes import explain
from wheelhouse.builder.recipe import BuiltWheel
from wheelhouse.errors import BuildFailed, EngineError, PublishConflict
from wheelhouse.execute.outcome import Outcome, Status
from wheelhouse.ledger import Failure, LogFile
from wheelhouse.plan.choose import best_stored
from wheelhouse.plan.model import Step
from wheelhouse.store.model import Origin
from wheelhouse.util import utc_now

if TYPE_CHECKING:
    from wheelhouse.execute.executor import Executor


@dataclass(frozen=True, kw_only=True)
class _Inputs:
    """What a build's result depends on; its key names the failure, if any."""

    step: Step
    builder: Builder
    sdist: Path
    sdist_sha256: str
    key: str
    work: Path


def build_step(ex: Executor, step: Step) -> Outcome:
    builder = ex.builders(step.target)
    try:
        return _build_with(ex, step, builder)
    except EngineError as e:
        # The machine's fault, not the sdist's: reported, never recorded as a failure.
        return Outcome(step=step, status=Status.FAILED, message=e.message, hint=e.hint,
                       environment=True)


def _build_with(ex: Executor, step: Step, builder: Builder) -> Outcome:
    cand, pin, target = step.candidate, step.pin, step.target
    assert cand is not None
    with tempfile.TemporaryDirectory(dir=ex.store.tmp_dir(), prefix="build-") as tmp:
        work = Path(tmp)
        sdist = work / cand.filename
        sdist_sha = ex.download(cand, pin, sdist)
        key = ex.failure_key(step, builder, sdist_sha)
        failure = None if ex.retry_failed else ex.ledger.failure(key)
        if failure is not None:
            return failed_before(step, failure)
        with ex.ledger.build_lock(pin.project, pin.version, target.identifier):
            # Another process may have built it while we waited for the lock.
            stored = best_stored(ex.store, pin.project, pin.version, target)
            if stored is not None and not ex.settings.package(pin.project).build_from_source:
                return ex.kept(step, stored)
            inputs = _Inputs(step=step, builder=builder, sdist=sdist, sdist_sha256=sdist_sha,
                             key=key, work=work)
            return _build_locked(ex, inputs)


def failed_before(step: Step, failure: Failure) -> Outcome:
    return Outcome(step=step, status=Status.FAILED, log=failure.log, cause=failure.cause,
                   hint=failure.hint,
                   message=f"failed before with the same inputs: {failure.message}")


def _build_locked(ex: Executor, inputs: _Inputs) -> Outcome:
    step, builder, target = inputs.step, inputs.builder, inputs.step.target
    pin = step.pin
    package = ex.settings.package(pin.project)
    log_file = ex.ledger.new_log(pin.project, pin.version, target.identifier)
    ex.progress.started(step, builder.describe(target))
    with log_file.path.open("w", encoding="utf-8") as log:  # the recipe reads it back
        log.write(f"# wheelhouse {__version__}: {inputs.sdist.name} for {target} with "
                  f"{builder.identity(target)}\n")
        try:
            deps = (ex.build_requirements(inputs.sdist, target, inputs.work, package)
                    if builder.hermetic else None)
            built = builder.build(
                inputs.sdist, target=target, settings=package, work_dir=inputs.work,
                log=log, timeout=ex.settings.build_timeout, build_deps=deps,
                more_requirements=lambda reqs: ex.resolve_requirements(
                    reqs, f"{inputs.sdist.name} backend", target, inputs.work, package),
            )
        except BuildFailed as e:
            log.write(f"\n# wheelhouse: the build failed: {e}\n")
            error: str | None = str(e)
        else:
            error = None
    if error is None:
        error = _check(ex, inputs, built, log_file)
    if error is not None:
        return _failed(ex, inputs, error, log_file)
    return _publish(ex, inputs, built, log_file)


def _check(ex: Executor, inputs: _Inputs, built: BuiltWheel, log_file: LogFile) -> str | None:
    """None when the wheel works where the target runs; else why not (and the log says)."""
    step = inputs.step
    test = ex.settings.package(step.pin.project).test
    if test == "":
        return None
    available = ex.available_wheels(step.target)
    result = inputs.builder.check(
        step.target, built.wheel, requirement=f"{step.pin.project}=={step.pin.version}",
        available=available, test=test, timeout=ex.settings.build_timeout)
    with log_file.path.open("a", encoding="utf-8") as out:
        # A "$ " line opens the section the cause of a failed check is read from.
        out.write(f"\n$ check {built.wheel.name} in a clean environment of {step.target} "
                  f"({'the test command' if test else 'imports and programs'})"
                  f"\n{result.output}\n")
    if result.ok:
        return None
    what = "its test command failed" if test else "it does not import or its programs do not run"
    return f"the built wheel does not work on {step.target}: {what}"


def _failed(ex: Executor, inputs: _Inputs, message: str, log_file: LogFile) -> Outcome:
    step = inputs.step
    text = log_file.path.read_text(encoding="utf-8", errors="replace")
    why = explain(text, project=step.pin.project, target=str(step.target))
    failure = Failure(
        key=inputs.key, project=step.pin.project, version=step.pin.version,
        target=step.target.identifier, message=message, log=log_file.relative,
        time=utc_now(), cause=why.lines, hint=why.hint)
    ex.ledger.record_failure(failure)
    return Outcome(step=step, status=Status.FAILED, message=message, log=log_file.relative,
                   cause=why.lines, hint=why.hint)


def _publish(ex: Executor, inputs: _Inputs, built: BuiltWheel, log_file: LogFile) -> Outcome:
    step, target = inputs.step, inputs.step.target
    provenance = {
        "sdist": inputs.sdist.name, "sdist_sha256": inputs.sdist_sha256,
        "sdist_url": step.candidate.url if step.candidate else None,
        "builder": inputs.builder.identity(target), "target": target.identifier,
        "auditwheel": dict(built.report), "grafted": list(built.grafted),
        "seconds": round(built.seconds, 1), "log": log_file.relative,
        "checked": ex.settings.package(step.pin.project).test != "",
    }
    try:
        published = ex.store.publish(built.wheel, origin=Origin.BUILT, consume=True,
                                     provenance=provenance)
    except PublishConflict:
        # A concurrent builder published the same filename first: its wheel serves.
        existing = ex.store.get(built.wheel.name)
        assert existing is not None
        return ex.kept(step, existing, message="published by another build")
    ex.ledger.clear_failure(inputs.key)
    grafted = len(built.grafted)
    note = f"grafted {grafted} {'library' if grafted == 1 else 'libraries'}" if grafted else ""
    return ex.kept(step, published.file, Status.BUILT, log=log_file.relative,
                   seconds=built.seconds, message=note)
