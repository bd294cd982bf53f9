"""Cached helpers for the Inspect page: which checkpoints exist, loading them safely, and the
heavy evaluations (keyed on checkpoint path + modification time, so a re-saved run is
re-evaluated and an unchanged one never is).

Models are ``st.cache_resource`` (read-only; evaluation puts them in eval mode and restores
the mode); results are ``st.cache_data`` (plain arrays).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

import diffres
from diffres.frontends import frontend_label
from diffres.training import accuracy_vs_rate, class_index_map, evaluate_model, log_mel_of
from ui import cache
from ui import data_sources as D
from ui import runs as R
from ui.session import session_dir, slug

#: Inference rates of the sweep.
SWEEP_RATES = tuple(round(0.1 * k, 1) for k in range(10))
BASELINE_FRONTENDS = ("avgpool", "changehop", "full")
KEY_UPLOADED = "inspect_uploaded"

#: The Inspect page's tabs, and the session-state key (and link parameter) of the open one:
#: only the open tab runs.
TABS = ("This sound", "Validation set", "Compare two models")
TAB_KEY = "inspect_tab"


@dataclass(frozen=True)
class Entry:
    """A checkpoint the page can open.

    Attributes:
        model_id: ``"<path>:<mtime_ns>"`` (the cache key).
        path: the ``.pt`` file.
        label: what people see.
        kind: ``"shipped"``, ``"run"`` or ``"upload"``.
        card: the model card (from the JSON beside the file when listing; the loaded
            checkpoint's own card is authoritative).
        run_id: the session run (kind ``"run"``).
    """

    model_id: str
    path: str
    label: str
    kind: str
    card: dict
    run_id: str | None = None


def model_id_for(path: str | Path) -> str:
    p = Path(path)
    return f"{p}:{p.stat().st_mtime_ns}"


def _metric(card: dict) -> str:
    m = card.get("metrics") or {}
    acc = m.get("test_accuracy") if m.get("test_accuracy") is not None else m.get("val_accuracy")
    return f", {acc:.0%}" if isinstance(acc, (int, float)) else ""


def _frontend(card: dict) -> str:
    """The card's front-end and training rate (no rate for a front-end that keeps every frame)."""
    return frontend_label(str(card.get("frontend", "?")), card.get("reduction_rate"))


def shipped_entries() -> list[Entry]:
    out = []
    for e in cache.checkpoint_index():
        card = e["card"]
        hop = card.get("hop_ms", "?")
        label = f"{e['name']} ({card.get('dataset', '?')}, {_frontend(card)}, {hop} ms{_metric(card)})"
        out.append(Entry(e["id"], e["path"], label, "shipped", card))
    return out


def run_entries() -> list[Entry]:
    out = []
    for r in R.saved_runs():
        assert r.checkpoint is not None and r.trainer is not None  # saved runs have both
        card_file = Path(r.checkpoint).with_suffix(".json")
        try:
            card = json.loads(card_file.read_text()) if card_file.is_file() else {}
        except (OSError, json.JSONDecodeError):
            card = {}
        done = "complete" if r.finished else f"epoch {r.saved_step // max(1, r.trainer.steps_per_epoch)}"
        out.append(
            Entry(
                model_id_for(r.checkpoint),
                str(r.checkpoint),
                f"{r.label} ({done}{_metric(card)})",
                "run",
                card,
                r.run_id,
            )
        )
    return out


def uploaded_entries() -> list[Entry]:
    return [e for e in st.session_state.get(KEY_UPLOADED, {}).values() if Path(e.path).is_file()]


def add_upload(data: bytes, name: str) -> Entry:
    """Check an uploaded checkpoint (safely: weights only) and keep it in the session folder.

    Raises :class:`diffres.CheckpointError` with a message for people."""
    loaded = diffres.load_checkpoint(data)  # raises CheckpointError for anything but our checkpoints
    digest = hashlib.sha1(data).hexdigest()[:16]
    folder = session_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}-{slug(Path(name).stem)}.pt"
    if not path.is_file():
        path.write_bytes(data)
    card = loaded.card
    entry = Entry(
        model_id_for(path),
        str(path),
        f"{name} (uploaded; {card.get('dataset', '?')}, {_frontend(card)})",
        "upload",
        card,
    )
    st.session_state.setdefault(KEY_UPLOADED, {})[digest] = entry
    return entry


