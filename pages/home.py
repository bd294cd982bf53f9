"""Home: what DiffRes is, shown on the current sound in one glance."""

from __future__ import annotations

import streamlit as st

import ui
from diffres import figures
from ui import cache
from ui.frame import ensure_entrypoint
from ui.view import chart

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("DiffRes Explorer")
st.markdown(
    "A spectrogram chops sound into frames at a fixed **hop**. A small hop resolves fast events "
    "(an alarm's beeps) but costs many frames; a large hop is cheap but smears them. "
    "**DiffRes** (Differentiable Temporal Resolution) learns to keep frames where the sound changes "
    "and to merge frames where it does not, so a classifier sees fewer frames without losing the detail "
    "that matters."
)
clip = ui.current_clip()
ui.clip_notices(clip)

left, right = st.columns([3, 1])
with right:
    st.markdown(f"**Current sound:** {clip.title}")
    if clip.description:
        st.caption(clip.description)
    hops = st.select_slider(
        "Fine and coarse hop (ms)",
        options=[1, 2, 5, 10, 20, 40, 80],
        value=(10, 40),
        key="home_hops",
        persist_state="session",
        help="The same sound at a fine and a coarse hop (the time between frames). "
        "The paper's opening figure uses 10 ms and 40 ms. DiffRes starts from the fine hop and keeps "
        "as many frames as the coarse hop has.",
    )
    fine, coarse = int(hops[0]), int(hops[1])
    n_fine = int(clip.seconds * 1000 / fine) + 1
    n_coarse = int(clip.seconds * 1000 / coarse) + 1
    st.metric(f"{fine} ms hop", f"{n_fine:,}", help="Frames (a classifier processes each) at the fine hop.")
    st.metric(f"{coarse} ms hop", f"{n_coarse:,}", help="Frames (a classifier processes each) at the coarse hop.")
with left:
    panels = []
    for hop in (fine, coarse):
        mel = cache.log_mel(clip.digest, clip.samples, cache.mel_settings(clip.sample_rate, 64, hop, max(25.0, hop)))
        panels.append(
            {
                "title": f"hop {hop} ms<br>{mel.log_mel.shape[0]} frames",
                "log_mel": mel.log_mel,
                "hop_seconds": mel.hop_seconds,
                "mel_frequencies": mel.mel_frequencies,
            }
        )
    # DiffRes from the fine hop down to the coarse hop's frame budget, drawn at the true times
    shipped = [
        e for e in cache.checkpoint_index() if e["card"].get("frontend") == "diffres" and e["card"].get("n_mels") == 64
    ]
    shipped.sort(key=lambda e: e["card"].get("dataset") != "events")
    model_id = shipped[0]["id"] if shipped else cache.UNTRAINED_ID
    fine_settings = cache.mel_settings(clip.sample_rate, 64, fine, max(25.0, fine))
    fine_mel = cache.log_mel(clip.digest, clip.samples, fine_settings)
    rate = max(0.0, min(0.99, 1.0 - n_coarse / max(1, fine_mel.log_mel.shape[0])))
    res = cache.diffres_merge(clip.digest, model_id, clip.samples, fine_settings, float(rate))
    panels.append(
        {
            "title": f"DiffRes from {fine} ms<br>{res.out_len} frames",
            "log_mel": res.avg,
            "bin_edges": res.bin_edges,
            "hop_seconds": fine_mel.hop_seconds,
            "mel_frequencies": fine_mel.mel_frequencies,
        }
    )
    fig = figures.hop_grid_figure(panels, n_cols=len(panels), height_per_row=330)
    chart(fig, key="home_hops_chart")
    which = ("the " + shipped[0]["name"] + " model") if shipped else "an untrained DiffRes (no checkpoint yet)"
    st.caption(
        f"Right: {which} starts from the {fine} ms spectrogram and keeps only as many frames as the {coarse} ms "
        "hop has; each column is drawn over the time it covers, so narrow columns mark where it kept detail."
    )

st.subheader("Where to go next")
c1, c2, c3 = st.columns(3)
with c1:
    st.page_link("pages/spectrogram_lab.py", label="Spectrogram lab", icon=":material/graphic_eq:")
    st.caption(
        "Hop, window, mel bins and dB range with live readouts of time and frequency steps and the classifier's cost."
    )
with c2:
    st.page_link("pages/adaptive_resolution.py", label="Adaptive resolution", icon=":material/compress:")
    st.caption(
        "A trained DiffRes on your sound: importance, the merged spectrogram at its true times, "
        "the effective hop, baselines at the same budget, and listening."
    )
with c3:
    st.page_link("pages/train.py", label="Train", icon=":material/model_training:")
    st.caption("Train a small classifier with DiffRes and watch what it learns to keep.")
c4, c5, c6 = st.columns(3)
with c4:
    st.page_link("pages/lessons.py", label="Lessons", icon=":material/school:")
    st.caption("Eight guided experiments, each with a question and a check that says when you got it.")
with c5:
    st.page_link("pages/diffres_steps.py", label="How DiffRes computes", icon=":material/stairs:")
    st.caption("Every step from scores to merged frames, on your sound, one output frame at a time.")
with c6:
    st.page_link("pages/window_tradeoff.py", label="Window", icon=":material/view_week:")
    st.caption("The analysis window's time-frequency trade-off on a linear frequency axis, with its tile.")
c7, _, _ = st.columns(3)
with c7:
    st.page_link("pages/inspect.py", label="Inspect", icon=":material/search:")
    st.caption("A trained model's card, accuracy, confusion matrix, mistakes and what its DiffRes keeps on any clip.")
st.caption(
    "Sound comes from the sidebar: shipped examples, synthetic presets with known answers, your own "
    "file, or the microphone. The choice follows you to every page."
)
