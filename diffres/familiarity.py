"""How familiar a sound is to a trained model: a calibrated out-of-distribution score.

A classifier answers with one of its classes whatever it hears.  This module measures how
far a clip lies from the model's training data in two views, each a Mahalanobis distance
calibrated on held-out clips of the model's own dataset (``distance / threshold``, the
threshold being the 99th percentile there):

- **what the classifier sees**: the pooled features its head reads
  (:meth:`SmallCNN.embed`), against the class means under a shared covariance (Lee et al.,
  "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial
  Attacks", NeurIPS 2018).  Blind to what the classes never needed to tell apart;
- **what the sound is like**: a summary of the log-mel itself (:func:`clip_summary`: the
  spectral shape and spread per band, how far frames rise above the noise floor, how fast
  they change), against one Gaussian.  It notices a sustained piano note shown to a model
  of clicks in noise, which the first view can miss.

The score is the larger of the two: above 1 means that in at least one view the clip is less
familiar than 99 % of the model's own held-out clips.  The statistics travel inside the
checkpoint (:func:`diffres.save_checkpoint`'s ``familiarity``).

Shapes: log-mel ``[N, T, F]``; embeddings and summaries ``[N, D]``.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> emb = torch.randn(300, 4, generator=g)
    >>> gauss = Gaussian.fit(emb[:200], torch.zeros(200, dtype=torch.long), emb[200:], n_classes=1)
    >>> bool((gauss.score(emb[200:]) <= 1.0).float().mean() >= 0.95)
    True
    >>> bool(gauss.score(emb[:1] + 50.0)[0] > 1.0)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError, ParameterError

__all__ = ["Gaussian", "Familiarity", "embed", "clip_summary", "score_clip", "QUANTILE"]

#: The held-out quantile that a score of 1.0 marks.
QUANTILE = 0.99
_SHRINK = 0.1  # covariance shrinkage towards its mean variance (keeps it invertible)
_BATCH = 128


@torch.no_grad()
def embed(model: Any, log_mel: Tensor) -> Tensor:
    """``[N, T, F]`` log-mel -> ``[N, D]`` classifier embeddings (eval mode, batched)."""
    was = model.training
    model.eval()
    try:
        out = []
        for i in range(0, log_mel.shape[0], _BATCH):
            features = model.frontend(log_mel[i : i + _BATCH]).features
            out.append(model.classifier.embed(features).double())
        return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.float64)
    finally:
        model.train(was)


@torch.no_grad()
def clip_summary(log_mel: Tensor) -> Tensor:
    """``[N, T, F]`` log-mel -> ``[N, 2F + 6]``: each band's mean (relative to the clip's
    mean over bands) and standard deviation over time; the 50th, 90th and 99th percentiles
    of the frames' level above the clip's noise floor (its 20th percentile); and the same
    percentiles of the spectral flux (mean positive change per frame).  Level-invariant."""
    x = log_mel.double()
    mean = x.mean(dim=1)
    spread = x.std(dim=1) if x.shape[1] > 1 else torch.zeros_like(mean)
    level = torch.logsumexp(x, dim=2)
    q = torch.tensor([0.5, 0.9, 0.99], dtype=x.dtype)
    above = torch.quantile(level - torch.quantile(level, 0.2, dim=1, keepdim=True), q, dim=1).T
    flux = (x[:, 1:] - x[:, :-1]).clamp(min=0).mean(dim=2) if x.shape[1] > 1 else torch.zeros_like(level)
    rise = torch.quantile(flux, q, dim=1).T
    return torch.cat([mean - mean.mean(dim=1, keepdim=True), spread, above, rise], dim=1)


@dataclass(frozen=True)
class Gaussian:
    """Class means ``[C, D]`` (one row for a single Gaussian), a shared precision ``[D, D]``
    and the calibrated threshold of the distance to the nearest mean."""

    means: Tensor
    precision: Tensor
    threshold: float

    @classmethod
    def fit(cls, train: Tensor, labels: Tensor, held_out: Tensor, *, n_classes: int) -> Gaussian:
        """Means and covariance of ``train`` ``[N, D]`` per label (``labels`` ``[N]`` in
        ``[0, n_classes)``); threshold at the :data:`QUANTILE` of ``held_out``'s distances."""
        x = train.double()
        y = torch.as_tensor(labels, dtype=torch.long)
        if x.dim() != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ParameterError(f"need [N, D] features with N >= 2 labels, got {tuple(x.shape)}, {tuple(y.shape)}.")
        if held_out.shape[0] < 1:
            raise ParameterError("calibration needs at least one held-out clip.")
        onehot = torch.nn.functional.one_hot(y, n_classes).double()
        counts = onehot.sum(0)
        means = (onehot.T @ x) / counts.clamp(min=1).unsqueeze(1)
        means = torch.where(counts.unsqueeze(1) > 0, means, x.mean(0, keepdim=True))
        centred = x - means[y]
        cov = centred.T @ centred / max(1, x.shape[0] - 1)
        scale = cov.diagonal().mean().clamp(min=1e-12)
        cov = (1 - _SHRINK) * cov + _SHRINK * scale * torch.eye(x.shape[1], dtype=cov.dtype)
        unit = cls(means.float(), torch.linalg.inv(cov).float(), 1.0)
        threshold = float(torch.quantile(unit.distance(held_out), QUANTILE))
        return cls(unit.means, unit.precision, max(threshold, 1e-6))

    def distance(self, features: Tensor) -> Tensor:
        """``[N]`` Mahalanobis distance to the nearest mean."""
        diff = features.double().unsqueeze(1) - self.means.double().unsqueeze(0)  # [N, C, D]
        d2 = torch.einsum("ncd,de,nce->nc", diff, self.precision.double(), diff)
        return d2.clamp(min=0).min(dim=1).values.sqrt()

    def score(self, features: Tensor) -> Tensor:
        """``[N]`` distance over the calibrated threshold (above 1: unfamiliar)."""
        return self.distance(features) / self.threshold

    def to_state(self) -> dict[str, Any]:
        return {"means": self.means, "precision": self.precision, "threshold": float(self.threshold)}

    @classmethod
    def from_state(cls, state: Any, *, n_means: int, dim: int, name: str) -> Gaussian:
        """Rebuild from :meth:`to_state`, checking types, shapes and values."""
        try:
            means, precision, threshold = state["means"], state["precision"], float(state["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint's familiarity statistics ({name}) are malformed ({exc}).") from None
        if not (isinstance(means, Tensor) and isinstance(precision, Tensor)):
            raise CheckpointError(f"the checkpoint's familiarity statistics ({name}) are not tensors.")
        if tuple(means.shape) != (n_means, dim) or tuple(precision.shape) != (dim, dim):
            raise CheckpointError(
                f"the checkpoint's familiarity statistics ({name}) have shapes {tuple(means.shape)} and "
                f"{tuple(precision.shape)}; expected ({n_means}, {dim}) and ({dim}, {dim})."
            )
        if not (threshold > 0 and torch.isfinite(means).all() and torch.isfinite(precision).all()):
            raise CheckpointError(f"the checkpoint's familiarity statistics ({name}) hold invalid values.")
        return cls(means.float(), precision.float(), threshold)


@dataclass(frozen=True)
class Familiarity:
    """A model's two calibrated views of its training data (module docstring)."""

    embedding: Gaussian
    summary: Gaussian

    @classmethod
    @torch.no_grad()
    def fit(cls, model: Any, train_log_mel: Tensor, train_labels: Tensor, held_out_log_mel: Tensor) -> Familiarity:
        """Fit both views on training clips ``[N, T, F]`` with labels ``[N]``; calibrate on
        held-out clips of the same dataset."""
        labels = torch.as_tensor(train_labels).cpu()
        return cls(
            Gaussian.fit(
                embed(model, train_log_mel), labels, embed(model, held_out_log_mel), n_classes=len(model.classes)
            ),
            Gaussian.fit(
                clip_summary(train_log_mel).cpu(),
                torch.zeros_like(labels),
                clip_summary(held_out_log_mel).cpu(),
                n_classes=1,
            ),
        )

    def score(self, model: Any, log_mel: Tensor) -> Tensor:
        """``[N]`` the larger of the two views' scores for clips ``[N, T, F]``."""
        return torch.maximum(
            self.embedding.score(embed(model, log_mel)), self.summary.score(clip_summary(log_mel).cpu())
        )

    def to_state(self) -> dict[str, Any]:
        """Plain tensors and numbers for a checkpoint."""
        return {"embedding": self.embedding.to_state(), "summary": self.summary.to_state(), "quantile": QUANTILE}

    @classmethod
    def from_state(cls, state: Any, *, n_classes: int, embedding_dim: int, n_mels: int) -> Familiarity:
        """Rebuild from :meth:`to_state` for a model of ``n_classes`` classes, embeddings of
        ``embedding_dim`` and ``n_mels`` bands; any malformed part is a CheckpointError."""
        if not isinstance(state, dict):
            raise CheckpointError("the checkpoint's familiarity statistics are malformed (not a mapping).")
        return cls(
            Gaussian.from_state(state.get("embedding"), n_means=n_classes, dim=embedding_dim, name="embedding"),
            Gaussian.from_state(state.get("summary"), n_means=1, dim=2 * n_mels + 6, name="summary"),
        )


@torch.no_grad()
def score_clip(model: Any, familiarity: Familiarity, samples: Any, *, max_windows: int = 64) -> float:
    """Familiarity score of one clip (float samples at the model's rate): the score of its
    most familiar stretch, over windows of the model's clip length (half a window apart; a
    shorter clip is padded, as in training) at the model's own reduction rate, where the
    statistics were calibrated.  Above 1: no stretch of the clip is as familiar to the model
    as 99 % of its own held-out clips.

    Windows rather than the whole clip: the statistics describe clips of the training
    length, and a long clip's pooled embedding drifts with its length alone.
    """
    wave = torch.as_tensor(samples, dtype=torch.float32).reshape(-1)
    size = model.clip_samples
    if wave.numel() <= size:
        windows = model.fit_length(wave)
    else:
        step = max(size // 2, (wave.numel() - size) // max(1, max_windows - 1))
        starts = list(range(0, wave.numel() - size + 1, step))
        if starts[-1] != wave.numel() - size:
            starts.append(wave.numel() - size)
        windows = torch.stack([wave[s : s + size] for s in starts])
    return float(familiarity.score(model, model.mel(windows)).min())
