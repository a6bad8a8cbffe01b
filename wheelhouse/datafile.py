"""Reading a TOML data file value by value: each accessor checks a type or a form, and every
error is a ConfigError naming the file and the dotted key (``python.versions[2]``).
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Collection
from dataclasses import dataclass

from wheelhouse.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Node:
    """A value in the file with its dotted key, so every error names where it is."""

    source: str
    #: the dotted key; "" for the document itself.
    path: str
    value: object
    hint: str | None = None

    def child(self, key: str) -> Node:
        path = f"{self.path}.{key}" if self.path else key
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return Node(source=self.source, path=path, value=value, hint=self.hint)

    def fail(self, problem: str) -> ConfigError:
        where = self.path or "the top level"
        return ConfigError(f"{self.source}: {where}: {problem}", hint=self.hint)

    def table(self, *, required: Collection[str] = (),
              optional: Collection[str] = ()) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            raise self.fail(f"must be a table, not {type(self.value).__name__}")
        valid = [*required, *optional]
        for key in self.value:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
                raise self.child(key).fail(
                    "unknown key" + (f"; did you mean {close[0]!r}?" if close else
                                     "; valid keys: " + ", ".join(valid)))
        for key in required:
            if key not in self.value:
                raise self.child(key).fail("is missing")
        return {key: self.child(key) for key in self.value}

    def entries(self, pattern: re.Pattern[str], what: str) -> dict[str, Node]:
        """A table whose keys are names the file chooses (families, architectures)."""
        if not isinstance(self.value, dict):
            raise self.fail(f"must be a table, not {type(self.value).__name__}")
        for key in self.value:
            if not pattern.fullmatch(key):
                raise self.child(key).fail(f"{key!r} is not {what} ({pattern.pattern})")
        return {key: self.child(key) for key in self.value}

    def items(self, *, unique: bool, nonempty: bool = False) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.fail(f"must be an array, not {type(self.value).__name__}")
        if nonempty and not self.value:
            raise self.fail("must not be empty")
        nodes = [Node(source=self.source, path=f"{self.path}[{i}]", value=v, hint=self.hint)
                 for i, v in enumerate(self.value)]
        if unique:
            seen: list[object] = []
            for n in nodes:
                if n.value in seen:
                    raise n.fail(f"{n.value!r} is listed twice")
                seen.append(n.value)
        return nodes

    def string(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.fail(f"must be a non-empty string, not {self.value!r}")
        return self.value

    def matching(self, pattern: re.Pattern[str], what: str) -> str:
        text = self.string()
        if not pattern.fullmatch(text):
            raise self.fail(f"{text!r} is not {what} ({pattern.pattern})")
        return text

    def integer(self, *, minimum: int) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"must be an integer >= {minimum}, not {value!r}")
        return value

    def template(self, allowed: Collection[str], *, required: Collection[str] = ()) -> str:
        text = self.string()
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as e:
            raise self.fail(f"{text!r} is not a valid template: {e}") from None
        unknown = sorted(fields - set(allowed))
        if unknown:
            raise self.fail(f"{text!r} uses {{{unknown[0]}}}; it may use "
                            + ", ".join(f"{{{a}}}" for a in allowed))
        missing = sorted(set(required) - fields)
        if missing:
            raise self.fail(f"{text!r} must use {{{missing[0]}}}")
        return text
