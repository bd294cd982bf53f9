"""Fused CPU kernel for the DiffRes merge: the average, max and resolution-encoding merges
and the frame energies in one read of the log-mel, and their backward in one more.

Shapes: ``[batch, time, freq]``.  The kernel (``csrc/fused_merge.cpp``) is compiled once per
machine, torch version and source, into ``~/.cache/diffres-explorer/ext/`` by :func:`build`
(``scripts/setup.sh`` calls ``python -m diffres build-ext``); importing the library only
*loads* an existing build and never compiles.  Without a build, on CUDA, for half precision,
or with ``DIFFRES_FUSED=0`` in the environment, :func:`diffres.core.merge` uses the PyTorch
path (:func:`diffres.functional.warp` / :func:`~diffres.functional.warp_max`), which is the
reference the tests hold the kernel to.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
from pathlib import Path

import torch
from torch import Tensor

from .errors import DiffResError

__all__ = ["SOURCE", "build_directory", "build", "load", "usable_for", "merge"]

SOURCE = Path(__file__).with_name("csrc") / "fused_merge.cpp"
_LIBRARY = "diffres_fused"
_CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
_loaded: bool | None = None  # None: not tried yet


def _cpu_flags() -> str:
    """The CPU's feature flags (the build uses ``-march=native``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def build_directory() -> Path:
    """Where this machine's build lives: one folder per source, torch, Python, flags and CPU."""
    key = hashlib.sha256()
    for part in (
        SOURCE.read_bytes(),
        torch.__version__.encode(),
        sys.version.encode(),
        " ".join(_CFLAGS).encode(),
        _cpu_flags().encode(),
    ):
        key.update(part)
    return Path.home() / ".cache" / "diffres-explorer" / "ext" / f"fused-{key.hexdigest()[:16]}"


def _library_path() -> Path:
    return build_directory() / f"{_LIBRARY}.so"


def build(verbose: bool = False, force: bool = False) -> Path:
    """Compile the kernel (needs g++ and ninja; about 20 s) unless this machine already has
    this build, and load it.

    Returns the shared library's path.  Raises :class:`DiffResError` when compiling fails.
    """
    global _loaded
    if not force and load():
        return _library_path()
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("torch.utils.cpp_extension")  # "no CUDA runtime found": irrelevant for a CPU kernel
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension

        cpp_extension.load(
            name=_LIBRARY,
            sources=[str(SOURCE)],
            extra_cflags=_CFLAGS,
            extra_ldflags=["-fopenmp"],
            build_directory=str(directory),
            is_python_module=False,
            verbose=verbose,
        )
    except (RuntimeError, OSError, SystemExit) as exc:  # compiler or ninja missing, or a compile error
        raise DiffResError(f"building the fused merge kernel failed ({exc}); the PyTorch path stays in use") from exc
    finally:
        log.setLevel(level)
    _loaded = True
    _prune_old_builds(keep=3)
    return _library_path()


def _prune_old_builds(keep: int) -> None:
    """Delete all but the ``keep`` most recent builds (other sources, torch versions...)."""
    builds = sorted(build_directory().parent.glob("fused-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def load() -> bool:
    """Load this machine's build if there is one (never compiles).  True when loaded."""
    global _loaded
    if _loaded is None:
        path = _library_path()
        if not path.exists():
            _loaded = False
        else:
            try:
                torch.ops.load_library(str(path))
                _loaded = True
            except (OSError, RuntimeError):
                _loaded = False
    return _loaded


def usable_for(log_mel: Tensor) -> bool:
    """Whether :func:`merge` can take ``log_mel``: a loaded build, CPU, float32 or float64,
    and ``DIFFRES_FUSED`` not set to ``0``."""
    if os.environ.get("DIFFRES_FUSED", "1") == "0":
        return False
    return log_mel.device.type == "cpu" and log_mel.dtype in (torch.float32, torch.float64) and load()


class _FusedMerge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_mel, first_weight, second_weight, first_bin, second_bin, code, out_len, max_scale):
        features, argmax, energy = torch.ops.diffres_fused.merge_forward(
            log_mel, code, first_bin, second_bin, first_weight, second_weight, out_len, max_scale
        )
        ctx.mark_non_differentiable(energy)
        ctx.max_scale = max_scale
        ctx.save_for_backward(features, log_mel, code, first_bin, second_bin, first_weight, second_weight, argmax)
        return features, energy

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_features, grad_energy):
        features, log_mel, code, first_bin, second_bin, first_weight, second_weight, argmax = ctx.saved_tensors
        need_log_mel, need_w0, need_w1 = ctx.needs_input_grad[:3]
        if grad_features is None:
            return (None,) * 8
        grad_log_mel, grad_w0, grad_w1 = torch.ops.diffres_fused.merge_backward(
            grad_features,
            features,
            log_mel,
            code,
            first_bin,
            second_bin,
            first_weight,
            second_weight,
            argmax,
            ctx.max_scale,
            bool(need_log_mel),
        )
        return (
            grad_log_mel if need_log_mel else None,
            grad_w0 if need_w0 else None,
            grad_w1 if need_w1 else None,
            None,
            None,
            None,
            None,
            None,
        )


def merge(log_mel: Tensor, pieces, code: Tensor, out_len: int) -> tuple[Tensor, Tensor]:
    """The DiffRes merge of ``log_mel`` ``[B, T, F]`` given its warp pieces and the position
    code ``[T, F]``.

    Returns ``features`` ``[B, 3, T', F]`` (ln of the power-domain average, ln of ``T / T'``
    times the weighted max, merged code; as :func:`diffres.core.merge` defines them) and the
    frames' mean linear energy ``[B, T]`` (no gradient).  Differentiable in ``log_mel`` and
    the piece weights.  Call only when :func:`usable_for` is true.
    """
    dtype = log_mel.dtype
    return _FusedMerge.apply(
        log_mel.contiguous(),
        pieces.first_weight.to(dtype).contiguous(),
        pieces.second_weight.to(dtype).contiguous(),
        pieces.first_bin.contiguous(),
        pieces.second_bin.contiguous(),
        code.to(dtype).contiguous(),
        int(out_len),
        float(log_mel.shape[1]) / float(out_len),
    )
