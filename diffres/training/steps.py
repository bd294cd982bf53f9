"""Pieces of one optimiser step shared by :class:`~diffres.training.Trainer` (in-memory sets)
and :class:`~diffres.training.corpus.CorpusTrainer` (streamed corpora, DDP): the seeded
generators, the batch's augmentation, the AdamW parameter groups and the training loss.

Every random draw of a run comes from :func:`derived_generator` of ``(seed, stream, step)``
(and, under DDP, the rank), so a run is reproducible and a resumed run continues exactly as
the uninterrupted one would; the streams are :data:`ORDER_STREAM` (batch order),
:data:`AUGMENT_STREAM`, :data:`PRIOR_STREAM` (the energy prior's batches) and
:data:`FAMILIARITY_STREAM`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .. import functional as Fn
from ..core import FrontendOutput
from . import augment as A
from .config import TrainConfig
from .prior import floor_frames

__all__ = [
    "AUGMENT_STREAM",
    "FAMILIARITY_STREAM",
    "ORDER_STREAM",
    "PRIOR_STREAM",
    "augment_batch",
    "derived_generator",
    "parameter_groups",
    "training_loss",
]

#: The random streams of a run (:func:`derived_generator`'s ``stream``).
ORDER_STREAM, AUGMENT_STREAM, PRIOR_STREAM, FAMILIARITY_STREAM = 1, 2, 5, 6


def derived_generator(seed: int, stream: int, step: int, device: torch.device | str, rank: int = 0) -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, stream, step, rank)`` alone (the global
    RNG is never touched).  Rank 0 is a one-process run's stream, so one process and rank 0
    of a data-parallel run draw the same numbers.

    Example:
        >>> a = torch.rand(3, generator=derived_generator(0, AUGMENT_STREAM, 7, "cpu"))
        >>> torch.equal(a, torch.rand(3, generator=derived_generator(0, AUGMENT_STREAM, 7, "cpu", rank=0)))
        True
        >>> torch.equal(a, torch.rand(3, generator=derived_generator(0, AUGMENT_STREAM, 7, "cpu", rank=1)))
        False
    """
    g = torch.Generator(device=device)
    mixed = int(seed) * 1_000_003 + int(stream) * 7_919 + int(step) * 104_729 + int(rank) * 15_485_863
    g.manual_seed(mixed % (2**63 - 1))
    return g


def augment_batch(
    x: Tensor, labels: Tensor, *, config: TrainConfig, n_classes: int, hop_seconds: float, step: int, rank: int = 0
) -> tuple[Tensor, Tensor]:
    """Augment a batch as training step ``step`` does: every augmentation ``config`` switches
    on (:func:`diffres.training.augment.augment`), drawn from the generator of
    ``(config.seed, AUGMENT_STREAM, step, rank)`` on ``x``'s device.

    Under DDP each rank augments its own share of the global batch from its own stream (mixup
    pairs clips within the share), as data-parallel training does; one process (rank 0)
    draws what the in-memory trainer draws at the same step.

    Args:
        x: ``[B, T, F]`` log-mel.
        labels: ``[B]`` class indices.

    Returns:
        ``(log-mel [B, T, F], soft targets [B, n_classes])`` in ``x``'s dtype.
    """
    g = derived_generator(config.seed, AUGMENT_STREAM, step, x.device, rank)
    targets = F.one_hot(labels, n_classes).to(x.dtype)
    return A.augment(x, targets, config, g, hop_seconds=hop_seconds)


def parameter_groups(model: nn.Module, score_learning_rate_scale: float) -> list[dict[str, Any]]:
    """AdamW groups of an :class:`~diffres.models.AudioClassifier`; each carries ``lr_scale``,
    its learning rate over the schedule's (DiffRes's score network gets
    ``score_learning_rate_scale``, the rest 1)."""
    frontend = getattr(model, "frontend", None)
    scores = getattr(frontend, "score_network", None)
    if scores is None:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    own = {id(p) for p in scores.parameters()}
    rest = [p for p in model.parameters() if id(p) not in own]
    return [
        {"params": rest, "lr_scale": 1.0},
        {"params": list(scores.parameters()), "lr_scale": score_learning_rate_scale, "scores": True},
    ]


def training_loss(
    logits: Tensor,
    targets: Tensor,
    out: FrontendOutput,
    log_mel: Tensor,
    *,
    config: TrainConfig,
    frontend: str,
    reduction_rate: float,
) -> tuple[Tensor, Tensor]:
    """(total loss, guide loss): cross-entropy on soft ``targets`` ``[B, C]`` plus the
    weighted guide loss of DiffRes (``out.guide_loss``, or the floor-aware / relative variant
    the config asks for, computed from ``log_mel`` ``[B, T, F]``).  Both are batch means."""
    ce = F.cross_entropy(logits, targets, label_smoothing=config.label_smoothing)
    guide = out.guide_loss
    if frontend == "diffres" and (config.guide_loss_relative or config.guide_floor_db > 0):
        empty = out.empty | floor_frames(log_mel, config.guide_floor_db) if config.guide_floor_db > 0 else out.empty
        guide = Fn.guide_loss(out.importance, empty, reduction_rate, relative=config.guide_loss_relative)
    return (ce + config.guide_loss_weight * guide if config.guide_loss_weight > 0 else ce), guide
