"""Spectrogram lab: the time-frequency trade-off, with live readouts and presets."""

from __future__ import annotations

from typing import cast

import streamlit as st

import diffres
import ui
from diffres import figures
from diffres.audio import SAMPLE_RATE as SR
from ui import cache, lessons
from ui import lab as L
from ui.frame import ensure_entrypoint
from ui.view import chart, time_window

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

L.init_defaults()

st.title("Spectrogram lab")
st.markdown(
    "One spectrogram, every knob. A smaller **hop** gives more frames per second (finer time) and a "
    "proportionally larger bill for any classifier; a longer **window** gives finer frequency but blurs "
    "time. DiffRes exists because one fixed hop cannot be right for every moment of a sound."
)
clip = ui.current_clip()
ui.clip_notices(clip)

lessons.banner("lab")
L.reset_button()

c1, c2, c3 = st.columns(3)
with c1:
    hop_ms = st.slider(
        "Hop (ms)",
        1,
        50,
        key="lab_hop",
        persist_state=L.PERSIST,
        help="Time between the starts of consecutive frames. Smaller = finer time steps and more frames.",
    )
    win_ms = st.slider(
        "Window (ms)",
        5,
        100,
        key="lab_win",
        persist_state=L.PERSIST,
        help="Length of each analysis window (Hann). Longer = finer frequency resolution, blurrier time.",
    )
with c2:
    n_mels = st.selectbox(  # a select_slider printed its last option twice (the value and the end label)
        "Mel bins",
        options=[16, 32, 40, 64, 80, 128, 256],
        key="lab_mels",
        persist_state=L.PERSIST,
        help="Number of mel-spaced frequency bands (rows of the image).",
    )
    f_lo, f_hi = cast(
        tuple[int, int],
        st.slider(
            "Frequency range (Hz)",
            0,
            SR // 2,
            step=50,
            key="lab_frange",
            persist_state=L.PERSIST,
            help="Lowest and highest frequency covered by the mel bands (Nyquist is 8000 Hz at 16 kHz).",
        ),
    )
with c3:
    db_range = st.slider(
        "Dynamic range (dB)",
        20,
        120,
        step=5,
        key="lab_db",
        persist_state=L.PERSIST,
        help="How many dB below the loudest cell are still coloured; quieter cells are black.",
    )
    cmap = st.selectbox(
        "Colour map",
        figures.COLORMAPS,
        key="lab_cmap",
        persist_state=L.PERSIST,
        help="Colour map of the spectrogram (perceptually uniform except gray_r).",
    )

try:
    mel = cache.log_mel(
        clip.digest, clip.samples, cache.mel_settings(clip.sample_rate, n_mels, hop_ms, win_ms, f_lo, f_hi)
    )
except diffres.DiffResError as err:
    st.error(f"These settings do not make a spectrogram: {err}", icon=":material/error:")
    st.stop()

L.readouts(clip, mel, n_mels=int(n_mels), hop_ms=float(hop_ms), win_ms=float(win_ms))
n_frames, hop_s = mel.log_mel.shape[0], mel.hop_seconds

window = time_window("lab_view", clip.seconds, clip.digest, n_frames, figures.MAX_DISPLAY_COLUMNS)
fig = L.spectrogram_view(clip, mel, db_range=db_range, cmap=cmap, window=window)
chart(
    fig, key="lab_chart", width="stretch", config={"toImageButtonOptions": {"format": "png", "filename": "spectrogram"}}
)
if clip.event_times.size:
    st.caption(f"Green dashed lines on the waveform: the preset's known events ({clip.event_times.size}).")

st.subheader("The same sound at several hops")
hops = st.multiselect(
    "Hops to compare (ms)",
    [1, 2, 5, 10, 20, 40, 80],
    default=[10, 40],
    key="lab_compare_hops",
    persist_state=L.PERSIST,
    max_selections=4,
    help="Each panel is the current sound at that hop, with the window set to max(window, hop).",
)
if hops:
    chart(
        L.hops_view(
            clip, sorted(hops), n_mels=n_mels, win_ms=win_ms, f_range=(f_lo, f_hi), db_range=db_range, cmap=cmap
        ),
        key="lab_compare_chart",
    )
else:
    st.info("Pick at least one hop to compare.")

L.paper_figure(cmap)
