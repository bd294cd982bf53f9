"""How big a training run is, before it starts: split sizes, optimiser steps, and whether the
run is too small to learn anything.

A run of a few optimiser steps (10 clips a class and 3 epochs, say) ends at chance accuracy
and looks like a broken model.  :func:`plan_run` computes, from a :class:`TrainConfig` and the
dataset's class counts only (no audio, no model, no :class:`~diffres.training.Trainer`),
the numbers a person needs to see before pressing Play, and says in sentences when the run is
too small:

- fewer than :data:`MIN_STEPS` optimiser steps in all (steps per epoch x epochs);
- fewer than :data:`MIN_TRAIN_CLIPS_PER_CLASS` training clips in some class.

Example:
    >>> from diffres.training import TrainConfig
    >>> counts = {"train": {"a": 7, "b": 7}, "val": {"a": 1, "b": 1}, "test": {"a": 2, "b": 2}}
    >>> plan = plan_run(TrainConfig(epochs=3, batch_size=32), counts)
    >>> plan.train_clips, plan.batch_size, plan.steps_per_epoch, plan.total_steps, plan.too_small
    (14, 14, 1, 3, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ParameterError
from .training.config import TrainConfig
from .training.schedule import epoch_batches

__all__ = ["MIN_STEPS", "MIN_TRAIN_CLIPS_PER_CLASS", "RunPlan", "plan_run"]

#: Fewest optimiser steps (steps per epoch x epochs) for a run that learns what its settings
#: can.  Measured on the built-in ``events`` set (8 classes, chance 12.5 %; default settings,
#: batches of 32, seed 0, one run each): validation accuracy after 3, 26, 52, 104 and 208 steps
#: was 25, 27, 47, 78 and 88 %.  Under about 100 steps a run stops far short of what the same
#: settings reach with more.
MIN_STEPS = 100
#: Fewest training clips of a class for it to be learned rather than memorised (a rule of
#: thumb, not a measurement): with fewer, the class's validation accuracy is mostly luck.
MIN_TRAIN_CLIPS_PER_CLASS = 5


@dataclass(frozen=True)
class RunPlan:
    """The size of a training run.

    Attributes:
        train_clips, val_clips, test_clips: clips in each split.
        n_classes: classes of the dataset.
        fewest_train_clips: training clips of the class that has the fewest (``fewest_class``).
        fewest_class: that class's name.
        batch_size: clips per optimiser step (the configured batch, at most ``train_clips``).
        steps_per_epoch: full batches per pass over the training split (at least 1).
        epochs: planned passes.
        total_steps: ``steps_per_epoch * epochs``.
    """

    train_clips: int
    val_clips: int
    test_clips: int
    n_classes: int
    fewest_train_clips: int
    fewest_class: str
    batch_size: int
    steps_per_epoch: int
    epochs: int
    total_steps: int

    @property
    def chance(self) -> float:
        """Accuracy of guessing one class: ``1 / n_classes``."""
        return 1.0 / max(1, self.n_classes)

    @property
    def too_few_steps(self) -> bool:
        return self.total_steps < MIN_STEPS

    @property
    def too_few_clips(self) -> bool:
        return self.fewest_train_clips < MIN_TRAIN_CLIPS_PER_CLASS

    @property
    def too_small(self) -> bool:
        """Too few steps or too few training clips in some class to learn."""
        return self.too_few_steps or self.too_few_clips

    def warnings(self) -> list[str]:
        """Sentences for people, one per reason the run is too small (empty when it is not)."""
        out = []
        if self.too_few_steps:
            out.append(
                f"{self.total_steps} optimiser step{'s' if self.total_steps != 1 else ''} in all is too few to learn "
                f"(fewer than {MIN_STEPS}): the accuracy will stay far below what more steps reach, perhaps near "
                f"chance ({100 * self.chance:.3g}%). More clips per class, more epochs or a smaller batch give more "
                "steps."
            )
        if self.too_few_clips:
            out.append(
                f"The class '{self.fewest_class}' has {self.fewest_train_clips} training clip"
                f"{'s' if self.fewest_train_clips != 1 else ''} (fewer than {MIN_TRAIN_CLIPS_PER_CLASS}): too few to "
                "learn it. Use more clips per class."
            )
        return out


def plan_run(config: TrainConfig, class_counts: Mapping[str, Mapping[str, int]]) -> RunPlan:
    """The size of the run ``config`` makes on a dataset with ``class_counts``.

    Args:
        config: the run's settings (``batch_size`` and ``epochs`` are read).
        class_counts: ``{split: {class: clips}}`` with splits ``train``, ``val``, ``test``
            (a missing split counts as empty), as :meth:`AudioDataset.class_counts
            <diffres.datasets.AudioDataset.class_counts>` and
            :func:`diffres.datasets.builtin_class_counts` return them.

    Returns:
        A :class:`RunPlan`.  Its batch size and steps are the ones
        :class:`~diffres.training.Trainer` uses: the batch is at most the training split, and
        an epoch is the number of full batches (at least one).

    Raises:
        ParameterError: ``config`` is not a TrainConfig, or a count is negative.
    """
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"config must be a TrainConfig, got {type(config).__name__}.")
    sizes: dict[str, int] = {}
    classes: dict[str, int] = {}
    for split in ("train", "val", "test"):
        counts = class_counts.get(split) or {}
        if any(int(n) < 0 for n in counts.values()):
            raise ParameterError(f"class counts must not be negative, got {dict(counts)!r} for {split!r}.")
        sizes[split] = sum(int(n) for n in counts.values())
        for c in counts:
            classes.setdefault(str(c), 0)
    for c, n in (class_counts.get("train") or {}).items():
        classes[str(c)] = int(n)
    fewest_class = min(classes, key=lambda c: classes[c]) if classes else ""
    n_train = sizes["train"]
    batch, steps_per_epoch = epoch_batches(n_train, config.batch_size)  # the trainer's rule
    return RunPlan(
        train_clips=n_train,
        val_clips=sizes["val"],
        test_clips=sizes["test"],
        n_classes=len(classes),
        fewest_train_clips=classes.get(fewest_class, 0),
        fewest_class=fewest_class,
        batch_size=batch,
        steps_per_epoch=steps_per_epoch,
        epochs=int(config.epochs),
        total_steps=steps_per_epoch * int(config.epochs),
    )
