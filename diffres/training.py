"""Training, evaluation and sweeps for :class:`~diffres.models.AudioClassifier`.

One :class:`Trainer` serves the command line (``fit``) and the app (``step`` /
``run_for`` in short slices).  The mel front-end is fixed, so the log-mel of every clip is
computed once and cached on the training device; every augmentation then works on the
cached log-mel, in the domain where it is exact or a close approximation of its waveform
counterpart:

- random gain: ``+ gain`` in log power (exact);
- random equaliser: ``+ curve(mel bin)``, a smooth random curve over the mel axis (exact for
  a filter that is smooth across each mel band);
- time shift: circular roll of frames (a circular shift of the waveform, up to framing);
- background noise: ``logaddexp`` with a random-slope noise floor at a random SNR
  (adding uncorrelated noise adds power in expectation);
- mixup: ``logaddexp(ln l + a, ln(1-l) + b)`` (waveform mixing, in expectation);
- SpecAugment (:func:`diffres.features.spec_augment`), applied last, fills masked cells
  with ``ln(1e-10)`` so DiffRes's guide loss sees them as empty.

All randomness comes from ``config.seed`` through generators derived from
``(seed, global_step)``, so a run is reproducible and a resumed run continues exactly as
the uninterrupted one would (the global RNG state of the process is left untouched).

Shapes are ``[batch, time, freq]``; there is no Python loop over the batch.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import functional as Fn
from .checkpoints import load_checkpoint, save_checkpoint
from .errors import CheckpointError, DatasetError, ParameterError
from .features import LOG_FLOOR, spec_augment
from .frontends import FRONTENDS
from .models import AudioClassifier, ModelConfig

__all__ = [
    "TrainConfig",
    "StepRecord",
    "EpochRecord",
    "EvalResult",
    "Callback",
    "Trainer",
    "evaluate_model",
    "evaluate_checkpoint",
    "accuracy_vs_rate",
    "log_mel_of",
    "resolve_device",
]

ProgressFn = Callable[[int, int, str], None]
_LOG10_OVER_10 = math.log(10.0) / 10.0
_FLOOR = math.log(LOG_FLOOR)
_EVAL_BATCH = 128


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints for ``resume``).

    Attributes:
        dataset: built-in name (``events``...), a dataset folder or ``.zip``; may be None
            when an :class:`~diffres.datasets.AudioDataset` is passed to :class:`Trainer`.
        frontend: a name from :data:`diffres.FRONTENDS`.
        reduction_rate: fraction of frames removed, in [0, 1).
        hop_ms, win_ms: mel hop and window in milliseconds.
        n_mels: mel bins.
        epochs: passes over the training split.
        batch_size: clips per optimiser step.
        learning_rate: peak learning rate of AdamW (linear warm-up, cosine decay).
        weight_decay: AdamW decoupled weight decay.
        warmup_fraction: share of all steps spent warming up the learning rate.
        seed: seeds model initialisation, batch order, augmentation and dropout.
        dataset_seed: generation / split seed of the dataset (0 = the shipped splits).
        max_files_per_class: keep at most this many clips per class (quick runs).
        spec_augment: apply SpecAugment masks (after the other augmentations).
        time_mask_ms: longest time mask in ms (lengths uniform in [max/8, max)).
        freq_mask_bins: longest frequency mask in mel bins.
        n_time_masks, n_freq_masks: masks per example.
        mask_fill: natural-log power written into masked cells.  At most ``ln(1e-6)``
            (about -13.8) so DiffRes's guide loss sees masked frames as empty (mean linear
            energy within 1e-6 of zero); -14.5 sits just below the quietest cells of the
            built-in sets, where ``spec_augment``'s own ``ln(1e-10) = -23`` fill is an
            outlier 10 nats below the data that dominates the classifier's input
            BatchNorm and slowed learning about threefold in our runs.
        gain_db: random gain uniform in [-gain_db, +gain_db] dB (0 = off).
        eq_db: random equaliser (a sum of the first four cosines over the mel axis) whose
            largest boost or cut is uniform in [0, eq_db] dB (0 = off): other rooms,
            microphones and instrument bodies colour the spectrum smoothly.
        reverb_probability: share of examples that get a synthetic room's late reverb
            (0 = off): the mel power is convolved along time with an exponential decay
            whose reverberation time (60 dB) is uniform in ``reverb_seconds`` at the lowest
            mel band and 40 % shorter at the highest, at a direct-to-reverberant ratio
            uniform in ``reverb_drr_db`` dB.  Synthetic sets are rendered dry; recordings
            are not.
        reverb_seconds: (low, high) reverberation time range in seconds.
        reverb_drr_db: (low, high) direct-to-reverberant energy ratio range in dB.
        time_shift_ms: circular time shift uniform in [-shift, +shift] ms (0 = off).
        freq_shift_bins: shift along the mel axis by up to this many bins, edge bins
            repeated (roughly a pitch shift; 0 = off).
        noise_probability: share of examples that get background noise (0 = off).
        noise_snr_db: (low, high) SNR range in dB for the background noise.
        mixup_alpha: Beta(alpha, alpha) mixup in the power domain (0 = off).
        mixup_probability: share of batches that are mixed.
        label_smoothing: cross-entropy label smoothing.
        guide_loss_weight: weight of DiffRes's guide loss (paper: 1).
        guide_loss_relative: the authors' later guide loss (the empty frames' mean
            importance divided by ``1 - rate``, counted above 0.5; see
            :func:`diffres.functional.guide_loss`) instead of the published package's.
        rate_warmup_fraction: share of all steps over which the *training* reduction rate
            rises linearly from 0 to ``reduction_rate`` (0 = off).  The classifier first
            learns from full resolution; as frames start to be merged, the loss tells the
            score network which ones it cannot afford to lose.  Validation always runs at
            ``reduction_rate``.
        score_learning_rate_scale: the DiffRes score network's learning rate as a multiple
            of ``learning_rate``.
        width: channels of the classifier CNN's first block.
        dropout: not used by the model (fixed at 0.2); kept out on purpose.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        probe_index: index into the validation split of the clip whose importance curve
            and merged spectrogram are saved every epoch.
    """

    dataset: Optional[str] = None
    frontend: str = "diffres"
    reduction_rate: float = 0.75
    hop_ms: float = 10.0
    win_ms: float = 25.0
    n_mels: int = 64
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    warmup_fraction: float = 0.05
    seed: int = 0
    dataset_seed: int = 0
    max_files_per_class: Optional[int] = None
    spec_augment: bool = True
    time_mask_ms: float = 150.0
    freq_mask_bins: int = 6
    n_time_masks: int = 1
    n_freq_masks: int = 1
    mask_fill: float = -14.5
    gain_db: float = 6.0
    eq_db: float = 0.0
    reverb_probability: float = 0.0
    reverb_seconds: tuple[float, float] = (0.2, 1.5)
    reverb_drr_db: tuple[float, float] = (-3.0, 9.0)
    time_shift_ms: float = 200.0
    freq_shift_bins: int = 0
    noise_probability: float = 0.25
    noise_snr_db: tuple[float, float] = (15.0, 40.0)
    mixup_alpha: float = 0.0
    mixup_probability: float = 0.5
    label_smoothing: float = 0.0
    guide_loss_weight: float = 1.0
    guide_loss_relative: bool = False
    rate_warmup_fraction: float = 0.0
    score_learning_rate_scale: float = 1.0
    score_freeze_fraction: float = 0.0
    score_prior_steps: int = 0
    width: int = 16
    device: str = "auto"
    probe_index: int = 0

    #: The (low, high) range fields and the bounds each end must lie within.
    _RANGES = {"noise_snr_db": (-20.0, 100.0), "reverb_seconds": (0.05, 5.0), "reverb_drr_db": (-30.0, 40.0)}

    def __post_init__(self) -> None:
        for name in self._RANGES:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ParameterError(f"{name} must be a (low, high) pair, got {value!r}.")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if self.dataset is not None and not isinstance(self.dataset, str):
            object.__setattr__(self, "dataset", str(self.dataset))
        if self.frontend not in FRONTENDS:
            raise ParameterError(f"frontend must be one of {', '.join(FRONTENDS)}; got {self.frontend!r}.")

        def check(name: str, lo: float, hi: float, *, integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
                kind = "a whole number" if integer else "a number"
                raise ParameterError(f"{name} must be {kind}, got {value!r}.")
            if not math.isfinite(float(value)):
                raise ParameterError(f"{name} must be finite, got {value!r}.")
            too_low = value <= lo if lo_open else value < lo
            too_high = value >= hi if hi_open else value > hi
            if too_low or too_high:
                lb, hb = ("(" if lo_open else "["), (")" if hi_open else "]")
                raise ParameterError(f"{name} must be in {lb}{lo:g}, {hi:g}{hb}, got {value!r}.")

        check("reduction_rate", 0.0, 1.0, hi_open=True)
        check("hop_ms", 0.5, 100.0)
        check("win_ms", 1.0, 200.0)
        check("n_mels", 4, 256, integer=True)
        check("epochs", 1, 10000, integer=True)
        check("batch_size", 2, 4096, integer=True)
        check("learning_rate", 0.0, 1.0, lo_open=True)
        check("weight_decay", 0.0, 1.0)
        check("warmup_fraction", 0.0, 0.5)
        check("seed", 0, 2**31 - 1, integer=True)
        check("dataset_seed", 0, 2**31 - 1, integer=True)
        if self.max_files_per_class is not None:
            check("max_files_per_class", 2, 10**7, integer=True)
        check("time_mask_ms", 0.0, 60000.0)
        check("freq_mask_bins", 0, 512, integer=True)
        check("n_time_masks", 0, 16, integer=True)
        check("n_freq_masks", 0, 16, integer=True)
        check("mask_fill", _FLOOR, -13.9)
        check("gain_db", 0.0, 40.0)
        check("eq_db", 0.0, 40.0)
        check("reverb_probability", 0.0, 1.0)
        check("time_shift_ms", 0.0, 60000.0)
        check("freq_shift_bins", 0, 64, integer=True)
        check("noise_probability", 0.0, 1.0)
        check("mixup_alpha", 0.0, 100.0)
        check("mixup_probability", 0.0, 1.0)
        check("label_smoothing", 0.0, 0.5)
        check("guide_loss_weight", 0.0, 100.0)
        check("rate_warmup_fraction", 0.0, 1.0)
        check("score_learning_rate_scale", 0.0, 100.0, lo_open=True)
        check("score_freeze_fraction", 0.0, 1.0)
        check("score_prior_steps", 0, 100000, integer=True)
        check("width", 4, 256, integer=True)
        check("probe_index", 0, 10**9, integer=True)
        for name, (bottom, top) in self._RANGES.items():
            lo, hi = getattr(self, name)
            if not (bottom <= lo <= hi <= top):  # also false for NaN
                raise ParameterError(f"{name} must satisfy {bottom:g} <= low <= high <= {top:g}, got {getattr(self, name)!r}.")
        for flag in ("spec_augment", "guide_loss_relative"):
            if not isinstance(getattr(self, flag), bool):
                raise ParameterError(f"{flag} must be True or False, got {getattr(self, flag)!r}.")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in self._RANGES:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # range lists become tuples in __post_init__


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'.")
    return torch.device(device)


# ---------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------
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
    epoch_end: Optional["EpochRecord"] = None


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
    probe_importance: Optional[np.ndarray] = None
    probe_merged: Optional[np.ndarray] = None
    probe_bin_edges: Optional[np.ndarray] = None

    def to_dict(self) -> dict:
        d = {}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "EpochRecord":
        kw = {}
        for f in fields(cls):
            v = data.get(f.name)
            if f.name.startswith("probe_"):
                v = None if v is None else np.asarray(v, dtype=np.float32)
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
    mean_importance: Optional[dict[str, np.ndarray]] = None

    def summary(self) -> dict:
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

    def on_step(self, trainer: "Trainer", record: StepRecord) -> None:  # pragma: no cover - default
        pass

    def on_epoch(self, trainer: "Trainer", record: EpochRecord) -> None:  # pragma: no cover - default
        pass


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def log_mel_of(model: AudioClassifier, waveforms: np.ndarray | Tensor, *, device: torch.device | None = None,
               batch: int = 256) -> Tensor:
    """Log-mel ``[N, T, F]`` of ``[N, n]`` waveforms with ``model``'s fixed mel front-end,
    cropped / padded to the model's clip length.  Batched, no gradient."""
    device = device or next(model.parameters()).device
    w = torch.as_tensor(np.asarray(waveforms, dtype=np.float32)) if not isinstance(waveforms, Tensor) else waveforms.float()
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


def _derived_generator(seed: int, stream: int, step: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(stream) * 7_919 + int(step) * 104_729) % (2**63 - 1))
    return g


