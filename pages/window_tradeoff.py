"""Window: the time-frequency trade-off of the analysis window, on a linear frequency axis."""

from __future__ import annotations

import streamlit as st

import diffres
import ui
from ui import lessons
from ui import window as W
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Window: time or frequency")
st.markdown(
    "Every spectrogram column is one **analysis window**: everything inside it is seen at once. The FFT of a "
    "window of length *L* has bins **1 / L** apart, so a long window separates close frequencies and smears "
    "short events over its whole length; a short one pins events in time and blurs frequency. The cyan "
    "rectangle is the **tile** of one analysis frame, window x bin width: its area is always 1."
)
clip = ui.current_clip()
ui.clip_notices(clip)
lessons.banner("window")

values = W.controls(clip)
try:
    main = W.panel(clip, values["win_ms"], values["hop_ms"])
except diffres.DiffResError as err:
    st.error(f"These settings do not make a spectrogram: {err}", icon=":material/error:")
    st.stop()
W.readouts(clip, main, values["win_ms"])
W.figure(clip, [values["win_ms"]], values, key="win_chart", height=460)
st.caption(
    "Linear frequency, no zero-padding: each row is one FFT bin. Drag to zoom (every time figure on the page "
    "follows); hover to read time, frequency and level."
)

st.subheader("The same sound at several window lengths")
if values["compare"]:
    W.figure(clip, sorted(values["compare"]), values, "win_compare_chart", 400)
    st.caption(
        "Left to right, longer windows: the tile grows wider and flatter. Close tones come apart from left to "
        "right; clicks and onsets smear. Try the synthetic preset *Two close tones under clicks* (sidebar)."
    )
else:
    st.info("Pick at least one window length to compare.")
