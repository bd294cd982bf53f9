"""The package installs with pip and works from the install; the optional kernel's tests skip
(not fail) where no compiler exists."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install .`` into a fresh virtual environment; returns its ``bin`` folder.

    Offline and fast: the new environment sees this environment's site-packages through a
    ``.pth`` file (torch and the rest are not downloaded again), the build uses this
    environment's setuptools (``--no-build-isolation``) and pip installs only the package
    (``--no-deps``).  The sources are copied first, so the build leaves nothing in the
    repository.
    """
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "diffres", src / "diffres", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "project-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", str(src)], check=True, cwd=tmp, timeout=300)
    return env_dir / "bin"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the repository
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_pip_install_gives_the_library_its_kernel_source_and_the_console_script(installed, tmp_path):
    code = ("import diffres, diffres.fused as f, diffres.training, diffres.datasets, diffres.figures; "
            "print(diffres.__file__); print(f.SOURCE.is_file()); print(diffres.__version__)")
    res = _run([str(installed / "python"), "-c", code], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    where, has_source, version = res.stdout.split()
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(ROOT)
    assert has_source == "True"  # csrc/fused_merge.cpp is package data
    import diffres

    assert version == diffres.__version__
    res = _run([str(installed / "diffres"), "datasets", "list"], cwd=tmp_path)  # the console script
    assert res.returncode == 0, res.stderr
    assert any(line.startswith("events: alarm_clock") for line in res.stdout.splitlines())
    res = _run([str(installed / "diffres"), "train", "--reduction-rate", "2"], cwd=tmp_path)
    assert res.returncode == 2 and "reduction rate" in res.stderr


def test_kernel_tests_skip_with_a_reason_when_no_compiler_exists(tmp_path):
    """No build of the kernel (another home folder) and no g++ on the PATH: the kernel's
    tests are skipped and say why; nothing fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HOME=str(tmp_path), PATH=str(tmp_path / "no-bin"))  # no g++ (and no build under this home)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-rs",
         "tests/test_fused.py::test_usable_only_where_it_applies",
         "tests/test_core.py::test_rate_zero_is_identity_on_the_average"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "no g++" in out and "optional" in out
    assert "1 passed, 2 skipped" in out  # the PyTorch merge path still runs
