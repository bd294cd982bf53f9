"""Lessons: guided experiments, each with a goal, the exact state it loads, a question and a check."""

from __future__ import annotations

import streamlit as st

from ui import lessons
from ui.frame import ensure_entrypoint

ensure_entrypoint()  # run inside app.py (sidebar, navigation), never alone

st.title("Lessons")
st.markdown(
    "Each lesson loads a sound and **every setting it needs** on its page (your own changes elsewhere do not "
    "leak in), asks a question you answer by moving a control or choosing an answer, and **checks** on what "
    "you are looking at whether you got it. Your progress is kept for this session."
)
active = lessons.active()
if active is not None:
    st.info(
        f"Lesson in progress: **{active.title}** on *{lessons.PAGE_TITLES[active.page]}*.",
        icon=":material/school:",
    )
    st.page_link(
        lessons.PAGES[active.page], label=f"Back to {lessons.PAGE_TITLES[active.page]}", icon=":material/arrow_forward:"
    )
lessons.lesson_list()
