"""Home: what DiffRes is, shown on the current sound in one glance."""

from __future__ import annotations

import streamlit as st

import ui
from diffres import figures
from ui import cache
from ui.frame import ensure_entrypoint

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
        "Hops to compare (ms)", options=[1, 2, 5, 10, 20, 40, 80], value=(10, 40), key="home_hops",
        help="The same sound at a fine and a coarse hop (the time between frames). "
             "The paper's opening figure uses 10 ms and 40 ms.",
    )
    st.metric("Frames at the fine hop", f"{int(clip.seconds * 1000 / hops[0]) + 1}",
              help="Frames a classifier would process at the fine hop.")
    st.metric("Frames at the coarse hop", f"{int(clip.seconds * 1000 / hops[1]) + 1}",
              help="Frames a classifier would process at the coarse hop.")
with left:
    panels = []
    for hop in hops:
        mel = cache.log_mel(clip.digest, clip.samples, clip.sample_rate, 64, float(hop), max(25.0, float(hop)))
        panels.append({"title": f"hop {hop} ms: {mel.log_mel.shape[0]} frames", "log_mel": mel.log_mel,
                       "hop_seconds": mel.hop_seconds, "mel_frequencies": mel.mel_frequencies})
    fig = figures.hop_grid_figure(panels, n_cols=len(panels), height_per_row=330)
    st.plotly_chart(fig, key="home_hops_chart", width="stretch")

st.subheader("Where to go next")
c1, c2, c3 = st.columns(3)
with c1:
    st.page_link("pages/spectrogram_lab.py", label="Spectrogram lab", icon=":material/graphic_eq:")
    st.caption("Hop, window, mel bins and dB range with live readouts of time and frequency steps and the "
               "classifier's cost.")
with c2:
    st.page_link("pages/adaptive_resolution.py", label="Adaptive resolution", icon=":material/compress:")
    st.caption("A trained DiffRes on your sound: importance, the merged spectrogram at its true times, "
               "the effective hop, baselines at the same budget, and listening.")
with c3:
    st.page_link("pages/train.py", label="Train", icon=":material/model_training:")
    st.caption("Train a small classifier with DiffRes and watch what it learns to keep.")
st.caption("Sound comes from the sidebar: shipped examples, synthetic presets with known answers, your own "
           "file, or the microphone. The choice follows you to every page.")
