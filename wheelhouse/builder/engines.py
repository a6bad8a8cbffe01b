"""Which container engine builds which target: the ``engines`` setting (an architecture, a
platform or a target glob → an engine: ``unix:///PATH.sock``, ``tcp://HOST:PORT``,
``ssh://HOST`` or a Docker context name) resolved per target, each engine asked once for its
architecture (native or emulated builds), and images a named engine lacks loaded into it from
the default engine (``docker save | docker load``).
"""

from __future__ import annotations

import fnmatch
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wheelhouse.builder.engine import Engine, check_engine, image_exists, image_id
from wheelhouse.errors import ConfigError, EngineError
from wheelhouse.selectors import KeyKind, key_kind
from wheelhouse.targets import Target, host_arch

#: how long loading one image into another engine may take.
TRANSFER_TIMEOUT = 1800


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One ``engines`` entry: which targets its key matches, and their engine."""

    key: str
    kind: KeyKind
    engine: Engine

    def matches(self, target: Target) -> bool:
        if self.kind == "arch":
            return target.arch == self.key
        if self.kind == "platform":
            return target.platform == self.key
        return fnmatch.fnmatchcase(target.identifier, self.key)


def parse_engines(program: str, table: Mapping[str, str]) -> tuple[Rule, ...]:
    """The ``engines`` table as rules, most specific first (targets, then platforms, then
    architectures; in the order given within each kind)."""
    rules = []
    for key, spec in table.items():
        spec = spec.strip()
        if not spec:
            raise ConfigError(f"engines.{key}: an engine cannot be empty",
                              hint="unix:///PATH.sock, tcp://HOST:PORT, ssh://HOST or a "
                              "`docker context ls` name; leave the key out for the default")
        engine = Engine(program=program, spec=None if spec == "default" else spec)
        rules.append(Rule(key=key, kind=key_kind(key), engine=engine))
    order = {"target": 0, "platform": 1, "arch": 2}
    return tuple(sorted(rules, key=lambda r: order[r.kind]))


class Engines:
    """The engines of one run: which one serves a target, what each runs natively, and
    images moved into the ones that lack them. Notes say what was loaded where."""

    def __init__(self, program: str, table: Mapping[str, str]) -> None:
        self.default = Engine(program=program)
        self.rules = parse_engines(program, table)
        self._archs: dict[Engine, str] = {}
        self._loaded: dict[tuple[Engine, str], str] = {}
        #: engines that did not answer ``describe`` (asked once for a listing).
        self._silent: set[Engine] = set()
        self._guard = threading.Lock()
        self._loading = threading.Lock()
        self.notes: list[str] = []

    def rule_for(self, target: Target) -> Rule | None:
        return next((r for r in self.rules if r.matches(target)), None)

    def for_target(self, target: Target) -> Engine:
        rule = self.rule_for(target)
        return rule.engine if rule is not None else self.default

    def named(self, target: Target) -> bool:
        """Whether the settings name an engine for ``target`` (then it builds there even
        where this machine could build it without a container)."""
        rule = self.rule_for(target)
        return rule is not None and not rule.engine.is_default

    def setting(self, engine: Engine) -> str | None:
        keys = [r.key for r in self.rules if r.engine == engine]
        return f"engines.{keys[0]}" if keys else None

    def arch(self, engine: Engine) -> str:
        """The engine's architecture, asked once; raises EngineError when it does not answer
        (naming the setting that named it)."""
        with self._guard:
            if engine not in self._archs:
                self._archs[engine] = check_engine(engine, setting=self.setting(engine))
            return self._archs[engine]

    def check(self, targets: Iterable[Target]) -> None:
        """Every engine named for these targets answers (before any work starts)."""
        for engine in dict.fromkeys(self.for_target(t) for t in targets if self.named(t)):
            self.arch(engine)

    def answered_arch(self, engine: Engine) -> str | None:
        """The engine's architecture, or None when it does not answer; an engine that did
        not answer is not asked again (listings describe many targets)."""
        if engine in self._silent:
            return None
        try:
            return self.arch(engine)
        except EngineError:
            self._silent.add(engine)
            return None

    def describe(self, target: Target) -> str:
        """``default, native`` or ``ssh://arm, emulated on x86_64``."""
        engine = self.for_target(target)
        arch = self.answered_arch(engine)
        if arch is None:
            if not engine.is_default:
                return f"{engine.name}, not answering"
            arch = host_arch()
        how = "native" if arch == target.arch else f"emulated on {arch}"
        return f"{engine.name}, {how}"

    def ensure_image(self, engine: Engine, image: str) -> str:
        """The image's id on ``engine``; an image only the default engine holds is loaded
        into ``engine`` first (once per run, said in the notes)."""
        found = image_id(engine, image)
        if found is not None or engine.is_default:
            return found or image_exists(engine, image)
        with self._loading:  # one load at a time; asking engines goes on meanwhile
            key = (engine, image)
            if key not in self._loaded:
                self._loaded[key] = self._transfer(engine, image)
            return self._loaded[key]

    def _transfer(self, engine: Engine, image: str) -> str:
        if image_id(self.default, image) is None:
            raise EngineError(
                f"the builder image {image} is neither on the engine {engine.name!r} nor on "
                "the default engine to load it from",
                hint=f"`{' '.join(engine.command('pull', image))}`, or where no registry is "
                "reachable run builders/bootstrap (on the default engine) and pass the config "
                "it prints with --config")
        began = time.monotonic()
        save = subprocess.Popen(self.default.command("save", image), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            load = subprocess.run(engine.command("load", "--quiet"), stdin=save.stdout,
                                  capture_output=True, text=True, timeout=TRANSFER_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired:
            save.kill()
            raise EngineError(f"loading {image} into the engine {engine.name!r} took more "
                              f"than {TRANSFER_TIMEOUT} s") from None
        finally:
            assert save.stdout is not None
            save.stdout.close()
        saved_err = save.communicate()[1].decode(errors="replace").strip()
        if save.returncode != 0 or load.returncode != 0:
            raise EngineError(
                f"cannot load {image} into the engine {engine.name!r}: "
                f"{(saved_err or load.stderr.strip())[-300:]}",
                hint=f"load it yourself (`docker save {image} | "
                f"{' '.join(engine.command('load'))}`) or pull it there")
        self.notes.append(f"loaded {image} into the engine {engine.name} from the default "
                          f"engine ({time.monotonic() - began:.0f} s)")
        return image_exists(engine, image)
