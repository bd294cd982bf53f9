"""Widgets of the "How DiffRes computes" page: the model and rate, the output frame, the step
controls (Back, Next, an animated play-through), the figure and the numbers of each step.

The numbers are :func:`diffres.explain.frame_numbers` of the cached
:func:`diffres.explain.diffres_steps` (the module's own computation); nothing is computed here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import streamlit as st

from diffres import figures, resolution
from diffres.explain import STEPS, DiffResSteps, FrameNumbers, frame_numbers, merged_by_hand
from diffres.features import MelConfig
from diffres.figures import DB_PER_NEPER
from ui import adaptive as A
from ui import cache
from ui.sound import CurrentClip
from ui.view import chart

#: Seconds between steps of the play-through.
PLAY_SECONDS = 1.6
PERSIST: Literal["session"] = "session"
KEY_PLAYING = "_steps_playing"
KEY_SKIP = "_steps_skip_tick"

ss = st.session_state


def choose_model() -> str:
    """The model selector (the same shipped DiffRes checkpoints as Adaptive resolution)."""
    usable = A.diffres_checkpoints()
    options = [*usable, cache.UNTRAINED_ID]
    if ss.get("steps_model") not in options:
        ss["steps_model"] = options[0]
        _on_model(usable, keep=True)
    return st.selectbox(
        "Model",
        options,
        key="steps_model",
        format_func=lambda m: A.model_label(usable, m),
        on_change=_on_model,
        args=(usable,),
        persist_state=PERSIST,
        help="Whose scores to follow: a shipped DiffRes checkpoint, or the untrained fallback.",
    )


def _on_model(entries: dict, *, keep: bool = False) -> None:
    """A newly chosen model sets the rate it was trained at (``keep``: only when unset)."""
    card = entries.get(ss.get("steps_model") or "", {}).get("card", {})
    if not (keep and "steps_rate" in ss):
        ss["steps_rate"] = float(round(card.get("reduction_rate", 0.75) * 20) / 20)


def mel_config(clip: CurrentClip) -> MelConfig:
    """The chosen model's front-end settings at its own hop."""
    model_id = ss.get("steps_model", cache.UNTRAINED_ID)
    hop = 10.0 if model_id == cache.UNTRAINED_ID else float(cache.load_model(model_id).config.hop_ms)
    return A.mel_config(clip, model_id, hop)


def rate() -> float:
    ss.setdefault("steps_rate", 0.75)
    return float(
        st.slider(
            "Reduction rate",
            0.0,
            0.95,
            step=0.05,
            key="steps_rate",
            persist_state=PERSIST,
            help="Fraction of frames removed: T' = floor(T x (1 - rate)) output frames.",
        )
    )


def frame_and_span(steps: DiffResSteps, log_mel: np.ndarray) -> tuple[int, int]:
    """The output-frame slider (starts on the loudest moment) and how many input frames to show."""
    notice = None
    value = ss.get("steps_frame")
    if not isinstance(value, (int, np.integer)) or not 0 <= int(value) < steps.out_len:
        if value is not None:
            notice = f"Output frame {value} does not exist here ({steps.out_len} output frames): showing the loudest."
        ss["steps_frame"] = steps.output_frame_at(resolution.loudest_frame(log_mel) + 0.5)
    c1, c2 = st.columns([3, 1])
    j = c1.slider(
        "Output frame",
        0,
        max(1, steps.out_len - 1),
        key="steps_frame",
        persist_state=PERSIST,
        disabled=steps.out_len < 2,
        help="Which output frame to follow: its span of input is shaded in every row, its weights drawn in step 5.",
    )
    shown = c2.select_slider(
        "Input frames shown",
        (40, 80, 160),
        value=80,
        key="steps_span",
        persist_state=PERSIST,
        help="A window of the clip around the selected frame, small enough to count the frames.",
    )
    if notice:
        st.caption(notice)
    return int(min(j, steps.out_len - 1)), int(shown)


def _go(delta: int) -> None:
    ss[KEY_PLAYING] = False
    ss["steps_step"] = int(np.clip(int(ss.get("steps_step", 1)) + delta, 1, len(STEPS)))


def _play() -> None:
    if ss.get(KEY_PLAYING):
        ss[KEY_PLAYING] = False
        return
    ss[KEY_PLAYING] = True
    ss[KEY_SKIP] = True
    ss["steps_step"] = 1


