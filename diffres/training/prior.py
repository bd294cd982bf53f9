"""Energy cues for training DiffRes's score network: a prior to start from, and the frames
at a clip's own noise floor.

Trained from the classification loss alone, the score network drifts to uniform importance
(docs/RESULTS.md, "Why the importance did not concentrate"): near uniform pooling the loss
barely depends on where the frames go, so the gradient reaching the scores is mostly noise,
and the optimiser's normalised steps erase whatever preference the network started with.
Two cues fix where it starts and what it may ignore:

- :func:`energy_prior`: target logits that are high where a frame's energy stands above the
  clip's own noise floor.  The score network is fitted to them for a few hundred steps
  before end-to-end training (``TrainConfig.score_prior_steps``), which then refines them;
- :func:`floor_frames`: frames within a few dB of the clip's noise floor, which the guide
  loss can treat like silence (``TrainConfig.guide_floor_db``): in recordings with
  background noise no frame is ever digitally empty, so the paper's guide loss only sees
  SpecAugment's masks.

:func:`fit_score_prior` makes the prior's fit for both trainers, the in-memory
:class:`~diffres.training.Trainer` and the streamed
:class:`~diffres.training.corpus.CorpusTrainer`, for :func:`prior_steps` steps.

Shapes: log-mel ``[B, T, F]`` (natural-log mel power) in, ``[B, T]`` out; the cues carry no
gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..core import DiffRes
from ..errors import ParameterError

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "FLOOR_QUANTILE",
    "frame_level",
    "noise_floor",
    "energy_prior",
    "floor_frames",
    "prior_steps",
    "fit_score_prior",
    "score_prior_fit",
]

#: The quantile of a clip's frame levels taken as its noise floor.
FLOOR_QUANTILE = 0.2
_NEPERS_PER_DB = math.log(10.0) / 10.0


def frame_level(log_mel: Tensor) -> Tensor:
    """``[B, T]``: ln of each frame's summed mel power."""
    return torch.logsumexp(log_mel, dim=2)


def noise_floor(level: Tensor) -> Tensor:
    """``[B, 1]``: each clip's noise floor, the :data:`FLOOR_QUANTILE` of its frame levels."""
    return torch.quantile(level, FLOOR_QUANTILE, dim=1, keepdim=True)


@torch.no_grad()
def energy_prior(log_mel: Tensor, *, threshold: float, gain: float, reach_frames: int = 0) -> Tensor:
    """Target logits ``gain * (level above the floor - threshold)``, clamped to [-4, 4].

    Args:
        log_mel: ``[B, T, F]``.
        threshold: nepers above the noise floor where the target crosses 0 (importance 0.5).
        gain: logits per neper.
        reach_frames: a frame takes the largest level within this many frames of it
            (0 = its own), so that the quiet onsets and gaps next to loud frames count too.

    Example:
        >>> x = torch.full((1, 5, 2), -10.0)
        >>> x[0, 2] = -2.0  # one loud frame
        >>> energy_prior(x, threshold=3.0, gain=1.0).tolist()
        [[-3.0, -3.0, 4.0, -3.0, -3.0]]
        >>> energy_prior(x, threshold=3.0, gain=1.0, reach_frames=1).tolist()
        [[-3.0, 4.0, 4.0, 4.0, -3.0]]
    """
    level = frame_level(log_mel)
    above = level - noise_floor(level)
    if reach_frames > 0:
        above = F.max_pool1d(above.unsqueeze(1), 2 * reach_frames + 1, stride=1, padding=reach_frames).squeeze(1)
    return (gain * (above - threshold)).clamp(-4.0, 4.0)


@torch.no_grad()
def floor_frames(log_mel: Tensor, floor_db: float) -> Tensor:
    """``[B, T]`` bool: frames whose level is within ``floor_db`` dB of the clip's noise floor.

    Example:
        >>> x = torch.full((1, 5, 2), -10.0)
        >>> x[0, 2] = -2.0
        >>> floor_frames(x, 3.0).tolist()
        [[True, True, False, True, True]]
    """
    level = frame_level(log_mel)
    return level <= noise_floor(level) + floor_db * _NEPERS_PER_DB


