"""Cached environments for the per-source tests, made once under
.cache/source-venvs/<name>-<hash of the pins> and reused while the pins stay the same:

- one Python venv for every Python source (requirements/python.lock: the full closure, pinned,
  installed with --no-deps, with uv when the test tools have it, else pip), and one for CrewAI
  (requirements/crewai.lock, made the same way: crewai needs an openai the others do not take);
- node_modules for the Vercel AI SDK driver (package.json + package-lock.json, `npm ci`).

Anything that stops the install (no network, a package gone, no npm) raises Unavailable with the
installer's reason; the tests skip with it. Nothing else is a reason to skip.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = REPO / ".cache" / "source-venvs"
PYTHON_LOCK = HERE / "requirements" / "python.lock"
CREWAI_LOCK = HERE / "requirements" / "crewai.lock"
NODE_FILES = (HERE / "package.json", HERE / "package-lock.json")
INSTALL_TIMEOUT_S = 600
_READY = ".installed"  # written last: a half-made environment is made again


class Unavailable(Exception):
    """The environment could not be installed here; the message says why."""


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:12]


def _run(args: list[str], cwd: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=cwd, env=env)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{' '.join(args[:3])}... timed out after {INSTALL_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise Unavailable(f"{args[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(line for line in (proc.stderr or proc.stdout).splitlines() if not line.startswith("WARNING"))
        raise Unavailable(f"{' '.join(args[:3])}... failed: {tail.strip()[-800:]}")


def _made(target: Path, build) -> Path:
    if (target / _READY).exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    kind = target.name.rsplit("-", 1)[0]
    with open(CACHE / f"{kind}.lock", "w") as lock:  # one builder at a time (two pytest runs, one tree)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / _READY).exists():
            _build(target, kind, build)
    return target


def _build(target: Path, kind: str, build) -> None:
    for stale in CACHE.glob(f"{kind}-*"):  # half made, or made from older pins
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    target.mkdir(parents=True)
    started = time.monotonic()
    try:
        build(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    (target / _READY).write_text(f"installed in {time.monotonic() - started:.1f} s\n")


def _uv() -> str | None:
    try:
        import uv
    except ImportError:
        return None
    return uv.find_uv_bin()


def _python_builder(lock: Path):
    return lambda target: _build_python(target, lock)


def _build_python(target: Path, lock: Path) -> None:
    venv = target / "venv"
    python = str(venv / "bin" / "python")
    uv = _uv()
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        _run([uv, "pip", "install", "--quiet", "--no-deps", "--python", python, "-r", str(lock)])
    else:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
              "-r", str(lock)])


def python_env() -> Path:
    """The Python interpreter of the sources' venv."""
    target = _made(CACHE / f"python-{_digest(PYTHON_LOCK)}", _python_builder(PYTHON_LOCK))
    return target / "venv" / "bin" / "python"


def crewai_env() -> Path:
    """The Python interpreter of the CrewAI venv."""
    target = _made(CACHE / f"crewai-{_digest(CREWAI_LOCK)}", _python_builder(CREWAI_LOCK))
    return target / "venv" / "bin" / "python"


def _build_node(target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("node and npm are not installed")
    for path in NODE_FILES:
        shutil.copy(path, target / path.name)
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target)


def node_modules() -> Path:
    """node_modules with the Vercel AI SDK driver's packages."""
    return _made(CACHE / f"vercel-ai-{_digest(*NODE_FILES)}", _build_node) / "node_modules"