def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


@torch.no_grad()
def _run_eval(model: AudioClassifier, log_mel: Tensor, labels: Tensor, *, reduction_rate: float | None,
              want_importance: bool) -> tuple[Tensor, Tensor, Optional[Tensor]]:
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


def evaluate_model(model: AudioClassifier, log_mel: Tensor, labels: np.ndarray | Tensor, *,
                   reduction_rate: float | None = None) -> EvalResult:
    """Evaluate ``model`` on precomputed log-mel ``[N, T, F]`` with int labels ``[N]``."""
    classes = tuple(model.classes)
    n_cls = len(classes)
    device = log_mel.device
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    rate = float(model.config.reduction_rate if reduction_rate is None else reduction_rate)
    is_diffres = model.config.frontend == "diffres"
    n = int(y.shape[0])
    if n == 0:
        return EvalResult(float("nan"), float("nan"), 0, {c: float("nan") for c in classes},
                          np.zeros((n_cls, n_cls), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                          np.zeros((0, n_cls), np.float32), classes, rate, None)
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


def _load_dataset(source, *, sample_rate: int, seed: int, progress, max_files_per_class):
    from .datasets import load_dataset  # imported lazily: the datasets package is heavy

    return load_dataset(source, sample_rate=sample_rate, seed=seed, progress=progress,
                        max_files_per_class=max_files_per_class)


# ---------------------------------------------------------------------------------------
# trainer
# ---------------------------------------------------------------------------------------
class Trainer:
    """Trains an :class:`AudioClassifier` on a dataset, in whole runs or short slices.

    Args:
        config: the :class:`TrainConfig`.
        dataset: an :class:`~diffres.datasets.AudioDataset`; when None, ``config.dataset``
            is loaded with :func:`diffres.datasets.load_dataset`.
        progress: ``progress(done, total, message)`` while the dataset loads and the
            log-mel cache is computed.

    The app calls :meth:`run_for` repeatedly (each call returns within about the given
    seconds and never crosses an epoch end); the CLI calls :meth:`fit`.
    """

    def __init__(self, config: TrainConfig, dataset=None, *, progress: Optional[ProgressFn] = None,
                 callbacks: Iterable[Callback] = ()) -> None:
        if not isinstance(config, TrainConfig):
            raise ParameterError(f"config must be a TrainConfig, got {type(config).__name__}.")
        t0 = time.perf_counter()
        self.config = config
        self.device = resolve_device(config.device)
        self.callbacks: list[Callback] = list(callbacks)
        if dataset is None:
            if config.dataset is None:
                raise ParameterError("no dataset: set TrainConfig.dataset (a built-in name or a folder) or pass dataset=.")
            dataset = _load_dataset(config.dataset, sample_rate=16000, seed=config.dataset_seed, progress=progress,
                                    max_files_per_class=config.max_files_per_class)
        self.dataset = dataset
        self.dataset_name = config.dataset if config.dataset is not None else getattr(dataset, "name", None)
        train = dataset.splits["train"]
        if len(train) < 2:
            raise DatasetError(f"the training split has {len(train)} clip(s); at least 2 are needed (add more audio per class).")
        present = np.unique(train.labels)
        if present.size < 2:
            raise DatasetError("the training split holds only one class; a classifier needs at least two.")
        self.model_config = ModelConfig(
            classes=tuple(dataset.classes), frontend=config.frontend, reduction_rate=config.reduction_rate,
            sample_rate=int(dataset.sample_rate), n_mels=config.n_mels, hop_ms=config.hop_ms, win_ms=config.win_ms,
            clip_seconds=float(dataset.clip_seconds), width=config.width,
        )
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            torch.manual_seed(config.seed)
            self.model = AudioClassifier(self.model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(self._parameter_groups(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay, foreach=True)
        # log-mel cache: the mel front-end is fixed, so compute every clip once
        if progress is not None:
            progress(0, 1, "computing log-mel spectrograms")
        self._features: dict[str, Tensor] = {}
        self._labels: dict[str, Tensor] = {}
        for name in ("train", "val", "test"):
            split = dataset.splits.get(name)
            if split is None:
                continue
            self._features[name] = log_mel_of(self.model, split.waveforms, device=self.device)
            self._labels[name] = torch.as_tensor(np.asarray(split.labels), dtype=torch.long, device=self.device)
        if progress is not None:
            progress(1, 1, "log-mel spectrograms ready")
        self.n_train = int(self._labels["train"].shape[0])
        self.batch_size = min(config.batch_size, self.n_train)
        self._steps_per_epoch = max(1, self.n_train // self.batch_size)
        self.hop_seconds = self.model.mel.hop_seconds
        self._time_mask = int(round(config.time_mask_ms / 1000.0 / self.hop_seconds))
        self._shift = int(round(config.time_shift_ms / 1000.0 / self.hop_seconds))
        # probe clip (validation split, else training split)
        probe_split = "val" if self._labels.get("val") is not None and len(self._labels["val"]) else "train"
        idx = min(config.probe_index, len(self._labels[probe_split]) - 1)
        self.probe_split, self.probe_index = probe_split, idx
        self.probe_log_mel = self._features[probe_split][idx : idx + 1]
        self.probe_label = int(self._labels[probe_split][idx])
        self.probe_path = dataset.splits[probe_split].paths[idx] if dataset.splits[probe_split].paths else None
        # state
        self.global_step = 0
        self.history: list[EpochRecord] = []
        self._elapsed = 0.0
        self._epoch_acc: list[tuple[float, float, float, float]] = []
        self._epoch_seconds = 0.0
        self._stop = threading.Event()
        self._perm: Optional[Tensor] = None
        self._perm_epoch = -1
        self.prepare_seconds = time.perf_counter() - t0

    def _parameter_groups(self) -> list[dict]:
        """AdamW groups; each carries ``lr_scale``, its learning rate over the schedule's."""
        scores = getattr(self.model.frontend, "score_network", None)
        if scores is None:
            return [{"params": list(self.model.parameters()), "lr_scale": 1.0}]
        own = {id(p) for p in scores.parameters()}
        rest = [p for p in self.model.parameters() if id(p) not in own]
        return [{"params": rest, "lr_scale": 1.0},
                {"params": list(scores.parameters()), "lr_scale": self.config.score_learning_rate_scale, "scores": True}]

    def _fit_score_prior(self, n_steps: int) -> None:
        """Fit the score network's logits to an energy prior (frames above the clip's noise
        floor score high) before end-to-end training."""
        scores = self.model.frontend.score_network
        opt = torch.optim.Adam(scores.parameters(), lr=3e-3)
        x_all = self._features["train"]
        g = _derived_generator(self.config.seed, 5, 0, torch.device("cpu"))
        for k in range(n_steps):
            idx = torch.randint(0, x_all.shape[0], (self.batch_size,), generator=g).to(self.device)
            x = x_all[idx]
            energy = torch.logsumexp(x, dim=2)  # ln of summed power, [B, T]
            floor = torch.quantile(energy, 0.2, dim=1, keepdim=True)
            target = ((energy - floor) / 1.5 - 2.0).clamp(-4.0, 4.0)
            loss = F.mse_loss(scores(x), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    # -- read-outs --------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return self._steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self._steps_per_epoch * self.config.epochs

    @property
    def epoch(self) -> int:
        """Number of finished epochs."""
        return self.global_step // self._steps_per_epoch

    @property
    def finished(self) -> bool:
        return self.global_step >= self.total_steps

    @property
    def elapsed_seconds(self) -> float:
        """Training wall time so far (steps and validation; data preparation excluded)."""
        return self._elapsed

    @property
    def estimated_seconds_left(self) -> float:
        if self.finished:
            return 0.0
        if self.global_step == 0:
            return float("nan")
        per_step = self._elapsed / self.global_step
        return per_step * (self.total_steps - self.global_step)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask :meth:`fit` / :meth:`run_for` to return after the current step."""
        self._stop.set()

    def learning_rate_at(self, step: int) -> float:
        """Linear warm-up then cosine decay to 2 % of the peak, as a function of the step."""
        total = self.total_steps
        warm = max(1, int(round(self.config.warmup_fraction * total)))
        peak = self.config.learning_rate
        if step < warm:
            return peak * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))

    def reduction_rate_at(self, step: int) -> float:
        """Training reduction rate at ``step``: ``reduction_rate`` after the warm-up
        (``rate_warmup_fraction``), rising linearly from 0 during it."""
        target = self.config.reduction_rate
        warm = self.config.rate_warmup_fraction * self.total_steps
        if warm <= 0 or step >= warm:
            return target
        return target * step / warm

    # -- one step ---------------------------------------------------------------------
    def _batch_indices(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self._steps_per_epoch)
        if self._perm_epoch != epoch:
            g = _derived_generator(self.config.seed, 1, epoch, torch.device("cpu"))
            self._perm = torch.randperm(self.n_train, generator=g).to(self.device)
            self._perm_epoch = epoch
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def augment(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Augment a batch of log-mel ``[B, T, F]``; returns (log-mel, soft targets ``[B, C]``)."""
        cfg = self.config
        g = _derived_generator(cfg.seed, 2, step, self.device)
        batch, n_frames, n_mels = x.shape
        dev = x.device
        targets = F.one_hot(y, len(self.model_config.classes)).to(x.dtype)
        if self._shift > 0:
            shift = torch.randint(-self._shift, self._shift + 1, (batch, 1), generator=g, device=dev)
            idx = (torch.arange(n_frames, device=dev).unsqueeze(0) - shift) % n_frames
            x = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, n_mels))
        if cfg.freq_shift_bins > 0:
            k = cfg.freq_shift_bins
            fshift = torch.randint(-k, k + 1, (batch, 1), generator=g, device=dev)
            fidx = (torch.arange(n_mels, device=dev).unsqueeze(0) - fshift).clamp(0, n_mels - 1)
            x = torch.gather(x, 2, fidx.unsqueeze(1).expand(-1, n_frames, -1))
        if cfg.gain_db > 0:
            gain = (torch.rand(batch, 1, 1, generator=g, device=dev) * 2 - 1) * cfg.gain_db * _LOG10_OVER_10
            x = torch.where(x > _FLOOR + 1e-3, x + gain, x)
        if cfg.eq_db > 0:
            order = torch.arange(1, 5, device=dev, dtype=x.dtype).view(1, -1, 1)
            pos = torch.linspace(0, 1, n_mels, device=dev, dtype=x.dtype).view(1, 1, -1)
            coef = torch.rand(batch, 4, 1, generator=g, device=dev) * 2 - 1
            curve = (coef * torch.cos(math.pi * order * pos)).sum(dim=1, keepdim=True)  # [B, 1, F]
            depth = torch.rand(batch, 1, 1, generator=g, device=dev) * cfg.eq_db * _LOG10_OVER_10
            curve = curve / curve.abs().amax(dim=2, keepdim=True).clamp(min=1e-6) * depth
            x = torch.where(x > _FLOOR + 1e-3, x + curve, x)
        if cfg.reverb_probability > 0:
            x = self._reverb(x, g)
        if cfg.mixup_alpha > 0 and cfg.mixup_probability > 0:
            if float(torch.rand((), generator=g, device=dev)) < cfg.mixup_probability:
                lam = _beta_sample(cfg.mixup_alpha, batch, g, dev)
                lam = torch.maximum(lam, 1 - lam)  # the first clip dominates
                partner = torch.randperm(batch, generator=g, device=dev)
                lw = lam.view(batch, 1, 1)
                x = torch.logaddexp(x + torch.log(lw), x[partner] + torch.log1p(-lw + 1e-6))
                targets = lam.view(batch, 1) * targets + (1 - lam.view(batch, 1)) * targets[partner]
        if cfg.noise_probability > 0:
            lo, hi = cfg.noise_snr_db
            snr = lo + torch.rand(batch, 1, 1, generator=g, device=dev) * (hi - lo)
            level = torch.logsumexp(x.reshape(batch, -1), dim=1).view(batch, 1, 1) - math.log(n_frames * n_mels)
            slope = (torch.rand(batch, 1, 1, generator=g, device=dev) * 4 - 2) * torch.linspace(-1, 1, n_mels, device=dev).view(1, 1, -1)
            # per-cell fluctuation of a mel band's noise power (roughly chi-square, ~log-normal)
            jitter = 0.5 * torch.randn(batch, n_frames, n_mels, generator=g, device=dev)
            noise = level - snr * _LOG10_OVER_10 + slope + jitter
            on = torch.rand(batch, 1, 1, generator=g, device=dev) < cfg.noise_probability
            x = torch.where(on, torch.logaddexp(x, noise), x)
        if cfg.spec_augment:
            # spec_augment draws the masks (filled with ln(1e-10)); write mask_fill there
            probe = spec_augment(torch.zeros_like(x), max_time_mask=self._time_mask, max_freq_mask=cfg.freq_mask_bins,
                                 n_time_masks=cfg.n_time_masks, n_freq_masks=cfg.n_freq_masks, generator=g)
            x = x.masked_fill(probe < 0, cfg.mask_fill)
        return x, targets

    def _reverb(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Late reverb on a share of the batch (``TrainConfig.reverb_*``); ``[B, T, F]`` log-mel in and out."""
        cfg = self.config
        batch, n_frames, n_mels = x.shape
        dev, dtype = x.device, x.dtype
        hop_s = cfg.hop_ms / 1000.0
        rt_lo, rt_hi = cfg.reverb_seconds
        rt = rt_lo + torch.rand(batch, 1, 1, generator=g, device=dev, dtype=dtype) * (rt_hi - rt_lo)
        rt = rt * (1.0 - 0.4 * torch.linspace(0, 1, n_mels, device=dev, dtype=dtype).view(1, 1, -1))  # [B, 1, F]
        drr_lo, drr_hi = cfg.reverb_drr_db
        drr = drr_lo + torch.rand(batch, 1, 1, generator=g, device=dev, dtype=dtype) * (drr_hi - drr_lo)
        on = (torch.rand(batch, generator=g, device=dev) < cfg.reverb_probability).nonzero().squeeze(1)
        if on.numel() == 0:
            return x
        rt, drr, dry = rt[on], drr[on], x[on]  # only the examples that get a room
        n_tail = min(n_frames, max(1, int(math.ceil(rt_hi / hop_s))))  # the tail to -60 dB at the longest
        lag = torch.arange(1, n_tail + 1, device=dev, dtype=dtype).view(1, -1, 1) * hop_s
        decay = torch.exp(-math.log(1e6) * lag / rt)  # power envelope, [b, L, F]
        decay = decay / decay.sum(dim=1, keepdim=True) * (10.0 ** (-drr / 10.0))
        # float64: the FFT's round-off (about 1e-7 of the loudest cell in float32) would lift
        # silent cells by 10 nats or more; in float64 it stays far below the quietest cell
        power = torch.exp(dry.double())
        n_fft = n_frames + n_tail + 1  # linear, not circular, convolution
        kernel = F.pad(decay.double(), (0, 0, 1, 0))  # lag 0 (the direct sound) is not in the tail
        tail = torch.fft.irfft(torch.fft.rfft(power, n=n_fft, dim=1) * torch.fft.rfft(kernel, n=n_fft, dim=1),
                               n=n_fft, dim=1)[:, :n_frames]
        wet = torch.log(power + tail.clamp(min=0.0)).to(dtype)
        return x.index_copy(0, on, torch.maximum(wet, dry))

    def step(self) -> StepRecord:
        """One optimiser step on the next batch; finishes the epoch when it is the last."""
        if self.finished:
            raise ParameterError(f"training is finished ({self.config.epochs} epochs); resume with more epochs to continue.")
        t0 = time.perf_counter()
        cfg = self.config
        step = self.global_step
        idx = self._batch_indices(step)
        x, y = self._features["train"][idx], self._labels["train"][idx]
        x, targets = self.augment(x, y, step)
        lr = self.learning_rate_at(step)
        frozen = step < cfg.score_freeze_fraction * self.total_steps
        for group in self.optimizer.param_groups:
            scale = group.get("lr_scale", 1.0)
            group["lr"] = 0.0 if (frozen and group.get("scores")) else lr * scale
        if step == 0 and cfg.score_prior_steps > 0:
            self._fit_score_prior(cfg.score_prior_steps)
        rate = self.reduction_rate_at(step)
        self.model.train()
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            torch.manual_seed((cfg.seed * 31 + step * 17 + 3) % (2**63 - 1))  # dropout
            logits, out = self.model.forward_with_frontend(x, reduction_rate=rate)
            ce = F.cross_entropy(logits, targets, label_smoothing=cfg.label_smoothing)
            guide = out.guide_loss
            if cfg.guide_loss_relative and self.model.config.frontend == "diffres":
                guide = Fn.guide_loss(out.importance, out.empty, rate, relative=True)
            loss = ce + cfg.guide_loss_weight * guide if cfg.guide_loss_weight > 0 else ce
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
        with torch.no_grad():
            acc = float((logits.argmax(1) == targets.argmax(1)).float().mean())
        self.global_step += 1
        seconds = time.perf_counter() - t0
        self._elapsed += seconds
        self._epoch_seconds += seconds
        rec = StepRecord(self.global_step, step // self._steps_per_epoch, float(loss.detach()), acc,
                         float(guide.detach()), float(out.activeness), lr, seconds)
        self._epoch_acc.append((rec.loss, rec.accuracy, rec.guide_loss, rec.activeness))
        epoch_rec = None
        if self.global_step % self._steps_per_epoch == 0:
            epoch_rec = self._end_epoch()
            rec = replace(rec, epoch_end=epoch_rec)
        for cb in self.callbacks:
            if hasattr(cb, "on_step"):
                cb.on_step(self, rec)
        if epoch_rec is not None:
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch"):
                    cb.on_epoch(self, epoch_rec)
        return rec

    def probe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eval-mode importance ``[T]``, merged log-mel ``[T', F]`` and bin edges ``[T'+1]``
        of the probe clip."""
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model.frontend(self.probe_log_mel)
        finally:
            self.model.train(was)
        return (out.importance[0].float().cpu().numpy(), out.avg[0].float().cpu().numpy(),
                out.bin_edges[0].float().cpu().numpy())

    def _end_epoch(self) -> EpochRecord:
        t0 = time.perf_counter()
        val = self.evaluate("val") if "val" in self._labels else None
        imp, merged, edges = self.probe()
        eval_seconds = time.perf_counter() - t0
        self._elapsed += eval_seconds
        stats = np.asarray(self._epoch_acc, dtype=np.float64).mean(axis=0) if self._epoch_acc else np.full(4, np.nan)
        rec = EpochRecord(
            epoch=self.epoch, global_step=self.global_step,
            train_loss=float(stats[0]), train_accuracy=float(stats[1]), guide_loss=float(stats[2]),
            activeness=float(stats[3]),
            val_loss=float(val.loss) if val is not None else float("nan"),
            val_accuracy=float(val.accuracy) if val is not None else float("nan"),
            seconds=self._epoch_seconds + eval_seconds,
            probe_importance=imp, probe_merged=merged, probe_bin_edges=edges,
        )
        self.history.append(rec)
        self._epoch_acc = []
        self._epoch_seconds = 0.0
        return rec

    # -- loops ------------------------------------------------------------------------
    def run_for(self, seconds: float) -> list[StepRecord]:
        """Run steps for about ``seconds`` (at least one step unless finished; never past an
        epoch end; a :meth:`request_stop` from another thread ends it after the current
        step).  Returns the steps' records."""
        records: list[StepRecord] = []
        if self.finished:
            return records
        t0 = time.perf_counter()
        while not self.finished:
            rec = self.step()
            records.append(rec)
            if self._stop.is_set():
                self._stop.clear()  # honoured: the next call trains again
                break
            if rec.epoch_end is not None or time.perf_counter() - t0 >= seconds:
                break
        return records

    def fit(self, callbacks: Iterable[Callback] = (), stop: Union[threading.Event, Callable[[], bool], None] = None) -> list[EpochRecord]:
        """Train until ``config.epochs`` are done or a stop is requested (``stop`` set /
        returning True, or :meth:`request_stop`); returns :attr:`history`."""
        extra = list(callbacks)
        self.callbacks.extend(extra)
        try:
            while not self.finished:
                if self._stop.is_set():
                    break
                if stop is not None and (stop.is_set() if isinstance(stop, threading.Event) else stop()):
                    break
                self.step()
        finally:
            for cb in extra:
                self.callbacks.remove(cb)
        self._stop.clear()
        return self.history

    # -- evaluation -------------------------------------------------------------------
    def features(self, split: str) -> tuple[Tensor, Tensor]:
        """Cached log-mel ``[N, T, F]`` and labels ``[N]`` of a split."""
        if split not in self._labels:
            raise ParameterError(f"split must be one of {', '.join(self._labels)}, got {split!r}.")
        return self._features[split], self._labels[split]

    def evaluate(self, split: str = "val", reduction_rate: float | None = None) -> EvalResult:
        """Evaluate the current model on a split (eval mode; the model returns to its mode)."""
        if split not in ("train", "val", "test"):
            raise ParameterError(f"split must be 'train', 'val' or 'test', got {split!r}.")
        if reduction_rate is not None and not (0.0 <= float(reduction_rate) < 1.0):
            raise ParameterError(f"reduction_rate must be in [0, 1), got {reduction_rate!r}.")
        x, y = self.features(split)
        return evaluate_model(self.model, x, y, reduction_rate=reduction_rate)

    # -- persistence ------------------------------------------------------------------
    def card(self, card_extra: dict | None = None, *, with_test: bool = True) -> dict:
        """The model card fields this trainer knows (see :func:`diffres.save_checkpoint`)."""
        val = self.evaluate("val") if "val" in self._labels else None
        test = self.evaluate("test") if with_test and "test" in self._labels else None
        val_acc = None if val is None or math.isnan(val.accuracy) else round(val.accuracy, 4)
        test_acc = None if test is None or math.isnan(test.accuracy) else round(test.accuracy, 4)
        ds = self.dataset
        card = {
            "dataset": self.dataset_name,
            "metrics": {"val_accuracy": val_acc, "test_accuracy": test_acc,
                        "n_val": None if val is None else val.n, "n_test": None if test is None else test.n},
            "train_seconds": round(self._elapsed, 2),
            "epochs": self.epoch,
            "global_step": self.global_step,
            "seed": self.config.seed,
            "data_source": getattr(ds, "source_description", "") or "",
            "n_train": self.n_train,
            "training": self.config.to_dict(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        card.update(card_extra or {})
        return card

    def training_state(self, *, include_optimizer: bool = True) -> dict:
        """Plain containers (tensors, numbers, JSON text) that :meth:`resume` needs."""
        scalars = [{k: v for k, v in h.to_dict().items() if not k.startswith("probe_")} for h in self.history]
        probes = [{k: torch.from_numpy(np.asarray(getattr(h, k), dtype=np.float32))
                   for k in ("probe_importance", "probe_merged", "probe_bin_edges") if getattr(h, k) is not None}
                  for h in self.history]
        state = {
            "config": json.dumps(self.config.to_dict()),
            "history": json.dumps(scalars),
            "history_probes": probes,  # tensors: 4 bytes a value instead of ~20 as JSON text
            "global_step": int(self.global_step),
            "elapsed_seconds": float(self._elapsed),
        }
        if include_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def save(self, path, card_extra: dict | None = None, *, include_optimizer: bool = True) -> dict:
        """Save weights, model card and training state (for :meth:`resume`); returns the card.

        Shipped checkpoints set ``include_optimizer=False`` to stay small (resume then
        restarts the optimiser's moments)."""
        return save_checkpoint(path, self.model, card=self.card(card_extra),
                               training_state=self.training_state(include_optimizer=include_optimizer))

    @classmethod
    def resume(cls, checkpoint_path, dataset=None, *, epochs: int | None = None,
               progress: Optional[ProgressFn] = None, device: str | None = None) -> "Trainer":
        """Rebuild a trainer from a checkpoint saved by :meth:`save` and continue from its
        step (``epochs`` raises the target number of epochs)."""
        loaded = load_checkpoint(checkpoint_path)
        state = loaded.training_state
        if not state or "config" not in state:
            raise CheckpointError("this checkpoint holds no training state (it was saved for inference only); "
                                  "train a new model instead.")
        try:
            cfg = TrainConfig.from_dict(json.loads(state["config"]))
            records = json.loads(state.get("history", "[]"))
            probes = state.get("history_probes") or [{} for _ in records]
            if len(probes) != len(records):
                raise ValueError("history and its probe curves differ in length")
            history = [EpochRecord.from_dict({**h, **{k: v.numpy() for k, v in p.items()}})
                       for h, p in zip(records, probes)]
        except (TypeError, ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"the checkpoint's training state is malformed ({exc}).") from None
        changes = {}
        if epochs is not None:
            changes["epochs"] = epochs
        if device is not None:
            changes["device"] = device
        if changes:
            cfg = replace(cfg, **changes)
        trainer = cls(cfg, dataset, progress=progress)
        if tuple(trainer.model_config.classes) != tuple(loaded.model.config.classes):
            raise CheckpointError("the dataset's classes differ from the checkpoint's; resume with the same dataset.")
        trainer.model.load_state_dict(loaded.model.state_dict())
        if "optimizer" in state:
            trainer.optimizer.load_state_dict(state["optimizer"])
            for s in trainer.optimizer.state.values():
                for k, v in s.items():
                    if isinstance(v, Tensor) and k != "step":
                        s[k] = v.to(trainer.device)
        trainer.global_step = int(state.get("global_step", 0))
        trainer._elapsed = float(state.get("elapsed_seconds", 0.0))
        trainer.history = history
        return trainer


def _beta_sample(alpha: float, n: int, g: torch.Generator, device) -> Tensor:
    """``n`` draws from Beta(alpha, alpha), exactly: the inverse of its CDF (scipy's
    ``betaincinv``) at uniforms from ``g``, so the draws are reproducible from the
    generator alone and need no rejection loop.  ``[n]`` float32 on ``device``."""
    from scipy.special import betaincinv

    u = torch.rand(n, generator=g, device=device, dtype=torch.float64).cpu().numpy()
    return torch.from_numpy(betaincinv(alpha, alpha, u)).to(device=device, dtype=torch.float32)


# ---------------------------------------------------------------------------------------
# checkpoint evaluation and rate sweeps
# ---------------------------------------------------------------------------------------
def _dataset_for_model(model: AudioClassifier, data, *, progress=None):
    """(log-mel, labels) of every clip of ``data`` mapped to ``model``'s classes by name.

    ``data``: a built-in name (its test split), a folder / zip (all its clips), or an
    AudioDataset (its test split when non-empty, else all clips)."""
    from .datasets import AudioDataset  # noqa: F401  (lazy)

    builtin = False
    if isinstance(data, (str, Path)):
        from .datasets import BUILTIN_DATASETS, load_folder_dataset
        from .datasets.cache import MANIFEST

        path = Path(data).expanduser()
        if isinstance(data, str) and data in BUILTIN_DATASETS:
            builtin = True
            ds = _load_dataset(data, sample_rate=model.config.sample_rate, seed=0, progress=progress, max_files_per_class=None)
        elif path.is_dir() and (path / MANIFEST).is_file():
            builtin = True  # a full export of a built dataset: keep its held-out test split
            ds = _load_dataset(path, sample_rate=model.config.sample_rate, seed=0, progress=progress, max_files_per_class=None)
        else:
            if not path.exists():
                raise DatasetError(f"{str(data)!r} does not exist; give a folder with one sub-folder of audio per class.")
            ds = load_folder_dataset(path, sample_rate=model.config.sample_rate, progress=progress, min_clips_per_class=1)
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
    index = {c: i for i, c in enumerate(model.classes)}
    unknown = [c for c in ds.classes if c not in index]
    if unknown:
        raise DatasetError(f"the data has classes the model does not know: {', '.join(unknown)}; "
                           f"the model's classes are: {', '.join(model.classes)}.")
    remap = np.array([index[c] for c in ds.classes], dtype=np.int64)
    waves = np.concatenate([p.waveforms for p in parts])
    labels = remap[np.concatenate([p.labels for p in parts])]
    return log_mel_of(model, waves), labels


def evaluate_checkpoint(path, data_dir_or_dataset, *, reduction_rate: float | None = None,
                        progress: Optional[ProgressFn] = None) -> EvalResult:
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
    for r in rates:
        if not (0.0 <= float(r) < 1.0):
            raise ParameterError(f"every rate must be in [0, 1), got {r!r}.")
    if isinstance(split, tuple):
        x, y = split
        x = torch.as_tensor(x)
    else:
        x, y = log_mel_of(model, split.waveforms), split.labels
    return [(float(r), float(evaluate_model(model, x, y, reduction_rate=float(r)).accuracy)) for r in rates]
