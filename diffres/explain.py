"""DiffRes step by step on one clip: every intermediate value, for teaching views.

:func:`diffres_steps` runs the module once and keeps what each step of docs/METHOD.md
computes (score network, sigmoid, normalisation, cumulative sum, overlap weights, merges,
resolution encoding), taken from the functions the module itself uses
(:func:`~diffres.functional.normalization_stages`,
:func:`~diffres.functional.cumulative_importance`, :func:`~diffres.functional.warp_pieces`,
:func:`~diffres.functional.bin_edges`, :func:`diffres.core.merge`), so what a view shows is
what the classifier gets.  :func:`frame_weights` and :func:`frame_numbers` read off one
output frame: which input frames it covers, with which weights, and its merged values.

Arrays are NumPy (one clip, no batch axis): ``T`` input frames, ``T'`` output frames, ``F``
mel bands.  Nothing here is differentiable; train with :class:`diffres.DiffRes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import functional as Fn
from .core import DiffRes, merge
from .errors import ParameterError

__all__ = ["STEPS", "DiffResSteps", "FrameNumbers", "diffres_steps", "frame_weights", "frame_numbers", "merged_by_hand"]

#: The steps in order: ``(key, title, one line on what happens)``.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("scores", "Raw scores", "The score network g rates every input frame: one number per frame, any sign."),
    ("sigmoid", "Sigmoid", "sigmoid(g) squeezes each score into (0, 1)."),
    (
        "normalise",
        "Normalised importance",
        "Scaled to sum to T'; divided by the largest share if one reaches 1; the missing mass goes back to the "
        "frames in proportion to their headroom. Each share is now at most 1 and they sum to T'.",
    ),
    (
        "cumsum",
        "Cumulative sum",
        "Each frame occupies [c(i-1), c(i)) on a warped axis. Output frame j is [j, j+1): where the cumulative "
        "sum crosses the integers are the bin edges.",
    ),
    (
        "weights",
        "Overlap weights",
        "W[i, j] = the length of frame i's interval inside [j, j+1). A full output frame's weights sum to 1.",
    ),
    (
        "merge",
        "Average and max merges",
        "In the power domain: average = ln(sum W e^x), max = ln(T/T' max W e^x) over the frames it covers.",
    ),
    (
        "encoding",
        "Resolution encoding",
        "The same weights applied to a sinusoidal code of the input frame index: each output frame carries where "
        "it came from and how wide it was.",
    ),
)


@dataclass(frozen=True)
class DiffResSteps:
    """DiffRes on one clip, every step kept.

    Attributes:
        logits: ``[T]`` the score network's output ``g(X)`` (step 1).
        scores: ``[T]`` ``sigmoid(g(X))`` in (0, 1) (step 2).
        scaled: ``[T]`` scores scaled to sum to ``T'`` (may exceed 1).
        peak: the largest scaled share; the shares were divided by it when it was at least 1.
        capped: ``[T]`` after that division.
        deficit: ``T' - sum(capped)``, the mass given back in proportion to headroom.
        importance: ``[T]`` normalised importance, each in [0, 1], summing to ``T'`` (step 3).
        cumulative: ``[T + 1]`` ``c_0 = 0 ... c_T = T'``: frame ``i`` spans
            ``[cumulative[i], cumulative[i + 1])`` on the warped axis (step 4).
        bin_edges: ``[T' + 1]`` input-frame positions of the output frames' edges.
        first_bin, second_bin: ``[T]`` int, the output frame(s) each input frame falls in.
        first_weight, second_weight: ``[T]`` its overlap with them (step 5).
        avg, max, encoding: ``[T', F]`` the three channels the classifier gets (steps 6, 7).
        reduction_rate: the rate used.
    """

    logits: np.ndarray
    scores: np.ndarray
    scaled: np.ndarray
    peak: float
    capped: np.ndarray
    deficit: float
    importance: np.ndarray
    cumulative: np.ndarray
    bin_edges: np.ndarray
    first_bin: np.ndarray
    second_bin: np.ndarray
    first_weight: np.ndarray
    second_weight: np.ndarray
    avg: np.ndarray
    max: np.ndarray
    encoding: np.ndarray
    reduction_rate: float

    @property
    def n_frames(self) -> int:
        """``T``."""
        return int(self.importance.shape[0])

    @property
    def out_len(self) -> int:
        """``T'``."""
        return int(self.avg.shape[0])

    def output_frame_at(self, position: float) -> int:
        """The output frame whose span holds input-frame position ``position`` (frames, float)."""
        j = int(np.searchsorted(self.bin_edges, float(position), side="right")) - 1
        return int(min(max(j, 0), self.out_len - 1))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def diffres_steps(module: DiffRes, log_mel, reduction_rate: float) -> DiffResSteps:
    """Run ``module`` (eval mode is the caller's choice) on one clip and keep every step.

    Args:
        module: a :class:`diffres.DiffRes` (trained, untrained or ``importance="uniform"``).
        log_mel: ``[T, F]`` natural-log mel power (array or tensor), ``F == module.n_mels``.
        reduction_rate: in ``[0, 1)``.

    Returns:
        :class:`DiffResSteps`; its ``importance``, ``bin_edges``, ``avg``, ``max`` and
        ``encoding`` equal what ``module(log_mel[None], reduction_rate=...)`` returns.

    Example:
        >>> module = DiffRes(n_mels=8, reduction_rate=0.5).eval()
        >>> steps = diffres_steps(module, torch.randn(10, 8), 0.5)
        >>> steps.out_len, round(float(steps.importance.sum()), 4), float(steps.cumulative[-1])
        (5, 5.0, 5.0)
    """
    rate = Fn.check_rate(reduction_rate)
    x = torch.as_tensor(np.asarray(log_mel, dtype=np.float32)) if not torch.is_tensor(log_mel) else log_mel.float()
    if x.dim() != 2:
        raise ParameterError(f"log_mel must be [time, freq] (one clip), got shape {tuple(x.shape)}.")
    x = x.unsqueeze(0)
    out_len = Fn.output_length(x.shape[1], rate)
    with torch.no_grad():
        logits = module.logits(x)
        scores = torch.sigmoid(logits)
        stages = Fn.normalization_stages(scores, out_len)
        pieces = Fn.warp_pieces(stages.importance, out_len)
        out = merge(x, stages.importance, rate)
        cumulative = Fn.cumulative_importance(stages.importance, out_len)
    return DiffResSteps(
        logits=_np(logits[0]).astype(np.float64),
        scores=_np(scores[0]).astype(np.float64),
        scaled=_np(stages.scaled[0]).astype(np.float64),
        peak=float(stages.peak[0, 0]),
        capped=_np(stages.capped[0]).astype(np.float64),
        deficit=float(stages.deficit[0, 0]),
        importance=_np(stages.importance[0]).astype(np.float64),
        cumulative=_np(cumulative[0]),
        bin_edges=_np(out.bin_edges[0]).astype(np.float64),
        first_bin=_np(pieces.first_bin[0]),
        second_bin=_np(pieces.second_bin[0]),
        first_weight=_np(pieces.first_weight[0]).astype(np.float64),
        second_weight=_np(pieces.second_weight[0]).astype(np.float64),
        avg=_np(out.avg[0]),
        max=_np(out.max[0]),
        encoding=_np(out.resolution_encoding[0]),
        reduction_rate=rate,
    )


def frame_weights(steps: DiffResSteps, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlap weights of output frame ``j``: ``(input frames [k], weights [k])``.

    The input frames ``i`` with ``W[i, j] > 0``, ascending, and ``W[i, j]`` (column ``j``
    of the merge matrix of docs/METHOD.md section 3, read off the frames' two pieces).

    Example:
        >>> module = DiffRes(n_mels=4, reduction_rate=0.5, importance="uniform").eval()
        >>> steps = diffres_steps(module, torch.zeros(6, 4), 0.5)  # equal scores: two frames per bin
        >>> frame_weights(steps, 1)
        (array([2, 3]), array([0.5, 0.5]))
    """
    if not 0 <= int(j) < steps.out_len:
        raise ParameterError(f"output frame must be in [0, {steps.out_len - 1}], got {j!r}.")
    j = int(j)
    first = (steps.first_bin == j) & (steps.first_weight > 0)
    second = (steps.second_bin == j) & (steps.second_bin > steps.first_bin) & (steps.second_weight > 0)
    weights = np.where(first, steps.first_weight, 0.0) + np.where(second, steps.second_weight, 0.0)
    frames = np.flatnonzero(first | second)
    return frames, weights[frames]


@dataclass(frozen=True)
class FrameNumbers:
    """The numbers behind one output frame ``j`` (what the step view prints).

    Attributes:
        j: the output frame.
        start, end: its span in input frames (``bin_edges[j]``, ``bin_edges[j + 1]``).
        frames: ``[k]`` the input frames it covers; weights: ``[k]`` their ``W[i, j]``.
        logits, scores, importance: ``[k]`` of those frames at steps 1-3.
        c_start, c_end: ``[k]`` each frame's interval on the warped axis.
        band: the mel band shown (the loudest band of the merged frame).
        band_log_power: ``[k]`` the frames' natural-log power in that band.
        avg, max: the merged values in that band (natural log; ``max`` includes ``T/T'``).
        encoding: ``[2]`` the first two channels of the resolution encoding.
    """

    j: int
    start: float
    end: float
    frames: np.ndarray
    weights: np.ndarray
    logits: np.ndarray
    scores: np.ndarray
    importance: np.ndarray
    c_start: np.ndarray
    c_end: np.ndarray
    band: int
    band_log_power: np.ndarray
    avg: float
    max: float
    encoding: np.ndarray


def frame_numbers(steps: DiffResSteps, log_mel, j: int) -> FrameNumbers:
    """Everything the view prints about output frame ``j`` of ``steps`` (computed on ``log_mel`` ``[T, F]``).

    Example:
        >>> module = DiffRes(n_mels=4, reduction_rate=0.5, importance="uniform").eval()
        >>> x = torch.zeros(6, 4)
        >>> n = frame_numbers(diffres_steps(module, x, 0.5), x, 1)
        >>> n.frames, n.weights, n.start, n.end
        (array([2, 3]), array([0.5, 0.5]), 2.0, 4.0)
    """
    frames, weights = frame_weights(steps, j)
    lm = np.asarray(log_mel, dtype=np.float64)
    band = int(np.argmax(steps.avg[j]))
    return FrameNumbers(
        j=int(j),
        start=float(steps.bin_edges[j]),
        end=float(steps.bin_edges[j + 1]),
        frames=frames,
        weights=weights,
        logits=steps.logits[frames],
        scores=steps.scores[frames],
        importance=steps.importance[frames],
        c_start=steps.cumulative[frames],
        c_end=steps.cumulative[frames + 1],
        band=band,
        band_log_power=lm[frames, band],
        avg=float(steps.avg[j, band]),
        max=float(steps.max[j, band]),
        encoding=np.asarray(steps.encoding[j, :2], dtype=np.float64),
    )


def merged_by_hand(numbers: FrameNumbers, n_frames: int, out_len: int) -> tuple[float, float]:
    """The average and max of :class:`FrameNumbers` recomputed from its printed numbers
    (``ln(sum W e^x + 1e-12)`` and ``ln(T/T' max W e^x + 1e-12)``): what a learner can check
    with a calculator, and what the view shows next to the library's values."""
    power = np.exp(numbers.band_log_power)
    avg = math.log(float(np.sum(numbers.weights * power)) + 1e-12)
    mx = math.log(float(np.max(numbers.weights * power)) * n_frames / out_len + 1e-12) if power.size else math.nan
    return avg, mx
