"""Time-reduction front-ends at a common frame budget, behind one interface.

Every front-end maps a natural-log mel spectrogram ``[B, T, F]`` to a
:class:`~diffres.core.FrontendOutput` with ``T' = output_length(T, reduction_rate)``
frames, so training, the app and benchmarks can swap them by name:

- ``diffres``: learned importance and power-domain merging (3 channels);
- ``avgpool`` / ``maxpool``: adaptive average / max pooling over time, in the log domain;
- ``avgmaxpool``: the mean of the two (the authors' pipeline; the pydiffres package sums);
- ``convavgpool``: a learned residual conv stack added to the input, then ``avgpool``;
- ``changehop``: keep ``T'`` evenly spaced frames (a proportionally larger hop);
- ``full``: no reduction (``T' = T`` whatever the rate).

As in the paper's code, the baselines pool in the log domain while DiffRes merges in the
power domain; results that compare them should say so.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import functional as Fn
from .core import DiffRes, FrontendModule, FrontendOutput, ResidualBlock, _check_log_mel
from .errors import ParameterError

__all__ = [
    "FRONTENDS",
    "Frontend",
    "FixedFrontend",
    "PoolingFrontend",
    "ChangeHop",
    "FullResolution",
    "ConvAvgPool",
    "NO_REDUCTION",
    "frontend_label",
    "make_frontend",
]

#: The one table of front-ends: name -> what it does, in a sentence for people (the command
#: line's ``--help`` and the app's pages read it).
FRONTENDS: dict[str, str] = {
    "diffres": "DiffRes: learns which frames matter and merges the rest, in the power domain "
    "(the method this project is about).",
    "avgpool": "Average pooling over time (log domain): a fixed, uniform reduction at the same frame budget.",
    "maxpool": "Max pooling over time (log domain) at the same frame budget.",
    "avgmaxpool": "The mean of average and max pooling over time (log domain).",
    "convavgpool": "A learned residual convolution stack added to the input, then average pooling.",
    "changehop": "Evenly spaced frames: a larger hop, the usual way to save compute.",
    "full": "No reduction: every frame goes to the classifier (the accuracy ceiling, most compute).",
}


#: Front-ends that keep every frame: a reduction rate means nothing to them.
NO_REDUCTION = frozenset({"full"})


def frontend_label(frontend: str, reduction_rate: float | None = None) -> str:
    """A model's front-end and training rate in a few characters, for labels and tables:
    ``"diffres 0.75"``, or the bare name for a front-end that keeps every frame (``"full"``:
    its card still stores a rate, which it never used) or when the rate is unknown.

    Example:
        >>> frontend_label("diffres", 0.75), frontend_label("full", 0.75), frontend_label("avgpool")
        ('diffres 0.75', 'full', 'avgpool')
    """
    name = str(frontend)
    if name in NO_REDUCTION or not isinstance(reduction_rate, (int, float)) or isinstance(reduction_rate, bool):
        return name
    return f"{name} {float(reduction_rate):.3g}"


@runtime_checkable
class Frontend(Protocol):
    """What every time-reduction front-end is: DiffRes and the fixed-budget baselines alike.

    ``module(log_mel, reduction_rate=None)`` maps natural-log mel ``[B, T, n_mels]`` to a
    :class:`FrontendOutput` with ``T' = output_length(T, rate)`` output frames (the module's
    ``reduction_rate`` unless one is given; ``full`` keeps ``T``).

    Attributes:
        name: the key in :data:`FRONTENDS`.
        n_mels: mel bands it was built for.
        reduction_rate: its default fraction of frames removed, in [0, 1).
        n_channels: channels ``C`` of ``FrontendOutput.features`` ``[B, C, T', F]``.
        learnable: whether it has trainable parameters.

    Example:
        >>> all(isinstance(make_frontend(name, 16, 0.5), Frontend) for name in FRONTENDS)
        True
    """

    name: str
    n_mels: int
    reduction_rate: float
    n_channels: int
    learnable: bool

    def __call__(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> FrontendOutput: ...


def _uniform_output(log_mel: Tensor, reduced: Tensor, importance: Tensor) -> FrontendOutput:
    """Wrap a single-channel reduction ``reduced`` ``[B, T', F]`` with uniform bookkeeping."""
    batch, n_frames, n_mels = log_mel.shape
    out_len = reduced.shape[1]
    code = Fn.position_encoding(n_frames, n_mels, device=log_mel.device, dtype=log_mel.dtype)
    encoding = Fn.warp(code.expand(batch, -1, -1), importance, out_len)
    edges = torch.linspace(0.0, float(n_frames), out_len + 1, device=log_mel.device, dtype=log_mel.dtype)
    zero = log_mel.new_zeros(())
    return FrontendOutput(
        features=reduced.unsqueeze(1),
        avg=reduced,
        max=reduced,
        resolution_encoding=encoding,
        importance=importance,
        bin_edges=edges.expand(batch, -1),
        guide_loss=zero,
        activeness=zero,
        empty=torch.zeros(log_mel.shape[:2], dtype=torch.bool, device=log_mel.device),
    )


class FixedFrontend(FrontendModule):
    """Base of the fixed-budget baselines: ``[B, T, F]`` log-mel -> :class:`FrontendOutput`."""

    name = "frontend"
    n_channels = 1
    learnable = False

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> FrontendOutput:
        _check_log_mel(log_mel, self.n_mels)
        rate = self.reduction_rate if reduction_rate is None else Fn.check_rate(reduction_rate)
        out_len = Fn.output_length(log_mel.shape[1], rate)
        reduced = self.reduce(log_mel, out_len)
        uniform = log_mel.new_full(log_mel.shape[:2], out_len / log_mel.shape[1])
        return _uniform_output(log_mel, reduced, uniform)

    def reduce(self, log_mel: Tensor, out_len: int) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PoolingFrontend(FixedFrontend):
    """Adaptive ``avg``, ``max`` or ``avgmax`` pooling over time in the log domain."""

    def __init__(self, n_mels: int, reduction_rate: float, mode: str) -> None:
        super().__init__(n_mels, reduction_rate)
        if mode not in ("avg", "max", "avgmax"):
            raise ParameterError(f"pooling mode must be avg, max or avgmax, got {mode!r}.")
        self.mode = mode
        self.name = f"{mode}pool"

    def reduce(self, log_mel: Tensor, out_len: int) -> Tensor:
        x = log_mel.transpose(1, 2)
        if self.mode == "avg":
            y = F.adaptive_avg_pool1d(x, out_len)
        elif self.mode == "max":
            y = F.adaptive_max_pool1d(x, out_len)
        else:
            y = 0.5 * (F.adaptive_avg_pool1d(x, out_len) + F.adaptive_max_pool1d(x, out_len))
        return y.transpose(1, 2)


class ConvAvgPool(FixedFrontend):
    """Residual conv stack (3 blocks F -> F, kernel 5) added to the input, then average pooling.

    Learnable but with a fixed, uniform resolution: it controls for DiffRes's extra
    parameters.
    """

    name = "convavgpool"
    learnable = True

    def __init__(self, n_mels: int, reduction_rate: float, n_blocks: int = 3) -> None:
        super().__init__(n_mels, reduction_rate)
        self.blocks = nn.Sequential(*[ResidualBlock(self.n_mels, self.n_mels) for _ in range(n_blocks)])

    def reduce(self, log_mel: Tensor, out_len: int) -> Tensor:
        x = log_mel.transpose(1, 2)
        return F.adaptive_avg_pool1d(x + self.blocks(x), out_len).transpose(1, 2)


class ChangeHop(FixedFrontend):
    """Keep ``T'`` evenly spaced frames, indices ``floor(linspace(0, T - 1, T'))``."""

    name = "changehop"

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> FrontendOutput:
        _check_log_mel(log_mel, self.n_mels)
        rate = self.reduction_rate if reduction_rate is None else Fn.check_rate(reduction_rate)
        n_frames = log_mel.shape[1]
        out_len = Fn.output_length(n_frames, rate)
        index = self.kept_frames(n_frames, out_len).to(log_mel.device)
        reduced = log_mel.index_select(1, index)
        importance = log_mel.new_zeros(log_mel.shape[:2])
        importance[:, index] = 1.0
        return _uniform_output(log_mel, reduced, importance)

    @staticmethod
    def kept_frames(n_frames: int, out_len: int) -> Tensor:
        """Indices ``[T']`` of the frames kept."""
        if out_len == 1:
            return torch.zeros(1, dtype=torch.long)
        return torch.floor(torch.linspace(0, n_frames - 1, out_len, dtype=torch.float64) + 1e-9).long()


class FullResolution(FixedFrontend):
    """No reduction: ``T' = T`` whatever the rate (the fixed-hop reference)."""

    name = "full"

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> FrontendOutput:
        _check_log_mel(log_mel, self.n_mels)
        ones = log_mel.new_ones(log_mel.shape[:2])
        return _uniform_output(log_mel, log_mel, ones)


def make_frontend(name: str, n_mels: int, reduction_rate: float, **diffres_options: Any) -> Frontend:
    """Build a front-end by name (see :data:`FRONTENDS`).

    The returned ``nn.Module`` satisfies :class:`Frontend`: it has ``name``, ``n_mels``,
    ``reduction_rate``, ``n_channels`` (of ``features``) and ``learnable``, and maps
    ``[B, T, n_mels]`` log-mel to a :class:`FrontendOutput`; ``module(x, reduction_rate=r)``
    overrides the rate.  ``diffres_options`` (``channels``, ``importance``) go to
    :class:`~diffres.core.DiffRes` and are ignored by the fixed front-ends.

    Example:
        >>> fe = make_frontend("avgpool", n_mels=8, reduction_rate=0.75)
        >>> fe(torch.zeros(2, 100, 8)).features.shape
        torch.Size([2, 1, 25, 8])
    """
    if not isinstance(n_mels, int) or n_mels < 1:
        raise ParameterError(f"n_mels must be a whole number >= 1, got {n_mels!r}.")
    if name == "diffres":
        return DiffRes(n_mels, reduction_rate, **diffres_options)
    if name in ("avgpool", "maxpool", "avgmaxpool"):
        return PoolingFrontend(n_mels, reduction_rate, name[: -len("pool")])
    if name == "convavgpool":
        return ConvAvgPool(n_mels, reduction_rate)
    if name == "changehop":
        return ChangeHop(n_mels, reduction_rate)
    if name == "full":
        return FullResolution(n_mels, 0.0)
    raise ParameterError(f"unknown front-end {name!r}; choose one of: {', '.join(FRONTENDS)}.")
