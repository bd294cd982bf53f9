"""Devices, mixed precision and data-parallel training with ``torch.distributed``.

``torchrun --nproc_per_node N -m diffres train ...`` starts N processes with the usual
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`setup_distributed` reads it, picks the backend (NCCL for CUDA, gloo for CPU), binds
each rank to ``cuda:LOCAL_RANK`` on GPUs and returns a :class:`DistContext`.  Without
torchrun the same code runs as one process (``world_size == 1``, no process group).

The model's BatchNorm layers must see the whole global batch, or N processes would train a
different model from one process with the same global batch: :func:`sync_batchnorm` swaps
them for :class:`torch.nn.SyncBatchNorm` on CUDA and for :class:`GlobalBatchNorm` (the same
statistics over gloo, which SyncBatchNorm does not support on CPU) otherwise.

Mixed precision (:func:`amp_settings`): bf16 autocast on CUDA where the GPU supports it,
else fp16 with a gradient scaler; never on CPU.

Example::

    ctx, device = setup_distributed("auto")        # one process: DistContext(world_size=1)
    model = sync_batchnorm(model.to(device), ctx, device)
    amp = amp_settings(device, "auto")              # AmpSettings(enabled=False) on CPU
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import ParameterError
from .config import resolve_device

__all__ = [
    "AMP_MODES",
    "AmpSettings",
    "DistContext",
    "GlobalBatchNorm",
    "amp_settings",
    "backend_for",
    "launched_by_torchrun",
    "setup_distributed",
    "sync_batchnorm",
    "teardown_distributed",
]

#: ``--amp`` choices: ``auto`` (bf16 on CUDA when supported, else fp16; off on CPU),
#: ``off``, ``bf16``, ``fp16`` (CUDA only).
AMP_MODES = ("auto", "off", "bf16", "fp16")


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run.

    Attributes:
        rank: this process's rank in [0, world_size).
        world_size: number of processes (1 = not distributed).
        local_rank: rank on this machine (picks ``cuda:local_rank``).
        backend: ``"nccl"``, ``"gloo"``, or None without a process group.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0: the only rank that writes checkpoints, cards and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None and self.world_size > 1 and dist.is_initialized()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Element-wise sum over ranks (in place; returned for chaining).  One process: as is."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (pickled; keep it small)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def launched_by_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment is torchrun's (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``).

    Example:
        >>> launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"})
        True
        >>> launched_by_torchrun({})
        False
    """
    env = os.environ if env is None else env
    return all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))


def backend_for(device: torch.device) -> str:
    """The process-group backend for a device: ``nccl`` for CUDA, ``gloo`` otherwise.

    Example:
        >>> backend_for(torch.device("cpu")), backend_for(torch.device("cuda", 1))
        ('gloo', 'nccl')
    """
    return "nccl" if device.type == "cuda" else "gloo"


def _int_env(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except (KeyError, ValueError):
        raise ParameterError(f"torchrun's {name} is missing or not a whole number ({env.get(name)!r}).") from None


def setup_distributed(
    device: str = "auto", env: Mapping[str, str] | None = None, *, timeout_s: float = 600.0
) -> tuple[DistContext, torch.device]:
    """Resolve the device and, under torchrun, join the process group.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`resolve_device`).  Under
            torchrun a CUDA request becomes ``cuda:LOCAL_RANK``.
        env: the environment to read (default ``os.environ``).
        timeout_s: keyword-only; collective timeout in seconds.

    Returns:
        ``(DistContext, torch.device)``; one process (no torchrun) gets
        ``DistContext()`` and does not create a process group.
    """
    env = os.environ if env is None else env
    resolved = resolve_device(device)
    if not launched_by_torchrun(env):
        return DistContext(), resolved
    rank, world, local = _int_env(env, "RANK"), _int_env(env, "WORLD_SIZE"), int(env.get("LOCAL_RANK", "0"))
    if resolved.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ParameterError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s); "
                "use --nproc_per_node <= the GPU count."
            )
        resolved = torch.device("cuda", local)
        torch.cuda.set_device(resolved)
    backend = backend_for(resolved)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank, world, local, backend if world > 1 else None), resolved


