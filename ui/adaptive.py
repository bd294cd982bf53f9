"""Widgets of the Adaptive resolution page: model choice, prediction, listening, downloads.

Streamlit glue only: the numbers come from :mod:`ui.cache` (cached library calls), the
figures from :mod:`diffres.figures`, the files from :mod:`diffres.export`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

import diffres
from diffres import export, figures
from diffres.examples import frames_near_events
from diffres.features import MelConfig
from diffres.inverse import expand_to_input_grid
from ui import cache
from ui.sound import CurrentClip
from ui.view import chart, metric_row

#: Default mel bands of the untrained fallback model.
DEFAULT_N_MELS = 64


#: Session-state key (and link parameter) of the open state of the fixed-front-end comparison.
COMPARE_KEY = "adapt_compare_open"


def diffres_checkpoints() -> dict[str, dict[str, Any]]:
    """Shipped DiffRes checkpoints by id: the default dataset's first (its 10 ms model before
    its fine-hop one), then by name."""

    entries = sorted(cache.checkpoint_index(), key=lambda e: (cache.opening_rank(e["card"]), e["name"]))
    return {e["id"]: e for e in entries if e["card"].get("frontend") == "diffres"}


def mel_config(clip: CurrentClip, model_id: str, hop_ms: float) -> MelConfig:
    """The page's front-end: the model's own mel settings at the chosen hop (the untrained
    fallback: :data:`DEFAULT_N_MELS` bands, 25 ms window); the window is at least the hop."""
    if model_id == cache.UNTRAINED_ID:
        n_mels, win_ms, f_min, f_max = DEFAULT_N_MELS, 25.0, 0.0, None
    else:
        cfg = cache.load_model(model_id).config
        n_mels, win_ms, f_min, f_max = cfg.n_mels, cfg.win_ms, cfg.f_min, cfg.f_max
    return cache.mel_settings(clip.sample_rate, n_mels, hop_ms, max(float(win_ms), float(hop_ms)), f_min, f_max)


def view_arrays(clip: CurrentClip, mel: cache.MelResult, res: cache.Merged) -> dict[str, Any]:
    """The arrays of the DiffRes view, for :func:`diffres.figures.diffres_figure` and its PNG
    twin :func:`diffres.figures.diffres_png` (they take the same keywords)."""
    return dict(
        samples=clip.samples,
        sample_rate=clip.sample_rate,
        log_mel=mel.log_mel,
        hop_seconds=mel.hop_seconds,
        mel_frequencies=mel.mel_frequencies,
        importance=res.importance,
        bin_edges=res.bin_edges,
        merged=res.avg,
    )


def view_key(clip: CurrentClip, mel: cache.MelResult, *, db_range: float, cmap: str, window: Any) -> tuple:
    """What every figure of the page depends on besides the model and rate (a cache key)."""
    return (clip.digest, mel.config, float(db_range), str(cmap), window, clip.event_times.tobytes())


def diffres_view(
    clip: CurrentClip,
    mel: cache.MelResult,
    res: cache.Merged,
    rows: tuple[str, ...],
    *,
    model_id: str,
    rate: float,
    db_range: float,
    cmap: str,
    window: Any,
) -> Any:
    """Rows of the DiffRes view (:func:`diffres.figures.diffres_figure`), cached by their
    inputs; the input rows do not depend on the model or the rate and are keyed without them."""
    key = view_key(clip, mel, db_range=db_range, cmap=cmap, window=window)
    if rows != figures.INPUT_ROWS:
        key = (*key, model_id, float(rate))

    def build() -> Any:
        return figures.diffres_figure(
            **view_arrays(clip, mel, res),
            db_range=db_range,
            colormap=cmap,
            event_times=clip.event_times if clip.event_times.size else None,
            time_range=window,
            rows=rows,
        )

    return cache.figure(f"diffres_view:{','.join(rows)}", key, build)


def compact_view(
    clip: CurrentClip,
    mel: cache.MelResult,
    res: cache.Merged,
    *,
    model_id: str,
    rate: float,
    db_range: float,
    db_top: float,
    cmap: str,
) -> Any:
    """The classifier's view (:func:`diffres.figures.compact_figure`), cached by its inputs."""
    key = (clip.digest, mel.config, model_id, float(rate), float(db_range), float(db_top), str(cmap))
    return cache.figure(
        "compact",
        key,
        lambda: figures.compact_figure(
            res.avg,
            res.encoding,
            mel.mel_frequencies,
            db_range=db_range,
            db_top=db_top,
            colormap=cmap,
            height=460,
            bin_edges=res.bin_edges,
            hop_seconds=mel.hop_seconds,
        ),
    )


