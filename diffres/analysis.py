"""Where a front-end spends its output frames: measures on clips with known event positions.

Shapes: importance ``[B, T]``, bin edges ``[B, T' + 1]`` (input-frame positions, as
:attr:`~diffres.core.FrontendOutput.bin_edges`), event masks ``[B, T]`` bool.  Times are
seconds, hops milliseconds; nothing here is differentiable.

- :func:`event_mask`: which input frames overlap known event spans.
- :func:`concentration`: importance mass inside events over their share of frames
  (1 = uniform pooling; the ceiling is ``1 / (1 - rate)`` when the events fit in ``T'``).
- :func:`effective_hop_ms`: how much input time each output frame covers.
- :func:`event_hops_ms`: the finest and the median effective hop over the events.
- :func:`onsets_separated`: whether consecutive onsets land in output frames with at least
  one frame between them, as full resolution keeps them (a gap "survives the merge").
- :func:`hop_spread`: how uneven the resolution of one clip is; when the finest and the
  coarsest merged frames are within :data:`UNIFORM_SPREAD` of each other, DiffRes acts like
  uniform pooling on that clip.

Example:
    >>> import torch
    >>> mask = event_mask([[(0.10, 0.15)]], n_frames=30, hop_s=0.01)
    >>> imp = torch.full((1, 30), 0.25)
    >>> float(concentration(imp, mask)[0])
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .errors import ParameterError

__all__ = [
    "event_mask",
    "concentration",
    "effective_hop_ms",
    "event_hops_ms",
    "onsets_separated",
    "frame_of",
    "hop_spread",
    "HopSpread",
    "UNIFORM_SPREAD",
]

#: A clip whose 90th-percentile effective hop is less than this multiple of its
#: 10th-percentile one is merged almost evenly: DiffRes acts like uniform pooling there.
UNIFORM_SPREAD = 1.5

Spans = Sequence[Sequence[float]]


def frame_of(time_s: float | np.ndarray, hop_s: float) -> np.ndarray:
    """Index of the input frame whose centre is nearest ``time_s`` (centred framing)."""
    return np.rint(np.asarray(time_s, dtype=np.float64) / hop_s).astype(np.int64)


def event_mask(spans_s: Sequence[Spans], n_frames: int, hop_s: float) -> Tensor:
    """``[B, T]`` bool: frames whose centre lies inside an event span of their clip.

    Args:
        spans_s: per clip, a list of ``(start, end)`` in seconds.
        n_frames: ``T``.
        hop_s: hop in seconds (frame ``i`` is centred at ``i * hop_s``).
    """
    if hop_s <= 0 or n_frames < 1:
        raise ParameterError(f"need hop_s > 0 and n_frames >= 1, got {hop_s!r}, {n_frames!r}.")
    centres = np.arange(n_frames) * hop_s
    mask = np.zeros((len(spans_s), n_frames), dtype=bool)
    for i, spans in enumerate(spans_s):
        for start, end in spans:
            mask[i] |= (centres >= float(start) - 0.5 * hop_s) & (centres <= float(end) + 0.5 * hop_s)
    return torch.from_numpy(mask)


def concentration(importance: Tensor, mask: Tensor) -> Tensor:
    """``[B]``: (importance mass inside events / total mass) / (event frames / all frames).

    1.0 means uniform pooling; a clip without event frames gives NaN.
    """
    if importance.shape != mask.shape:
        raise ParameterError(f"importance {tuple(importance.shape)} and mask {tuple(mask.shape)} must match.")
    imp = importance.detach().double()
    m = mask.to(imp.dtype)
    share = m.mean(dim=1)
    mass = (imp * m).sum(dim=1) / imp.sum(dim=1).clamp(min=1e-12)
    return torch.where(share > 0, mass / share.clamp(min=1e-12), torch.full_like(share, float("nan")))


def effective_hop_ms(bin_edges: Tensor, hop_ms: float) -> Tensor:
    """``[B, T']``: input time each output frame covers, in ms (its width times the hop)."""
    return (bin_edges[:, 1:] - bin_edges[:, :-1]).double() * float(hop_ms)


def _bins_of(bin_edges: Tensor, positions: Tensor) -> Tensor:
    """Output bin holding each input-axis position ``[B, K]`` (positions in frames)."""
    inner = bin_edges[:, 1:-1].contiguous().double()
    return torch.searchsorted(inner, positions.double().contiguous(), right=True)


def event_hops_ms(bin_edges: Tensor, mask: Tensor, hop_ms: float) -> tuple[Tensor, Tensor]:
    """``([B], [B])``: the finest and the median effective hop (ms) of the output frames that
    cover event frames (NaN for a clip without events)."""
    hops = effective_hop_ms(bin_edges, hop_ms)
    n_frames = mask.shape[1]
    centres = torch.arange(n_frames, dtype=torch.float64).expand(mask.shape[0], -1) + 0.5
    bins = _bins_of(bin_edges, centres)  # [B, T] output bin of each input frame
    finest, median = [], []
    for b in range(mask.shape[0]):  # per clip: a handful of events, not a hot path
        covered = torch.unique(bins[b][mask[b]])
        if covered.numel() == 0:
            finest.append(float("nan"))
            median.append(float("nan"))
            continue
        h = hops[b, covered]
        finest.append(float(h.min()))
        median.append(float(h.median()))
    return torch.tensor(finest, dtype=torch.float64), torch.tensor(median, dtype=torch.float64)


def onsets_separated(
    bin_edges: Tensor, onsets_s: Sequence[Sequence[float]], hop_s: float, *, min_gap_s: float = 0.0
) -> list[list[bool]]:
    """For each clip, for each pair of consecutive onsets at least ``min_gap_s`` apart: are
    their output frames at least two apart, so that one output frame lies between them (the
    gap survives the merge) -- or, when full resolution itself puts them fewer than two frames
    apart, are they at least as far apart as there?

    Args:
        bin_edges: ``[B, T' + 1]``.
        onsets_s: per clip, onset times in seconds (ascending).
        hop_s: input hop in seconds.
    """
    out: list[list[bool]] = []
    for b, onsets in enumerate(onsets_s):
        onsets = sorted(float(t) for t in onsets)
        frames = torch.tensor(frame_of(np.asarray(onsets), hop_s), dtype=torch.float64).reshape(1, -1) + 0.5
        bins = _bins_of(bin_edges[b : b + 1], frames)[0]
        flags = []
        for k in range(len(onsets) - 1):
            if onsets[k + 1] - onsets[k] < min_gap_s:
                continue
            full_apart = int(frames[0, k + 1] - frames[0, k])
            flags.append(int(bins[k + 1] - bins[k]) >= min(2, full_apart))
        out.append(flags)
    return out


class HopSpread(NamedTuple):
    """Effective hops of one clip's merged frames, in ms: the 10th and 90th percentiles, and
    whether they are so close that the merge is nearly uniform."""

    fine_ms: float
    coarse_ms: float
    uniform: bool


def hop_spread(bin_edges: Tensor, hop_ms: float) -> HopSpread:
    """How uneven the resolution of one clip (``bin_edges`` ``[1, T' + 1]`` or ``[T' + 1]``) is.

    Example:
        >>> edges = torch.linspace(0, 100, 26)  # 25 equal merged frames of 4 input frames
        >>> hop_spread(edges, 10.0).uniform
        True
    """
    edges = bin_edges.reshape(-1, bin_edges.shape[-1])[0]
    hops = effective_hop_ms(edges.unsqueeze(0), hop_ms)[0]
    fine, coarse = (float(v) for v in torch.quantile(hops, torch.tensor([0.1, 0.9], dtype=hops.dtype)))
    return HopSpread(fine, coarse, coarse < UNIFORM_SPREAD * fine)
