"""The in-memory dataset types returned by :func:`diffres.datasets.load_dataset`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Split:
    """One split (train, val or test) as arrays ready for training.

    Attributes:
        waveforms: float32 ``[N, n_samples]``, mono in [-1, 1] at the dataset's
            ``sample_rate``; every clip centre-padded or centre-cropped to ``clip_seconds``
            (:func:`diffres.audio.fit_length`).
        labels: int64 ``[N]``, indices into ``AudioDataset.classes``.
        paths: ``N`` source file paths (absolute where the file exists on disk; for a zip,
            ``archive.zip:inner/path``).
    """

    waveforms: np.ndarray
    labels: np.ndarray
    paths: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class AudioDataset:
    """A labelled audio dataset with fixed train/val/test splits.

    Attributes:
        name: built-in name (``events``...) or the user folder/zip's name.
        classes: class names; label ``i`` means ``classes[i]``. Built-ins keep CONTRACT order.
        clip_seconds: length of every clip in seconds.
        sample_rate: Hz.
        splits: ``{"train": Split, "val": Split, "test": Split}`` (a split may be empty).
        source_description: one paragraph for model cards: where the audio came from, whether
            it is synthetic, voices / soundfonts used, how the splits were made.
        skipped: ``(path, reason)`` for every file that could not be read and was left out.
        root: directory the clips were read from (cache dir, user folder, extracted zip).
        builtin: True for the generated built-in datasets.
        seed: the seed of the split (and, for built-ins, of the generation).
        warnings: sentences for people about the data, e.g. an empty test split (2 clips a
            class leave no test clip, so no test accuracy can be measured).
    """

    name: str
    classes: list[str]
    clip_seconds: float
    sample_rate: int
    splits: dict[str, Split]
    source_description: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    root: str | None = None
    builtin: bool = False
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Samples per clip (``round(clip_seconds * sample_rate)``)."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    def class_counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class: count}}``."""
        out: dict[str, dict[str, int]] = {}
        for name, split in self.splits.items():
            counts = (
                np.bincount(split.labels, minlength=len(self.classes))
                if len(split)
                else np.zeros(len(self.classes), int)
            )
            out[name] = {c: int(n) for c, n in zip(self.classes, counts, strict=True)}
        return out

    def __len__(self) -> int:
        return sum(len(s) for s in self.splits.values())


def empty_split(n_samples: int) -> Split:
    return Split(np.zeros((0, n_samples), np.float32), np.zeros(0, np.int64), [])
