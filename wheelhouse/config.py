"""Where settings come from: one cascade, later sources winning, read into ``Settings``
(``wheelhouse.settings``).

Each setting is resolved through one cascade, later sources winning: built-in defaults <
``[tool.wheelhouse]`` in ``pyproject.toml`` (or ``wheelhouse.toml``, or a ``--config`` TOML
file; relative paths in them are relative to that file) < ``WHEELHOUSE_*`` environment
variables < command-line flags. Unknown keys are errors that name the closest
valid key, in files and in the environment alike. Nothing is read at import; tokens are read
by ``wheelhouse.options``, never here.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from wheelhouse.errors import ConfigError
from wheelhouse.settings import (
    NON_SETTING_ENV,
    PackageSettings,
    Settings,
    SystemPackages,
)


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{key} must be a string, not {v!r}")
    return v


def _path(key: str, v: Any) -> Path:
    """A path; a relative one is relative to the file that names it (the working directory
    for environment variables)."""
    path = Path(os.path.expanduser(_str(key, v)))
    return path if path.is_absolute() else _BASE.get() / path


def _store(key: str, v: Any) -> Path | str:
    """A store directory (``_path``), or a bucket URL (``s3://BUCKET/PREFIX``) as it is."""
    text = _str(key, v)
    if "://" in text:
        if not text.startswith("s3://"):
            raise ConfigError(f"{key}: {text} is neither a directory nor an s3:// URL",
                              hint="give a directory, or s3://BUCKET/PREFIX for a bucket")
        return text
    return _path(key, text)


def _paths(key: str, v: Any) -> tuple[Path, ...]:
    return tuple(_path(key, p) for p in _strs(key, v))


def _locations(key: str, v: Any) -> tuple[str, ...]:
    """URLs as they are; local paths like ``_path``."""
    return tuple(p if "://" in p else str(_path(key, p)) for p in _strs(key, v))


def _strs(key: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):  # environment form: space or comma separated
        return tuple(p for p in v.replace(",", " ").split() if p)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ConfigError(f"{key} must be a list of strings, not {v!r}")


def _int(key: str, v: Any) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a whole number, not {v!r}") from None
    if n < 1:
        raise ConfigError(f"{key} must be at least 1, not {n}")
    return n


def _float(key: str, v: Any) -> float:
    try:
        n = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number of seconds, not {v!r}") from None
    if n <= 0:
        raise ConfigError(f"{key} must be positive, not {n}")
    return n


def _bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return v.lower() in {"1", "true", "yes", "on"}
    raise ConfigError(f"{key} must be true or false, not {v!r}")


def _network(key: str, v: Any) -> str:
    if v not in ("none", "host"):
        raise ConfigError(f"{key} must be \"none\" or \"host\", not {v!r}",
                          hint="\"none\": builds use only wheels from the store (default); "
                          "\"host\": builds may reach the index")
    return str(v)


def _ca(key: str, v: Any) -> Path:
    path = _path(key, v)
    if not path.is_file():
        raise ConfigError(f"{key}: CA bundle {path} does not exist",
                          hint="point it at a PEM file, e.g. /etc/ssl/certs/ca-certificates.crt")
    return path


def _str_map(key: str, v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise ConfigError(f"{key} must be a table of strings, not {v!r}")
    return dict(v)


def _engines(key: str, v: Any) -> dict[str, str]:
    """Keys checked (architecture, platform or target glob); engines are asked at run time."""
    from wheelhouse.selectors import key_kind

    table = _str_map(key, v)
    for name, engine in table.items():
        key_kind(name)
        if not engine.strip():
            raise ConfigError(f"{key}.{name}: an engine cannot be empty",
                              hint="unix:///PATH.sock, tcp://HOST:PORT, ssh://HOST or a "
                              "`docker context ls` name; leave the key out for the default")
    return table


def _constraints(key: str, v: Any) -> tuple[str, ...]:
    """A list of requirement specifiers, or the path of a constraints file (one per line,
    ``#`` comments), relative to the file that names it."""
    if isinstance(v, str):
        path = _path(key, v)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{key}: cannot read the constraints file {path}: {e}") from None
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        items = [(f"{path}:{n}", ln) for n, ln in enumerate(lines, 1) if ln]
    elif isinstance(v, list) and all(isinstance(x, str) for x in v):
        items = [(key, x) for x in v]
    else:
        raise ConfigError(f"{key} must be a list of requirements or a file path, not {v!r}")
    out = []
    for where, text in items:
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise ConfigError(f"{where}: {text!r} is not a requirement specifier: {e}",
                              hint="write constraints like cython<3 or setuptools<81") from None
        if req.url or req.extras:
            raise ConfigError(f"{where}: a constraint names a version range only, not "
                              f"{text!r}")
        out.append(str(req))
    return tuple(out)


def _system_packages(key: str, v: Any) -> SystemPackages:
    if not isinstance(v, dict):
        return _strs(key, v)
    from wheelhouse.platforms import platforms

    managers = [m.command for m in platforms().package_managers]
    out = []
    for manager, names in sorted(v.items()):
        if manager not in managers:
            raise ConfigError(f"{key}: {manager!r} is not a package manager wheelhouse knows",
                              hint="key the table by " + ", ".join(managers)
                              + "; or give one list for every image")
        out.append((manager, _strs(f"{key}.{manager}", names)))
    return tuple(out)


def _test(key: str, v: Any) -> str:
    if v is False:
        return ""
    if isinstance(v, str):
        return v
    raise ConfigError(f"{key} must be a shell command (a string) or false, not {v!r}",
                      hint="e.g. test = \"python -c 'import yaml'\"; false skips the test")


_PACKAGE_KEYS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "system-packages": ("system_packages", _system_packages),
    "environment": ("environment", _str_map),
    "auditwheel-exclude": ("auditwheel_exclude", _strs),
    "build-from-source": ("build_from_source", _bool),
    "auto-fix": ("auto_fix", _bool),
    "build-constraints": ("build_constraints", _constraints),
    "test": ("test", _test),
}


def _packages(key: str, v: Any) -> dict[str, PackageSettings]:
    if not isinstance(v, dict):
        raise ConfigError(f"{key} must be a table of per-package tables, not {v!r}")
    out: dict[str, PackageSettings] = {}
    for name, table in v.items():
        where = f"{key}.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table, not {table!r}")
        kwargs = {}
        for k, raw in table.items():
            if k not in _PACKAGE_KEYS:
                raise _unknown(k, _PACKAGE_KEYS, where)
            attr, conv = _PACKAGE_KEYS[k]
            kwargs[attr] = conv(f"{where}.{k}", raw)
        out[canonicalize_name(name)] = PackageSettings(**kwargs)
    return out


