"""What training reports: per-step and per-epoch records, evaluation results, callbacks."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["StepRecord", "EpochRecord", "EvalResult", "Callback"]


@dataclass(frozen=True)
class StepRecord:
    """One optimiser step.

    Attributes:
        global_step: steps done so far, this one included (1-based).
        epoch: epoch this step belongs to (0-based).
        loss: total training loss (cross-entropy + weighted guide loss).
        accuracy: batch accuracy against the (dominant, for mixup) label, in [0, 1].
        guide_loss: DiffRes guide loss (0 for the baselines).
        activeness: std of importance over non-empty frames (0 for the baselines).
        learning_rate: learning rate used for this step.
        seconds: wall time of the step (forward, backward, update).
        epoch_end: the :class:`EpochRecord` when this step finished an epoch, else None.
    """

    global_step: int
    epoch: int
    loss: float
    accuracy: float
    guide_loss: float
    activeness: float
    learning_rate: float
    seconds: float
    epoch_end: EpochRecord | None = None


@dataclass(frozen=True)
class EpochRecord:
    """Summary of one finished epoch.

    Attributes:
        epoch: 1-based number of the finished epoch.
        global_step: steps done at its end.
        train_loss, train_accuracy: means over the epoch's steps (augmented batches).
        guide_loss, activeness: means over the epoch's steps.
        val_loss, val_accuracy: on the validation split in eval mode (NaN if empty).
        seconds: wall time of the epoch, validation included.
        probe_importance: ``[T]`` normalised importance of the probe clip (eval mode).
        probe_merged: ``[T', F]`` merged log-mel of the probe clip (``FrontendOutput.avg``).
        probe_bin_edges: ``[T' + 1]`` input-frame positions of the output bins.
    """

    epoch: int
    global_step: int
    train_loss: float
    train_accuracy: float
    guide_loss: float
    activeness: float
    val_loss: float
    val_accuracy: float
    seconds: float
    probe_importance: np.ndarray | None = None
    probe_merged: np.ndarray | None = None
    probe_bin_edges: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        """Rebuild from :meth:`to_dict` (a checkpoint's history); a field of the wrong type
        raises ``ValueError`` naming it."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            v = data.get(f.name)
            if f.name.startswith("probe_"):
                v = None if v is None else np.asarray(v, dtype=np.float32)
            elif isinstance(v, bool) or not isinstance(v, int if f.name in ("epoch", "global_step") else (int, float)):
                raise ValueError(f"epoch record field {f.name!r} must be a number, got {type(v).__name__}")
            kw[f.name] = v
        return cls(**kw)


@dataclass(frozen=True)
class EvalResult:
    """Evaluation of a model on a labelled set.

    Attributes:
        accuracy: fraction correct in [0, 1] (NaN when ``n == 0``).
        loss: mean cross-entropy (NaN when ``n == 0``).
        n: number of clips.
        per_class: class name -> accuracy (NaN for a class without clips).
        confusion: ``[C, C]`` int counts, rows = true class, columns = predicted.
        predictions: ``[n]`` predicted class indices.
        labels: ``[n]`` true class indices.
        probabilities: ``[n, C]`` softmax outputs.
        classes: class names in output order.
        reduction_rate: rate the front-end ran at.
        mean_importance: DiffRes only: class name -> ``[T]`` mean importance curve of that
            class's clips (eval mode); None for the baselines.
    """

    accuracy: float
    loss: float
    n: int
    per_class: dict[str, float]
    confusion: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    classes: tuple[str, ...]
    reduction_rate: float
    mean_importance: dict[str, np.ndarray] | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary: ``accuracy``, ``loss``, ``n``, ``per_class``."""
        nan_none = lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)  # noqa: E731
        return {
            "accuracy": nan_none(self.accuracy),
            "loss": nan_none(self.loss),
            "n": int(self.n),
            "per_class": {k: nan_none(v) for k, v in self.per_class.items()},
            "reduction_rate": float(self.reduction_rate),
        }


class Callback:
    """Base class for training callbacks; override what you need."""

    def on_step(self, trainer: Trainer, record: StepRecord) -> None:  # pragma: no cover - default
        pass

    def on_epoch(self, trainer: Trainer, record: EpochRecord) -> None:  # pragma: no cover - default
        pass
