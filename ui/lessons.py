"""Guided lessons in the app: start one (load its exact state, go to its page), the banner on
that page (goal, question, the live check), and progress kept in the session.

The lessons themselves (state, questions, measured checks) are :data:`diffres.lessons.LESSONS`;
this module gathers the facts a check needs from the app's cached calls and draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st
import torch

import diffres
from diffres.examples import DEFAULT_PRESET_SECONDS
from diffres.lessons import LESSONS, Facts, Lesson, Verdict, lesson
from ui import cache
from ui.sound import KEY_EXAMPLE, KEY_PRESET_SECONDS, current_clip

#: Page key -> page script (``st.switch_page`` takes the path).
PAGES = {
    "lab": "pages/spectrogram_lab.py",
    "window": "pages/window_tradeoff.py",
    "adaptive": "pages/adaptive_resolution.py",
    "steps": "pages/diffres_steps.py",
    "train": "pages/train.py",
    "inspect": "pages/inspect.py",
}
PAGE_TITLES = {
    "lab": "Spectrogram lab",
    "window": "Window",
    "adaptive": "Adaptive resolution",
    "steps": "How DiffRes computes",
    "train": "Train",
    "inspect": "Inspect",
}
KEY_ACTIVE = "lesson_active"
KEY_DONE = "lessons_done"
KEY_ANSWER = "lesson_answer"
KEY_GOTO = "_lesson_goto"
KEY_PROBLEM = "_lesson_problem"
#: Session keys a lesson clears so its page starts from the whole clip.
VIEW_KEYS = ("lab_view", "adapt_view")
#: Where a page keeps its model choice.
MODEL_KEYS = {"adaptive": "adapt_model", "steps": "steps_model", "inspect": "inspect_pick_shipped"}

ss = st.session_state


def done() -> set[str]:
    """Keys of the lessons passed in this session."""
    return ss.setdefault(KEY_DONE, set())


def active() -> Lesson | None:
    key = ss.get(KEY_ACTIVE)
    return lesson(key) if key else None


def _shipped(names: tuple[str, ...]) -> dict | None:
    """The first shipped checkpoint among ``names`` (an index entry), or None."""
    index = {e["name"]: e for e in cache.checkpoint_index()}
    return next((index[n] for n in names if n in index), None)


def _load_model(item: Lesson) -> str | None:
    """Put the lesson's model into its page's model control; the reason when impossible."""
    key = MODEL_KEYS.get(item.page)
    if key is None or not item.models:
        return None
    entry = _shipped(item.models)
    if item.page == "inspect":
        if entry is None:
            return f"This lesson needs the shipped checkpoint {item.models[0]!r}, which is not in checkpoints/."
        ss[key] = entry["path"]
        return None
    ss[key] = entry["id"] if entry is not None else cache.UNTRAINED_ID
    if item.page == "adaptive":  # the model's own hop (its card), as choosing it by hand does
        card = entry["card"] if entry is not None else {}
        ss["adapt_hop"] = float(card.get("hop_ms", 10.0))
    return None


def start(key: str) -> None:
    """Widget callback: load the lesson's exact state and ask the app to open its page."""
    item = lesson(key)
    problem = _load_model(item)
    if problem:
        ss[KEY_PROBLEM] = problem
        return
    ss.pop(KEY_PROBLEM, None)
    if item.sound is not None:
        ss[KEY_EXAMPLE] = item.sound
        ss[KEY_PRESET_SECONDS] = float(DEFAULT_PRESET_SECONDS)
        ss.get("_sound_seen", {}).pop("example", None)  # reload it even over an upload
    for k in VIEW_KEYS:
        ss.pop(k, None)
    for k, v in item.settings.items():
        ss[k] = list(v) if isinstance(v, list) else v
    ss.pop(KEY_ANSWER, None)
    ss[KEY_ACTIVE] = key
    ss[KEY_GOTO] = PAGES[item.page]


def end() -> None:
    ss.pop(KEY_ACTIVE, None)
    ss.pop(KEY_ANSWER, None)


def go_if_asked() -> None:
    """In ``app.py`` before the page runs: open the page a lesson asked for."""
    target = ss.pop(KEY_GOTO, None)
    if target:
        st.switch_page(target)


# --------------------------------------------------------------------------- facts


def _mel_of_lab(clip) -> tuple[np.ndarray, float]:
    f_lo, f_hi = ss["lab_frange"]
    mel = cache.log_mel(
        clip.digest,
        clip.samples,
        cache.mel_settings(clip.sample_rate, ss["lab_mels"], ss["lab_hop"], ss["lab_win"], f_lo, f_hi),
    )
    return mel.log_mel, mel.hop_seconds


def _stft_of_window(clip) -> tuple[np.ndarray, np.ndarray, float]:
    from diffres.features import StftConfig

    res = cache.linear_spec(
        clip.digest, clip.samples, StftConfig(clip.sample_rate, float(ss["win_hop"]), float(ss["win_ms"]))
    )
    return res.log_power, res.frequencies, res.config.hop_seconds


def _steps_of_page(clip) -> dict[str, Any]:
    from ui import steps as S

    mel, model_id = S.mel_config(clip), ss.get("steps_model", cache.UNTRAINED_ID)
    return {
        "steps": cache.steps(clip.digest, model_id, clip.samples, mel, float(ss["steps_rate"])),
        "log_mel": cache.log_mel(clip.digest, clip.samples, mel).log_mel,
    }


