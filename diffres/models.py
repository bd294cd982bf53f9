"""Classifiers over a front-end's output, and the whole model (mel -> front-end -> CNN).

Shapes: log-mel ``[B, T, F]``; front-end features ``[B, C, T', F]``; logits
``[B, n_classes]``.  The classifier pools globally over time, so one trained model runs at
any reduction rate and clip length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .audio import fit_length
from .core import DIFFRES_CHANNELS, IMPORTANCE_MODES, FrontendOutput
from .errors import ParameterError
from .features import MelConfig, MelFrontend
from .frontends import FRONTENDS, make_frontend
from .functional import check_rate
from .names import check_name

__all__ = ["DEFAULT_MEL", "ModelConfig", "SmallCNN", "AudioClassifier", "Prediction", "top_classes"]


#: Mel settings of a model unless told otherwise (64 bands; :class:`MelFrontend`'s own default
#: is 128).  :class:`diffres.training.TrainConfig` takes its defaults from here too.
DEFAULT_MEL = MelConfig(n_mels=64)

_MEL_FIELDS = tuple(f.name for f in fields(MelConfig))
#: Most classes a classifier may have.
MAX_CLASSES = 1000


def _check_class_names(classes: tuple[str, ...]) -> None:
    if len(set(classes)) != len(classes):
        raise ParameterError(f"class names must be unique, got {list(classes)}.")
    for c in classes:
        why = check_name(c, "a class name")
        if why:
            raise ParameterError(f"{why}.")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(value)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`AudioClassifier` (stored in checkpoints).

    Attributes:
        classes: class names in output order.
        frontend: a name from :data:`diffres.frontends.FRONTENDS`.
        reduction_rate: fraction of frames removed, in [0, 1).
        mel: the mel front-end's settings (sample rate in Hz, bands, hop and window in ms,
            frequency range in Hz); default :data:`DEFAULT_MEL`.
        clip_seconds: length the model was trained on (inputs are padded/cropped to it).
        width: channels of the CNN's first block (later blocks scale from it).
        diffres_channels: DiffRes only: the merged channels the classifier gets
            (:data:`~diffres.core.DIFFRES_CHANNELS` by default; ablations use fewer).
        importance: DiffRes only: ``"learned"`` or ``"uniform"`` (an ablation; see
            :class:`~diffres.core.DiffRes`).

    The mel settings read as attributes too (``config.n_mels``, ``config.hop_ms``...), and
    :meth:`to_dict` writes them flat, as the model cards have always held them.

    Example:
        >>> cfg = ModelConfig.from_dict({"classes": ["a", "b"], "hop_ms": 5.0})
        >>> cfg.n_mels, cfg.hop_ms, cfg.to_dict()["sample_rate"]
        (64, 5.0, 16000)
    """

    classes: tuple[str, ...]
    frontend: str = "diffres"
    reduction_rate: float = 0.75
    mel: MelConfig = DEFAULT_MEL
    clip_seconds: float = 2.0
    width: int = 16
    diffres_channels: tuple[str, ...] = DIFFRES_CHANNELS
    importance: str = "learned"

    def __post_init__(self) -> None:
        for name in ("classes", "diffres_channels"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ParameterError(f"{name} must be a list of names, got {value!r}.")
            object.__setattr__(self, name, tuple(str(c) for c in value))
        if not self.diffres_channels or not set(self.diffres_channels) <= set(DIFFRES_CHANNELS):
            raise ParameterError(
                f"diffres_channels must be a non-empty subset of {DIFFRES_CHANNELS}, got {self.diffres_channels!r}."
            )
        if not isinstance(self.importance, str) or self.importance not in IMPORTANCE_MODES:
            raise ParameterError(f"importance must be one of {IMPORTANCE_MODES}, got {self.importance!r}.")
        if not 2 <= len(self.classes) <= MAX_CLASSES:
            raise ParameterError(
                f"a classifier needs at least 2 classes and at most {MAX_CLASSES}, got {len(self.classes)}."
            )
        _check_class_names(self.classes)
        if not isinstance(self.frontend, str) or self.frontend not in FRONTENDS:
            raise ParameterError(f"unknown front-end {self.frontend!r}; choose one of: {', '.join(FRONTENDS)}.")
        check_rate(self.reduction_rate)
        if not isinstance(self.mel, MelConfig):
            raise ParameterError(f"mel must be a MelConfig, got {type(self.mel).__name__}.")
        self.mel.validate()
        if not _is_number(self.clip_seconds) or not (0.05 <= float(self.clip_seconds) <= 60.0):
            raise ParameterError(f"clip_seconds must be in [0.05, 60], got {self.clip_seconds!r}.")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or not (4 <= self.width <= 256):
            raise ParameterError(f"width must be in [4, 256], got {self.width!r}.")

    # the mel settings, read through (every caller used to find them here)
    @property
    def sample_rate(self) -> int:
        """Hz."""
        return self.mel.sample_rate

    @property
    def n_mels(self) -> int:
        return self.mel.n_mels

    @property
    def hop_ms(self) -> float:
        return self.mel.hop_ms

    @property
    def win_ms(self) -> float:
        return self.mel.win_ms

    @property
    def f_min(self) -> float:
        """Hz."""
        return self.mel.f_min

    @property
    def f_max(self) -> float | None:
        """Hz (None = Nyquist)."""
        return self.mel.f_max

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-safe fields (the model card's layout: mel settings at the top level)."""
        d: dict[str, Any] = {
            "classes": list(self.classes),
            "frontend": self.frontend,
            "reduction_rate": self.reduction_rate,
        }
        d.update(asdict(self.mel))
        d.update(clip_seconds=self.clip_seconds, width=self.width)
        if self.frontend == "diffres":
            d.update(diffres_channels=list(self.diffres_channels), importance=self.importance)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict`'s layout (unknown keys are ignored; missing mel
        settings take :data:`DEFAULT_MEL`'s)."""
        mel = replace(DEFAULT_MEL, **{k: data[k] for k in _MEL_FIELDS if k in data})
        known = {f.name for f in fields(cls)} - {"mel"}
        return cls(mel=mel, **{k: v for k, v in data.items() if k in known})


class SmallCNN(nn.Module):
    """Four conv blocks (3x3 conv, BN, ReLU, 2x2 max-pool) and a global-pooling head.

    ``[B, C, T', F] -> [B, n_classes]``; works for any ``T' >= 1`` (pooling rounds up).
    Input channels are standardised by a BatchNorm (log power and the position code have
    very different scales).
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = ModelConfig.width, dropout: float = 0.2) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, max(width * 4, 128)]
        self.input_norm = nn.BatchNorm2d(in_channels)
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c_in, n_classes)

    def embed(self, features: Tensor) -> Tensor:
        """``[B, C, T', F] -> [B, 2 * channels]``: mean and max over time of the freq-mean."""
        h = self.body(self.input_norm(features)).mean(dim=3)  # [B, ch, T'']
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)

    def forward(self, features: Tensor) -> Tensor:
        return self.head(self.dropout(self.embed(features)))


@dataclass(frozen=True)
class Prediction:
    """A prediction for one clip: ``probabilities`` ``[n_classes]`` and the front-end output
    (batch of one) that led to it."""

    probabilities: np.ndarray
    classes: tuple[str, ...]
    frontend: FrontendOutput
    log_mel: Tensor

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes, most probable first."""
        return top_classes(self.probabilities, self.classes, k)


def top_classes(probabilities: np.ndarray, classes: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """``(class, probability)`` of the ``k`` most probable classes, most probable first.

    Example:
        >>> top_classes(np.array([0.2, 0.7, 0.1]), ["a", "b", "c"], 2)
        [('b', 0.7), ('a', 0.2)]
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[: max(0, int(k))]
    return [(str(classes[i]), float(p[i])) for i in order]


class AudioClassifier(nn.Module):
    """Mel front-end (fixed), time-reduction front-end and :class:`SmallCNN`.

    ``forward(log_mel)`` takes precomputed log-mel ``[B, T, F]`` (training caches it);
    :meth:`predict` takes a waveform.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = MelFrontend.from_config(config.mel)
        self.frontend = make_frontend(
            config.frontend,
            config.n_mels,
            config.reduction_rate,
            channels=config.diffres_channels,
            importance=config.importance,
        )
        self.classifier = SmallCNN(self.frontend.n_channels, len(config.classes), config.width)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.config.classes

    @property
    def clip_samples(self) -> int:
        return int(round(self.config.clip_seconds * self.config.sample_rate))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_with_frontend(
        self, log_mel: Tensor, *, reduction_rate: float | None = None
    ) -> tuple[Tensor, FrontendOutput]:
        """``[B, T, F]`` -> (logits ``[B, n_classes]``, front-end output)."""
        out = self.frontend(log_mel, reduction_rate=reduction_rate)
        return self.classifier(out.features), out

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> Tensor:
        return self.forward_with_frontend(log_mel, reduction_rate=reduction_rate)[0]

    @torch.no_grad()
    def classify(self, features: Tensor) -> Tensor:
        """Class probabilities ``[B, n_classes]`` of front-end ``features`` ``[B, C, T', F]``
        (a :attr:`FrontendOutput.features`), in eval mode; the module's mode is restored.

        The app merges a clip once per rate and reuses the features, so a rate change only
        runs this classifier.
        """
        if features.dim() != 4 or features.shape[1] != self.frontend.n_channels:
            raise ParameterError(
                f"features must be [batch, {self.frontend.n_channels}, frames, mels], "
                f"got shape {tuple(features.shape)}."
            )
        was_training = self.training
        self.eval()
        try:
            return torch.softmax(self.classifier(features), dim=1)
        finally:
            self.train(was_training)

    def fit_length(self, waveform: np.ndarray | Tensor) -> Tensor:
        """A ``[n]`` or ``[B, n]`` waveform as ``[B, clip_samples]``, centre-cropped or
        centre-padded by :func:`diffres.audio.fit_length` (the rule the datasets use too)."""
        w = torch.as_tensor(np.asarray(waveform, dtype=np.float32) if not isinstance(waveform, Tensor) else waveform)
        if w.dim() == 1:
            w = w.unsqueeze(0)
        return fit_length(w, self.clip_samples)

    @torch.no_grad()
    def predict(
        self, waveform: np.ndarray | Tensor, *, reduction_rate: float | None = None, fit: bool = True
    ) -> Prediction:
        """Classify one clip (float samples at ``config.sample_rate``) in eval mode.

        ``fit=True`` crops/pads to the training length; ``fit=False`` keeps the whole clip
        (the classifier pools globally, so any length works).
        """
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            w = (
                self.fit_length(waveform)
                if fit
                else torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
            )
            log_mel = self.mel(w.to(device))
            logits, out = self.forward_with_frontend(log_mel, reduction_rate=reduction_rate)
            probs = torch.softmax(logits, dim=1)[0].cpu().numpy()
        finally:
            self.train(was_training)
        return Prediction(probs, self.classes, out, log_mel)
