"""Checkpoints: a model's weights plus its configuration and model card, loaded safely.

A checkpoint is a ``torch.save`` archive of plain containers (strings, numbers, tensors):
``{"format", "version", "card" (JSON text), "state_dict"}``.  Loading uses
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects, so a
booby-trapped file is rejected without running anything.  The model card (a dict, also
written beside the checkpoint as ``<name>.json``) holds the :class:`ModelConfig` fields
plus ``dataset``, ``metrics``, ``params``, ``train_seconds`` and provenance.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .errors import CheckpointError, DiffResError
from .familiarity import Familiarity
from .models import AudioClassifier, ModelConfig

__all__ = [
    "FORMAT",
    "VERSION",
    "MAX_CHECKPOINT_BYTES",
    "LoadedCheckpoint",
    "save_checkpoint",
    "load_checkpoint",
    "card_path",
]

FORMAT = "diffres-explorer-checkpoint"
VERSION = 1
#: Files larger than this are refused before reading (shipped ones are under 5 MB).
MAX_CHECKPOINT_BYTES = 200 * 1024 * 1024
#: Card fields every checkpoint carries (scripts and the app read them).
CARD_FIELDS = (
    "dataset",
    "frontend",
    "reduction_rate",
    "hop_ms",
    "n_mels",
    "sample_rate",
    "classes",
    "metrics",
    "params",
    "train_seconds",
)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint (in eval mode) and its model card."""

    model: AudioClassifier
    card: dict
    #: What :meth:`diffres.training.Trainer.resume` needs (plain containers: tensors,
    #: numbers, JSON text), or None for an inference-only checkpoint.
    training_state: dict | None = None
    #: How far a clip lies from the training data (calibrated on held-out clips), or None
    #: when the checkpoint carries no statistics.
    familiarity: Familiarity | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def card_path(checkpoint_path: str | os.PathLike) -> Path:
    """Where the model card of ``checkpoint_path`` lives (same name, ``.json``)."""
    return Path(checkpoint_path).with_suffix(".json")


def _json_safe(value):
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def save_checkpoint(
    path: str | os.PathLike | BinaryIO,
    model: AudioClassifier,
    *,
    card: dict | None = None,
    write_card: bool = True,
    training_state: dict | None = None,
    familiarity: Familiarity | None = None,
) -> dict:
    """Write ``model``'s weights and card to ``path`` (and the card to ``<path>.json``).

    Args:
        path: file path or writable binary file object.
        model: the :class:`AudioClassifier` to save.
        card: extra model-card fields (``dataset``, ``metrics``, ``train_seconds``, ...);
            configuration fields and ``params`` are filled in from the model.
        write_card: also write the card as JSON beside a path (ignored for file objects).
        training_state: optional plain containers (tensors, numbers, strings, lists, dicts;
            no other objects) for resuming training: optimiser state, history as JSON text.
        familiarity: optional out-of-distribution statistics of the model
            (:class:`~diffres.familiarity.Familiarity`).

    Returns:
        The full card that was written.
    """
    full = {**model.config.to_dict(), "params": model.n_parameters(), **(_json_safe(card or {}))}
    full.update(model.config.to_dict())  # the weights' true configuration always wins
    full.setdefault("dataset", None)
    full.setdefault("metrics", {})
    full.setdefault("train_seconds", None)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "card": json.dumps(full),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    if training_state is not None:
        payload["training_state"] = _to_cpu(training_state)
    if familiarity is not None:
        payload["familiarity"] = _to_cpu(familiarity.to_state())
    if isinstance(path, (str, os.PathLike)):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, target)
        if write_card:
            card_path(target).write_text(json.dumps(full, indent=2) + "\n")
    else:
        torch.save(payload, path)
    return full


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_cpu(v) for v in value]
    return value


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise CheckpointError(f"checkpoint file not found: {p}.")
        if p.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(
                f"{p.name} is {p.stat().st_size / 1e6:.0f} MB; checkpoints larger than "
                f"{MAX_CHECKPOINT_BYTES / 1e6:.0f} MB are refused."
            )
        data = p.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(MAX_CHECKPOINT_BYTES + 1)
    else:
        raise CheckpointError(f"cannot read a checkpoint from a {type(source).__name__}; give a path, bytes or a file.")
    if len(data) == 0:
        raise CheckpointError("the checkpoint file is empty.")
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"the checkpoint is larger than {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB and is refused.")
    return data


def _read_payload(data: bytes, map_location: str | torch.device) -> dict[str, Any]:
    """The archive's dict of plain containers (``weights_only``), checked to be ours and of a
    format version this program reads."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError(
            "this is not a DiffRes Explorer checkpoint (not a PyTorch archive); "
            "choose a .pt file saved by this app or `python -m diffres train`."
        )
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "Unpickling" in type(exc).__name__:
            raise CheckpointError(
                "the file contains objects other than weights and settings and was refused "
                "without being run (it may be unsafe)."
            ) from None
        raise CheckpointError(f"the checkpoint is corrupt or truncated and cannot be read ({text}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            "this PyTorch file is not a DiffRes Explorer checkpoint (no model card inside); "
            "choose a .pt file saved by this app or `python -m diffres train`."
        )
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"checkpoint format version {version!r} is newer than this program understands ({VERSION}); "
            "update DiffRes Explorer."
        )
    return payload


def load_checkpoint(
    source: str | os.PathLike | bytes | BinaryIO, *, map_location: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`.

    Never unpickles arbitrary objects.  Raises :class:`CheckpointError` (a ``ValueError``)
    with a message fit for a person for anything else: not a checkpoint, corrupt or
    truncated, unsafe content, another program's checkpoint, a newer format, weights that do
    not match the configuration.

    Example:
        >>> import io
        >>> from diffres.models import AudioClassifier, ModelConfig
        >>> buf = io.BytesIO()
        >>> card = save_checkpoint(buf, AudioClassifier(ModelConfig(classes=("cat", "dog"))), card={"dataset": "pets"})
        >>> loaded = load_checkpoint(buf.getvalue())
        >>> loaded.config.classes, loaded.card["dataset"], card["n_mels"]
        (('cat', 'dog'), 'pets', 64)
    """
    payload = _read_payload(_read_bytes(source), map_location)
    try:
        card = json.loads(payload["card"])
        config = ModelConfig.from_dict(card)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"the checkpoint's model card is missing or malformed ({exc}).") from None
    except DiffResError as exc:
        raise CheckpointError(f"the checkpoint's configuration is invalid: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("the checkpoint holds no weights.")
    model = AudioClassifier(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"the weights do not match the model described by the card ({first}).") from None
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError("the checkpoint's weights contain NaN or infinite values.")
    model.to(map_location).eval()
    training_state = payload.get("training_state")
    if training_state is not None and not isinstance(training_state, dict):
        raise CheckpointError("the checkpoint's training state is malformed (not a mapping).")
    familiarity = None
    if payload.get("familiarity") is not None:
        familiarity = Familiarity.from_state(
            payload["familiarity"],
            n_classes=len(config.classes),
            embedding_dim=model.classifier.head.in_features,
            n_mels=config.n_mels,
        )
    return LoadedCheckpoint(model=model, card=card, training_state=training_state, familiarity=familiarity)
