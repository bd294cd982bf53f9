"""Cached wrappers of library calls for the pages.

``st.cache_data`` functions are keyed on a clip *digest* plus small parameters; big arrays
are passed with a leading underscore so Streamlit does not hash them.  Models are
``st.cache_resource`` (read-only, shared across sessions; never trained in place).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

import diffres
from diffres.audio import SAMPLE_RATE
from diffres.examples import DEFAULT_EXAMPLE_DATASET
from diffres.explain import DiffResSteps, diffres_steps
from diffres.features import MelConfig, StftConfig, linear_spectrogram
from diffres.inverse import mel_to_audio
from diffres.models import top_classes

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = ROOT / "checkpoints"
#: Environment variable that points the app at another checkpoint folder (tests, demos).
CHECKPOINT_DIR_ENV = "DIFFRES_CHECKPOINT_DIR"
UNTRAINED_ID = "untrained"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# --------------------------------------------------------------------------- audio


@st.cache_data(max_entries=32, show_spinner=False)
def decode_upload(digest: str, _data: bytes, max_seconds: float = 30.0) -> diffres.audio.Clip:
    """Decode uploaded or recorded bytes (16 kHz mono, first ``max_seconds`` kept)."""
    return diffres.load_clip(_data, SAMPLE_RATE, max_seconds=max_seconds, trim=True)


@st.cache_data(max_entries=32, show_spinner=False)
def example_clip(key: str) -> diffres.audio.Clip:
    from diffres.examples import get_example

    return diffres.load_clip(get_example(key).path, SAMPLE_RATE, max_seconds=30.0, trim=True)


@st.cache_data(max_entries=16, show_spinner=False)
def preset_samples(name: str, seconds: float) -> np.ndarray:
    from diffres.examples import make_preset

    return make_preset(name, SAMPLE_RATE, seconds)


@st.cache_data(max_entries=16, show_spinner=False)
def wav_for(digest: str, _samples: np.ndarray, sample_rate: int) -> bytes:
    from diffres.audio import wav_bytes

    return wav_bytes(_samples, sample_rate)


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class MelResult:
    """A clip's log-mel and the axis facts figures need."""

    log_mel: np.ndarray  # [T, F] float32, natural-log power
    hop_seconds: float
    mel_frequencies: np.ndarray  # [F] Hz
    config: MelConfig  # the settings it was computed with


# Bounded by bytes as well as entries: one 30 s clip at a 1 ms hop with 256 mel bands is ~30 MB.
@st.cache_data(max_entries=48, max_size="400MB", show_spinner=False)
def log_mel(digest: str, _samples: np.ndarray, mel: MelConfig) -> MelResult:
    """Log-mel ``[T, F]`` of the clip ``digest`` with the settings ``mel`` (computed once per
    clip and settings).  Raises :class:`diffres.ParameterError` for unusable settings."""
    fe = diffres.MelFrontend.from_config(mel)
    with torch.no_grad():
        lm = fe(torch.from_numpy(np.asarray(_samples, dtype=np.float32)))[0].numpy().astype(np.float32)
    return MelResult(lm, fe.hop_seconds, fe.mel_frequencies().numpy(), fe.config)


@dataclass(frozen=True)
class LinearResult:
    """A clip's linear-frequency STFT (no zero-padding) and its axis facts."""

    log_power: np.ndarray  # [T, K] float32, natural-log power
    frequencies: np.ndarray  # [K] Hz
    config: StftConfig


@st.cache_data(max_entries=24, max_size="300MB", show_spinner=False)
def linear_spec(digest: str, _samples: np.ndarray, stft: StftConfig) -> LinearResult:
    """:func:`diffres.features.linear_spectrogram` of the clip ``digest`` (cached per settings)."""
    with torch.no_grad():
        lp = linear_spectrogram(torch.from_numpy(np.asarray(_samples, dtype=np.float32)), stft)[0]
    return LinearResult(lp.numpy().astype(np.float32), stft.frequencies().numpy(), stft)


def mel_settings(
    sample_rate: int, n_mels: int, hop_ms: float, win_ms: float, f_min: float = 0.0, f_max: float | None = None
) -> MelConfig:
    """A :class:`MelConfig` from widget values (numbers of any kind, as the widgets give them)."""
    return MelConfig(
        int(sample_rate),
        int(n_mels),
        float(hop_ms),
        float(win_ms),
        float(f_min),
        None if f_max is None else float(f_max),
    )


