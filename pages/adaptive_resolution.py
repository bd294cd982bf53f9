"""Adaptive resolution: a DiffRes model on the current sound, drawn on the true time axis."""

from __future__ import annotations

import numpy as np
import streamlit as st

import diffres
import ui
from diffres import figures
from ui import adaptive as A
from ui import cache, lessons
from ui.frame import ensure_entrypoint
from ui.view import chart, time_window

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

HOP_OPTIONS = [1.0, 2.0, 5.0, 10.0, 20.0, 40.0]

st.title("Adaptive resolution")
st.markdown(
    "DiffRes scores every input frame's **importance**, then merges frames so that important moments keep "
    "fine resolution and steady stretches are summarised by a few wide frames. Below, the merged spectrogram "
    "is drawn **at the times it really covers**: narrow columns where DiffRes kept detail, wide ones where it "
    "merged. Zoom any row and the others follow."
)
clip = ui.current_clip()
ui.clip_notices(clip)
lessons.banner("adaptive")

# ------------------------------------------------------------------ model choice
usable = A.diffres_checkpoints()
options = [*usable, cache.UNTRAINED_ID]
if st.session_state.get("adapt_model") not in options:
    st.session_state["adapt_model"] = options[0]
    A.on_model_change(usable, keep=True)

c1, c2, c3 = st.columns([2, 2, 1])
with c1:
    model_id = st.selectbox(
        "Model",
        options,
        key="adapt_model",
        persist_state="session",
        format_func=lambda m: A.model_label(usable, m),
        on_change=A.on_model_change,
        args=(usable,),
        help="A shipped DiffRes checkpoint (checkpoints/*.pt); its hop and mel bins set the "
        "front-end. The untrained model is only a fallback that shows the mechanics.",
    )
with c2:
    rate = st.slider(
        "Reduction rate",
        0.0,
        0.95,
        step=0.05,
        key="adapt_rate",
        persist_state="session",
        help="Fraction of frames removed: 0.75 keeps a quarter of them. Applied at inference, "
        "so one model can be tried at any budget.",
    )
with c3:
    hop_ms = st.select_slider(
        "Input hop (ms)",
        HOP_OPTIONS,
        key="adapt_hop",
        persist_state="session",
        help="Hop of the input spectrogram. The model was trained at its card's hop; other hops "
        "work (DiffRes accepts any length) but are outside its training conditions.",
    )

with st.expander("Display settings", expanded=False):
    d1, d2 = st.columns(2)
    db_range = d1.slider(
        "Dynamic range (dB)",
        20,
        120,
        80,
        step=5,
        key="adapt_db",
        persist_state="session",
        help="How many dB below the loudest cell are still coloured.",
    )
    cmap = d2.selectbox(
        "Colour map",
        figures.COLORMAPS,
        key="adapt_cmap",
        persist_state="session",
        help="Colour map of the spectrograms.",
    )

if model_id == cache.UNTRAINED_ID:
    card: dict = {}
    if not usable:
        st.warning(
            "No trained DiffRes checkpoint was found in `checkpoints/` yet (they are being trained). "
            "This view uses an **untrained** DiffRes in eval mode: the mechanics (merging, true-time drawing, "
            "effective hop) are real, but its importance scores are not meaningful.",
            icon=":material/warning:",
        )
    else:
        st.warning(
            "Untrained DiffRes: its importance scores are random, shown only to illustrate the mechanics.",
            icon=":material/warning:",
        )
else:
    try:
        loaded = cache.load_model(model_id)
    except diffres.DiffResError as err:
        st.error(f"This checkpoint cannot be used: {err} Choose another model.", icon=":material/error:")
        st.stop()
    card = loaded.card
    if float(hop_ms) != float(loaded.config.hop_ms):
        st.info(
            f"This model was trained at a {loaded.config.hop_ms:g} ms hop; at {hop_ms:g} ms its scores are an "
            "extrapolation.",
            icon=":material/info:",
        )

# ------------------------------------------------------------------ compute (cached)
settings = A.mel_config(clip, model_id, float(hop_ms))
try:
    mel = cache.log_mel(clip.digest, clip.samples, settings)
    res = cache.diffres_merge(clip.digest, model_id, clip.samples, settings, float(rate))
except diffres.DiffResError as err:
    st.error(f"DiffRes could not run on this sound: {err}", icon=":material/error:")
    st.stop()

T, Tp = res.n_frames, res.out_len
hop_s = mel.hop_seconds
A.readouts(clip, res, hop_s)

left, right = st.columns([3, 1.25])
with left:
    window = time_window("adapt_view", clip.seconds, clip.digest, T, figures.MAX_DISPLAY_COLUMNS)
    # two charts on one linked time axis: a new rate redraws only the rows that depend on it
    for rows, key in ((figures.INPUT_ROWS, "adapt_input"), (figures.MERGE_ROWS, "adapt_main")):
        fig = A.diffres_view(
            clip, mel, res, rows, model_id=model_id, rate=float(rate), db_range=db_range, cmap=cmap, window=window
        )
        chart(fig, key=key, config={"toImageButtonOptions": {"format": "png", "filename": "diffres_view"}})
with right:
    top_db = float(np.max(mel.log_mel)) * figures.DB_PER_NEPER
    chart(
        A.compact_view(
            clip, mel, res, model_id=model_id, rate=float(rate), db_range=db_range, db_top=top_db, cmap=cmap
        ),
        key="adapt_compact",
    )
    st.caption(
        "The same merged frames side by side, as the classifier receives them (uniform columns); the resolution "
        "encoding tells it how wide and where each frame was. Hover a column to see the time it covers on the left."
    )
    if model_id != cache.UNTRAINED_ID:
        A.model_card_and_prediction(usable, model_id, card, clip, float(rate))

A.baselines(clip, mel, res, rate=float(rate), db_range=float(db_range), db_top=top_db, cmap=cmap)

# ------------------------------------------------------------------ listen
st.subheader("Listen to what the merged representation keeps")
listen = st.toggle(
    "Resynthesise audio from the spectrograms",
    value=False,
    key="adapt_listen",
    persist_state="session",
    help="Turns the mel spectrograms back into sound with Griffin-Lim (phase is guessed, so both "
    "versions sound rougher than the original). Takes a few seconds; cached afterwards.",
)
if listen:
    A.listen(clip, mel, res, f"{model_id}:{settings}:{rate}")

st.subheader("Download")
A.downloads(clip, mel, res, rate=float(rate), hop_ms=float(hop_ms), db_range=float(db_range), cmap=cmap)