@st.cache_resource(max_entries=12, show_spinner="Loading the checkpoint...")
def load(model_id: str) -> diffres.checkpoints.LoadedCheckpoint:
    """A checkpoint by id (path + mtime); shared, read-only."""
    return diffres.load_checkpoint(model_id.rsplit(":", 1)[0])


# --------------------------------------------------------------------------- evaluation data


@dataclass(frozen=True)
class EvalData:
    """A labelled split mapped to a model's classes."""

    key: str
    description: str
    waveforms: np.ndarray  # [N, n] float32
    labels: np.ndarray  # [N] indices into the model's classes
    paths: list
    sample_rate: int


def eval_data_for(entry: Entry, card: dict) -> tuple[EvalData | None, str]:
    """The validation split the page evaluates on, or (None, why not)."""
    from diffres.datasets import BUILTIN_DATASETS

    classes = list(card.get("classes") or [])
    run = R.runs().get(entry.run_id) if entry.run_id else None
    if run is not None and run.trainer is not None and run.source.kind != "builtin":
        ds = D.load_source(run.source)
        desc = f"the validation split of {run.source.name} (this session's run {run.label})"
        key = f"run:{run.run_id}"
    else:
        name = card.get("dataset")
        if name not in BUILTIN_DATASETS:
            return None, (
                f"The model card names the dataset {name!r}, which is not a built-in set, so there is no "
                "validation data to evaluate on here. Models trained on built-in sets or in this session can be "
                "evaluated."
            )
        try:
            ds = D.builtin_dataset(name, None)
        except diffres.DiffResError as err:
            return None, f"The built-in dataset {name!r} could not be loaded: {err}"
        desc = f"the held-out validation split of the built-in '{name}' set"
        key = f"builtin:{name}"
    split = ds.splits["val"] if len(ds.splits["val"]) else ds.splits["train"]
    if not len(split):
        return None, "The dataset has no validation clips."
    try:
        remap = class_index_map(ds.classes, classes)
    except diffres.DatasetError as err:
        return None, f"{err}"
    if int(ds.sample_rate) != int(card.get("sample_rate", ds.sample_rate)):
        return None, f"The data is at {ds.sample_rate} Hz but the model expects {card.get('sample_rate')} Hz."
    return EvalData(key, desc, split.waveforms, remap[split.labels], list(split.paths), int(ds.sample_rate)), ""


@st.cache_resource(max_entries=4, show_spinner="Reading the zip...", scope="session")
def _zip_dataset(digest: str, path: str):
    from diffres.datasets import load_folder_dataset

    return load_folder_dataset(path, min_clips_per_class=1)


def eval_data_from_zip(data: bytes, name: str, card: dict) -> EvalData:
    """Every clip of an uploaded zip of class folders, mapped to the model's classes by name.

    Raises :class:`diffres.DiffResError` (DatasetError) with a message for people."""
    digest, path = D.save_zip(data, name)
    ds = _zip_dataset(digest, str(path))
    classes = list(card.get("classes") or [])
    remap = class_index_map(ds.classes, classes, what=name)
    if int(ds.sample_rate) != int(card.get("sample_rate", ds.sample_rate)):
        raise diffres.DatasetError(
            f"{name} was read at {ds.sample_rate} Hz but the model expects {card.get('sample_rate')} Hz."
        )
    parts = [sp for sp in ds.splits.values() if len(sp)]
    return EvalData(
        f"zip:{digest}",
        f"every clip of your {name}",
        np.concatenate([sp.waveforms for sp in parts]),
        remap[np.concatenate([sp.labels for sp in parts])],
        [q for sp in parts for q in sp.paths],
        int(ds.sample_rate),
    )


