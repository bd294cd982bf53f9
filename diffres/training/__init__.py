"""Training, evaluation and sweeps for :class:`~diffres.models.AudioClassifier`.

- :mod:`~diffres.training.config`: :class:`TrainConfig`, the settings of a run;
- :mod:`~diffres.training.records`: :class:`StepRecord`, :class:`EpochRecord`,
  :class:`EvalResult`, :class:`Callback`, and a run's model card (``run_card``, the one
  layout both trainers write);
- :mod:`~diffres.training.augment`: augmentations, pure functions of a generator;
- :mod:`~diffres.training.schedule`: learning-rate and reduction-rate schedules;
- :mod:`~diffres.training.trainer`: :class:`Trainer` (chunked steps, callbacks, stop flag,
  resume);
- :mod:`~diffres.training.evaluation`: :func:`evaluate_model`, :func:`evaluate_checkpoint`,
  :func:`accuracy_vs_rate`, :func:`log_mel_of`.

Typical use::

    from diffres.training import TrainConfig, Trainer
    trainer = Trainer(TrainConfig(dataset="events", epochs=3))
    trainer.fit()
    trainer.save("events_diffres.pt")
"""

from __future__ import annotations

from .config import TrainConfig, resolve_device
from .evaluation import accuracy_vs_rate, class_index_map, evaluate_checkpoint, evaluate_model, log_mel_of
from .records import Callback, EpochRecord, EvalResult, StepRecord
from .trainer import Trainer

__all__ = [
    "Callback",
    "EpochRecord",
    "EvalResult",
    "StepRecord",
    "TrainConfig",
    "Trainer",
    "accuracy_vs_rate",
    "class_index_map",
    "evaluate_checkpoint",
    "evaluate_model",
    "log_mel_of",
    "resolve_device",
]
