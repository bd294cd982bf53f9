"""The settings of a training run: :class:`TrainConfig` (stored in checkpoints for resume).

The model's defaults (front-end, rate, mel settings, width) come from
:class:`~diffres.models.ModelConfig` and :data:`~diffres.models.DEFAULT_MEL`, so a model
built by hand and one trained with default settings agree, and
:meth:`TrainConfig.model_config` is the one way back from a run's settings to its model's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

import torch

from ..audio import SAMPLE_RATE
from ..core import DIFFRES_CHANNELS, IMPORTANCE_MODES
from ..errors import ParameterError
from ..features import MelConfig
from ..frontends import FRONTENDS
from ..functional import check_rate
from ..models import DEFAULT_MEL, ModelConfig
from .augment import FLOOR

__all__ = ["TrainConfig", "resolve_device"]


#: Numeric fields: (low, high, whole number, low end open, high end open).
_BOUNDS: dict[str, tuple[float, float, bool, bool, bool]] = {
    "hop_ms": (0.5, 100.0, False, False, False),
    "win_ms": (1.0, 200.0, False, False, False),
    "n_mels": (4, 256, True, False, False),
    "epochs": (1, 10000, True, False, False),
    "batch_size": (2, 4096, True, False, False),
    "learning_rate": (0.0, 1.0, False, True, False),
    "weight_decay": (0.0, 1.0, False, False, False),
    "warmup_fraction": (0.0, 0.5, False, False, False),
    "seed": (0, 2**31 - 1, True, False, False),
    "dataset_seed": (0, 2**31 - 1, True, False, False),
    "max_files_per_class": (2, 10**7, True, False, False),  # when set
    "time_mask_ms": (0.0, 60000.0, False, False, False),
    "freq_mask_bins": (0, 512, True, False, False),
    "n_time_masks": (0, 16, True, False, False),
    "n_freq_masks": (0, 16, True, False, False),
    "mask_fill": (FLOOR, -13.9, False, False, False),
    "gain_db": (0.0, 40.0, False, False, False),
    "eq_db": (0.0, 40.0, False, False, False),
    "reverb_probability": (0.0, 1.0, False, False, False),
    "time_shift_ms": (0.0, 60000.0, False, False, False),
    "freq_shift_bins": (0, 64, True, False, False),
    "noise_probability": (0.0, 1.0, False, False, False),
    "mixup_alpha": (0.0, 100.0, False, False, False),
    "mixup_probability": (0.0, 1.0, False, False, False),
    "label_smoothing": (0.0, 0.5, False, False, False),
    "guide_loss_weight": (0.0, 100.0, False, False, False),
    "guide_floor_db": (0.0, 40.0, False, False, False),
    "score_learning_rate_scale": (0.0, 100.0, False, True, False),
    "score_prior_steps": (0, 100000, True, False, False),
    "score_prior_threshold": (-10.0, 20.0, False, False, False),
    "score_prior_gain": (0.0, 20.0, False, True, False),
    "score_prior_reach_ms": (0.0, 1000.0, False, False, False),
    "width": (4, 256, True, False, False),
    "probe_index": (0, 10**9, True, False, False),
}


def _check_number(name: str, value: Any, lo: float, hi: float, integer: bool, lo_open: bool, hi_open: bool) -> None:
    """A number (whole when ``integer``), finite, within the interval; else a ParameterError
    naming the field, the interval and the value."""
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
        guide_floor_db: also count as empty, for the guide loss, the frames within this
            many dB of the clip's own noise floor (0 = only the paper's empty frames: digital
            silence and SpecAugment masks); see :mod:`diffres.training.prior`.
        score_learning_rate_scale: the DiffRes score network's learning rate as a multiple
            of ``learning_rate`` (slower than the classifier, so that the noisy gradient
            reaching the scores early on does not erase the prior).
        score_prior_steps: before the first step, this many Adam steps fit the score
            network's logits to :func:`diffres.training.prior.energy_prior` (frames above
            the clip's noise floor score high); 0 = off (the paper's random start). A run
            makes at most half its training steps of this fit
            (:attr:`~diffres.training.Trainer.score_prior_steps`).

        The DiffRes-only defaults (``guide_floor_db`` 3, ``score_learning_rate_scale`` 0.3,
        the prior with 300 steps and a 20 ms reach) are the recipe chosen on the
        ``rhythms`` validation split (docs/RESULTS.md); ``guide_floor_db=0,
        score_learning_rate_scale=1, score_prior_steps=0`` is the paper's.
        score_prior_threshold, score_prior_gain, score_prior_reach_ms: the prior's level
            above the noise floor that maps to importance 0.5 (nepers), its logits per neper,
            and how far (ms) a loud frame lends its level to its neighbours.
        width: channels of the classifier CNN's first block (its dropout is fixed at 0.2).
        diffres_channels, importance: DiffRes ablations (:class:`~diffres.models.ModelConfig`).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        probe_index: index into the validation split of the clip whose importance curve
            and merged spectrogram are saved every epoch.
    """

    dataset: str | None = None
    frontend: str = ModelConfig.frontend
    reduction_rate: float = ModelConfig.reduction_rate
    hop_ms: float = DEFAULT_MEL.hop_ms
    win_ms: float = DEFAULT_MEL.win_ms
    n_mels: int = DEFAULT_MEL.n_mels
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    warmup_fraction: float = 0.05
    seed: int = 0
    dataset_seed: int = 0
    max_files_per_class: int | None = None
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
    guide_floor_db: float = 3.0
    score_learning_rate_scale: float = 0.3
    score_prior_steps: int = 300
    score_prior_threshold: float = 3.0
    score_prior_gain: float = 0.667
    score_prior_reach_ms: float = 20.0
    width: int = ModelConfig.width
    diffres_channels: tuple[str, ...] = ModelConfig.diffres_channels
    importance: str = ModelConfig.importance
    device: str = "auto"
    probe_index: int = 0

    #: The (low, high) range fields and the bounds each end must lie within.
    _RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "noise_snr_db": (-20.0, 100.0),
        "reverb_seconds": (0.05, 5.0),
        "reverb_drr_db": (-30.0, 40.0),
    }

    def __post_init__(self) -> None:
        self._normalise_ranges()
        object.__setattr__(self, "diffres_channels", tuple(str(c) for c in self.diffres_channels))
        if self.dataset is not None and not isinstance(self.dataset, str):
            object.__setattr__(self, "dataset", str(self.dataset))
        if self.frontend not in FRONTENDS:
            raise ParameterError(f"frontend must be one of {', '.join(FRONTENDS)}; got {self.frontend!r}.")
        check_rate(self.reduction_rate)
        for name, bounds in _BOUNDS.items():
            if name != "max_files_per_class" or self.max_files_per_class is not None:
                _check_number(name, getattr(self, name), *bounds)
        if self.importance not in IMPORTANCE_MODES:
            raise ParameterError(f"importance must be one of {IMPORTANCE_MODES}, got {self.importance!r}.")
        if not self.diffres_channels or not set(self.diffres_channels) <= set(DIFFRES_CHANNELS):
            raise ParameterError(
                f"diffres_channels must be a non-empty subset of {DIFFRES_CHANNELS}, got {self.diffres_channels!r}."
            )
        for flag in ("spec_augment", "guide_loss_relative"):
            if not isinstance(getattr(self, flag), bool):
                raise ParameterError(f"{flag} must be True or False, got {getattr(self, flag)!r}.")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")
        ):
            raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}.")

    def _normalise_ranges(self) -> None:
        """Each (low, high) field as a tuple of floats within its bounds."""
        for name, (bottom, top) in self._RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ParameterError(f"{name} must be a (low, high) pair, got {value!r}.")
            lo, hi = (float(v) for v in value)
            if not (bottom <= lo <= hi <= top):  # also false for NaN
                raise ParameterError(f"{name} must satisfy {bottom:g} <= low <= high <= {top:g}, got {(lo, hi)!r}.")
            object.__setattr__(self, name, (lo, hi))

    def model_config(self, classes: Sequence[str], clip_seconds: float, sample_rate: int = SAMPLE_RATE) -> ModelConfig:
        """The :class:`~diffres.models.ModelConfig` of the model these settings train on data
        of ``classes`` (names in output order), clips of ``clip_seconds`` at ``sample_rate``
        Hz: the front-end, rate, mel settings, width and DiffRes ablations (both trainers
        build their model from it).

        Example:
            >>> cfg = TrainConfig(n_mels=32, reduction_rate=0.5).model_config(("a", "b"), 1.0)
            >>> cfg.n_mels, cfg.reduction_rate, cfg.mel.hop_length, cfg.width
            (32, 0.5, 160, 16)
        """
        mel = MelConfig(sample_rate=int(sample_rate), n_mels=self.n_mels, hop_ms=self.hop_ms, win_ms=self.win_ms)
        return ModelConfig(
            classes=tuple(classes),
            frontend=self.frontend,
            reduction_rate=self.reduction_rate,
            mel=mel,
            clip_seconds=float(clip_seconds),
            width=self.width,
            diffres_channels=self.diffres_channels,
            importance=self.importance,
        )

    #: The settings that switch every augmentation of
    #: :func:`~diffres.training.augment.augment` off.
    NO_AUGMENTATION: ClassVar[dict[str, Any]] = {
        "spec_augment": False,
        "gain_db": 0.0,
        "eq_db": 0.0,
        "reverb_probability": 0.0,
        "time_shift_ms": 0.0,
        "freq_shift_bins": 0,
        "noise_probability": 0.0,
        "mixup_alpha": 0.0,
    }

    def without_augmentation(self) -> TrainConfig:
        """This config with every augmentation off (:data:`NO_AUGMENTATION`): training sees
        the clips as they are, e.g. to compare N data-parallel processes with one exactly
        (each rank augments its own share of a batch from its own random stream).

        Example:
            >>> cfg = TrainConfig(mixup_alpha=0.4).without_augmentation()
            >>> cfg.spec_augment, cfg.mixup_alpha, cfg.gain_db, cfg.noise_probability
            (False, 0.0, 0.0, 0.0)
        """
        return replace(self, **self.NO_AUGMENTATION)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in (*self._RANGES, "diffres_channels"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # range lists become tuples in __post_init__


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} was asked for but no CUDA GPU is available; use 'cpu' or 'auto'.")
    return torch.device(device)
