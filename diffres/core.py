"""The DiffRes module: learned frame importance and differentiable frame merging.

Shapes: ``[batch, time, freq]``; input is natural-log mel *power* (as :class:`MelFrontend`
produces).  ``T`` input frames, ``T' = output_length(T, reduction_rate)`` output frames,
computed from each call's actual ``T`` (any length works; the reference fixes ``T``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import torch
from torch import Tensor, nn

from . import functional as Fn
from . import fused
from .errors import ParameterError

__all__ = [
    "FrontendOutput",
    "DiffResOutput",
    "FrontendModule",
    "ResidualBlock",
    "ScoreNetwork",
    "DiffRes",
    "DIFFRES_CHANNELS",
    "IMPORTANCE_MODES",
    "score_channel_plan",
]


@dataclass(frozen=True)
class FrontendOutput:
    """What every time-reduction front-end returns (DiffRes and the fixed baselines).

    Attributes:
        features: ``[B, C, T', F]`` what the classifier sees; ``C = 3`` for DiffRes
            (average, max, resolution encoding), 1 for the baselines.
        avg: ``[B, T', F]`` merged log-mel (DiffRes: power-domain weighted mean, then ln;
            baselines: their single output channel).
        max: ``[B, T', F]`` DiffRes: ln of ``T/T'`` times the weighted max; baselines: same
            as ``avg``.
        resolution_encoding: ``[B, T', F]`` merged sinusoidal code of the input frame index.
        importance: ``[B, T]`` share of an output bin each input frame occupies, each in
            ``[0, 1]``, summing to ``T'``.
        bin_edges: ``[B, T' + 1]`` input-frame positions where each output bin starts and
            ends (multiply by the hop for seconds).
        guide_loss: 0-dim; mean importance of empty frames when above ``(1 - rate) / 2``.
        activeness: 0-dim; std of importance over non-empty frames (diagnostic).
        empty: ``[B, T]`` bool, the frames the guide loss counts as carrying nothing
            (all False for the baselines).
    """

    features: Tensor
    avg: Tensor
    max: Tensor
    resolution_encoding: Tensor
    importance: Tensor
    bin_edges: Tensor
    guide_loss: Tensor
    activeness: Tensor
    empty: Tensor

    @property
    def out_len(self) -> int:
        """``T'``, the number of output frames."""
        return self.features.shape[2]

    @property
    def frames_merged(self) -> Tensor:
        """``[B, T']`` width of each output bin in input frames."""
        return self.bin_edges[:, 1:] - self.bin_edges[:, :-1]


#: The name fixed by the interface contract; one type serves every front-end.
DiffResOutput = FrontendOutput


class ResidualBlock(nn.Module):
    """``conv(k) -> ReLU -> BN -> conv(k) -> ReLU -> BN``, residual around the second conv.

    Input and output ``[B, C, T]`` (channels first, as ``nn.Conv1d`` wants).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, padding=pad)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, padding=pad)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        # In-place ReLU: a convolution's backward needs its input, not its output, so the
        # conv output can be overwritten; this saves one activation per conv.
        h = self.bn1(torch.relu_(self.conv1(x)))
        return self.bn2(torch.relu_(self.conv2(h))) + h


def score_channel_plan(n_mels: int) -> list[int]:
    """Output channels of the five residual blocks of the score network.

    Matches the reference for 128 (64, 32, 16, 8, 1), 64 (64, 32, 16, 16, 1) and
    40 (40, 20, 10, 10, 1); other ``n_mels`` follow the same halving rule.
    """
    if n_mels < 1:
        raise ParameterError(f"n_mels must be >= 1, got {n_mels}.")
    if n_mels > 64:
        plan = [n_mels // 2, n_mels // 4, n_mels // 8, n_mels // 16, 1]
    else:
        plan = [n_mels, n_mels // 2, n_mels // 4, n_mels // 4, 1]
    return [max(1, c) for c in plan]


class ScoreNetwork(nn.Module):
    """1-D residual CNN over time with the mel bins as channels: ``[B, T, F] -> [B, T]`` logits."""

    def __init__(self, n_mels: int, kernel_size: int = 5) -> None:
        super().__init__()
        channels = [n_mels, *score_channel_plan(n_mels)]
        self.blocks = nn.Sequential(*[ResidualBlock(c_in, c_out, kernel_size) for c_in, c_out in pairwise(channels)])

    def forward(self, log_mel: Tensor) -> Tensor:
        # One explicit channels-first copy: the first convolution saves it for its backward,
        # which would otherwise make a second copy of the transposed view.
        return self.blocks(log_mel.transpose(1, 2).contiguous()).squeeze(1)


def _check_log_mel(log_mel: Tensor, n_mels: int) -> None:
    if log_mel.dim() != 3:
        raise ParameterError(f"expected a log-mel tensor [batch, time, freq], got shape {tuple(log_mel.shape)}.")
    if log_mel.shape[-1] != n_mels:
        raise ParameterError(f"this front-end was built for {n_mels} mel bins, got {log_mel.shape[-1]}.")
    if log_mel.shape[1] < 1:
        raise ParameterError("the spectrogram has no frames.")
    if not log_mel.is_floating_point():
        raise ParameterError(f"log-mel must be floating point, got {log_mel.dtype}.")


class FrontendModule(nn.Module):
    """What every front-end module holds: ``n_mels`` and its default ``reduction_rate``
    (checked), shown in its ``repr``.  :class:`DiffRes` and
    :class:`~diffres.frontends.FixedFrontend` derive from it."""

    def __init__(self, n_mels: int, reduction_rate: float) -> None:
        super().__init__()
        self.n_mels = int(n_mels)
        self.reduction_rate = Fn.check_rate(reduction_rate)

    def extra_repr(self) -> str:
        return f"n_mels={self.n_mels}, reduction_rate={self.reduction_rate}"


#: The merged channels DiffRes stacks for the classifier, in order.
DIFFRES_CHANNELS = ("avg", "max", "encoding")
#: Where DiffRes's importance comes from: its score network, or an even share (ablation).
IMPORTANCE_MODES = ("learned", "uniform")


class DiffRes(FrontendModule):
    """Differentiable temporal resolution (docs/METHOD.md): score frames, merge unimportant ones.

    Args:
        n_mels: mel bins ``F`` (any >= 1).
        reduction_rate: fraction of frames removed, in ``[0, 1)``.
        channels: which merged channels the classifier gets, a subset of
            :data:`DIFFRES_CHANNELS` in that order (the paper: all three).
        importance: ``"learned"`` (the paper) or ``"uniform"``: every frame the same share,
            the score network unused -- an ablation that keeps DiffRes's power-domain
            merges and channels but learns nothing about where to put resolution.

    Input ``[B, T, F]`` natural-log mel power; output :class:`FrontendOutput` with
    ``features`` ``[B, len(channels), T', F]``.  Eval mode is deterministic; use it to
    visualise one clip (the score network's BatchNorm otherwise depends on the batch).
    """

    name = "diffres"
    learnable = True
    #: Merge with the aligned merge (:func:`merge` ``aligned=True``) instead of the paper's.
    #: An experiment's switch (``benchmarks/aligned_merge.py``): model cards do not record it
    #: yet, so a checkpoint always loads with the paper's merge.
    aligned_merge: bool = False

    def __init__(
        self,
        n_mels: int,
        reduction_rate: float,
        *,
        channels: tuple[str, ...] = DIFFRES_CHANNELS,
        importance: str = "learned",
    ) -> None:
        super().__init__(n_mels, reduction_rate)
        channels = tuple(channels)
        if (
            not channels
            or any(c not in DIFFRES_CHANNELS for c in channels)
            or list(channels) != sorted(channels, key=DIFFRES_CHANNELS.index)
            or len(set(channels)) != len(channels)
        ):
            raise ParameterError(
                f"channels must be a non-empty subset of {DIFFRES_CHANNELS} in that order, got {channels!r}."
            )
        if importance not in IMPORTANCE_MODES:
            raise ParameterError(f"importance must be one of {IMPORTANCE_MODES}, got {importance!r}.")
        self.channels = channels
        self.importance = importance
        self._channel_index = [DIFFRES_CHANNELS.index(c) for c in channels]
        self.n_channels = len(channels)
        self.score_network = ScoreNetwork(self.n_mels)

    def logits(self, log_mel: Tensor) -> Tensor:
        """The score network's output ``g(X)`` before the sigmoid, ``[B, T]`` (0 everywhere for
        ``importance="uniform"``)."""
        _check_log_mel(log_mel, self.n_mels)
        if self.importance == "uniform":
            return log_mel.new_zeros(log_mel.shape[:2])
        return self.score_network(log_mel)

    def scores(self, log_mel: Tensor) -> Tensor:
        """Raw importance ``sigmoid(g(X))``, ``[B, T]`` in (0, 1) (0.5 everywhere for
        ``importance="uniform"``)."""
        return torch.sigmoid(self.logits(log_mel))

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> FrontendOutput:
        """Merge ``log_mel`` ``[B, T, F]``; ``reduction_rate`` overrides the module's rate."""
        return self.merge_scores(log_mel, self.scores(log_mel), reduction_rate=reduction_rate)

    def merge_scores(
        self, log_mel: Tensor, raw_scores: Tensor, *, reduction_rate: float | None = None
    ) -> FrontendOutput:
        """Merge ``log_mel`` ``[B, T, F]`` with raw scores ``[B, T]`` in (0, 1) computed before.

        The score network does not depend on the rate, so a caller that shows one clip at
        many rates (the app's rate slider) scores it once with :meth:`scores` and merges it
        here per rate; ``forward`` is ``merge_scores(x, scores(x))``.  Normalises the scores
        to the rate's ``T'`` (:func:`~diffres.functional.normalize_importance`) and merges
        (:func:`merge`).  Differentiable in both inputs.

        Example:
            >>> module = DiffRes(n_mels=8, reduction_rate=0.5).eval()
            >>> x = torch.randn(1, 10, 8)
            >>> raw = module.scores(x)
            >>> module.merge_scores(x, raw, reduction_rate=0.75).features.shape
            torch.Size([1, 3, 2, 8])
        """
        rate = self.reduction_rate if reduction_rate is None else Fn.check_rate(reduction_rate)
        _check_log_mel(log_mel, self.n_mels)
        if raw_scores.shape != log_mel.shape[:2]:
            raise ParameterError(
                f"raw_scores {tuple(raw_scores.shape)} must match log_mel's [batch, time] {tuple(log_mel.shape[:2])}."
            )
        importance = Fn.normalize_importance(raw_scores, Fn.output_length(log_mel.shape[1], rate))
        out = merge(log_mel, importance, rate, aligned=self.aligned_merge)
        if len(self._channel_index) < len(DIFFRES_CHANNELS):
            out = replace(out, features=out.features[:, self._channel_index])
        return out


def merge(log_mel: Tensor, importance: Tensor, reduction_rate: float, *, aligned: bool = False) -> FrontendOutput:
    """DiffRes aggregation of ``log_mel`` ``[B, T, F]`` given normalised ``importance`` ``[B, T]``.

    Average and max merge in the power domain then take ``ln(. + 1e-12)``; the max is scaled
    by ``T / T'``; the resolution encoding is the overlap-weighted mean of the sinusoidal
    code of the input frame index.  On CPU the fused kernel (:mod:`diffres.fused`) computes
    all three in one pass when it is built; otherwise the :mod:`diffres.functional` merges.

    ``aligned=True`` uses the aligned merge instead (not the paper's; RESULTS 8.3): each frame
    whole in the bin holding its centre (:func:`~diffres.functional.warp_aligned`), the max a
    plain max, and ``bin_edges`` at the frame boundaries where the bins change.
    """
    batch, n_frames, n_mels = log_mel.shape
    out_len = Fn.output_length(n_frames, reduction_rate)
    code = Fn.position_encoding(n_frames, n_mels, device=log_mel.device, dtype=log_mel.dtype)
    if aligned:
        bins = Fn.aligned_bins(importance, out_len)
        power = torch.exp(log_mel)
        avg = torch.log(Fn.warp_aligned(power, importance, out_len, bins=bins) + 1e-12)
        mx = torch.log(Fn.warp_aligned_max(power, importance, out_len, bins=bins) + 1e-12)
        encoding = Fn.warp_aligned(code.expand(batch, -1, -1), importance, out_len, bins=bins)
        targets = torch.arange(out_len + 1, device=bins.device).expand(batch, -1).contiguous()
        edges = torch.searchsorted(bins, targets).to(importance.dtype)  # first frame of each bin; T at the end
        return _output(
            torch.stack([avg, mx, encoding], dim=1), power.mean(dim=-1).detach(), importance, edges, reduction_rate
        )
    pieces = Fn.warp_pieces(importance, out_len)
    if fused.usable_for(log_mel):
        features, energy = fused.merge(log_mel, pieces, code, out_len)
    else:
        power = torch.exp(log_mel)
        avg = torch.log(Fn.warp(power, importance, out_len, pieces=pieces) + 1e-12)
        encoding = Fn.warp(code.expand(batch, -1, -1), importance, out_len, pieces=pieces)
        peak = Fn.warp_max(power, importance, out_len, pieces=pieces)
        mx = torch.log(peak * (n_frames / out_len) + 1e-12)
        features = torch.stack([avg, mx, encoding], dim=1)
        energy = power.mean(dim=-1).detach()
    return _output(features, energy, importance, Fn.bin_edges(importance.detach(), out_len), reduction_rate)


def _output(
    features: Tensor, energy: Tensor, importance: Tensor, edges: Tensor, reduction_rate: float
) -> FrontendOutput:
    """The :class:`FrontendOutput` of a merge: ``features`` ``[B, 3, T', F]`` (average, max,
    encoding), frame ``energy`` ``[B, T]``, ``importance`` and bin ``edges`` ``[B, T' + 1]``."""
    avg, mx, encoding = features.unbind(1)
    empty = Fn.empty_frames(energy)
    return FrontendOutput(
        features=features,
        avg=avg,
        max=mx,
        resolution_encoding=encoding,
        importance=importance,
        bin_edges=edges,
        guide_loss=Fn.guide_loss(importance, empty, reduction_rate),
        activeness=Fn.activeness(importance.detach(), empty),
        empty=empty,
    )
