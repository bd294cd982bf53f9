"""Inspect page (placeholder: a colleague builds model inspection here)."""

import streamlit as st
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Inspect")
st.info("Coming next: inspect a trained model: per-class accuracy, confusion matrix, and which frames "
        "DiffRes kept for each prediction on the current sound.", icon=":material/construction:")
