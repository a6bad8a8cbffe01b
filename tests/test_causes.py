"""Reading why a build failed from its log: the lines that say it and the setting that fixes
it. The log excerpts are shaped like real ones seen building old releases (PyYAML 5.4.1,
cffi, psycopg2, ujson, yarl) in the stand-in builders."""

from __future__ import annotations

import re

import pytest

from wheelhouse.builder.causes import explain, patterns

CYTHON3 = """$ python3.11 -m build --wheel ...
running build_ext
Traceback (most recent call last):
  File "/tmp/build-env/lib/python3.11/site-packages/pyproject_hooks/_in_process.py", line 389
    main()
AttributeError: 'build_ext' object has no attribute 'cython_sources'
ERROR Backend subprocess exited when trying to invoke get_requires_for_build_wheel
[exit 1 after 3.2 s]"""

FFI = """$ python3.11 -m build --wheel ...
gcc -pthread -fPIC -I/usr/include/python3.11 -c c/_cffi_backend.c -o build/_cffi_backend.o
c/_cffi_backend.c:15:10: fatal error: ffi.h: No such file or directory
   15 | #include <ffi.h>
      |          ^~~~~~~~
compilation terminated.
error: command '/usr/bin/gcc' failed with exit code 1"""

PG = """$ python3.11 -m build --wheel ...
running egg_info
Error: pg_config executable not found.

pg_config is required to build psycopg2 from source."""

CXX = """$ python3.11 -m build --wheel ...
building 'ujson' extension
error: [Errno 2] No such file or directory: 'x86_64-linux-gnu-g++'
ERROR Backend subprocess exited when trying to invoke build_wheel"""

LONGINTREPR = """$ python3.11 -m build --wheel ...
yarl/_quoting_c.c:196:12: fatal error: longintrepr.h: No such file or directory
  196 |   #include "longintrepr.h"
compilation terminated.
error: Command '['x86_64-linux-gnu-gcc', '-Wsign-compare', '-DNDEBUG']' failed with exit code 1"""

DYNAMIC_REQUIREMENT = """$ python3.11 -m build --wheel ...
* Installing packages in isolated environment:
  - cppy>=1.1.0
< ERROR: Could not find a version that satisfies the requirement cppy>=1.1.0 (from versions: none)
< ERROR: No matching distribution found for cppy>=1.1.0"""

WARNINGS_THEN_SILENCE = """$ python3.11 -m build --wheel ...
core/metrics.c:706:5: warning: this 'if' clause does not guard... [-Wmisleading-indentation]
./uwsgi.h:436:27: note: ...this statement, but the latter is misleadingly indented
In file included from core/lock.c:1:
running install
[exit 1 after 61.9 s]"""


# A host without gcc (the README's first command on a bare machine), as setuptools says it.
NO_CC = """$ python3.11 -m build --wheel ...
building 'netifaces' extension
error: [Errno 2] No such file or directory: 'x86_64-linux-gnu-gcc'
ERROR Backend subprocess exited when trying to invoke build_wheel"""

# A derived image's install, as the classic builder prints it (colour codes included).
UNKNOWN_PACKAGE = """$ docker build --network host --force-rm -t wheelhouse/derived-... .
Step 3/3 : RUN set -e; if command -v apk >/dev/null; then apk add --no-cache libpq-dev; fi
\x1b[91mERROR: unable to select packages: libpq-dev (no such package)
\x1b[0mThe command '/bin/sh -c set -e; if command -v apk' returned a non-zero code: 1"""


@pytest.mark.parametrize(("log", "line", "fix"), [
    (CYTHON3, "AttributeError: 'build_ext' object has no attribute 'cython_sources'",
     'build-constraints = ["cython<3"]'),
    (FFI, "fatal error: ffi.h: No such file or directory", "libffi-dev"),
    (PG, "pg_config executable not found", "libpq-dev"),
    (CXX, "No such file or directory: 'x86_64-linux-gnu-g++'", "C++ compiler"),
    (LONGINTREPR, "longintrepr.h: No such file or directory", "pin a newer release"),
    (DYNAMIC_REQUIREMENT, "Could not find a version that satisfies the requirement cppy",
     "build-constraints"),
    (UNKNOWN_PACKAGE, "unable to select packages: libpq-dev", "check libpq-dev in"),
    (NO_CC, "No such file or directory: 'x86_64-linux-gnu-gcc'", "a C compiler"),
])
def test_known_causes_name_the_line_and_the_fix(log: str, line: str, fix: str) -> None:
    why = explain(log, project="demo", target="cp311-musllinux_x86_64")
    assert any(line in cause for cause in why.lines), why.lines
    assert why.hint is not None and fix in why.hint, why.hint
    assert not re.search(r"\{\w+\}", why.hint), "every placeholder is filled"


def test_wrappers_and_context_are_not_causes() -> None:
    why = explain(FFI + "\n" + LONGINTREPR, project="demo", target="t")
    assert not any("error: Command '[" in c or "error: command '/usr/bin/gcc'" in c
                   for c in why.lines), why.lines


def test_the_failing_command_is_read_first() -> None:
    # A warning from an earlier command must not be taken for the cause of the last one.
    log = ("$ first\nsrc/a.c:1: error: something earlier that did not matter\n[exit 0]\n"
           + PG)
    assert explain(log, project="psycopg2", target="t").lines[0].startswith(
        "Error: pg_config executable not found")


def test_a_build_that_says_nothing_shows_its_last_words() -> None:
    why = explain(WARNINGS_THEN_SILENCE, project="uwsgi", target="t")
    assert why.hint is None
    assert why.lines == ("running install",)


def test_every_pattern_compiles_and_has_a_hint() -> None:
    assert patterns(), "causes.toml loads"
    assert all(p.hint for p in patterns())


FELL_BACK = """$ python3.11 -m build --wheel ...
msgpack/_cmsgpack.cpp:196:12: fatal error: longintrepr.h: No such file or directory
compilation terminated.
WARNING: Failed to compile extension modules.
msgpack uses fallback pure python implementation.
Successfully built msgpack-1.0.2-cp311-cp311-linux_x86_64.whl
[exit 0 after 9.1 s]
$ python3.11 -m auditwheel repair --plat auto -w repaired dist/msgpack-1.0.2-cp311-cp311-...whl
INFO:auditwheel.main_repair:This does not look like a platform wheel, no ELF executable or \
shared library file (including compiled Python C extension) found in the wheel archive
[exit 1 after 0.6 s]"""


def test_a_fallback_to_pure_python_shows_why_the_extension_did_not_compile() -> None:
    # The repair fails, but its complaint is an effect: the compile error before it says why
    # (msgpack 1.0.2 and PyYAML 5.4.1 without libyaml on the stand-ins did this).
    why = explain(FELL_BACK, project="msgpack", target="cp311-manylinux_x86_64")
    assert why.lines == ("msgpack/_cmsgpack.cpp:196:12: fatal error: longintrepr.h: No such "
                         "file or directory",)
    assert why.summary is not None and "no compiled extension" in why.summary
    assert why.hint is not None and "pin a newer release" in why.hint
    missing_yaml = FELL_BACK.replace("msgpack/_cmsgpack.cpp:196:12: fatal error: longintrepr.h",
                                     "yaml/_yaml.h:2:10: fatal error: yaml.h")
    assert "system-packages for pyyaml" in str(explain(missing_yaml, project="pyyaml",
                                                       target="t").hint)
