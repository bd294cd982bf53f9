"""How DiffRes computes: every step from scores to resolution encoding, on the current sound."""

from __future__ import annotations

import streamlit as st

import diffres
import ui
from ui import cache, lessons
from ui import steps as S
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("How DiffRes computes")
st.markdown(
    "Seven steps turn a spectrogram of **T** frames into the **T'** frames a classifier sees. Follow one "
    "**output frame** through them on the current sound: its span of input is shaded in every row, and the "
    "numbers beside the figure are the library's own, for that frame. Use **Next** and **Back**, or **Play "
    "through** to watch them in turn."
)
clip = ui.current_clip()
ui.clip_notices(clip)
lessons.banner("steps")

c1, c2 = st.columns([2, 1])
with c1:
    model_id = S.choose_model()
with c2:
    rate = S.rate()
if model_id == cache.UNTRAINED_ID:
    st.warning(
        "Untrained DiffRes: its scores are random, but every step below is computed exactly as for a trained model.",
        icon=":material/warning:",
    )
try:
    mel_cfg = S.mel_config(clip)
    mel = cache.log_mel(clip.digest, clip.samples, mel_cfg)
    steps = cache.steps(clip.digest, model_id, clip.samples, mel_cfg, rate)
except diffres.DiffResError as err:
    st.error(f"DiffRes could not run on this sound: {err}", icon=":material/error:")
    st.stop()

st.caption(
    f"{steps.n_frames:,} input frames at {mel.hop_seconds * 1000:g} ms, {steps.out_len:,} output frames at rate "
    f"{rate:.2f}."
)
j, shown = S.frame_and_span(steps, mel.log_mel)
S.step_buttons()


@st.fragment(run_every=S.PLAY_SECONDS if st.session_state.get(S.KEY_PLAYING) else None)
def step_view() -> None:
    S.advance_if_playing()
    step = S.step_slider()
    S.draw(steps, mel, step, j, shown)


step_view()