def teardown_distributed(ctx: DistContext) -> None:
    """Leave the process group (no-op for one process)."""
    if ctx.distributed:
        dist.destroy_process_group()


# ------------------------------------------------------------------------ batch norm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum of the ranks' gradients (each rank's share
    feeds every rank's output)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        g = grad.clone()
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


def _all_reduce(x: Tensor) -> Tensor:
    out = _AllReduceSum.apply(x)
    assert isinstance(out, Tensor)
    return out


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the whole global batch, over any backend.

    Each rank sums its share; a differentiable all-reduce adds the shares, so the gradient
    is the one-process gradient of the global batch.  Mean and variance are two passes
    (sum, then the sum of squared deviations), as BatchNorm computes them.  Eval mode uses
    the running statistics.  One process (no process group) is plain
    :func:`torch.nn.functional.batch_norm`.

    Input ``[B, C, *]``; same state_dict keys as ``nn.BatchNorm1d/2d`` (checkpoints load into
    a plain model).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ParameterError(f"GlobalBatchNorm needs [batch, channels, ...], got shape {tuple(input.shape)}.")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not self.training or not (dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.new_tensor([float(input.numel() // input.shape[1])])
        total = _all_reduce(torch.cat([input.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = input - mean.view(shape)
        var = _all_reduce(centred.pow(2).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def _swap_batchnorm(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var = module.running_mean, module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _swap_batchnorm(child))
    return module


def sync_batchnorm(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """Make ``model``'s BatchNorm layers use global-batch statistics when ``ctx`` is
    distributed (SyncBatchNorm on CUDA, :class:`GlobalBatchNorm` otherwise); parameters and
    buffers are shared with the old layers.  One process: ``model`` unchanged."""
    if not ctx.distributed:
        return model
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _swap_batchnorm(model)


# ---------------------------------------------------------------------- precision


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision of a run.

    Attributes:
        enabled: autocast on (CUDA only).
        dtype: the autocast dtype (``torch.bfloat16`` or ``torch.float16``), None when off.
        use_scaler: fp16 needs a :class:`torch.amp.GradScaler`; bf16 does not.
        device_type: ``"cuda"`` or ``"cpu"``.
    """

    enabled: bool
    dtype: torch.dtype | None
    use_scaler: bool
    device_type: str

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "off") if self.enabled else "off"  # type: ignore[arg-type]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of a forward pass (a no-op context when off)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler, enabled only for fp16 (a disabled scaler passes losses and steps through)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.use_scaler)


def amp_settings(device: torch.device, mode: str = "auto", *, bf16_supported: bool | None = None) -> AmpSettings:
    """Mixed-precision settings for ``device``.

    Args:
        device: the training device.
        mode: one of :data:`AMP_MODES`.  ``auto`` is bf16 on a CUDA GPU that supports it,
            fp16 (with a gradient scaler) on an older one, and off on CPU; ``bf16`` or
            ``fp16`` on CPU raise ParameterError (CPU runs in float32).
        bf16_supported: keyword-only; override the GPU's answer (tests).

    Example:
        >>> amp_settings(torch.device("cpu")).enabled
        False
        >>> amp_settings(torch.device("cuda"), "auto", bf16_supported=False).name
        'fp16'
    """
    if mode not in AMP_MODES:
        raise ParameterError(f"amp must be one of {', '.join(AMP_MODES)}, got {mode!r}.")
    if device.type != "cuda":
        if mode in ("bf16", "fp16"):
            raise ParameterError(f"amp {mode!r} needs a CUDA device; on {device.type} use 'auto' or 'off' (float32).")
        return AmpSettings(False, None, False, device.type)
    if mode == "off":
        return AmpSettings(False, None, False, "cuda")
    if bf16_supported is None:
        bf16_supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if mode == "bf16" or (mode == "auto" and bf16_supported):
        return AmpSettings(True, torch.bfloat16, False, "cuda")
    return AmpSettings(True, torch.float16, True, "cuda")
