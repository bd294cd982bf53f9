"""DiffRes Explorer: the Streamlit entrypoint (``streamlit run app.py``).

It owns the page configuration, the shared sidebar (the sound every page works on, the
"Copy link" control), the settings in the URL (:mod:`ui.share`), the linked-views script
(:mod:`ui.links`), the guided lessons' page switch (:mod:`ui.lessons`) and the navigation;
each page is a script in ``pages/`` listed explicitly in :func:`ui.frame.app_pages` (calling
``st.navigation`` switches off Streamlit's legacy auto-discovery of that folder; see
:mod:`ui.frame` for deep links to a fresh server).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import ui
from ui import lessons, links, share
from ui import runs as R
from ui.frame import POSITION, app_pages, entrypoint_active

#: The tab's icon, a local file: a Material icon name here makes the browser fetch it from Google's
#: font server, which an offline machine cannot reach.
FAVICON = Path(__file__).resolve().parent / "ui" / "assets" / "favicon.png"


def run() -> None:
    st.set_page_config(page_title="DiffRes Explorer", page_icon=str(FAVICON), layout="wide")
    R.warm_up_training()  # the training processes' fork server, in the background
    share.restore_from_url()  # a link's settings, before any widget exists
    page = st.navigation(app_pages(), position=POSITION)
    lessons.go_if_asked()
    with st.sidebar:
        st.markdown("### DiffRes Explorer")
        st.caption(
            "Learned temporal resolution for spectrograms: keep detail where the sound changes, "
            "merge frames where it does not."
        )
        clip = ui.sound_picker()
        share.copy_link(page, clip.kind, clip.title)
        links.install()
    share.url_notices()
    share.write_url()  # the settings as this run starts (a page that stops early still has its link)
    with entrypoint_active():
        page.run()
    share.write_url()  # and as it ends


if __name__ == "__main__":
    run()
