"""Evaluating classifiers: on cached log-mel, on a checkpoint with labelled audio, across
inference reduction rates.

Shapes: log-mel ``[N, T, F]``, labels ``[N]`` (int, indices into the model's classes).
Evaluation runs in eval mode without gradient, in batches of 128 clips; the model returns
to the mode it was in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoints import load_checkpoint
from ..errors import DatasetError, ParameterError
from ..functional import check_rate
from ..models import AudioClassifier
from .records import EvalResult

if TYPE_CHECKING:
    from ..datasets import AudioDataset

__all__ = [
    "log_mel_of",
    "evaluate_model",
    "evaluate_checkpoint",
    "accuracy_vs_rate",
    "class_index_map",
    "load_dataset_for_training",
    "ProgressFn",
]

ProgressFn = Callable[[int, int, str], None]
_EVAL_BATCH = 128


def log_mel_of(
    model: AudioClassifier, waveforms: np.ndarray | Tensor, *, device: torch.device | None = None, batch: int = 256
) -> Tensor:
    """Log-mel ``[N, T, F]`` of ``[N, n]`` waveforms with ``model``'s fixed mel front-end,
    cropped / padded to the model's clip length.  Batched, no gradient."""
    device = device or next(model.parameters()).device
    w = (
        torch.as_tensor(np.asarray(waveforms, dtype=np.float32))
        if not isinstance(waveforms, Tensor)
        else waveforms.float()
    )
    if w.dim() != 2:
        raise ParameterError(f"waveforms must be [clips, samples], got shape {tuple(w.shape)}.")
    n_frames = model.mel.n_frames(model.clip_samples)
    if w.shape[0] == 0:
        return torch.zeros(0, n_frames, model.config.n_mels, device=device)
    out = []
    with torch.no_grad():
        for i in range(0, w.shape[0], batch):
            out.append(model.mel(model.fit_length(w[i : i + batch]).to(device)))
    return torch.cat(out)


