from __future__ import annotations

from pathlib import Path

import pytest

from wheelhouse.config import load_settings
from wheelhouse.errors import ConfigError, UsageError
from wheelhouse.options import server_options
from wheelhouse.settings import Settings, default_store


def test_cascade_defaults_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.wheelhouse]\njobs = 3\nport = 9000\nindex-url = 'http://file/simple/'\n"
        "targets = ['cp311-manylinux_x86_64']\n"
    )
    s = load_settings(cwd=tmp_path, environ={})
    assert (s.jobs, s.port, s.index_url) == (3, 9000, "http://file/simple/")
    s = load_settings(cwd=tmp_path, environ={"WHEELHOUSE_PORT": "9100", "WHEELHOUSE_TARGETS":
                                            "cp312-musllinux_x86_64 cp311-manylinux_aarch64"})
    assert s.port == 9100 and s.jobs == 3
    assert s.targets == ("cp312-musllinux_x86_64", "cp311-manylinux_aarch64")
    s = load_settings(cwd=tmp_path, environ={"WHEELHOUSE_PORT": "9100"},
                      overrides={"port": 9200, "jobs": None})
    assert s.port == 9200 and s.jobs == 3


def test_config_file_replaces_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.wheelhouse]\njobs = 3\n")
    cfg = tmp_path / "wh.toml"
    cfg.write_text("port = 1234\n[images]\nmanylinux_x86_64 = 'img:local'\n"
                   "[packages.Psycopg2]\nsystem-packages = ['libpq-dev']\n")
    s = load_settings(config_file=cfg, cwd=tmp_path, environ={})
    assert s.jobs == 2 and s.port == 1234
    assert s.images == {"manylinux_x86_64": "img:local"}
    assert s.package("psycopg2").system_packages == ("libpq-dev",)


def test_system_packages_per_package_manager(tmp_path: Path) -> None:
    # The pypa manylinux_2_28 images use dnf (libffi-devel), musllinux apk (libffi-dev).
    (tmp_path / "pyproject.toml").write_text(
        "[tool.wheelhouse.packages.cffi]\n"
        "system-packages = { dnf = ['libffi-devel'], apk = ['libffi-dev'] }\n")
    s = load_settings(cwd=tmp_path, environ={})
    assert s.package("cffi").system_packages == (("apk", ("libffi-dev",)),
                                                  ("dnf", ("libffi-devel",)))
    (tmp_path / "pyproject.toml").write_text(
        "[tool.wheelhouse.packages.cffi]\nsystem-packages = { brew = ['libffi'] }\n")
    with pytest.raises(ConfigError, match="'brew' is not a package manager") as e:
        load_settings(cwd=tmp_path, environ={})
    assert "apk" in (e.value.hint or "")


@pytest.mark.parametrize(("text", "suggestion"), [
    ("[tool.wheelhouse]\nindex_ulr = 'x'\n", "index-url"),
    ("[tool.wheelhouse]\nstroe = 'x'\n", "store"),
    ("[tool.wheelhouse.packages.x]\nsystem-package = ['a']\n", "system-packages"),
])
def test_unknown_keys_suggest_the_closest(tmp_path: Path, text: str, suggestion: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(cwd=tmp_path, environ={})
    assert suggestion in (e.value.hint or "")


def test_unknown_env_var_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(cwd=tmp_path, environ={"WHEELHOUSE_STOER": "/x"})
    assert "WHEELHOUSE_STORE" in (e.value.hint or "")


def test_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(cwd=tmp_path, environ={"WHEELHOUSE_JOBS": "many"})
    (tmp_path / "pyproject.toml").write_text("[tool.wheelhouse\n")
    with pytest.raises(ConfigError):
        load_settings(cwd=tmp_path, environ={})


def test_default_store_does_not_collide_with_the_source_folder(tmp_path: Path) -> None:
    store = default_store()
    repo = Path(__file__).resolve().parent.parent
    assert not store.resolve().is_relative_to(repo / "wheelhouse")
    assert store.name == "store"


def test_server_options_resolve_tokens_once(tmp_path: Path) -> None:
    settings = Settings(store=tmp_path, port=9000, fall_through=True,
                        index_url="http://up/simple/")
    env = {"WHEELHOUSE_UPLOAD_TOKEN": "from-env", "WHEELHOUSE_READ_TOKEN": ""}
    options = server_options(settings, environ=env)
    assert (options.store, options.port, options.upstream_url) == (
        tmp_path, 9000, "http://up/simple/")
    assert options.upload_token == "from-env" and options.read_token is None
    assert "from-env" not in repr(options)
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    options = server_options(settings, read_token_file=token_file, environ=env)
    assert options.read_token == "from-file"
    assert server_options(Settings(store=tmp_path), environ={}).upstream_url is None


def test_server_kind_follows_workers(tmp_path: Path) -> None:
    settings = Settings(store=tmp_path)
    # granian is the default (issue 9); the werkzeug server only when asked for
    assert server_options(settings, environ={}).server == "granian"
    assert server_options(settings, server="builtin", environ={}).server == "builtin"
    assert server_options(settings, workers=3, environ={}).server == "granian"
    assert server_options(settings, server="granian", environ={}).workers is None
    with pytest.raises(UsageError, match="--workers needs --server granian"):
        server_options(settings, server="builtin", workers=2, environ={})


def test_paths_in_a_config_file_are_relative_to_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "ci").mkdir(parents=True)
    (project / "ci" / "wheelhouse.toml").write_text(
        "requirements = ['../requirements.txt', 'pylock.toml']\nstore = 'store'\n"
        "find-links = ['wheels', 'https://example.com/links/']\n"
        "publish = 'https://wheels.example.com/legacy/'\n")
    s = load_settings(config_file=project / "ci" / "wheelhouse.toml", cwd=tmp_path,
                      environ={})
    assert s.requirements == (project / "ci" / "../requirements.txt",
                              project / "ci" / "pylock.toml")
    assert s.store == project / "ci" / "store"
    assert s.find_links == (str(project / "ci" / "wheels"), "https://example.com/links/")
    assert s.publish == "https://wheels.example.com/legacy/"
    # from the environment, relative to the working directory, as any command-line path
    s = load_settings(cwd=tmp_path, environ={"WHEELHOUSE_REQUIREMENTS": "a.txt b.txt",
                                             "WHEELHOUSE_STORE": "st"})
    assert s.requirements == (Path("a.txt"), Path("b.txt")) and s.store == Path("st")


def test_wheelhouse_toml_is_found_before_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.wheelhouse]\njobs = 3\n")
    assert load_settings(cwd=tmp_path, environ={}).jobs == 3
    (tmp_path / "wheelhouse.toml").write_text("[tool.wheelhouse]\njobs = 4\n"
                                              "targets = ['cp311-musllinux_x86_64']\n")
    s = load_settings(cwd=tmp_path, environ={})
    assert s.jobs == 4 and s.targets == ("cp311-musllinux_x86_64",)
    (tmp_path / "wheelhouse.toml").write_text("jobs = 5\nrequirements = ['r.txt']\n")
    s = load_settings(cwd=tmp_path, environ={})
    assert s.jobs == 5 and s.requirements == (tmp_path / "r.txt",)
