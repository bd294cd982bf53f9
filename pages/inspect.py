"""Inspect: open a trained model and see what it does.

A shipped checkpoint, a run from this session, or an uploaded ``.pt`` (loaded safely, weights
only).  For the current sound: top classes and "which frames did the model keep".  On the
validation split: confusion matrix, per-class accuracy, per-class mean importance, the
mistakes (to listen to), and accuracy against the inference reduction rate next to the shipped
fixed-front-end baselines.  Two models can be compared on the same sound.  The widgets are in
:mod:`ui.inspect_view`, the cached evaluations in :mod:`ui.inspect`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import diffres
from ui import inspect as I
from ui import inspect_view as V
from ui import lessons
from ui.frame import ensure_entrypoint
from ui.runs import describe_error

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Inspect")
st.markdown(
    "Open a trained model and look inside: its **model card**, its predictions and the frames DiffRes kept "
    "**for the current sound** (sidebar), its **confusion matrix and mistakes** on validation data, and how its "
    "accuracy holds up when you **change the reduction rate at inference**."
)

lessons.banner("inspect")
entry = V.choose()
if entry is None:
    st.stop()
try:
    loaded = I.load(entry.model_id)
except (diffres.DiffResError, MemoryError, OSError) as err:  # load_checkpoint raises CheckpointError for any bad file
    st.error(f"Could not open {Path(entry.path).name}: {describe_error(err)}", icon=":material/error:")
    st.stop()

V.model_card(loaded, entry)
# Only the open tab runs (a tab switch reruns the page): each tab evaluates or predicts on its own.
tab_clip, tab_val, tab_cmp = st.tabs(list(I.TABS), key=I.TAB_KEY, on_change="rerun")
if tab_clip.open:
    with tab_clip:
        V.this_sound(entry, loaded.model.config)
if tab_val.open:
    with tab_val:
        V.validation(entry, loaded)
if tab_cmp.open:
    with tab_cmp:
        V.compare(entry, loaded)
