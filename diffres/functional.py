"""Pure tensor maths of DiffRes (Liu et al., "Learning the Spectrogram Temporal Resolution
for Audio Classification", arXiv 2210.01719).

Shapes: ``[batch, time, freq]`` throughout; ``T`` input frames, ``T'`` (``out_len``)
output bins, ``C`` channels of whatever is merged.  Every function follows the device of
its input and is differentiable unless its docstring says otherwise.

The merge matrix of the paper, ``W[i, j] = |[c_{i-1}, c_i) ∩ [j, j+1)|`` with ``c`` the
cumulative normalised importance, has at most two non-zeros per input frame because no
frame's importance exceeds one output bin.  It is therefore never built: each frame is
split into a *first piece* (into bin ``floor(c_{i-1})``) and a *second piece* (into the
next bin, possibly of length zero), and the merges are two index-adds or index-amaxes,
``O(B * T * C)`` time and memory.  A dense ``[B, T, T']`` matrix exists only in tests.

The module is about 680 lines on purpose: it is the functional core (the method's maths in one
place, from normalisation to guide loss), and about a third of it is the two hand-written
autograd functions of the merge, which only make sense next to :func:`warp_pieces`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from .errors import ParameterError

__all__ = [
    "check_rate",
    "output_length",
    "normalize_importance",
    "normalization_stages",
    "NormalizationStages",
    "cumulative_importance",
    "warp_pieces",
    "warp",
    "warp_max",
    "aligned_bins",
    "warp_aligned",
    "warp_aligned_max",
    "bin_edges",
    "position_encoding",
    "frame_energy",
    "empty_frames",
    "guide_loss",
    "activeness",
    "EMPTY_ENERGY",
]

#: Mean linear energy (natural-log mel power domain) at or below which a frame counts as
#: carrying nothing; SpecAugment masks and digital silence sit far below it.
EMPTY_ENERGY = 1e-6

_SNAP = 1e-9  # absorbs float error in T * (1 - rate), e.g. 1000 * (1 - 0.9) = 99.999...

# PyTorch flags its sparse CSR tensors "beta" with a one-time UserWarning; the matrix built in
# ``_PieceSum`` is valid by construction.  The filter is installed once, here, and matches
# only that message: a ``warnings.catch_warnings()`` inside the forward pass would change the
# process-wide warning state on every call, from whichever thread trains (the app trains in
# Streamlit's script threads).
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


def check_rate(reduction_rate: float, name: str = "reduction_rate") -> float:
    """The one check of a reduction rate: a real number in ``[0, 1)``, returned as float.

    Args:
        reduction_rate: fraction of frames removed (0.75 keeps a quarter).
        name: what to call it in the error message.

    Returns:
        ``float(reduction_rate)``.

    Raises:
        ParameterError: not a number, NaN, or outside ``[0, 1)``.

    Example:
        >>> check_rate(0.75)
        0.75
        >>> check_rate(1.0)
        Traceback (most recent call last):
        ...
        diffres.errors.ParameterError: reduction_rate must be in [0, 1) (the fraction of frames removed), got 1.0.
    """
    if isinstance(reduction_rate, bool):
        raise ParameterError(f"{name} must be a number in [0, 1), got {reduction_rate!r}.")
    try:
        rate = float(reduction_rate)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number in [0, 1), got {reduction_rate!r}.") from None
    if not (0.0 <= rate < 1.0):  # also false for NaN
        raise ParameterError(f"{name} must be in [0, 1) (the fraction of frames removed), got {reduction_rate!r}.")
    return rate


def output_length(n_frames: int, reduction_rate: float) -> int:
    """Number of output bins ``T' = max(1, floor(T * (1 - reduction_rate)))``.

    Args:
        n_frames: input frames ``T`` (int >= 1).
        reduction_rate: fraction of frames removed, in ``[0, 1)``.

    Returns:
        ``T'`` in ``[1, T]``.  Unlike the reference's ``int(T * (1 - rate))``, float error
        is absorbed, so ``output_length(1000, 0.9) == 100`` (not 99).

    Example:
        >>> output_length(1000, 0.9), output_length(301, 0.75), output_length(3, 0.9)
        (100, 75, 1)
    """
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ParameterError(f"n_frames must be a whole number >= 1, got {n_frames!r}.")
    rate = check_rate(reduction_rate)
    return max(1, min(int(n_frames), math.floor(int(n_frames) * (1.0 - rate) + _SNAP)))


def _check_scores(raw: Tensor, name: str = "raw") -> None:
    if raw.dim() != 2:
        raise ParameterError(f"{name} must have shape [batch, time], got {tuple(raw.shape)}.")
    if raw.shape[1] < 1:
        raise ParameterError(f"{name} must have at least one frame, got shape {tuple(raw.shape)}.")


def normalize_importance(raw: Tensor, out_len: int) -> Tensor:
    """Rescale raw frame scores so that every frame's share lies in ``[0, 1]`` and the shares
    of an example sum to ``out_len`` (docs/METHOD.md section 2).

    Steps per example: scale to sum ``T'``; if any share reaches 1, divide by the largest;
    give the missing mass back to frames strictly inside ``(1e-4, 1 - 1e-4)`` in proportion
    to their headroom (as the reference does); if that headroom cannot absorb it (saturated
    scores, where the reference leaves trailing output bins empty), give the rest to every
    frame below 1 in proportion to its headroom.  Vectorised over the batch.
    :func:`normalization_stages` returns the intermediate values of the same computation.

    Args:
        raw: ``[B, T]`` scores in ``(0, 1)`` (a sigmoid's output); zeros are tolerated.
        out_len: ``T'`` in ``[1, T]``.

    Returns:
        ``[B, T]`` importance, each in ``[0, 1]``, each row summing to ``T'`` (to float
        rounding).  Differentiable.  With ``out_len == T`` (rate 0) every share is exactly 1
        (then it does not depend on ``raw``: its gradient is 0).

    Example:
        >>> normalize_importance(torch.tensor([[0.9, 0.1, 0.1, 0.1]]), 2)  # the loud frame gets a whole bin
        tensor([[1.0000, 0.3333, 0.3333, 0.3333]])
    """
    return normalization_stages(raw, out_len).importance


@dataclass(frozen=True)
class NormalizationStages:
    """The steps of :func:`normalize_importance`, each ``[B, T]`` unless said (for display).

    Attributes:
        scaled: the raw scores scaled to sum to ``T'`` (step 1); may exceed 1.
        peak: ``[B, 1]`` the largest scaled share; when it is at least 1 the shares are divided by it.
        capped: after that division (step 2): none above 1, but the sum may have dropped below ``T'``.
        deficit: ``[B, 1]`` ``T' - sum(capped)``, the mass given back in step 3.
        importance: the result (step 3): each in ``[0, 1]``, summing to ``T'``.
    """

    scaled: Tensor
    peak: Tensor
    capped: Tensor
    deficit: Tensor
    importance: Tensor


def normalization_stages(raw: Tensor, out_len: int) -> NormalizationStages:
    """:func:`normalize_importance` with its intermediate values (docs/METHOD.md section 2).

    Args:
        raw: ``[B, T]`` scores in ``(0, 1)``.
        out_len: ``T'`` in ``[1, T]``.

    Returns:
        :class:`NormalizationStages`; ``.importance`` is exactly :func:`normalize_importance`.

    Example:
        >>> st = normalization_stages(torch.tensor([[0.9, 0.1, 0.1, 0.1]]), 2)
        >>> st.scaled, st.peak, st.capped  # 1.5 > 1, so every share is divided by 1.5
        (tensor([[1.5000, 0.1667, 0.1667, 0.1667]]), tensor([[1.5000]]), tensor([[1.0000, 0.1111, 0.1111, 0.1111]]))
        >>> st.deficit, st.importance  # the missing 2/3 goes back in proportion to each frame's headroom
        (tensor([[0.6667]]), tensor([[1.0000, 0.3333, 0.3333, 0.3333]]))
    """
    _check_scores(raw)
    n_frames = raw.shape[1]
    if not (1 <= int(out_len) <= n_frames):
        raise ParameterError(f"out_len must be in [1, {n_frames}] for {n_frames} frames, got {out_len!r}.")
    target = float(out_len)
    work_dtype = torch.promote_types(raw.dtype, torch.float32)
    r = raw.to(work_dtype).clamp(min=0.0)
    # An all-zero row carries no preference: treat it as uniform.
    total = r.sum(dim=1, keepdim=True)
    r = torch.where(total > 0, r, torch.ones_like(r))
    scaled = r * (target / r.sum(dim=1, keepdim=True))
    peak = scaled.amax(dim=1, keepdim=True)
    capped = torch.where(peak >= 1.0, scaled / peak, scaled)
    deficit = (target - capped.sum(dim=1, keepdim=True)).clamp(min=0.0)
    if int(out_len) == n_frames:  # rate 0: every frame keeps its own bin, exactly (no rounding drift)
        s = torch.ones_like(raw)
    else:
        s = _give_back(capped, target).clamp(0.0, 1.0)
    cast = raw.dtype
    return NormalizationStages(scaled.to(cast), peak.to(cast), capped.to(cast), deficit.to(cast), s.to(cast))


def _give_back(s: Tensor, target: float) -> Tensor:
    """Step 3 of the normalisation: return the missing mass ``target - sum(s)`` to the frames
    in proportion to their headroom (the reference's frames first, then every frame below 1)."""
    # Reference step: headroom of frames strictly inside (1e-4, 1 - 1e-4).
    inside = ((s > 1e-4) & (s < 1.0 - 1e-4)).to(s.dtype)
    headroom = ((1.0 - s) * inside).sum(dim=1, keepdim=True)
    deficit = (target - s.sum(dim=1, keepdim=True)).clamp(min=0.0)
    share = torch.where(headroom > 0, deficit / headroom.clamp(min=1e-12), torch.zeros_like(deficit))
    s = s + share.clamp(max=1.0) * (1.0 - s) * inside
    # Fallback for saturated scores: every frame below 1 takes part.
    deficit = (target - s.sum(dim=1, keepdim=True)).clamp(min=0.0)
    headroom = (1.0 - s).sum(dim=1, keepdim=True)
    share = torch.where(headroom > 0, deficit / headroom.clamp(min=1e-12), torch.zeros_like(deficit))
    return s + share.clamp(max=1.0) * (1.0 - s)


@dataclass(frozen=True)
class WarpPieces:
    """Each input frame split at the integer boundary of the warped axis.

    Fields are ``[B, T]``: ``first_bin``/``second_bin`` (int64, ``second_bin`` is
    ``first_bin + 1`` or equal to it when the frame lies inside one bin) and the overlap
    lengths ``first_weight``/``second_weight`` (``second_weight`` is 0 when the frame does
    not cross a boundary).  ``first_weight + second_weight`` equals the frame's importance.
    """

    first_bin: Tensor
    second_bin: Tensor
    first_weight: Tensor
    second_weight: Tensor


def _check_warp_args(values: Tensor, importance: Tensor, out_len: int) -> None:
    if values.dim() != 3:
        raise ParameterError(f"values must have shape [batch, time, channels], got {tuple(values.shape)}.")
    _check_scores(importance, "importance")
    if importance.shape != values.shape[:2]:
        raise ParameterError(
            f"importance {tuple(importance.shape)} must match values' [batch, time] {tuple(values.shape[:2])}."
        )
    if not (1 <= int(out_len) <= values.shape[1]):
        raise ParameterError(f"out_len must be in [1, {values.shape[1]}], got {out_len!r}.")


def cumulative_importance(importance: Tensor, out_len: int) -> Tensor:
    """Where each frame starts and ends on the warped axis: ``c_0 = 0, c_i = s_1 + ... + s_i``.

    Runs in float64 and is rescaled to end exactly at ``out_len`` (float rounding would
    otherwise leave the last output bin a hair short).  Output bin ``j`` is ``[j, j + 1)`` on
    this axis, so the crossings of the integers are the bin edges (:func:`bin_edges`).

    Args:
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.

    Returns:
        ``[B, T + 1]`` float64, non-decreasing, from 0 to ``out_len``.  Differentiable.

    Example:
        >>> cumulative_importance(torch.tensor([[1.0, 0.5, 0.5]]), 2)
        tensor([[0.0000, 1.0000, 1.5000, 2.0000]], dtype=torch.float64)
    """
    _check_scores(importance, "importance")
    c_end = torch.cumsum(importance.to(torch.float64), dim=1)
    c_end = c_end * (float(out_len) / c_end[:, -1:].clamp(min=1e-12))
    return torch.cat([torch.zeros_like(c_end[:, :1]), c_end], dim=1)


def warp_pieces(importance: Tensor, out_len: int) -> WarpPieces:
    """Split every frame's interval ``[c_{i-1}, c_i)`` at the output-bin boundary it crosses.

    The cumulative sum runs in float64 and is rescaled to end exactly at ``out_len`` so that
    every output bin is covered.  Differentiable in the weights.

    Args:
        importance: ``[B, T]`` normalised importance (each in [0, 1], rows summing to T').
        out_len: ``T'``.

    Returns:
        :class:`WarpPieces`, weights in ``importance``'s dtype.
    """
    _check_scores(importance, "importance")
    cumulative = cumulative_importance(importance, out_len)
    c_start, c_end = cumulative[:, :-1], cumulative[:, 1:]
    last = out_len - 1
    with torch.no_grad():
        first_bin = torch.floor(c_start).clamp(0, last).to(torch.int64)
        second_bin = torch.minimum((torch.ceil(c_end) - 1).clamp(0, last).to(torch.int64), first_bin + 1)
        second_bin = torch.maximum(second_bin, first_bin)
    crosses = second_bin > first_bin
    boundary = second_bin.to(torch.float64)
    first_weight = torch.where(crosses, boundary - c_start, c_end - c_start).clamp(min=0.0)
    second_weight = torch.where(crosses, c_end - boundary, torch.zeros_like(c_end)).clamp(min=0.0)
    dtype = importance.dtype
    return WarpPieces(first_bin, second_bin, first_weight.to(dtype), second_weight.to(dtype))


def _flat_index(bins: Tensor, out_len: int) -> Tensor:
    offsets = torch.arange(bins.shape[0], device=bins.device).unsqueeze(1) * out_len
    return (bins + offsets).reshape(-1)


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product ``[N, C], [N, C] -> [N]``."""
    return torch.einsum("nc,nc->n", a, b)


class _PieceSum(torch.autograd.Function):
    """``out[k0_n] += w0_n * v_n`` for every frame, ``out[k1_n] += w1_n * v_n`` for the frames
    that cross a boundary (``cross``, at most one per output bin).

    The pieces, taken in time order, form a sparse ``[n_out, n_rows]`` CSR matrix with
    non-decreasing rows, so the forward pass is one sparse-dense product.  With
    ``shared=True`` every example's frames index the same ``v`` (``[T, C]``, e.g. the
    position code), which is never copied per example.  Hand-written backward: the
    gradient is gathered once and dotted once with ``v``.
    """

    @staticmethod
    def forward(ctx, v, w0, w1, k0, k1, cross, n_out, shared):
        n = w0.shape[0]
        device = w0.device
        frame = torch.arange(n, device=device)
        crossing = torch.zeros(n, dtype=torch.long, device=device).index_fill_(0, cross, 1)
        first = frame + torch.cumsum(crossing, 0) - crossing  # slot of each frame's first piece
        second = first.index_select(0, cross) + 1
        nnz = n + cross.numel()
        col_of_frame = frame % v.shape[0] if shared else frame
        values = w0.new_empty(nnz).index_copy_(0, first, w0).index_copy_(0, second, w1.index_select(0, cross))
        cols = frame.new_empty(nnz).index_copy_(0, first, col_of_frame)
        cols.index_copy_(0, second, col_of_frame.index_select(0, cross))
        rows = frame.new_empty(nnz).index_copy_(0, first, k0).index_copy_(0, second, k1.index_select(0, cross))
        crow = torch.zeros(n_out + 1, dtype=torch.long, device=device)
        crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_out), 0)
        matrix = torch.sparse_csr_tensor(
            crow, cols, values.to(v.dtype), size=(n_out, v.shape[0]), check_invariants=False
        )
        # In v's dtype even under autocast, which would cast this product to bf16/fp16: the
        # sparse kernels lack them on CPU, and backward must meet v's dtype.
        with torch.autocast(device_type=v.device.type, enabled=False):
            out = torch.sparse.mm(matrix, v)
        ctx.shared = shared
        ctx.save_for_backward(v, w0, w1, k0, k1, cross)
        return out

    @staticmethod
    def backward(ctx, g):
        v, w0, w1, k0, k1, cross = ctx.saved_tensors
        need_v, need_w0, need_w1 = ctx.needs_input_grad[:3]
        grad_v = grad_w0 = grad_w1 = None
        n_frames, channels = v.shape
        g0 = g.index_select(0, k0)
        gc = g.index_select(0, k1.index_select(0, cross))
        cross_rows = cross % n_frames if ctx.shared else cross
        vc = v.index_select(0, cross_rows)
        if need_w0:
            if ctx.shared:
                grad_w0 = torch.einsum("btc,tc->bt", g0.view(-1, n_frames, channels), v).reshape(-1)
            else:
                grad_w0 = _rowdot(g0, v)
        if need_w1:
            grad_w1 = torch.zeros_like(w1).index_copy_(0, cross, _rowdot(gc, vc))
        if need_v:
            grad_v = g0.mul_(w0.unsqueeze(1))
            grad_v.index_copy_(0, cross, grad_v.index_select(0, cross) + gc * w1.index_select(0, cross).unsqueeze(1))
            if ctx.shared:
                grad_v = grad_v.view(-1, n_frames, channels).sum(0)
        return grad_v, grad_w0, grad_w1, None, None, None, None, None


def _first_piece_misses(out: Tensor, src0: Tensor, k0: Tensor, kc: Tensor, win_c: Tensor, reached: Tensor) -> Tensor:
    """The first pieces that do not receive the max's gradient, ``[n, C]`` bool.

    A piece receives it when it attains its cell's maximum and is the earliest in time to do
    so: the crossing piece from the previous bin (``win_c``) before any first piece, then the
    first piece of the lowest frame (float32 products tie exactly now and then).  Ties are
    found per output bin by counting, and only the few bins that hold one are resolved.
    """
    attain0 = src0 == out.index_select(0, k0)
    per_bin = torch.zeros(out.shape[0], dtype=torch.int32, device=out.device)
    per_bin.index_add_(0, k0, attain0.view(torch.uint8).sum(1, dtype=torch.int32))
    per_bin.index_add_(0, kc, win_c.view(torch.uint8).sum(1, dtype=torch.int32))
    tied_bins = (per_bin > reached.view(torch.uint8).sum(1, dtype=torch.int32)).nonzero().squeeze(1)
    miss0 = ~attain0
    if tied_bins.numel() == 0:
        return miss0
    rows = torch.isin(k0, tied_bins).nonzero().squeeze(1)  # the first pieces in those bins
    bins = k0.index_select(0, rows)
    taken = torch.zeros(out.shape, dtype=torch.bool, device=out.device).index_copy_(0, kc, win_c)
    candidate = attain0.index_select(0, rows) & ~taken.index_select(0, bins)
    rank = torch.where(candidate, rows.unsqueeze(1), torch.iinfo(torch.long).max)  # earliest frame wins
    local = torch.searchsorted(tied_bins, bins).unsqueeze(1).expand_as(rank)
    first = torch.full(
        (tied_bins.numel(), out.shape[1]), torch.iinfo(torch.long).max, dtype=torch.long, device=out.device
    ).scatter_reduce_(0, local, rank, "amin", include_self=True)
    return miss0.index_copy_(0, rows, ~candidate | (rank != first.gather(0, local)))


class _PieceMax(torch.autograd.Function):
    """``out[j] = max over pieces (n, k) with k = j and w > 0 of w * v_n``; empty bins are 0.

    The gradient goes to one piece per output cell: the earliest in time among those that
    attain the maximum (the crossing piece from the previous bin, then first pieces in frame
    order), as the fused kernel chooses.  Giving every tied piece the full upstream gradient
    would make the gradient ``k`` times the derivative when ``k`` pieces tie.  Which pieces
    win is recorded in the forward pass as boolean masks, cheaper than recomputing it.
    """

    @staticmethod
    def forward(ctx, v, w0, w1, k0, k1, cross, n_out):
        src0 = v * w0.unsqueeze(1)
        idle = (w0 <= 0).nonzero().squeeze(1)  # frames with no first piece (zero importance)
        src0.index_fill_(0, idle, -math.inf)
        out = torch.full((n_out, v.shape[1]), -math.inf, dtype=v.dtype, device=v.device)
        out.scatter_reduce_(0, k0.unsqueeze(1).expand_as(src0), src0, "amax", include_self=True)
        kc = k1.index_select(0, cross)  # unique bins: one crossing frame per boundary at most
        src1 = v.index_select(0, cross) * w1.index_select(0, cross).unsqueeze(1)
        out.index_copy_(0, kc, torch.maximum(out.index_select(0, kc), src1))
        reached = torch.isfinite(out)
        out.masked_fill_(~reached, 0.0)
        win_c = src1 == out.index_select(0, kc)
        miss0 = _first_piece_misses(out, src0, k0, kc, win_c, reached)
        ctx.save_for_backward(v, w0, w1, k0, kc, cross, miss0, ~win_c)
        return out

    @staticmethod
    def backward(ctx, g):
        v, w0, w1, k0, kc, cross, miss0, missc = ctx.saved_tensors
        need_v, need_w0, need_w1 = ctx.needs_input_grad[:3]
        grad_v = grad_w0 = grad_w1 = None
        g0 = g.index_select(0, k0).masked_fill_(miss0, 0.0)
        gc = g.index_select(0, kc).masked_fill_(missc, 0.0)
        if need_w0:
            grad_w0 = _rowdot(g0, v)
        if need_w1:
            grad_w1 = torch.zeros_like(w1).index_copy_(0, cross, _rowdot(gc, v.index_select(0, cross)))
        if need_v:
            grad_v = g0.mul_(w0.unsqueeze(1))
            w1c = w1.index_select(0, cross).unsqueeze(1)
            grad_v.index_copy_(0, cross, grad_v.index_select(0, cross) + gc * w1c)
        return grad_v, grad_w0, grad_w1, None, None, None, None


def _apply_pieces(fn, values: Tensor, pieces: WarpPieces, out_len: int) -> Tensor:
    batch, n_frames, channels = values.shape
    dtype = torch.promote_types(values.dtype, pieces.first_weight.dtype)
    w0 = pieces.first_weight.to(dtype).reshape(-1)
    w1 = pieces.second_weight.to(dtype).reshape(-1)
    k0 = _flat_index(pieces.first_bin, out_len)
    k1 = _flat_index(pieces.second_bin, out_len)
    cross = (pieces.second_bin > pieces.first_bin).reshape(-1).nonzero().squeeze(1)
    if fn is _PieceSum:
        # One [T, C] table broadcast over the batch (an ``expand``) is merged without a copy.
        shared = batch > 1 and values.stride(0) == 0
        v = values[0].to(dtype).contiguous() if shared else values.to(dtype).reshape(batch * n_frames, channels)
        out = fn.apply(v, w0, w1, k0, k1, cross, batch * out_len, shared)
    else:
        v = values.to(dtype).reshape(batch * n_frames, channels)
        out = fn.apply(v, w0, w1, k0, k1, cross, batch * out_len)
    return out.view(batch, out_len, channels).to(values.dtype)


def warp(values: Tensor, importance: Tensor, out_len: int, *, pieces: WarpPieces | None = None) -> Tensor:
    """Merge frames by overlap: ``out[b, j] = sum_i W[b, i, j] * values[b, i]``.

    Args:
        values: ``[B, T, C]`` (e.g. linear mel power, or a position code).
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.
        pieces: precomputed :func:`warp_pieces` of ``importance`` (optional).

    Returns:
        ``[B, T', C]``.  A full output bin's weights sum to 1, so this is a weighted mean.
        Differentiable in ``values`` and ``importance``.

    Example:
        >>> imp = torch.tensor([[1.0, 0.5, 0.5]])  # the last two frames share the second bin
        >>> warp(torch.tensor([[[2.0], [4.0], [6.0]]]), imp, 2)[0, :, 0]
        tensor([2., 5.])
    """
    _check_warp_args(values, importance, out_len)
    p = pieces if pieces is not None else warp_pieces(importance, out_len)
    return _apply_pieces(_PieceSum, values, p, out_len)


def warp_max(values: Tensor, importance: Tensor, out_len: int, *, pieces: WarpPieces | None = None) -> Tensor:
    """Weighted max merge: ``out[b, j] = max_{i: W[b,i,j] > 0} W[b, i, j] * values[b, i]``.

    Unscaled (DiffRes multiplies by ``T / T'``).  An output bin that no frame reaches
    (impossible after :func:`normalize_importance`) is 0.

    Args:
        values: ``[B, T, C]``.
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.
        pieces: precomputed :func:`warp_pieces` (optional).

    Returns:
        ``[B, T', C]``.  Differentiable (gradient to the frames attaining the max).

    Example:
        >>> imp = torch.tensor([[1.0, 0.5, 0.5]])
        >>> warp_max(torch.tensor([[[2.0], [4.0], [6.0]]]), imp, 2)[0, :, 0]  # max of 0.5*4 and 0.5*6
        tensor([2., 3.])
    """
    _check_warp_args(values, importance, out_len)
    p = pieces if pieces is not None else warp_pieces(importance, out_len)
    return _apply_pieces(_PieceMax, values, p, out_len)


def aligned_bins(importance: Tensor, out_len: int) -> Tensor:
    """The output bin that holds each frame's centre on the warped axis, ``[B, T]`` int64.

    The aligned merge (:func:`warp_aligned`) puts every frame whole into this bin instead of
    splitting it at the bin boundary, so a frame never shares itself between two bins.
    Consecutive centres lie at most one bin apart, so every bin holds at least one frame.

    Args:
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.

    Returns:
        ``[B, T]`` in ``[0, T')``, non-decreasing along time.  Not differentiable.

    Example:
        >>> aligned_bins(torch.tensor([[0.5, 1.0, 1.0, 0.5]]), 3)  # centres 0.25, 1, 2, 2.75
        tensor([[0, 1, 2, 2]])
    """
    _check_scores(importance, "importance")
    with torch.no_grad():
        cumulative = cumulative_importance(importance, out_len)
        centre = 0.5 * (cumulative[:, :-1] + cumulative[:, 1:])
        return torch.floor(centre).clamp(0, out_len - 1).to(torch.int64)


def _aligned_index(importance: Tensor, out_len: int, bins: Tensor | None) -> Tensor:
    b = aligned_bins(importance, out_len) if bins is None else bins
    if b.shape != importance.shape:
        raise ParameterError(f"bins {tuple(b.shape)} must match importance {tuple(importance.shape)}.")
    return _flat_index(b, out_len)


def warp_aligned(values: Tensor, importance: Tensor, out_len: int, *, bins: Tensor | None = None) -> Tensor:
    """Aligned merge: each frame whole in the bin that holds its centre (:func:`aligned_bins`),
    the bin the importance-weighted mean of its frames.

    Unlike :func:`warp`, no frame is split across two bins, so a run of frames of importance
    1 comes out frame for frame whatever fractional position the run starts at (where
    :func:`warp` mixes every such frame with its neighbour; docs/METHOD.md section 3).  Not
    the paper's merge; RESULTS 8.3 measures it.

    Args:
        values: ``[B, T, C]`` (e.g. linear mel power, or a position code).
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.
        bins: precomputed :func:`aligned_bins` (optional).

    Returns:
        ``[B, T', C]``; a bin whose frames all have importance 0 is 0.  Differentiable in
        ``values`` and in ``importance`` (through the weights inside a bin; which bin a
        frame lands in is piecewise constant).

    Example:
        >>> imp = torch.tensor([[0.5, 1.0, 1.0, 0.5]])
        >>> warp_aligned(torch.tensor([[[2.0], [4.0], [6.0], [9.0]]]), imp, 3)[0, :, 0]
        tensor([2., 4., 7.])
    """
    _check_warp_args(values, importance, out_len)
    batch, _, channels = values.shape
    index = _aligned_index(importance, out_len, bins)
    dtype = torch.promote_types(values.dtype, importance.dtype)
    w = importance.to(dtype).reshape(-1, 1)
    v = values.to(dtype).reshape(-1, channels)
    total = v.new_zeros(batch * out_len, channels).index_add(0, index, w * v)
    mass = v.new_zeros(batch * out_len, 1).index_add(0, index, w)
    out = torch.where(mass > 0, total / mass.clamp(min=torch.finfo(dtype).tiny), torch.zeros_like(total))
    return out.view(batch, out_len, channels).to(values.dtype)


def warp_aligned_max(values: Tensor, importance: Tensor, out_len: int, *, bins: Tensor | None = None) -> Tensor:
    """Max merge of the aligned merge: ``out[b, j]`` is the plain maximum of the frames whose
    centre lies in bin ``j`` (:func:`aligned_bins`); no weights, no scaling.

    Args:
        values: ``[B, T, C]``.
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.
        bins: precomputed :func:`aligned_bins` (optional).

    Returns:
        ``[B, T', C]`` (a bin that ``bins`` leaves empty is 0).  Differentiable in ``values``
        (to the frames attaining the max).

    Example:
        >>> imp = torch.tensor([[0.5, 1.0, 1.0, 0.5]])
        >>> warp_aligned_max(torch.tensor([[[2.0], [4.0], [6.0], [9.0]]]), imp, 3)[0, :, 0]
        tensor([2., 4., 9.])
    """
    _check_warp_args(values, importance, out_len)
    batch, _, channels = values.shape
    index = _aligned_index(importance, out_len, bins)
    v = values.reshape(-1, channels)
    out = v.new_full((batch * out_len, channels), -math.inf)
    out = out.scatter_reduce(0, index.unsqueeze(1).expand(-1, channels), v, "amax", include_self=True)
    return out.masked_fill(torch.isneginf(out), 0.0).view(batch, out_len, channels)


def bin_edges(importance: Tensor, out_len: int) -> Tensor:
    """Where each output bin starts and ends on the input-frame axis.

    Frame ``i`` spans ``[i, i + 1)`` on the input axis and ``[c_{i-1}, c_i)`` on the warped
    axis; the edge of bin ``j`` is the input position that maps to ``j`` (linear inside a
    frame).  Multiply by the hop to get seconds.

    Args:
        importance: ``[B, T]`` normalised importance.
        out_len: ``T'``.

    Returns:
        ``[B, T' + 1]`` float positions in ``[0, T]``, non-decreasing, first 0 and last T.
        Not differentiable (display and bookkeeping only).

    Example:
        >>> bin_edges(torch.tensor([[1.0, 0.5, 0.5]]), 2)  # bin 0 is frame 0, bin 1 frames 1 and 2
        tensor([[0., 1., 3.]])
    """
    _check_scores(importance, "importance")
    with torch.no_grad():
        s = importance.to(torch.float64)
        batch, n_frames = s.shape
        cumulative = torch.cumsum(s, dim=1)
        scale = float(out_len) / cumulative[:, -1:].clamp(min=1e-12)
        c_end = cumulative * scale
        c_start = c_end - s * scale
        targets = torch.arange(out_len + 1, dtype=torch.float64, device=s.device).expand(batch, -1).contiguous()
        frame = torch.searchsorted(c_end.contiguous(), targets, right=True).clamp(max=n_frames - 1)
        start = torch.gather(c_start, 1, frame)
        width = torch.gather(c_end, 1, frame) - start
        frac = torch.where(width > 0, (targets - start) / width.clamp(min=1e-300), torch.zeros_like(start))
        edges = frame.to(torch.float64) + frac.clamp(0.0, 1.0)
        edges[:, 0] = 0.0
        edges[:, -1] = float(n_frames)
        edges = torch.cummax(edges, dim=1).values
        return edges.to(importance.dtype if importance.is_floating_point() else torch.float32)


@lru_cache(maxsize=16)
def _position_encoding_cpu(n_frames: int, n_channels: int) -> Tensor:
    position = torch.arange(n_frames, dtype=torch.float64).unsqueeze(1)
    pair = torch.arange(0, n_channels, 2, dtype=torch.float64)
    rate = torch.exp(-math.log(10000.0) * pair / n_channels)
    table = torch.zeros(n_frames, n_channels, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: n_channels // 2])
    return table.to(torch.float32)


def position_encoding(n_frames: int, n_channels: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Sinusoidal code of the input frame index (Vaswani et al.), base 10000.

    ``P[t, 2k] = sin(t / 10000^(2k/F))``, ``P[t, 2k+1] = cos(t / 10000^(2k/F))``; any
    ``n_channels`` (odd too).

    Returns:
        ``[T, F]`` tensor on ``device`` in ``dtype``.  Constant (no gradient).

    Example:
        >>> position_encoding(3, 2)  # sin and cos of the frame index
        tensor([[ 0.0000,  1.0000],
                [ 0.8415,  0.5403],
                [ 0.9093, -0.4161]])
    """
    if n_frames < 1 or n_channels < 1:
        raise ParameterError(f"position_encoding needs n_frames, n_channels >= 1, got {n_frames}, {n_channels}.")
    return _position_encoding_cpu(int(n_frames), int(n_channels)).to(device=device, dtype=dtype)


def frame_energy(log_mel: Tensor) -> Tensor:
    """Mean linear energy of each frame: ``mean_f exp(log_mel)``, ``[B, T, F] -> [B, T]``.

    Example:
        >>> frame_energy(torch.log(torch.tensor([[[1.0, 3.0], [1e-10, 1e-10]]])))
        tensor([[2.0000e+00, 1.0000e-10]])
    """
    return torch.exp(log_mel).mean(dim=-1)


def empty_frames(energy: Tensor, *, tolerance: float = EMPTY_ENERGY) -> Tensor:
    """Frames that carry nothing: mean linear energy within ``tolerance`` of the example's
    minimum *and* itself at most ``tolerance``.

    The reference compares with the whole batch's minimum and no absolute bound, so a loud
    clip's quietest frame counts as empty whenever it is the batch's quietest; per example
    and with the bound, a clip without silence or masks has no empty frame.

    Args:
        energy: ``[B, T]`` from :func:`frame_energy`.

    Returns:
        ``[B, T]`` bool.  Not differentiable.

    Example:
        >>> empty_frames(torch.tensor([[2.0, 1e-10, 5e-6, 1e-10]]))  # silence, not the quiet frame
        tensor([[False,  True, False,  True]])
    """
    floor = energy.amin(dim=1, keepdim=True)
    return (energy - floor <= tolerance) & (energy <= tolerance)


def guide_loss(importance: Tensor, empty: Tensor, reduction_rate: float, *, relative: bool = False) -> Tensor:
    """Mean importance of an example's empty frames, counted only when large; batch mean.

    Two forms (docs/METHOD.md sections 5 and 6):

    - ``relative=False`` (the published package): the mean importance of the empty
      frames, counted when above ``(1 - rate) / 2``;
    - ``relative=True`` (the authors' later revision): the same mean divided by
      ``1 - rate`` (in units of the average share ``T'/T``), counted when above 0.5.  At
      rate 0.75 it is 4x the first form, at 0.5 2x.

    Either way the counted terms are summed over the batch and divided by ``B``.

    Args:
        importance: ``[B, T]`` normalised importance.
        empty: ``[B, T]`` bool from :func:`empty_frames`.
        reduction_rate: the module's rate.
        relative: which form (above).

    Returns:
        0-dim tensor; 0 when no example has an empty frame.  Differentiable in importance.

    Example:
        >>> imp = torch.tensor([[0.5, 0.5, 0.0, 1.0]])
        >>> empty = torch.tensor([[True, False, False, False]])
        >>> float(guide_loss(imp, empty, 0.5)), float(guide_loss(imp, empty, 0.5, relative=True))
        (0.5, 1.0)
    """
    mask = empty.to(importance.dtype)
    count = mask.sum(dim=1)
    mean_empty = (importance * mask).sum(dim=1) / count.clamp(min=1.0)
    if relative:
        mean_empty = mean_empty / (1.0 - float(reduction_rate))
        threshold = 0.5
    else:
        threshold = 0.5 * (1.0 - float(reduction_rate))
    gate = (count > 0) & (mean_empty > threshold)
    return (mean_empty * gate.to(importance.dtype)).sum() / importance.shape[0]


def activeness(importance: Tensor, empty: Tensor) -> Tensor:
    """Standard deviation (unbiased) of importance over non-empty frames, batch mean.

    A diagnostic of how strongly the module tells frames apart.  Returns a 0-dim tensor
    with no gradient.

    Example:
        >>> activeness(torch.tensor([[0.2, 0.6, 1.0, 0.0]]), torch.tensor([[False, False, False, True]]))
        tensor(0.4000)
    """
    with torch.no_grad():
        keep = (~empty).to(importance.dtype)
        n = keep.sum(dim=1)
        mean = (importance * keep).sum(dim=1) / n.clamp(min=1.0)
        var = (((importance - mean.unsqueeze(1)) ** 2) * keep).sum(dim=1) / (n - 1.0).clamp(min=1.0)
        return var.sqrt().mean()