@torch.no_grad()
def _run_eval(
    model: AudioClassifier, log_mel: Tensor, labels: Tensor, *, reduction_rate: float | None, want_importance: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Eval-mode logits ``[N, C]``, per-clip CE ``[N]`` and importance ``[N, T]`` (or None)."""
    was = model.training
    model.eval()
    try:
        logits, losses, imps = [], [], []
        for i in range(0, log_mel.shape[0], _EVAL_BATCH):
            lg, out = model.forward_with_frontend(log_mel[i : i + _EVAL_BATCH], reduction_rate=reduction_rate)
            logits.append(lg.float())
            losses.append(F.cross_entropy(lg.float(), labels[i : i + _EVAL_BATCH], reduction="none"))
            if want_importance:
                imps.append(out.importance.float())
        return torch.cat(logits), torch.cat(losses), (torch.cat(imps) if want_importance else None)
    finally:
        model.train(was)


def evaluate_model(
    model: AudioClassifier, log_mel: Tensor, labels: np.ndarray | Tensor, *, reduction_rate: float | None = None
) -> EvalResult:
    """Evaluate ``model`` on precomputed log-mel ``[N, T, F]`` with int labels ``[N]``."""
    classes = tuple(model.classes)
    n_cls = len(classes)
    device = log_mel.device
    # a tensor as it is: one on the GPU cannot pass through NumPy
    y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    y = y.to(device=device, dtype=torch.long)
    rate = float(model.config.reduction_rate if reduction_rate is None else reduction_rate)
    is_diffres = model.config.frontend == "diffres"
    n = int(y.shape[0])
    if n == 0:
        return EvalResult(
            float("nan"),
            float("nan"),
            0,
            {c: float("nan") for c in classes},
            np.zeros((n_cls, n_cls), np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, n_cls), np.float32),
            classes,
            rate,
            None,
        )
    logits, losses, imp = _run_eval(model, log_mel, y, reduction_rate=reduction_rate, want_importance=is_diffres)
    pred = logits.argmax(dim=1)
    probs = torch.softmax(logits, dim=1)
    yn, pn = y.cpu().numpy(), pred.cpu().numpy()
    confusion = np.bincount(yn * n_cls + pn, minlength=n_cls * n_cls).reshape(n_cls, n_cls)
    totals = confusion.sum(axis=1)
    per_class = {c: (float(confusion[i, i] / totals[i]) if totals[i] else float("nan")) for i, c in enumerate(classes)}
    mean_imp = None
    if imp is not None:
        onehot = F.one_hot(y, n_cls).to(imp.dtype)  # [N, C]
        sums = onehot.T @ imp  # [C, T]
        counts = onehot.sum(dim=0).clamp(min=1.0).unsqueeze(1)
        curves = (sums / counts).cpu().numpy()
        mean_imp = {c: curves[i] for i, c in enumerate(classes) if totals[i]}
    return EvalResult(
        accuracy=float((pred == y).float().mean()),
        loss=float(losses.mean()),
        n=n,
        per_class=per_class,
        confusion=confusion.astype(np.int64),
        predictions=pn.astype(np.int64),
        labels=yn.astype(np.int64),
        probabilities=probs.cpu().numpy().astype(np.float32),
        classes=classes,
        reduction_rate=rate,
        mean_importance=mean_imp,
    )


def load_dataset_for_training(
    source: Any, *, sample_rate: int, seed: int, progress: ProgressFn | None, max_files_per_class: int | None
) -> AudioDataset:
    """:func:`diffres.datasets.load_dataset`, imported only when needed."""
    from ..datasets import load_dataset  # imported lazily: the datasets package is heavy

    return load_dataset(
        source, sample_rate=sample_rate, seed=seed, progress=progress, max_files_per_class=max_files_per_class
    )


def class_index_map(data_classes: Sequence[str], model_classes: Sequence[str], *, what: str = "the data") -> np.ndarray:
    """Label map from a dataset's class order to a model's: ``map[i]`` is the model's index
    of the dataset's class ``i`` (matched by name).

    Raises:
        DatasetError: the data has a class the model does not know (the message lists both).

    Example:
        >>> class_index_map(["dog", "cat"], ["cat", "bird", "dog"]).tolist()
        [2, 0]
    """
    index = {c: i for i, c in enumerate(model_classes)}
    unknown = [c for c in data_classes if c not in index]
    if unknown:
        raise DatasetError(
            f"{what} has classes the model does not know: {', '.join(unknown)}; "
            f"the model's classes are: {', '.join(model_classes)}."
        )
    return np.array([index[c] for c in data_classes], dtype=np.int64)


def _dataset_for_model(model: AudioClassifier, data, *, progress=None):
    """(log-mel, labels) of every clip of ``data`` mapped to ``model``'s classes by name.

    ``data``: a built-in name (its test split), a folder / zip (all its clips), or an
    AudioDataset (its test split when non-empty, else all clips)."""
    builtin = False
    if isinstance(data, (str, Path)):
        from ..datasets import BUILTIN_DATASETS, load_folder_dataset
        from ..datasets.cache import MANIFEST

        path = Path(data).expanduser()
        if isinstance(data, str) and data in BUILTIN_DATASETS:
            builtin = True
            ds = load_dataset_for_training(
                data, sample_rate=model.config.sample_rate, seed=0, progress=progress, max_files_per_class=None
            )
        elif path.is_dir() and (path / MANIFEST).is_file():
            builtin = True  # a full export of a built dataset: keep its held-out test split
            ds = load_dataset_for_training(
                path, sample_rate=model.config.sample_rate, seed=0, progress=progress, max_files_per_class=None
            )
        else:
            if not path.exists():
                raise DatasetError(
                    f"{str(data)!r} does not exist; give a folder with one sub-folder of audio per class."
                )
            ds = load_folder_dataset(
                path, sample_rate=model.config.sample_rate, progress=progress, min_clips_per_class=1
            )
    else:
        ds = data
        builtin = True  # an AudioDataset: its held-out test split when it has one
    if builtin and len(ds.splits["test"]):
        parts = [ds.splits["test"]]
    else:
        parts = [s for s in ds.splits.values() if len(s)]
    if not parts:
        raise DatasetError("the data holds no clips to evaluate.")
    if int(ds.sample_rate) != int(model.config.sample_rate):
        raise DatasetError(f"the data is at {ds.sample_rate} Hz but the model expects {model.config.sample_rate} Hz.")
    remap = class_index_map(ds.classes, model.classes)
    waves = np.concatenate([p.waveforms for p in parts])
    labels = remap[np.concatenate([p.labels for p in parts])]
    return log_mel_of(model, waves), labels


def evaluate_checkpoint(
    path, data_dir_or_dataset, *, reduction_rate: float | None = None, progress: ProgressFn | None = None
) -> EvalResult:
    """Evaluate a saved checkpoint on labelled audio.

    Args:
        path: a ``.pt`` written by :meth:`Trainer.save` / ``python -m diffres train``.
        data_dir_or_dataset: a folder (or ``.zip``) with one sub-folder of audio per class
            (every clip is used), a built-in name (its held-out test split) or an
            :class:`~diffres.datasets.AudioDataset` (its test split when it has one).
        reduction_rate: run the front-end at another rate (default: the trained one).

    Raises:
        CheckpointError, DatasetError, ParameterError.
    """
    model = load_checkpoint(path).model
    x, y = _dataset_for_model(model, data_dir_or_dataset, progress=progress)
    return evaluate_model(model, x, y, reduction_rate=reduction_rate)


def accuracy_vs_rate(model: AudioClassifier, split, rates: Sequence[float]) -> list[tuple[float, float]]:
    """Accuracy of one trained model at several inference reduction rates.

    Args:
        model: a trained :class:`AudioClassifier`.
        split: a dataset ``Split`` (``.waveforms``, ``.labels``), or ``(log_mel, labels)``
            with log-mel ``[N, T, F]`` from the model's mel front-end.
        rates: reduction rates in [0, 1).

    Returns:
        ``[(rate, accuracy), ...]`` in the order given.
    """
    rates = [check_rate(r, "every rate") for r in rates]
    if isinstance(split, tuple):
        x, y = split
        x = torch.as_tensor(x)
    else:
        x, y = log_mel_of(model, split.waveforms), split.labels
    return [(float(r), float(evaluate_model(model, x, y, reduction_rate=float(r)).accuracy)) for r in rates]