def prior_steps(config: TrainConfig, total_steps: int) -> int:
    """Steps of the energy-prior fit a run of ``total_steps`` makes before its first step:
    ``config.score_prior_steps``, at most half the run's training steps (a one-epoch run on
    the Train page should not spend most of its time, blocked in its first step, on the
    prior), and 0 unless the model is DiffRes with learned importance.

    Example:
        >>> from diffres.training import TrainConfig
        >>> prior_steps(TrainConfig(score_prior_steps=300), 100), prior_steps(TrainConfig(), 1000)
        (50, 300)
        >>> prior_steps(TrainConfig(frontend="avgpool"), 1000)
        0
    """
    if config.frontend != "diffres" or config.importance != "learned":
        return 0
    return min(config.score_prior_steps, total_steps // 2)


def score_prior_fit(
    frontend: object,
    batches: Iterable[tuple[Tensor, float]],
    *,
    config: TrainConfig,
    hop_seconds: float,
    average_gradients: Callable[[list[Tensor]], None] | None = None,
) -> Iterator[float]:
    """The fit of :func:`fit_score_prior` one step at a time: a generator that makes one Adam
    step per batch when advanced and yields that step's loss (float).  Advancing it to the
    end gives exactly what :func:`fit_score_prior` gives, however the steps are spread out
    in time (the app fits the prior in short slices so its page shows progress).

    Raises:
        ParameterError: ``frontend`` is not DiffRes with learned importance (when the
            generator is created, before any step).
    """
    if not (isinstance(frontend, DiffRes) and frontend.importance == "learned"):
        raise ParameterError("the energy prior needs DiffRes with learned importance (it fits the score network).")
    return _prior_steps(frontend.score_network, batches, config, hop_seconds, average_gradients)


def _prior_steps(
    scores: torch.nn.Module,
    batches: Iterable[tuple[Tensor, float]],
    config: TrainConfig,
    hop_seconds: float,
    average_gradients: Callable[[list[Tensor]], None] | None,
) -> Iterator[float]:
    reach = int(round(config.score_prior_reach_ms / 1000.0 / hop_seconds))
    opt = torch.optim.Adam(scores.parameters(), lr=3e-3)
    for x, scale in batches:
        target = energy_prior(
            x, threshold=config.score_prior_threshold, gain=config.score_prior_gain, reach_frames=reach
        )
        loss = F.mse_loss(scores(x), target)
        if scale != 1.0:
            loss = loss * scale
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if average_gradients is not None:
            average_gradients([p.grad for p in scores.parameters() if p.grad is not None])
        opt.step()
        yield float(loss.detach())


def fit_score_prior(
    frontend: object,
    batches: Iterable[tuple[Tensor, float]],
    *,
    config: TrainConfig,
    hop_seconds: float,
    average_gradients: Callable[[list[Tensor]], None] | None = None,
) -> int:
    """Fit DiffRes's score network to :func:`energy_prior` before end-to-end training.

    One Adam step (learning rate 3e-3, the score network's parameters only) per batch, on
    the mean squared error between the network's logits and the prior's targets.  Both
    trainers call it: :class:`~diffres.training.Trainer` with batches drawn from its cached
    log-mel, :class:`~diffres.training.corpus.CorpusTrainer` with streamed ones.

    Args:
        frontend: a :class:`~diffres.core.DiffRes` with learned importance.
        batches: ``(log-mel [B, T, F], scale)`` pairs; the batch's loss is multiplied by
            ``scale`` (1 for a whole batch; a rank's share of a global batch under DDP).
        config: the run's :class:`~diffres.training.TrainConfig` (the ``score_prior_*``
            fields).
        hop_seconds: the spectrogram's hop (turns ``score_prior_reach_ms`` into frames).
        average_gradients: called with the score network's gradients after each backward
            pass, before the step (data-parallel runs average them over ranks in place).

    Returns:
        The number of steps made (one per batch).

    Raises:
        ParameterError: ``frontend`` is not DiffRes with learned importance.
    """
    fit = score_prior_fit(
        frontend, batches, config=config, hop_seconds=hop_seconds, average_gradients=average_gradients
    )
    return sum(1 for _ in fit)
