"""The schema of a checkpoint's contents, checked before anything is built from them.

A checkpoint may come from a stranger (the Inspect page takes uploads), so its model card
and training state are untrusted input.  :func:`parse_card` and :func:`check_training_state`
check types, ranges and sizes (text length, nesting depth, class count, the size of the
model the card describes) and raise :class:`~diffres.errors.CheckpointError` naming the
field, before :class:`~diffres.models.ModelConfig` or any tensor is made: a card of
``null``, a list, JSON 200 000 levels deep, ``"hop_ms": "ten"`` or two million class names
costs a few milliseconds and gives one sentence.

Example:
    >>> parse_card('{"classes": ["cat", "dog"], "hop_ms": 5.0}')["hop_ms"]
    5.0
    >>> try:
    ...     parse_card('{"classes": ["cat", "dog"], "hop_ms": "ten"}')
    ... except CheckpointError as err:
    ...     print(err)
    the model card's field 'hop_ms' must be a number in [0.5, 100] (milliseconds), got 'ten'.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import torch

from .core import DIFFRES_CHANNELS, IMPORTANCE_MODES
from .errors import CheckpointError
from .features import HOP_MS_RANGE, WIN_MS_RANGE, MelConfig, next_power_of_two
from .frontends import FRONTENDS
from .names import check_name

__all__ = [
    "MAX_CARD_BYTES",
    "MAX_CARD_DEPTH",
    "MAX_CLASSES",
    "MAX_CLASS_NAME",
    "MAX_FILTERBANK_VALUES",
    "parse_card",
    "check_card",
    "check_weights_against_card",
    "check_training_state",
]

#: Longest model card accepted, in bytes of JSON text (shipped cards are about 3 kB).
MAX_CARD_BYTES = 256 * 1024
#: Deepest nesting of lists and objects in a card (shipped cards: 3).
MAX_CARD_DEPTH = 8
#: Most classes a model may have.
MAX_CLASSES = 1000
#: Longest class name, in characters.
MAX_CLASS_NAME = 100
#: Largest mel filter bank (frequency bins x mel bands) a card may ask for: 32 MB of float32.
MAX_FILTERBANK_VALUES = 1 << 23
#: Longest JSON text in a training state (configuration, history), in bytes.
MAX_STATE_TEXT = 16 * 1024 * 1024

_PREFIX = "the model card's field"


def _fail(field: str, must: str, value: Any) -> CheckpointError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return CheckpointError(f"{_PREFIX} {field!r} must be {must}, got {shown}.")


def _number(
    card: Mapping,
    field: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
    unit: str = "",
    hi_open: bool = False,
    optional: bool = True,
) -> None:
    if field not in card:
        if optional:
            return
        raise CheckpointError(f"{_PREFIX} {field!r} is missing.")
    value = card[field]
    kind = "a whole number" if integer else "a number"
    bounds = f"[{lo:g}, {hi:g}{')' if hi_open else ']'}" + (f" ({unit})" if unit else "")
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise _fail(field, f"{kind} in {bounds}", value)
    if not math.isfinite(float(value)) or value < lo or value > hi or (hi_open and value >= hi):
        raise _fail(field, f"{kind} in {bounds}", value)


def _optional_number(card: Mapping, field: str, lo: float, hi: float, *, integer: bool = False) -> None:
    if card.get(field) is not None:
        _number(card, field, lo, hi, integer=integer)


def _choice(card: Mapping, field: str, choices) -> None:
    if field in card and (not isinstance(card[field], str) or card[field] not in choices):
        raise _fail(field, f"one of {', '.join(choices)}", card[field])


def _depth(value: Any) -> int:
    """Nesting depth of lists and dicts, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if deepest > MAX_CARD_DEPTH:
                return deepest
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _classes(card: Mapping) -> None:
    classes = card.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _fail("classes", "a list of class names (strings)", classes)
    if not 2 <= len(classes) <= MAX_CLASSES:
        raise CheckpointError(f"{_PREFIX} 'classes' must list 2 to {MAX_CLASSES} class names, got {len(classes)}.")
    for c in classes:
        why = check_name(c, "a class name", max_length=MAX_CLASS_NAME)
        if why:
            raise CheckpointError(f"{_PREFIX} 'classes' is unusable: {why}.")
    if len(set(classes)) != len(classes):
        raise CheckpointError(f"{_PREFIX} 'classes' must not repeat a name.")


