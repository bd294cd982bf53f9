"""Classifiers over a front-end's output, and the whole model (mel -> front-end -> CNN).

Shapes: log-mel ``[B, T, F]``; front-end features ``[B, C, T', F]``; logits
``[B, n_classes]``.  The classifier pools globally over time, so one trained model runs at
any reduction rate and clip length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .audio import fit_length
from .core import FrontendOutput
from .errors import ParameterError
from .features import MelFrontend
from .frontends import FRONTENDS, make_frontend

__all__ = ["ModelConfig", "SmallCNN", "AudioClassifier", "Prediction"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`AudioClassifier` (stored in checkpoints).

    Attributes:
        classes: class names in output order.
        frontend: a name from :data:`diffres.frontends.FRONTENDS`.
        reduction_rate: fraction of frames removed, in [0, 1).
        sample_rate: Hz.
        n_mels: mel bins.
        hop_ms: mel hop in milliseconds.
        win_ms: mel window in milliseconds.
        f_min: lowest mel frequency, Hz.
        f_max: highest mel frequency, Hz (None = Nyquist).
        clip_seconds: length the model was trained on (inputs are padded/cropped to it).
        width: channels of the CNN's first block (later blocks scale from it).
    """

    classes: tuple[str, ...]
    frontend: str = "diffres"
    reduction_rate: float = 0.75
    sample_rate: int = 16000
    n_mels: int = 64
    hop_ms: float = 10.0
    win_ms: float = 25.0
    f_min: float = 0.0
    f_max: float | None = None
    clip_seconds: float = 2.0
    width: int = 24

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if len(self.classes) < 2:
            raise ParameterError(f"a classifier needs at least 2 classes, got {list(self.classes)}.")
        if len(set(self.classes)) != len(self.classes):
            raise ParameterError(f"class names must be unique, got {list(self.classes)}.")
        if self.frontend not in FRONTENDS:
            raise ParameterError(f"unknown front-end {self.frontend!r}; choose one of: {', '.join(FRONTENDS)}.")
        if not (0.0 <= float(self.reduction_rate) < 1.0):
            raise ParameterError(f"reduction_rate must be in [0, 1), got {self.reduction_rate!r}.")
        if not (0.05 <= float(self.clip_seconds) <= 60.0):
            raise ParameterError(f"clip_seconds must be in [0.05, 60], got {self.clip_seconds!r}.")
        if not (4 <= int(self.width) <= 256):
            raise ParameterError(f"width must be in [4, 256], got {self.width!r}.")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class SmallCNN(nn.Module):
    """Four conv blocks (3x3 conv, BN, ReLU, 2x2 max-pool) and a global-pooling head.

    ``[B, C, T', F] -> [B, n_classes]``; works for any ``T' >= 1`` (pooling rounds up).
    Input channels are standardised by a BatchNorm (log power and the position code have
    very different scales).
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 24, dropout: float = 0.2) -> None:
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
        order = np.argsort(-self.probabilities)[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]


class AudioClassifier(nn.Module):
    """Mel front-end (fixed), time-reduction front-end and :class:`SmallCNN`.

    ``forward(log_mel)`` takes precomputed log-mel ``[B, T, F]`` (training caches it);
    :meth:`predict` takes a waveform.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = MelFrontend(config.sample_rate, config.n_mels, config.hop_ms, config.win_ms, config.f_min, config.f_max)
        self.frontend = make_frontend(config.frontend, config.n_mels, config.reduction_rate)
        self.classifier = SmallCNN(self.frontend.n_channels, len(config.classes), config.width)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.config.classes

    @property
    def clip_samples(self) -> int:
        return int(round(self.config.clip_seconds * self.config.sample_rate))

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_with_frontend(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> tuple[Tensor, FrontendOutput]:
        """``[B, T, F]`` -> (logits ``[B, n_classes]``, front-end output)."""
        out = self.frontend(log_mel, reduction_rate=reduction_rate)
        return self.classifier(out.features), out

    def forward(self, log_mel: Tensor, *, reduction_rate: float | None = None) -> Tensor:
        return self.forward_with_frontend(log_mel, reduction_rate=reduction_rate)[0]

    def fit_length(self, waveform: np.ndarray | Tensor) -> Tensor:
        """A ``[n]`` or ``[B, n]`` waveform as ``[B, clip_samples]``, centre-cropped or
        centre-padded by :func:`diffres.audio.fit_length` (the rule the datasets use too)."""
        w = torch.as_tensor(np.asarray(waveform, dtype=np.float32) if not isinstance(waveform, Tensor) else waveform)
        if w.dim() == 1:
            w = w.unsqueeze(0)
        return fit_length(w, self.clip_samples)

    @torch.no_grad()
    def predict(self, waveform: np.ndarray | Tensor, *, reduction_rate: float | None = None, fit: bool = True) -> Prediction:
        """Classify one clip (float samples at ``config.sample_rate``) in eval mode.

        ``fit=True`` crops/pads to the training length; ``fit=False`` keeps the whole clip
        (the classifier pools globally, so any length works).
        """
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            w = self.fit_length(waveform) if fit else torch.as_tensor(np.asarray(waveform, dtype=np.float32)).reshape(1, -1)
            log_mel = self.mel(w.to(device))
            logits, out = self.forward_with_frontend(log_mel, reduction_rate=reduction_rate)
            probs = torch.softmax(logits, dim=1)[0].cpu().numpy()
        finally:
            self.train(was_training)
        return Prediction(probs, self.classes, out, log_mel)