def model_label(entries: dict[str, dict[str, Any]], model_id: str) -> str:
    if model_id == cache.UNTRAINED_ID:
        return "Untrained DiffRes (random weights, demo only)"
    card = entries[model_id]["card"]
    metrics = card.get("metrics") or {}
    acc = metrics.get("test_accuracy", metrics.get("val_accuracy"))
    extra = f", accuracy {acc:.0%}" if isinstance(acc, (int, float)) else ""
    return f"{entries[model_id]['name']} ({card.get('dataset', '?')}, {card.get('hop_ms', '?')} ms hop{extra})"


def on_model_change(entries: dict[str, dict[str, Any]], *, keep: bool = False) -> None:
    """A newly chosen model sets the hop and rate it was trained at (``keep``: only where unset,
    e.g. a link gave the rate but not the model)."""
    ss = st.session_state
    model_id = ss.get("adapt_model")
    card = entries.get(model_id or "", {}).get("card", {}) if model_id != cache.UNTRAINED_ID else {}
    for key, value in (
        ("adapt_hop", float(card.get("hop_ms", 10.0))),
        ("adapt_rate", float(round(card.get("reduction_rate", 0.5) * 20) / 20)),
    ):
        if not (keep and key in ss):
            ss[key] = value


def model_card_and_prediction(
    entries: dict[str, dict[str, Any]], model_id: str, card: dict[str, Any], clip: CurrentClip, rate: float
) -> None:
    """The chosen checkpoint's card (in an expander) and its top classes for the clip."""
    with st.expander("Model card", expanded=False):
        metrics = card.get("metrics") or {}
        st.markdown(
            f"**{entries[model_id]['name']}**: front-end `{card.get('frontend')}`, trained on "
            f"`{card.get('dataset')}` at reduction rate {card.get('reduction_rate')}, "
            f"{card.get('hop_ms')} ms hop, {card.get('n_mels')} mel bands; "
            f"{card.get('params', 0):,} parameters."
        )
        if metrics:
            st.markdown(
                ", ".join(
                    f"{k.replace('_', ' ')}: {v:.1%}"
                    if isinstance(v, float) and v <= 1
                    else f"{k.replace('_', ' ')}: {v}"
                    for k, v in metrics.items()
                )
            )
        if card.get("data_source"):
            st.caption(card["data_source"])
    st.markdown(
        f"**Prediction** ({card.get('dataset', '')} classes, whole clip, rate {rate:.2f}, at the model's own "
        f"{card.get('hop_ms', '?'):g} ms hop whatever the input hop above)"
    )
    try:
        for name, p in cache.predict(clip.digest, model_id, clip.samples, clip.sample_rate, float(rate)):
            st.progress(float(p), text=f"{name}: {p:.0%}")
    except diffres.DiffResError as err:
        st.error(f"Prediction failed: {err}")
        return
    familiarity_notice(entries, model_id, card, clip)


def familiarity_notice(
    entries: dict[str, dict[str, Any]], model_id: str, card: dict[str, Any], clip: CurrentClip
) -> None:
    """Say so when the clip is unlike the model's training data, and offer the shipped model
    that knows such sounds best (by the calibrated familiarity score)."""
    scores = cache.familiarity_scores(clip.digest, clip.samples, clip.sample_rate)
    mine = scores.get(model_id)
    if mine is None or mine <= 1.0:
        return
    best_id = min(scores, key=scores.__getitem__)
    text = (
        f"**This sound is unlike the `{card.get('dataset')}` training data**: it is less familiar to this model "
        f"than 99 % of that set's own held-out clips (familiarity score {mine:.1f}; 1 or less is typical), so "
        "read the prediction with care."
    )
    if best_id != model_id and scores[best_id] < mine:
        best = entries[best_id]
        fits = "knows sounds like this" if scores[best_id] <= 1.0 else "comes closest"
        text += (
            f" Of the shipped models, **{best['name']}** (trained on `{best['card'].get('dataset')}`) {fits} "
            f"(score {scores[best_id]:.1f})."
        )
        st.warning(text, icon=":material/help:")
        st.button(f"Use {best['name']}", key="adapt_use_familiar", on_click=_choose_model, args=(entries, best_id))
    else:
        st.warning(text + " None of the shipped models was trained on sounds like it.", icon=":material/help:")