@st.cache_data(max_entries=24, show_spinner="Evaluating on the validation split...")
def evaluation(model_id: str, data_key: str, _data: EvalData, reduction_rate: float | None = None) -> dict:
    """EvalResult fields as plain arrays (cache_data pickles them)."""
    model = load(model_id).model
    x = log_mel_of(model, _data.waveforms)
    res = evaluate_model(model, x, _data.labels, reduction_rate=reduction_rate)
    return {
        "accuracy": res.accuracy,
        "loss": res.loss,
        "n": res.n,
        "per_class": res.per_class,
        "confusion": res.confusion,
        "predictions": res.predictions,
        "labels": res.labels,
        "probabilities": res.probabilities,
        "classes": res.classes,
        "reduction_rate": res.reduction_rate,
        "mean_importance": res.mean_importance,
    }


@st.cache_data(max_entries=12, show_spinner="Sweeping the reduction rate (one evaluation per rate)...")
def rate_sweep(model_id: str, data_key: str, _data: EvalData, rates: tuple = SWEEP_RATES) -> list:
    model = load(model_id).model
    x = log_mel_of(model, _data.waveforms)
    return accuracy_vs_rate(model, (x, _data.labels), list(rates))


def same_classes(a: dict, b: dict) -> bool:
    """Whether two model cards classify the same classes (same names, same order), so their
    answers for one sound can be compared; cards without a class list compare their datasets."""
    ca, cb = a.get("classes"), b.get("classes")
    if ca and cb:
        return list(ca) == list(cb)
    return a.get("dataset") is not None and a.get("dataset") == b.get("dataset")


def baselines_for(card: dict, *, exclude: str = "") -> list[Entry]:
    """Shipped fixed-front-end checkpoints with the same dataset (one per front-end/rate)."""
    out = []
    for e in shipped_entries():
        c = e.card
        if (
            e.model_id == exclude
            or c.get("dataset") != card.get("dataset")
            or c.get("frontend") not in BASELINE_FRONTENDS
        ):
            continue
        if c.get("classes") and card.get("classes") and list(c["classes"]) != list(card["classes"]):
            continue
        out.append(e)
    return out


# --------------------------------------------------------------------------- one clip


@st.cache_data(max_entries=48, show_spinner=False)
def predict_clip(model_id: str, digest: str, _samples: np.ndarray, reduction_rate: float | None = None) -> dict:
    """Top-k, importance, bin edges, merged and input log-mel of one clip (whole clip, the
    model's own hop)."""
    loaded = load(model_id)
    pred = loaded.model.predict(_samples, reduction_rate=reduction_rate, fit=False)
    out = pred.frontend
    return {
        "top": pred.top(min(5, len(pred.classes))),
        "probabilities": pred.probabilities,
        "log_mel": pred.log_mel[0].float().cpu().numpy(),
        "importance": out.importance[0].float().cpu().numpy(),
        "bin_edges": out.bin_edges[0].float().cpu().numpy(),
        "merged": out.avg[0].float().cpu().numpy(),
        "hop_seconds": float(loaded.model.mel.hop_seconds),
        "mel_frequencies": loaded.model.mel.mel_frequencies().numpy(),
    }


def history_of(model_id: str) -> list[dict]:
    """Per-epoch records saved in a checkpoint's training state ([] if none)."""
    state = load(model_id).training_state or {}
    try:
        return json.loads(state.get("history", "[]")) if isinstance(state.get("history", "[]"), str) else []
    except (TypeError, ValueError):
        return []


def wav(samples: np.ndarray, sample_rate: int) -> bytes:
    from diffres.audio import wav_bytes

    return wav_bytes(np.asarray(samples, dtype=np.float32), sample_rate)


def log_mel_np(model_id: str, samples: np.ndarray) -> np.ndarray:
    model = load(model_id).model
    with torch.no_grad():
        return model.mel(torch.as_tensor(np.asarray(samples, dtype=np.float32)).reshape(1, -1))[0].numpy()
