"""What training reports: per-step and per-epoch records, evaluation results, callbacks, and
the model card of a run (:func:`run_card`, the one layout both trainers write)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["StepRecord", "EpochRecord", "EvalResult", "Callback", "card_metrics", "run_card"]


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


class _Scored(Protocol):
    """An evaluation of one split (:class:`EvalResult` or the corpus trainer's ``CorpusEval``)."""

    @property
    def accuracy(self) -> float: ...
    @property
    def n(self) -> int: ...


def _accuracy(result: _Scored | None) -> float | None:
    return None if result is None or math.isnan(result.accuracy) else round(float(result.accuracy), 4)


def card_metrics(
    val: _Scored | None = None, test: _Scored | None = None, *, history: Sequence[EpochRecord] = ()
) -> dict[str, Any]:
    """A model card's ``metrics``: each split's accuracy (4 decimals; None when not evaluated
    or empty) and clip count.  Without a validation result, the last finished epoch's
    validation accuracy in ``history`` stands in (a quick card for a checkpoint written
    mid-run, without evaluating).

    Example:
        >>> card_metrics()
        {'val_accuracy': None, 'test_accuracy': None, 'n_val': None, 'n_test': None}
    """
    metrics: dict[str, Any] = {
        "val_accuracy": _accuracy(val),
        "test_accuracy": _accuracy(test),
        "n_val": None if val is None else int(val.n),
        "n_test": None if test is None else int(test.n),
    }
    if val is None and history and math.isfinite(history[-1].val_accuracy):
        metrics["val_accuracy"] = round(float(history[-1].val_accuracy), 4)
    return metrics


def run_card(
    *,
    dataset: str | None,
    metrics: dict[str, Any],
    train_seconds: float,
    epochs: int,
    global_step: int,
    seed: int,
    n_train: int,
    data_source: str,
    training: dict[str, Any],
    **more: Any,
) -> dict[str, Any]:
    """The model card of a training run, as both trainers write it (see
    :func:`diffres.save_checkpoint`, which adds the model's own fields): what was trained on
    (``dataset``, ``data_source``, ``n_train``), how (``training``: the run's
    :class:`~diffres.training.TrainConfig` as a dict, ``seed``), how far (``epochs``,
    ``global_step``, ``train_seconds``) and how well (``metrics``, :func:`card_metrics`);
    ``more`` adds fields (the corpus trainer's ``corpus`` and ``distributed``), and
    ``created`` is the UTC time now.

    Example:
        >>> card = run_card(dataset="toy", metrics=card_metrics(), train_seconds=1.234, epochs=1,
        ...                 global_step=10, seed=0, n_train=40, data_source="synthetic", training={})
        >>> card["train_seconds"], sorted(card)[:3]
        (1.23, ['created', 'data_source', 'dataset'])
    """
    return {
        "dataset": dataset,
        "metrics": metrics,
        "train_seconds": round(float(train_seconds), 2),
        "epochs": int(epochs),
        "global_step": int(global_step),
        "seed": int(seed),
        "data_source": data_source,
        "n_train": int(n_train),
        "training": training,
        **more,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
