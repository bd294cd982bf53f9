"""How familiar a sound is to a trained model: a calibrated out-of-distribution score.

A classifier answers with one of its classes whatever it hears.  This module measures how
far a clip's embedding (the pooled features the classifier's head reads,
:meth:`SmallCNN.embed`) lies from the training data, as the Mahalanobis distance to the
nearest class mean under a shared covariance (Lee et al., "A Simple Unified Framework for
Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018), and
calibrates it on held-out clips of the model's own dataset:

    score = distance / threshold,  threshold = the 99th percentile on held-out clips

so a score above 1 means "less familiar than 99 % of the model's own held-out clips".  The
statistics travel inside the checkpoint (:func:`diffres.save_checkpoint`'s
``familiarity``).

Shapes: log-mel ``[N, T, F]``; embeddings ``[N, D]``.

Example:
    >>> import torch
    >>> emb = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    >>> fam = Familiarity.fit(emb[:150], torch.zeros(150, dtype=torch.long), emb[150:], n_classes=1)
    >>> bool((fam.score(emb[150:]) <= 1.0).float().mean() >= 0.9)
    True
    >>> bool(fam.score(emb[:1] + 50.0)[0] > 1.0)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import CheckpointError, ParameterError

__all__ = ["Familiarity", "embed", "score_clip", "QUANTILE"]

#: The held-out quantile that a score of 1.0 marks.
QUANTILE = 0.99
_SHRINK = 0.1  # covariance shrinkage towards its mean variance (keeps it invertible)
_BATCH = 128


@torch.no_grad()
def embed(model, log_mel: Tensor) -> Tensor:
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


@dataclass(frozen=True)
class Familiarity:
    """Class means ``[C, D]``, shared precision ``[D, D]`` and the calibrated threshold."""

    class_means: Tensor
    precision: Tensor
    threshold: float

    @classmethod
    def fit(
        cls, train_embeddings: Tensor, train_labels: Tensor, held_out_embeddings: Tensor, *, n_classes: int
    ) -> Familiarity:
        """Fit means and covariance on training embeddings ``[N, D]`` with labels ``[N]``;
        calibrate the threshold on held-out embeddings of the same dataset."""
        x = train_embeddings.double()
        y = torch.as_tensor(train_labels, dtype=torch.long)
        if x.dim() != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ParameterError(
                f"need [N, D] embeddings with N >= 2 labels, got {tuple(x.shape)} and {tuple(y.shape)}."
            )
        if held_out_embeddings.shape[0] < 1:
            raise ParameterError("calibration needs at least one held-out clip.")
        dim = x.shape[1]
        onehot = torch.nn.functional.one_hot(y, n_classes).double()
        counts = onehot.sum(0)
        means = (onehot.T @ x) / counts.clamp(min=1).unsqueeze(1)
        means = torch.where(counts.unsqueeze(1) > 0, means, x.mean(0, keepdim=True))
        centred = x - means[y]
        cov = centred.T @ centred / max(1, x.shape[0] - 1)
        cov = (1 - _SHRINK) * cov + _SHRINK * torch.eye(dim, dtype=cov.dtype) * cov.diagonal().mean().clamp(min=1e-12)
        precision = torch.linalg.inv(cov)
        fam = cls(means.float(), precision.float(), 1.0)
        distances = fam.distance(held_out_embeddings)
        threshold = float(torch.quantile(distances, QUANTILE))
        return cls(means.float(), precision.float(), max(threshold, 1e-6))

    def distance(self, embeddings: Tensor) -> Tensor:
        """``[N]`` Mahalanobis distance to the nearest class mean."""
        e = embeddings.double()
        diff = e.unsqueeze(1) - self.class_means.double().unsqueeze(0)  # [N, C, D]
        d2 = torch.einsum("ncd,de,nce->nc", diff, self.precision.double(), diff)
        return d2.clamp(min=0).min(dim=1).values.sqrt()

    def score(self, embeddings: Tensor) -> Tensor:
        """``[N]`` distance over the calibrated threshold: above 1 = unfamiliar."""
        return self.distance(embeddings) / self.threshold

    def to_state(self) -> dict:
        """Plain tensors and numbers for a checkpoint."""
        return {
            "class_means": self.class_means,
            "precision": self.precision,
            "threshold": float(self.threshold),
            "quantile": QUANTILE,
        }

    @classmethod
    def from_state(cls, state: dict, *, n_classes: int, dim: int) -> Familiarity:
        """Rebuild from :meth:`to_state`, checking types, shapes and values; every failure is
        a :class:`CheckpointError` naming the field."""
        if not isinstance(state, dict):
            raise CheckpointError(
                f"the checkpoint's familiarity statistics must be a mapping, got {type(state).__name__}."
            )
        for key in ("class_means", "precision"):
            value = state.get(key)
            if not isinstance(value, Tensor) or not value.is_floating_point():
                raise CheckpointError(
                    f"the checkpoint's familiarity field {key!r} must be a floating-point tensor, "
                    f"got {type(value).__name__}."
                )
        means, precision = state["class_means"], state["precision"]
        threshold = state.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise CheckpointError(
                f"the checkpoint's familiarity field 'threshold' must be a number, got {threshold!r}."
            )
        threshold = float(threshold)
        if tuple(means.shape) != (n_classes, dim) or tuple(precision.shape) != (dim, dim):
            raise CheckpointError(
                f"the checkpoint's familiarity statistics have shapes {tuple(means.shape)} and "
                f"{tuple(precision.shape)}; expected ({n_classes}, {dim}) and ({dim}, {dim})."
            )
        if not (0 < threshold < float("inf") and torch.isfinite(means).all() and torch.isfinite(precision).all()):
            raise CheckpointError(
                "the checkpoint's familiarity statistics hold invalid values (NaN, infinite or <= 0)."
            )
        return cls(means.float(), precision.float(), threshold)


@torch.no_grad()
def score_clip(model, familiarity: Familiarity, samples) -> float:
    """Familiarity score of one whole clip (float samples at the model's rate) for ``model``,
    at the model's own reduction rate (where the statistics were calibrated): above 1 means
    less familiar than 99 % of the model's held-out clips."""
    wave = torch.as_tensor(samples, dtype=torch.float32).reshape(1, -1)
    return float(familiarity.score(embed(model, model.mel(wave)))[0])
