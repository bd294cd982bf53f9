"""Train: watch a small DiffRes classifier learn, TensorFlow-Playground style.

Pick data (a built-in set, your own recorded / uploaded classes, or a zip of class folders) and
settings, then Play / Pause / Step / Reset.  Training runs in a thread per run while an
``st.fragment(run_every=...)`` polls it, so the page stays responsive; the trainer lives in the session
(:mod:`ui.runs`), so it survives reruns and page switches, and checkpoints are written to a
per-session folder after every epoch, on pause and at the end.  The widgets are in
:mod:`ui.train_data`, :mod:`ui.train_settings` and :mod:`ui.train_view`.
"""

from __future__ import annotations

import streamlit as st

from ui import disk_runs, lessons, train_data, train_settings, train_view
from ui import runs as R
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Train")
st.markdown(
    "Train a small sound classifier with a DiffRes front-end and **watch what it learns to keep**: the "
    "importance curve and the merged spectrogram of one validation clip are redrawn as training proceeds. "
    "**Play** trains in short slices (the page stays usable), **Step** does one batch, **Reset** starts over. "
    "Changing a setting starts a new run; earlier runs stay below for comparison. On another page training "
    "waits, and carries on when you come back; checkpoints are saved at every epoch, and runs saved before a "
    "reload are listed at the bottom, ready to reopen."
)

lessons.banner("train")
with st.container(border=True):
    source = train_data.data_source()
config = train_settings.settings(source)
run = R.current(config, source)  # a run reopened from disk, or the run of these settings
if run is not None:
    train_settings.run_size(run)
    train_view.controls(run)
elif source is None:
    st.caption("Choose data above to start.")

train_view.live(run)
train_view.saved_checkpoints()
disk_runs.section()
if st.session_state.pop("_train_goto_inspect", False):
    st.switch_page("pages/inspect.py")
