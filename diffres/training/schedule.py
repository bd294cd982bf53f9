"""The learning-rate schedule over the optimiser steps of a run, and a run's position in it.

Pure functions of the step number, so a resumed run follows the schedule of the run it
continues; :class:`RunPosition` derives the read-outs (epoch, finished, time left) that a
trainer and its remote view (:mod:`~diffres.training.remote`) both show.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["RunPosition", "epoch_batches", "learning_rate_at"]


class _Steps(Protocol):
    """What :class:`RunPosition`'s step read-outs need (attributes or properties)."""

    @property
    def global_step(self) -> int: ...
    @property
    def steps_per_epoch(self) -> int: ...
    @property
    def total_steps(self) -> int: ...


class _Progress(_Steps, Protocol):
    """What its prior and time read-outs need besides."""

    @property
    def prior_losses(self) -> list[float]: ...
    @property
    def score_prior_steps(self) -> int: ...
    @property
    def elapsed_seconds(self) -> float: ...


class RunPosition:
    """Where a run stands, from its step count: mixed into
    :class:`~diffres.training.Trainer`, :class:`~diffres.training.remote.RemoteTrainer` and
    :class:`~diffres.training.corpus.CorpusTrainer`, which provide ``global_step``,
    ``steps_per_epoch`` and ``total_steps`` (and, for :attr:`prior_done` and
    :attr:`estimated_seconds_left`, ``prior_losses``, ``score_prior_steps`` and
    ``elapsed_seconds``) as attributes or properties."""

    @property
    def epoch(self: _Steps) -> int:
        """Number of finished epochs."""
        return self.global_step // self.steps_per_epoch

    @property
    def finished(self: _Steps) -> bool:
        return self.global_step >= self.total_steps

    @property
    def prior_done(self: _Progress) -> bool:
        """Whether the energy-prior fit is complete (always, when the run makes none)."""
        return len(self.prior_losses) >= self.score_prior_steps or self.global_step > 0

    @property
    def estimated_seconds_left(self: _Progress) -> float:
        """Seconds to the last step at the mean time per step so far (NaN before the first)."""
        if self.global_step >= self.total_steps:
            return 0.0
        if self.global_step == 0:
            return float("nan")
        return self.elapsed_seconds / self.global_step * (self.total_steps - self.global_step)


def epoch_batches(n_train: int, batch_size: int) -> tuple[int, int]:
    """``(batch, steps_per_epoch)`` of a run over ``n_train`` training clips: the batch is at
    most the split (at least 1), an epoch is the full batches of one pass (at least 1).

    Example:
        >>> epoch_batches(848, 32), epoch_batches(20, 32)
        ((32, 26), (20, 1))
    """
    batch = max(1, min(int(batch_size), int(n_train)))
    return batch, max(1, int(n_train) // batch)


def learning_rate_at(step: int, total_steps: int, *, peak: float, warmup_fraction: float) -> float:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 2 % of ``peak``.

    Args:
        step: 0-based optimiser step.
        total_steps: steps of the whole run.
        peak: the largest learning rate.
        warmup_fraction: share of all steps spent warming up (at least one step).

    Example:
        >>> [round(learning_rate_at(s, 100, peak=1.0, warmup_fraction=0.1), 3) for s in (0, 9, 10, 55, 99)]
        [0.1, 1.0, 1.0, 0.51, 0.02]
    """
    warm = max(1, int(round(warmup_fraction * total_steps)))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total_steps - warm)
    return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))
