"""Target selectors: ``--target`` values and config ``targets`` that are globs over the known
target identifiers (``cp31*-musllinux_*``), with a ``skip`` list, as cibuildwheel's ``build``
and ``skip`` select build identifiers; and the keys of per-target settings (``engines``: an
architecture, a platform or a target glob)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from typing import Literal

from wheelhouse import platforms as pf
from wheelhouse.errors import ConfigError, TargetError
from wheelhouse.targets import known_targets, parse_target


def is_selector(text: str) -> bool:
    """Whether a ``--target`` value is a glob over the known targets (``cp31*-musllinux_*``)."""
    return any(c in text for c in "*?[")


def select_targets(selectors: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Expand ``--target`` values and config ``targets`` as cibuildwheel expands ``build``:
    a glob picks every known target identifier it matches (short identifiers, default
    policies), a plain identifier stands for itself; then anything matching a ``skip`` glob
    is dropped. A glob that matches nothing is an error naming the closest targets."""
    known = [t.identifier for t in known_targets()]
    chosen: list[str] = []
    for selector in selectors:
        text = selector.strip()
        if not is_selector(text):
            chosen.append(text)
            continue
        matched = fnmatch.filter(known, text)
        if not matched:
            close = difflib.get_close_matches(text.replace("*", "").replace("?", ""), known,
                                              n=3, cutoff=0.3)
            raise TargetError(
                f"the target selector {text!r} matches no known target",
                hint=("closest: " + ", ".join(close) + "; " if close else "")
                + "`wheelhouse targets` lists every identifier a selector can match",
            )
        chosen.extend(matched)
    skipped = [s.strip() for s in skip]
    kept = [t for t in dict.fromkeys(chosen)
            if not any(fnmatch.fnmatchcase(t, pattern) for pattern in skipped)]
    return kept


#: what a per-target settings key names.
KeyKind = Literal["arch", "platform", "target"]


def key_kind(key: str, *, setting: str = "engines") -> KeyKind:
    """What a per-target settings key names: ``arch`` (``aarch64``), ``platform``
    (``musllinux_aarch64``) or ``target`` (an identifier or a glob over the known ones);
    raises ConfigError naming ``setting.key`` when it names nothing wheelhouse knows."""
    data = pf.platforms()
    if key in data.archs:
        return "arch"
    if key in {f"{fam.name}_{arch}" for fam in data.families.values() for arch in fam.archs}:
        return "platform"
    if fnmatch.filter([t.identifier for t in known_targets()], key):
        return "target"
    try:
        parse_target(key)
    except TargetError:
        raise ConfigError(
            f"{setting} {key}: {key!r} is not an architecture, a platform or a target"
            if setting.startswith("--") else
            f"{setting}.{key}: {key!r} is not an architecture, a platform or a target",
            hint="key it by an architecture (aarch64), a platform (musllinux_aarch64) or a "
            "target glob (cp31*-manylinux_x86_64); `wheelhouse targets` lists them") from None
    return "target"
