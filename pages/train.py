"""Train page (placeholder: a colleague builds the live training view here)."""

import streamlit as st
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Train")
st.info("Coming next: train a small DiffRes classifier on a built-in dataset and watch the importance "
        "curve and the merged spectrogram change as it learns (play, pause, step, reset).",
        icon=":material/construction:")
