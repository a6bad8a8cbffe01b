"""Build environments shared by the builds that need the same build requirements.

``python -m build`` makes a fresh virtual environment for every build and installs the build
requirements into it: for six small setuptools sdists that is six venvs holding the same two
wheels, seconds each. A hermetic build knows exactly which wheels its environment holds (the
directory of wheels the executor resolved for it), so those wheels name the environment: the
first build with a set creates it, later builds with the same set on the same builder image
run their backend in it: in the same container, or, with the compile cache on, in later runs
too (the environments live in the cache's volume, ``ccache.ENVS_DIR``; those unused for 30
days are removed when a new one is made). A build whose set differs in anything (another version, a
known fix's ``cython<3``, a requirement the backend asked for) gets an environment of its own.

Isolation is kept: an environment is a venv of the target's interpreter without system site
packages, holding only its wheels, created once and never installed into afterwards.

``DRIVER`` runs in the container with the target's interpreter (which has ``build``, as in the
pypa images), from a file sent with the sdist: ``python driver.py SOURCE OUTDIR DEPS ENVS``.
It exits 3, with pip's words for a missing requirement, when the backend asks for a
requirement the wheels do not meet, so the recipe resolves it and runs the driver again (a
new set, a new environment).
"""

from __future__ import annotations

#: where a builder container keeps its build environments.
ENVS_DIR = "/wheelhouse/envs"

DRIVER = r"""
import fcntl, hashlib, os, shutil, subprocess, sys
source, outdir, deps, envs = sys.argv[1:5]
from build import BuildBackendException, BuildException, ProjectBuilder
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

wheels = sorted(f for f in os.listdir(deps) if f.endswith(".whl"))
installed = {}
for w in wheels:
    name, version, _build, _tags = parse_wheel_filename(w)
    installed[name] = version
# The wheels' bytes name the environment (a name can be reused for other bytes elsewhere).
digest = hashlib.sha256("\n".join([sys.executable, sys.version]).encode())
for w in wheels:
    with open(os.path.join(deps, w), "rb") as f:
        digest.update(w.encode() + b"\0" + hashlib.sha256(f.read()).digest())
env = os.path.join(envs, digest.hexdigest()[:16])
python = os.path.join(env, "bin", "python")
complete = os.path.join(env, ".complete")
os.makedirs(envs, exist_ok=True)

def prune(days=30):
    # Environments kept between runs (the compile cache's volume) unused for a month go;
    # one in use is locked by its build and skipped.
    import time
    for name in os.listdir(envs):
        path = os.path.join(envs, name)
        if name.endswith(".lock") or path == env:
            continue
        try:
            if time.time() - os.stat(os.path.join(path, ".complete")).st_mtime < days * 86400:
                continue
        except OSError:
            continue
        with open(path + ".lock", "w") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)

with open(env + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if os.path.exists(complete):
        os.utime(complete)
        print(f"* Reusing the build environment {env} ({len(wheels)} wheels)", flush=True)
    else:
        prune()
        print(f"* Creating the build environment {env}: {', '.join(wheels) or 'no wheels'}",
              flush=True)
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
        if wheels:
            subprocess.run([sys.executable, "-m", "pip", "--python", python, "install",
                            "--no-index", "--no-deps", "--no-compile", "--quiet",
                            *[os.path.join(deps, w) for w in wheels]], check=True)
        open(complete, "w").close()

def run_hook(cmd, cwd=None, extra_environ=None):
    # As build's isolated environment: the environment's scripts come first on PATH.
    e = dict(os.environ)
    e.update(extra_environ or {})
    e["PATH"] = os.path.join(env, "bin") + os.pathsep + e.get("PATH", "")
    e.pop("PYTHONPATH", None)
    subprocess.run(cmd, cwd=cwd, env=e, check=True)

def unmet(requirements):
    out = []
    for text in sorted(requirements):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        have = installed.get(canonicalize_name(req.name))
        if have is None or not req.specifier.contains(have, prereleases=True):
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            out.append(f"{req.name}{extras}{req.specifier}")
    return out

try:
    builder = ProjectBuilder(source, python_executable=python, runner=run_hook)
    missing = unmet(builder.build_system_requires)
    if not missing:
        print("* Getting build dependencies for wheel...", flush=True)
        missing = unmet(builder.get_requires_for_build("wheel"))
    if missing:
        for m in missing:
            print(f"ERROR: Could not find a version that satisfies the requirement {m} "
                  "(among the build environment's wheels)", flush=True)
        sys.exit(3)
    print("* Building wheel...", flush=True)
    built = builder.build("wheel", outdir)
except (BuildBackendException, BuildException, InvalidRequirement) as e:
    print(f"ERROR {e}", flush=True)
    sys.exit(1)
print(f"Successfully built {os.path.basename(built)}", flush=True)
"""


def driver_command(python: str, driver: str, *, source: str, outdir: str, deps: str,
                   envs: str = ENVS_DIR) -> list[str]:
    """The command that builds ``source`` into ``outdir`` in the shared environment made of
    the wheels in ``deps``, with the target's interpreter ``python`` running ``driver`` (a
    file holding ``DRIVER``)."""
    return [python, driver, source, outdir, deps, envs]
