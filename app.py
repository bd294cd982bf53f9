"""DiffRes Explorer: the Streamlit entrypoint (``streamlit run app.py``).

It owns the page configuration, the shared sidebar (the sound every page works on) and the
navigation; each page is a script in ``pages/`` listed explicitly in :func:`ui.frame.app_pages`
(calling ``st.navigation`` switches off Streamlit's legacy auto-discovery of that folder; see
:mod:`ui.frame` for deep links to a fresh server).
"""

from __future__ import annotations

import streamlit as st

import ui
from ui.frame import POSITION, app_pages, entrypoint_active


def run() -> None:
    st.set_page_config(page_title="DiffRes Explorer", page_icon=":material/graphic_eq:", layout="wide")
    page = st.navigation(app_pages(), position=POSITION)
    with st.sidebar:
        st.markdown("### DiffRes Explorer")
        st.caption(
            "Learned temporal resolution for spectrograms: keep detail where the sound changes, "
            "merge frames where it does not."
        )
        ui.sound_picker()
    with entrypoint_active():
        page.run()


if __name__ == "__main__":
    run()