KEYS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "store": ("store", _store),
    "catalogue": ("catalogue", _str),
    "presign-downloads": ("presign_downloads", _bool),
    "presign-endpoint": ("presign_endpoint", _str),
    "targets": ("targets", _strs),
    "skip": ("skip", _strs),
    "index-url": ("index_url", _str),
    "extra-index-urls": ("extra_index_urls", _strs),
    "find-links": ("find_links", _locations),
    "jobs": ("jobs", _int),
    "build-timeout": ("build_timeout", _float),
    "retry-failed": ("retry_failed", _bool),
    "host": ("host", _str),
    "fall-through": ("fall_through", _bool),
    "port": ("port", _int),
    "images": ("images", _str_map),
    "engine": ("engine", _str),
    "engines": ("engines", _engines),
    "builder-network": ("builder_network", _network),
    "builder-memory": ("builder_memory", _str),
    "builder-cpus": ("builder_cpus", _float),
    "ca-bundle": ("ca_bundle", _ca),
    "consumer-images": ("consumer_images", _str_map),
    "packages": ("packages", _packages),
    "build-constraints": ("build_constraints", _constraints),
    "requirements": ("requirements", _paths),
    "publish": ("publish", _str),
    "auto-fix": ("auto_fix", _bool),
    "compile-cache": ("compile_cache", _bool),
}

#: keys that make sense only in files (tables), not as one environment variable.
_FILE_ONLY = {"images", "consumer-images", "packages", "engines"}


def _unknown(key: str, valid: Mapping[str, object], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(sorted(valid))
    return ConfigError(f"unknown key {key!r} in {where}", hint=hint)


#: the directory relative paths in the file being read are relative to.
_BASE: contextvars.ContextVar[Path] = contextvars.ContextVar("base", default=Path("."))


def _from_table(table: Mapping[str, Any], where: str, base: Path = Path(".")) -> dict[str, Any]:
    token = _BASE.set(base)
    try:
        return _from_table_in(table, where)
    finally:
        _BASE.reset(token)


def _from_table_in(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in table.items():
        norm = key.replace("_", "-")
        if norm not in KEYS:
            raise _unknown(key, KEYS, where)
        attr, conv = KEYS[norm]
        values[attr] = conv(f"{where}: {key}", raw)
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None


#: a project's own wheelhouse settings, found in the working directory before pyproject.toml.
CONFIG_FILE_NAME = "wheelhouse.toml"


def file_values(config_file: Path | None, cwd: Path) -> dict[str, Any]:
    """Settings from ``--config FILE``, else ``./wheelhouse.toml``, else ``./pyproject.toml``'s
    ``[tool.wheelhouse]``. Relative paths in them are relative to the file.

    A ``--config`` file or ``wheelhouse.toml`` may hold a ``[tool.wheelhouse]`` table or the
    keys at its top level.
    """
    own = cwd / CONFIG_FILE_NAME
    if config_file is None and own.is_file():
        config_file = own
    if config_file is not None:
        data = _read_toml(config_file)
        table = data.get("tool", {}).get("wheelhouse")
        if table is None:
            table = data
        return _from_table(table, str(config_file), config_file.parent)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("wheelhouse", {})
        return _from_table(table, f"{pyproject} [tool.wheelhouse]", cwd)
    return {}


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    env_keys = {k.upper().replace("-", "_"): k for k in KEYS if k not in _FILE_ONLY}
    for name, raw in environ.items():
        if not name.startswith("WHEELHOUSE_") or name in NON_SETTING_ENV:
            continue
        suffix = name.removeprefix("WHEELHOUSE_")
        if suffix not in env_keys:
            valid = {f"WHEELHOUSE_{k}": None for k in env_keys}
            raise _unknown(name, valid, "the environment")
        key = env_keys[suffix]
        attr, conv = KEYS[key]
        values[attr] = conv(name, raw)
    return values


def load_settings(
    *,
    config_file: Path | None = None,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve the cascade. ``overrides`` are already-typed values from flags (None = unset)."""
    values: dict[str, Any] = {}
    values.update(file_values(config_file, cwd or Path.cwd()))
    values.update(env_values(os.environ if environ is None else environ))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None and v != ()})
    if isinstance(values.get("store"), str):  # the last source that named a store wins
        values["store_url"] = values.pop("store")
    return Settings(**values)

