"""Shared fixtures.  The repository root and ``tests/`` are importable through pytest's
``pythonpath`` setting (pyproject.toml)."""

import os
import shutil

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and a busy shared machine punishes two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fused_kernel(monkeypatch):
    """Switch the fused CPU merge kernel on.

    The kernel is optional: on a machine without a C++ compiler the tests that need it are
    skipped, saying why.  Where ``g++`` is installed (CI: ``scripts/setup.sh`` installs it and
    builds the kernel) a missing build is a failure, not a skip.
    """
    from diffres import fused

    monkeypatch.setenv("DIFFRES_FUSED", "1")
    if fused.load():
        return fused
    if shutil.which("g++") is None:
        pytest.skip("the fused merge kernel is optional and this machine has no g++ to build it "
                    "(apt-get install g++ ninja-build, then python -m diffres build-ext)")
    pytest.fail("g++ is installed but the fused kernel is not built: run `python -m diffres build-ext` "
                "(scripts/setup.sh does)")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """The app's training runs go to a temporary folder (``DIFFRES_RUNS_DIR``); yields it."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("DIFFRES_RUNS_DIR", str(folder))
    return folder


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


# A bug on a page must fail the AppTest and browser tests, not turn into the app's "unexpected
# error" message (ui/frame.py guard); the tests of that message switch this off themselves.
os.environ.setdefault("DIFFRES_APP_RAISE", "1")