# --------------------------------------------------------------------------- models


def checkpoint_dir() -> str:
    """``$DIFFRES_CHECKPOINT_DIR`` or the repository's ``checkpoints/``."""
    return str(os.environ.get(CHECKPOINT_DIR_ENV) or CHECKPOINT_DIR)


def checkpoint_index() -> list[dict]:
    """Shipped checkpoints: ``{"id", "path", "name", "card"}`` for each ``*.pt`` in :func:`checkpoint_dir`."""
    return _checkpoint_index(checkpoint_dir())


def opening_rank(card: dict[str, Any]) -> tuple[bool, bool, bool]:
    """Sort key of the checkpoint a page opens on (lowest first): DiffRes, trained on the default
    sound's dataset (:data:`~diffres.examples.DEFAULT_EXAMPLE_DATASET`), and of that dataset the
    10 ms model before the fine-hop one."""
    default = card.get("dataset") == DEFAULT_EXAMPLE_DATASET
    return (card.get("frontend") != "diffres", not default, default and card.get("hop_ms") != 10.0)


@st.cache_data(ttl=20, show_spinner=False)
def _checkpoint_index(folder: str) -> list[dict]:
    found = []
    for pt in sorted(Path(folder).glob("*.pt")):
        card_file = pt.with_suffix(".json")
        try:
            card = json.loads(card_file.read_text()) if card_file.is_file() else {}
        except (OSError, json.JSONDecodeError):
            card = {}
        found.append({"id": f"{pt}:{pt.stat().st_mtime_ns}", "path": str(pt), "name": pt.stem, "card": card})
    return found


@st.cache_resource(max_entries=16, show_spinner="Loading the model...")
def load_model(model_id: str):
    """A shipped checkpoint (``LoadedCheckpoint``) by its id (path and mtime)."""
    path = model_id.rsplit(":", 1)[0]
    return diffres.load_checkpoint(path)