def _mel_size(card: Mapping) -> None:
    """The mel filter bank the card asks for must stay small (it is built with the model)."""
    rate = card.get("sample_rate", MelConfig.sample_rate)
    win_ms = card.get("win_ms", MelConfig.win_ms)
    n_mels = card.get("n_mels", 64)
    n_fft = next_power_of_two(max(2, round(float(win_ms) * int(rate) / 1000.0)))
    values = (n_fft // 2 + 1) * int(n_mels)
    if values > MAX_FILTERBANK_VALUES:
        raise CheckpointError(
            f"the model card asks for a {win_ms:g} ms window at {rate} Hz with {n_mels} mel bands: a filter bank of "
            f"{values / 1e6:.0f} million values (at most {MAX_FILTERBANK_VALUES / 1e6:.1f} million)."
        )


def check_card(card: Any) -> dict[str, Any]:
    """Check a parsed model card (types, ranges, sizes); return it.

    Raises:
        CheckpointError: naming the first field that is missing, of the wrong type or out of
            range.
    """
    if not isinstance(card, dict):
        raise CheckpointError(f"the model card must be a JSON object, got {type(card).__name__}.")
    if _depth(card) > MAX_CARD_DEPTH:
        raise CheckpointError(f"the model card is nested more than {MAX_CARD_DEPTH} levels deep.")
    _check_model_fields(card)
    _check_record_fields(card)
    return card


def _check_model_fields(card: dict[str, Any]) -> None:
    """The fields a model is built from (:class:`~diffres.models.ModelConfig`'s)."""
    _classes(card)
    _choice(card, "frontend", list(FRONTENDS))
    _number(card, "reduction_rate", 0.0, 1.0, hi_open=True, unit="fraction of frames removed")
    _number(card, "sample_rate", 1000, 768000, integer=True, unit="Hz")
    _number(card, "n_mels", 1, 512, integer=True)
    _number(card, "hop_ms", *HOP_MS_RANGE, unit="milliseconds")
    _number(card, "win_ms", *WIN_MS_RANGE, unit="milliseconds")
    _number(card, "f_min", 0.0, 384000.0, unit="Hz")
    _optional_number(card, "f_max", 0.0, 384000.0)
    _number(card, "clip_seconds", 0.05, 60.0, unit="seconds")
    _number(card, "width", 4, 256, integer=True)
    if "diffres_channels" in card:
        ch = card["diffres_channels"]
        if (
            not isinstance(ch, list)
            or not 1 <= len(ch) <= len(DIFFRES_CHANNELS)
            or not all(isinstance(c, str) and c in DIFFRES_CHANNELS for c in ch)
            or len(set(ch)) != len(ch)
        ):
            raise _fail("diffres_channels", f"a list of distinct names from {', '.join(DIFFRES_CHANNELS)}", ch)
    _choice(card, "importance", IMPORTANCE_MODES)
    _mel_size(card)


def _check_record_fields(card: dict[str, Any]) -> None:
    """The fields people read (dataset, metrics, provenance)."""
    for field in ("dataset", "run", "data_source", "description", "created"):
        if card.get(field) is not None and not isinstance(card[field], str):
            raise _fail(field, "text", card[field])
    if card.get("metrics") is not None and not isinstance(card["metrics"], dict):
        raise _fail("metrics", "an object of numbers", card["metrics"])
    for name, value in (card.get("metrics") or {}).items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise _fail(f"metrics.{name}", "a number", value)
    _optional_number(card, "params", 0, 10**10, integer=True)
    _optional_number(card, "train_seconds", 0.0, 1e9)
    for field in ("epochs", "global_step", "seed", "n_train"):
        _optional_number(card, field, 0, 2**63 - 1, integer=True)


def parse_card(text: Any) -> dict[str, Any]:
    """Parse and check the JSON text of a model card (see :func:`check_card`); sizes are
    checked before parsing."""
    if not isinstance(text, str):
        raise CheckpointError(f"the checkpoint's model card is missing or not text (got {type(text).__name__}).")
    if len(text) > MAX_CARD_BYTES:
        raise CheckpointError(
            f"the checkpoint's model card is {len(text) / 1024:.0f} kB long; cards longer than "
            f"{MAX_CARD_BYTES // 1024} kB are refused."
        )
    try:
        card = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"the model card is nested more than {MAX_CARD_DEPTH} levels deep.") from None
    except ValueError as exc:
        raise CheckpointError(f"the checkpoint's model card is not valid JSON ({exc}).") from None
    return check_card(card)


def check_weights_against_card(state: Any, card: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights must be a mapping of names to tensors whose classifier head has one output
    per class of the card (checked before the model is built from the card); returns them."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError("the checkpoint holds no weights.")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError("the checkpoint's weights are not a mapping of names to tensors.")
    head = state.get("classifier.head.weight")
    if head is None or head.dim() != 2:
        raise CheckpointError("the weights do not match the model described by the card (no classifier head).")
    if head.shape[0] != len(card["classes"]):
        raise CheckpointError(
            f"the weights do not match the model described by the card: the card lists "
            f"{len(card['classes'])} classes but the classifier has {head.shape[0]} outputs."
        )
    return state


def _state_fail(field: str, must: str) -> CheckpointError:
    return CheckpointError(f"the checkpoint's training state field {field!r} must be {must}.")


def check_training_state(state: Any) -> dict[str, Any] | None:
    """Check the types and sizes of a checkpoint's training state (None passes)."""
    if state is None:
        return None
    if not isinstance(state, dict):
        raise CheckpointError("the checkpoint's training state is malformed (not a mapping).")
    for field in ("config", "history"):
        if field in state and (not isinstance(state[field], str) or len(state[field]) > MAX_STATE_TEXT):
            raise _state_fail(field, f"JSON text of at most {MAX_STATE_TEXT // 2**20} MB")
    step = state.get("global_step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _state_fail("global_step", "a whole number >= 0")
    seconds = state.get("elapsed_seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise _state_fail("elapsed_seconds", "a finite number")
    probes = state.get("history_probes")
    if probes is not None and (
        not isinstance(probes, list)
        or not all(isinstance(p, dict) and all(isinstance(v, torch.Tensor) for v in p.values()) for p in probes)
    ):
        raise _state_fail("history_probes", "a list of mappings of tensors")
    if "optimizer" in state and not isinstance(state["optimizer"], dict):
        raise _state_fail("optimizer", "a mapping")
    return state