def step_buttons() -> None:
    """Back, Next and Play / Pause."""
    ss.setdefault("steps_step", 1)
    row = st.container(horizontal=True)
    at = int(ss["steps_step"])
    row.button("Back", key="steps_back", icon=":material/arrow_back:", on_click=_go, args=(-1,), disabled=at <= 1)
    row.button(
        "Next", key="steps_next", icon=":material/arrow_forward:", on_click=_go, args=(1,), disabled=at >= len(STEPS)
    )
    playing = bool(ss.get(KEY_PLAYING))
    row.button(
        "Pause" if playing else "Play through",
        key="steps_play",
        icon=":material/pause:" if playing else ":material/play_arrow:",
        on_click=_play,
        help=f"Show the steps one after another, {PLAY_SECONDS:g} s each, from the first.",
    )


def advance_if_playing() -> None:
    """One tick of the play-through (called at the top of the animated fragment)."""
    if not ss.get(KEY_PLAYING):
        return
    if ss.pop(KEY_SKIP, False):
        return
    ss["steps_step"] = min(len(STEPS), int(ss.get("steps_step", 1)) + 1)
    if ss["steps_step"] >= len(STEPS):
        ss[KEY_PLAYING] = False
        st.rerun()  # the whole page, so the fragment stops ticking


def step_slider() -> int:
    return int(
        st.select_slider(
            "Step",
            list(range(1, len(STEPS) + 1)),
            key="steps_step",
            persist_state=PERSIST,
            format_func=lambda k: f"{k}. {STEPS[k - 1][1]}",
            help="Steps up to this one are drawn; the rest wait.",
        )
    )


def draw(steps: DiffResSteps, mel: cache.MelResult, step: int, j: int, shown: int) -> None:
    """The figure and, beside it, what this step does and its numbers for output frame ``j``."""
    left, right = st.columns([2, 1.2])
    with left:
        chart(
            figures.steps_figure(
                steps, mel.log_mel, mel.hop_seconds, mel.mel_frequencies, step=step, selected=j, n_shown=shown
            ),
            key="steps_chart",
            width="stretch",
        )
    with right:
        _, title, what = STEPS[step - 1]
        st.markdown(f"**Step {step}: {title}.** {what}")
        numbers(steps, mel, step, j)


def numbers(steps: DiffResSteps, mel: cache.MelResult, step: int, j: int) -> None:
    """The numbers of steps ``1..step`` for output frame ``j`` (a table of its input frames, and sums)."""
    n = frame_numbers(steps, mel.log_mel, j)
    hop_ms = mel.hop_seconds * 1000.0
    st.markdown(
        f"Output frame **{j}** of {steps.out_len} covers input frames **{n.start:.2f}-{n.end:.2f}** "
        f"({n.start * hop_ms / 1000:.3f}-{n.end * hop_ms / 1000:.3f} s, {n.end - n.start:.2f} frames)."
    )
    st.dataframe(_table(n, step), key="steps_numbers", hide_index=True, width="stretch")
    _sums(steps, n, step)


def _table(n: FrameNumbers, step: int) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {"input frame": n.frames}
    if step >= 1:
        cols["g (raw score)"] = n.logits
    if step >= 2:
        cols["sigmoid"] = n.scores
    if step >= 3:
        cols["importance"] = n.importance
    if step >= 4:
        cols["c start"], cols["c end"] = n.c_start, n.c_end
    if step >= 5:
        cols[f"W[i, {n.j}]"] = n.weights
    if step >= 6:
        cols[f"band {n.band} (dB)"] = n.band_log_power * DB_PER_NEPER
    return cols


def _sums(steps: DiffResSteps, n: FrameNumbers, step: int) -> None:
    lines = []
    if step >= 3:
        lines.append(
            f"Importance: scaled to sum T' = {steps.out_len}, the largest share was {steps.peak:.3f}"
            + (f" (>= 1, so all were divided by it; {steps.deficit:.3f} given back)" if steps.peak >= 1 else "")
            + f"; now they sum to {steps.importance.sum():.4f}, the largest is {steps.importance.max():.3f}."
        )
    if step >= 4:
        lines.append(f"Bin edges: c crosses {n.j} at input position {n.start:.3f} and {n.j + 1} at {n.end:.3f}.")
    if step >= 5:
        lines.append(f"Weights of output frame {n.j} sum to {n.weights.sum():.4f} (1 for a full output frame).")
    if step >= 6:
        avg, mx = (v * DB_PER_NEPER for v in merged_by_hand(n, steps.n_frames, steps.out_len))
        lines.append(
            f"Band {n.band}: average ln(sum W e^x) = {avg:.2f} dB (DiffRes: {n.avg * DB_PER_NEPER:.2f}); "
            f"max ln(T/T' max W e^x) = {mx:.2f} dB (DiffRes: {n.max * DB_PER_NEPER:.2f})."
        )
    if step >= 7:
        lines.append(f"Encoding, channels 0 and 1: {n.encoding[0]:.4f}, {n.encoding[1]:.4f}.")
    for line in lines:
        st.caption(line)
