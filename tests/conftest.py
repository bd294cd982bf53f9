import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
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
    """Switch the fused CPU merge kernel on; fail when this machine has no build of it."""
    from diffres import fused

    monkeypatch.setenv("DIFFRES_FUSED", "1")
    assert fused.load(), "the fused kernel is not built: scripts/setup.sh runs `python -m diffres build-ext`"
    return fused


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)