def _choose_model(entries: dict[str, dict[str, Any]], model_id: str) -> None:
    st.session_state["adapt_model"] = model_id
    on_model_change(entries)


def listen(clip: CurrentClip, mel: cache.MelResult, res: cache.Merged, key: str) -> None:
    """Original, full-mel and merged-mel resyntheses side by side (Griffin-Lim)."""
    st.caption(
        "**Approximations**: Griffin-Lim inversion of the mel spectrogram (16 iterations). The merged version "
        "expands each output frame back over the input frames it covers, so merged stretches sound frozen."
    )
    a1, a2, a3 = st.columns(3)
    a1.markdown("Original")
    a1.audio(cache.wav_for(clip.digest, clip.samples, clip.sample_rate), format="audio/wav")
    a2.markdown("From the full mel spectrogram")
    a2.audio(
        cache.resynthesise(clip.digest, f"full:{mel.config}", mel.log_mel, mel.config), sample_rate=clip.sample_rate
    )
    expanded = expand_to_input_grid(res.avg, res.bin_edges, res.n_frames)
    a3.markdown(f"From the DiffRes-merged spectrogram ({res.out_len} frames)")
    a3.audio(cache.resynthesise(clip.digest, f"merged:{key}", expanded, mel.config), sample_rate=clip.sample_rate)


def downloads(
    clip: CurrentClip,
    mel: cache.MelResult,
    res: cache.Merged,
    *,
    rate: float,
    hop_ms: float,
    db_range: float,
    cmap: str,
) -> None:
    """The view as PNG, importance and bin edges as CSV, the merged arrays as NPZ."""
    hop_s = mel.hop_seconds
    stem = f"diffres_{clip.title.replace(' ', '_')[:30]}_rate{rate:.2f}_hop{hop_ms:g}ms"

    def png() -> bytes:
        return figures.diffres_png(
            **view_arrays(clip, mel, res),
            db_range=db_range,
            colormap=cmap,
            title=f"{clip.title}: DiffRes at rate {rate:.2f}, {res.n_frames} -> {res.out_len} frames",
        )

    def npz() -> bytes:
        return export.merged_npz(
            merged_avg=res.avg,
            merged_max=res.max,
            resolution_encoding=res.encoding,
            importance=res.importance,
            bin_edges=res.bin_edges,
            log_mel=mel.log_mel,
            hop_seconds=np.float64(hop_s),
            mel_frequencies=mel.mel_frequencies,
            reduction_rate=np.float64(rate),
            sample_rate=np.int64(clip.sample_rate),
        )

    row = st.container(horizontal=True, gap="small")  # wraps in a narrow window instead of cutting labels
    row.download_button(
        "PNG figure",
        png,
        file_name=f"{stem}.png",
        mime="image/png",
        key="adapt_png",
        width="content",
        on_click="ignore",
        icon=":material/image:",
        help="The linked view as a static image (drawn on the server with matplotlib).",
    )
    row.download_button(
        "Importance (CSV)",
        lambda: export.importance_csv(res.importance, res.bin_edges, hop_s),
        file_name=f"{stem}_importance.csv",
        mime="text/csv",
        key="adapt_csv",
        width="content",
        on_click="ignore",
        icon=":material/table:",
        help="One row per input frame: its times, importance and the output frame it went into.",
    )
    row.download_button(
        "Bin edges (CSV)",
        lambda: export.bin_edges_csv(res.bin_edges, hop_s),
        file_name=f"{stem}_bin_edges.csv",
        mime="text/csv",
        key="adapt_edges_csv",
        width="content",
        on_click="ignore",
        icon=":material/table:",
        help="One row per output frame: the input span it covers (frames and seconds) and its effective hop.",
    )
    row.download_button(
        "Merged spectrogram (NPZ)",
        npz,
        file_name=f"{stem}.npz",
        mime="application/octet-stream",
        key="adapt_npz",
        width="content",
        on_click="ignore",
        icon=":material/download:",
        help="NumPy archive: merged avg/max log-mel [T', F], resolution encoding, importance [T], "
        "bin edges [T'+1], the original log-mel and the axis facts.",
    )