@st.cache_resource(max_entries=4, show_spinner=False)
def untrained_diffres(n_mels: int) -> diffres.DiffRes:
    """A DiffRes with seeded random weights in eval mode (fallback when no checkpoint exists)."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    module = diffres.DiffRes(n_mels, 0.5).eval()
    torch.random.set_rng_state(gen_state)
    return module


def diffres_module(model_id: str, n_mels: int) -> diffres.DiffRes:
    if model_id == UNTRAINED_ID:
        return untrained_diffres(n_mels)
    return load_model(model_id).model.frontend


@st.cache_data(max_entries=24, show_spinner=False)
def diffres_scores(digest: str, model_id: str, _samples: np.ndarray, mel: MelConfig) -> np.ndarray:
    """Raw importance scores ``[T]`` (sigmoid of the score network; independent of the rate)."""
    spec = log_mel(digest, _samples, mel)
    with torch.no_grad():
        raw = diffres_module(model_id, mel.n_mels).scores(torch.from_numpy(spec.log_mel).unsqueeze(0))
    return raw[0].numpy().astype(np.float32)


@dataclass(frozen=True)
class Merged:
    """DiffRes on one clip at one rate, as arrays (``st.cache_data`` pickles them).

    Attributes:
        features: ``[3, T', F]`` what the classifier sees (average, max, encoding).
        importance: ``[T]``; bin_edges: ``[T' + 1]`` input-frame positions.
        activeness: the module's diagnostic; n_frames, out_len: ``T``, ``T'``.
    """

    features: np.ndarray
    importance: np.ndarray
    bin_edges: np.ndarray
    activeness: float
    n_frames: int
    out_len: int

    @property
    def avg(self) -> np.ndarray:
        """``[T', F]`` merged log-mel (power-domain mean)."""
        return self.features[0]

    @property
    def max(self) -> np.ndarray:
        """``[T', F]`` log of ``T/T'`` times the weighted max."""
        return self.features[1]

    @property
    def encoding(self) -> np.ndarray:
        """``[T', F]`` merged position code."""
        return self.features[2]


@st.cache_data(max_entries=64, max_size="400MB", show_spinner=False)
def diffres_merge(digest: str, model_id: str, _samples: np.ndarray, mel: MelConfig, reduction_rate: float) -> Merged:
    """DiffRes at ``reduction_rate`` on the clip ``digest``: the scores are cached per clip and
    model (they do not depend on the rate) and merged here (:meth:`diffres.DiffRes.merge_scores`)."""
    raw = diffres_scores(digest, model_id, _samples, mel)
    spec = log_mel(digest, _samples, mel)
    x = torch.from_numpy(spec.log_mel).unsqueeze(0)
    with torch.no_grad():
        out = diffres_module(model_id, mel.n_mels).merge_scores(
            x, torch.from_numpy(raw).unsqueeze(0), reduction_rate=reduction_rate
        )
    return Merged(
        features=out.features[0].numpy().astype(np.float32),
        importance=out.importance[0].numpy().astype(np.float32),
        bin_edges=out.bin_edges[0].numpy().astype(np.float64),
        activeness=float(out.activeness),
        n_frames=int(x.shape[1]),
        out_len=int(out.out_len),
    )


@st.cache_data(max_entries=16, max_size="200MB", show_spinner=False)
def steps(digest: str, model_id: str, _samples: np.ndarray, mel: MelConfig, reduction_rate: float) -> DiffResSteps:
    """Every step of DiffRes on the clip (:func:`diffres.explain.diffres_steps`)."""
    spec = log_mel(digest, _samples, mel)
    return diffres_steps(diffres_module(model_id, mel.n_mels), spec.log_mel, reduction_rate)


@st.cache_data(max_entries=64, max_size="200MB", show_spinner=False)
def baseline(digest: str, name: str, _samples: np.ndarray, mel: MelConfig, reduction_rate: float) -> dict:
    """A fixed front-end (``avgpool``, ``changehop``, ...) at the same frame budget."""
    spec = log_mel(digest, _samples, mel)
    with torch.no_grad():
        out = diffres.make_frontend(name, mel.n_mels, reduction_rate)(torch.from_numpy(spec.log_mel).unsqueeze(0))
    return {"avg": out.avg[0].numpy().astype(np.float32), "bin_edges": out.bin_edges[0].numpy().astype(np.float64)}


@st.cache_data(max_entries=64, show_spinner=False)
def predict(
    digest: str, model_id: str, _samples: np.ndarray, sample_rate: int, reduction_rate: float
) -> list[tuple[str, float]]:
    """Top classes of a shipped checkpoint on the whole clip, at the model's own mel settings.

    Reuses the cached DiffRes merge (the same numbers the figures show), so a rate change
    only runs the classifier CNN (:meth:`diffres.models.AudioClassifier.classify`).
    """
    loaded = load_model(model_id)
    cfg = loaded.config
    res = diffres_merge(digest, model_id, _samples, cfg.mel, float(reduction_rate))
    probs = loaded.model.classify(torch.from_numpy(res.features).unsqueeze(0))[0].numpy()
    return top_classes(probs, cfg.classes, 5)


@st.cache_data(max_entries=32, show_spinner=False)
def familiarity_scores(digest: str, _samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """How familiar the whole clip is to each shipped DiffRes checkpoint that carries the
    statistics (:func:`diffres.familiarity.score_clip`; above 1 = unfamiliar), by model id."""
    scores = {}
    for entry in checkpoint_index():
        if entry["card"].get("frontend") != "diffres":
            continue
        try:
            loaded = load_model(entry["id"])
        except diffres.DiffResError:
            continue
        if loaded.familiarity is None or int(loaded.config.sample_rate) != int(sample_rate):
            continue
        scores[entry["id"]] = diffres.familiarity.score_clip(loaded.model, loaded.familiarity, _samples)
    return scores


@st.cache_data(max_entries=16, show_spinner="Resynthesising (Griffin-Lim)...")
def resynthesise(digest: str, kind: str, _log_mel: np.ndarray, mel: MelConfig) -> np.ndarray:
    """:func:`diffres.inverse.mel_to_audio` of a log-mel ``[T, F]``; ``kind`` and ``digest``
    only key the cache (e.g. ``"merged:rate=0.75"``)."""
    return mel_to_audio(_log_mel, mel)


# --------------------------------------------------------------------------- figures


def figure(kind: str, key: tuple, build: Callable[[], Any]) -> Any:
    """The plotly figure ``build()`` makes, built once per ``(kind, key)`` and shared by every
    session (read-only: :func:`ui.view.chart` only reads it).  ``key`` must hold every input
    of the figure (clip digest, model id, settings, rate, display options), so moving a slider
    back to a value seen before costs no figure building."""
    return _figure(kind, key, build)


@st.cache_resource(max_entries=32, show_spinner=False)
def _figure(kind: str, key: tuple, _build: Callable[[], Any]) -> Any:
    return _build()
