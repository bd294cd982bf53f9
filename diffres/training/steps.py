"""Pieces of one optimiser step shared by :class:`~diffres.training.Trainer` (in-memory sets)
and :class:`~diffres.training.corpus.CorpusTrainer` (streamed corpora, DDP): the AdamW
parameter groups and the training loss.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from .. import functional as Fn
from ..core import FrontendOutput
from .config import TrainConfig
from .prior import floor_frames

__all__ = ["parameter_groups", "training_loss"]


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