def _spread_of_adaptive(clip) -> Any:
    from ui import adaptive as A

    model_id = ss.get("adapt_model", cache.UNTRAINED_ID)
    mel = A.mel_config(clip, model_id, float(ss["adapt_hop"]))
    res = cache.diffres_merge(clip.digest, model_id, clip.samples, mel, float(ss["adapt_rate"]))
    return diffres.analysis.hop_spread(torch.as_tensor(res.bin_edges), mel.hop_length / mel.sample_rate * 1000.0)


def _sweep_of_inspect(clip) -> Any:
    from ui import inspect as I

    entry = next((e for e in I.shipped_entries() if e.path == ss.get("inspect_pick_shipped")), None)
    if entry is None or entry.model_id not in ss.get("_inspect_swept", set()):
        return None
    loaded = I.load(entry.model_id)
    data, _ = I.eval_data_for(entry, loaded.card)
    if data is None:
        return None
    rates = tuple(sorted(set(I.SWEEP_RATES) | {round(float(loaded.model.config.reduction_rate), 4)}))  # as the page
    return I.rate_sweep(entry.model_id, data.key, data, rates)


def _history_of_train(clip) -> Any:
    from ui import runs as R

    run = R.active_run()
    item = active()
    if run is None or item is None:
        return None
    c = run.config
    if run.source.name != item.settings.get("train_dataset") or c.frontend != item.settings.get("train_frontend"):
        return None
    return list(run.history)


_FACTS: dict[str, Callable[[Any], Any]] = {
    "mel": _mel_of_lab,
    "stft": _stft_of_window,
    "spread": _spread_of_adaptive,
    "sweep": _sweep_of_inspect,
    "history": _history_of_train,
    "answer": lambda clip: ss.get(KEY_ANSWER),
}


def facts(item: Lesson) -> Facts:
    """The facts ``item``'s check needs, from the app's current state (cached library calls)."""
    clip = current_clip()
    measured: dict[str, Any] = {}
    for need in item.needs:
        if need in ("steps", "log_mel"):
            measured.update(_steps_of_page(clip))
        else:
            measured[need] = _FACTS[need](clip)
    sound = (
        clip.digest.rsplit(":", 1)[0] if clip.kind == "preset" else (clip.digest if clip.kind == "example" else None)
    )
    settings = {k: ss.get(k) for k in list(item.settings) + list(MODEL_KEYS.values())}
    return Facts(settings, sound, clip.samples, clip.sample_rate, measured)


def verdict(item: Lesson) -> Verdict:
    try:
        result = item.verdict(facts(item))
    except diffres.DiffResError as err:
        return Verdict(False, f"The check could not run at these settings: {err}")
    if result.passed:
        done().add(item.key)
    return result


# --------------------------------------------------------------------------- drawing


def _next_key(item: Lesson) -> str | None:
    keys = [x.key for x in LESSONS]
    later = keys[keys.index(item.key) + 1 :]
    return next((k for k in later if k not in done()), later[0] if later else None)


def banner(page: str) -> None:
    """The active lesson's goal, question and live check (only on the lesson's own page)."""
    item = active()
    if item is None or item.page != page:
        return
    with st.container(border=True, key="lesson_banner"):
        n = [x.key for x in LESSONS].index(item.key) + 1
        st.markdown(f"**Lesson {n} of {len(LESSONS)}: {item.title}**: {item.goal}")
        st.markdown(f":material/help: {item.question}")
        st.caption(f"How: {item.how}")
        if item.answers:
            st.radio("Your answer", item.answers, index=None, key=KEY_ANSWER, horizontal=True)
        _live_verdict(item)
        row = st.container(horizontal=True)
        row.button("Restart lesson", key="lesson_restart", on_click=start, args=(item.key,), icon=":material/replay:")
        nxt = _next_key(item)
        if nxt:
            row.button("Next lesson", key="lesson_next", on_click=start, args=(nxt,), icon=":material/arrow_forward:")
        row.button("End lesson", key="lesson_end", on_click=end, icon=":material/close:")


def _show_verdict(item: Lesson) -> None:
    result = verdict(item)
    if result.passed:
        st.success(f"**Got it.** {result.text} {item.takeaway}", icon=":material/check_circle:")
    else:
        st.info(f"**Not yet.** {result.text}", icon=":material/hourglass_top:")


def _live_verdict(item: Lesson) -> None:
    if item.page == "train":  # the run trains in a fragment: re-check every two seconds while it plays
        from ui import runs as R

        run = R.active_run()

        @st.fragment(run_every=2.0 if run is not None and run.playing else None)
        def live() -> None:
            _show_verdict(item)

        live()
    else:
        _show_verdict(item)


def lesson_list() -> None:
    """The Lessons page's list: each lesson's topic, goal, page and a Start button; progress."""
    finished = done()
    st.progress(len(finished & {x.key for x in LESSONS}) / len(LESSONS), text=f"{len(finished)} of {len(LESSONS)} done")
    if ss.get(KEY_PROBLEM):
        st.error(ss[KEY_PROBLEM], icon=":material/error:")
    for n, item in enumerate(LESSONS, start=1):
        with st.container(border=True):
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            mark = ":material/check_circle:" if item.key in finished else ":material/radio_button_unchecked:"
            c1.markdown(f"{mark} **{n}. {item.title}** · on *{PAGE_TITLES[item.page]}*  \n{item.goal}")
            c1.caption(f"Topic: {item.topic}.")
            c2.button("Start", key=f"lesson_start_{item.key}", on_click=start, args=(item.key,), type="primary")
    if finished:
        st.button("Reset progress", key="lessons_reset", on_click=lambda: ss.pop(KEY_DONE, None))