def readouts(clip: CurrentClip, res: cache.Merged, hop_s: float) -> None:
    """Frames in and out, the finest and coarsest effective hop, activeness, and for a
    preset with known events whether the output frames crowd around them."""
    T, Tp = res.n_frames, res.out_len
    widths = figures.effective_hop_ms(res.bin_edges, hop_s)
    metric = metric_row()
    metric("Input frames T", f"{T:,}", help=f"{clip.seconds:.2f} s at a {hop_s * 1000:g} ms hop.")
    metric(
        "Output frames T'",
        f"{Tp:,}",
        delta=f"-{(1 - Tp / T):.0%} frames",
        delta_color="off",
        help="What the classifier processes: floor(T x (1 - rate)). Its cost scales with T'.",
    )
    metric("Finest effective hop", f"{widths.min():.1f} ms", help="Smallest span of input covered by one output frame.")
    metric(
        "Coarsest effective hop", f"{widths.max():.0f} ms", help="Largest span of input merged into one output frame."
    )
    spread = diffres.analysis.hop_spread(torch.as_tensor(res.bin_edges), hop_s * 1000.0)
    metric(
        "Activeness",
        f"{res.activeness:.3f}",
        help="Standard deviation of the importance over non-silent frames: 0 means DiffRes treats every frame "
        "alike (it then behaves like average pooling).",
    )

    if spread.uniform:
        st.info(
            f"**DiffRes is acting like uniform pooling on this sound**: its merged frames all cover about "
            f"{spread.fine_ms:.0f}-{spread.coarse_ms:.0f} ms. The model found nothing here that stands out from "
            "the rest (a steady sound, or one unlike what it was trained on), so it spreads its frames evenly, "
            "as average pooling would.",
            icon=":material/drag_handle:",
        )
    if clip.event_times.size:
        # the preset's known answer: do output frames crowd around the events?
        near_frames, near_time = frames_near_events(res.bin_edges, hop_s, clip.event_times)
        st.info(
            f"**Known answer:** {near_frames:.0%} of the {Tp} output frames sit within 50 ms of the preset's "
            f"{clip.event_times.size} event{'s' if clip.event_times.size != 1 else ''}, "
            f"which fill {near_time:.0%} of the clip "
            f"({'more' if near_frames > near_time + 0.02 else 'no more'} than a fixed hop would give them).",
            icon=":material/target:",
        )


def baselines(
    clip: CurrentClip,
    mel: cache.MelResult,
    res: cache.Merged,
    *,
    rate: float,
    db_range: float,
    db_top: float,
    cmap: str,
) -> None:
    """DiffRes next to average pooling and a larger hop at the same frame budget, in an
    expander (open at first) that runs only while open (:data:`COMPARE_KEY`): closed, a new
    rate skips the two baselines and their chart (the script ends about 0.08 s sooner)."""
    Tp = res.out_len
    box = st.expander(  # a label that does not change with the rate: a new label is a new expander and chart
        "**Same frame budget, fixed front-ends**: DiffRes next to average pooling and a larger hop",
        expanded=True,
        key=COMPARE_KEY,
        on_change="rerun",
        icon=":material/compare:",
    )
    if not box.open:
        return
    box.caption(
        f"All three keep {Tp} frames. Average pooling merges equal-width groups (in the log domain); "
        "changing the hop keeps every k-th frame and drops the rest; DiffRes decides where to spend the frames "
        "(and merges in the power domain)."
    )
    rows = [{"title": f"DiffRes: {Tp} frames placed by importance", "merged": res.avg, "bin_edges": res.bin_edges}]
    for name, title in (("avgpool", "Average pooling"), ("changehop", "Change hop (evenly spaced frames)")):
        b = cache.baseline(clip.digest, name, clip.samples, mel.config, rate)
        rows.append({"title": f"{title}: {Tp} frames", "merged": b["avg"], "bin_edges": b["bin_edges"]})
    key = (clip.digest, mel.config, res.bin_edges.tobytes(), float(rate), float(db_range), float(db_top), str(cmap))
    fig = cache.figure(
        "frontend_comparison",
        key,
        lambda: figures.frontend_comparison_figure(
            rows, mel.hop_seconds, mel.mel_frequencies, db_range=db_range, db_top=db_top, colormap=cmap
        ),
    )
    chart(fig, key="adapt_compare", where=box)
