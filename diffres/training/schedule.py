"""The learning-rate schedule over the optimiser steps of a run.

Pure functions of the step number, so a resumed run follows the schedule of the run it
continues.
"""

from __future__ import annotations

import math

__all__ = ["epoch_batches", "learning_rate_at"]


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
