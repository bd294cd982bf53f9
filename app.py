"""DiffRes Explorer: the Streamlit entrypoint (``streamlit run app.py``).

It owns the page configuration, the shared sidebar (the sound every page works on) and the
navigation; each page is a script in ``pages/`` listed explicitly (calling
``st.navigation`` switches off Streamlit's legacy auto-discovery of that folder).
"""

from __future__ import annotations

import streamlit as st

import ui
from ui.frame import entrypoint_active

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/spectrogram_lab.py", title="Spectrogram lab", icon=":material/graphic_eq:"),
    st.Page("pages/adaptive_resolution.py", title="Adaptive resolution", icon=":material/compress:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/search_insights:"),
]


def run() -> None:
    st.set_page_config(page_title="DiffRes Explorer", page_icon=":material/graphic_eq:", layout="wide")
    page = st.navigation(PAGES, position="top")
    with st.sidebar:
        st.markdown("### DiffRes Explorer")
        st.caption("Learned temporal resolution for spectrograms: keep detail where the sound changes, "
                   "merge frames where it does not.")
        ui.sound_picker()
    with entrypoint_active():
        page.run()


if __name__ == "__main__":
    run()
