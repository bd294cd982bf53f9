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

Shapes: log-mel ``[B, T, F]`` (natural-log mel power) in, ``[B, T]`` out.  No gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["FLOOR_QUANTILE", "frame_level", "noise_floor", "energy_prior", "floor_frames"]

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
