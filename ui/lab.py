"""Widgets of the Spectrogram lab: the reset button, the readouts of the current settings, and
the paper's opening figure.  Streamlit glue over :mod:`ui.cache`; the guided lessons that use
this page are :mod:`ui.lessons`."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import streamlit as st

import diffres
from diffres import figures
from ui import cache
from ui.share import PARAMS
from ui.sound import CurrentClip
from ui.view import chart, metric_row

REF_HOP_MS = 10.0
#: Widgets keep their value across pages for the session (and so travel in the page's link).
PERSIST: Literal["session"] = "session"

DEFAULTS = {k: PARAMS[k].default for k in ("lab_hop", "lab_win", "lab_mels", "lab_frange", "lab_db", "lab_cmap")}


def _reset() -> None:
    for k, v in DEFAULTS.items():
        st.session_state[k] = v


def init_defaults() -> None:
    """The controls' starting values (kept once set)."""
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(k, v)


def reset_button() -> None:
    """Back to the default controls (guided lessons live on the Lessons page)."""
    row = st.container(horizontal=True, vertical_alignment="center")
    row.button(
        "Reset controls",
        key="lab_reset",
        on_click=_reset,
        icon=":material/restart_alt:",
        help="Back to 10 ms hop, 25 ms window, 64 mel bins, full frequency range, 80 dB, magma.",
    )
    row.page_link("pages/lessons.py", label="Guided lessons with a check", icon=":material/school:")


def readouts(clip: CurrentClip, mel: cache.MelResult, *, n_mels: int, hop_ms: float, win_ms: float) -> None:
    """Time and frequency steps, frames and what a classifier pays for them, with warnings
    about settings that lose samples or leave bands empty."""
    n_frames = mel.log_mel.shape[0]
    hop_s = mel.hop_seconds
    ref_frames = 1 + len(clip.samples) // int(round(REF_HOP_MS * clip.sample_rate / 1000))
    fft_step = clip.sample_rate / mel.config.n_fft
    spacing = np.diff(mel.mel_frequencies)
    metric = metric_row()
    metric(
        "Time step", f"{hop_s * 1000:.3g} ms", help=f"hop = {mel.config.hop_length} samples / {clip.sample_rate} Hz."
    )
    metric(
        "FFT bin step",
        f"{fft_step:.1f} Hz",
        help=f"sample rate / n_fft = {clip.sample_rate} / {mel.config.n_fft} (window {mel.config.win_length} samples, "
        "zero-padded to the next power of two).",
    )
    metric(
        "Mel band spacing",
        f"{spacing.min():.0f}-{spacing.max():.0f} Hz" if spacing.size else "n/a",
        help="Distance between neighbouring mel band centres: narrow at low frequencies, wide at high ones.",
    )
    metric("Frames per second", f"{1 / hop_s:.0f}", help="1 / hop.")
    metric("Total frames", f"{n_frames:,}", help=f"For this {clip.seconds:.2f} s clip: 1 + samples // hop.")
    metric(
        "Classifier cost",
        f"{n_frames / ref_frames:.2f}x",
        delta=f"{n_frames - ref_frames:+,} frames" if n_frames != ref_frames else None,
        delta_color="inverse",
        help="A CNN's compute and memory grow in proportion to the number of frames; 1.00x is a 10 ms hop "
        "(the change in frames is against 10 ms).",
    )

    budget = diffres.output_length(n_frames, 0.75)
    st.caption(
        f"A classifier pays for every frame: at {hop_s * 1000:.3g} ms this clip is {n_frames:,} frames. DiffRes at a "
        f"0.75 reduction rate would hand it {budget:,} frames (as many as a {hop_s * 4000:.3g} ms hop) while keeping "
        "the fine hop where the sound changes: see **Adaptive resolution**."
    )
    if hop_ms > win_ms:
        st.warning(
            f"The hop ({hop_ms} ms) is longer than the window ({win_ms} ms): some samples fall between windows "
            "and are never analysed.",
            icon=":material/warning:",
        )
    if n_mels > mel.config.n_fft // 4:
        st.warning(
            f"{n_mels} mel bands from a {mel.config.n_fft}-point FFT: the lowest bands get fewer FFT bins than "
            "they need and some come out empty (dark stripes). Lengthen the window or use fewer mel bins.",
            icon=":material/warning:",
        )


def paper_figure(cmap: str) -> None:
    """The paper's opening figure: alarm clock and siren at 10 ms and 40 ms."""
    with st.expander("The paper's opening figure: alarm clock and siren at 10 ms and 40 ms", expanded=False):
        st.caption(
            "The alarm needs the fine hop to resolve its beeps; the siren looks the same at both. "
            "A fixed hop is either wasteful or lossy; DiffRes adapts it per moment."
        )
        grid = []
        for key in ("alarm_clock", "siren"):
            c = cache.example_clip(key)
            for h in (10, 40):
                mh = cache.log_mel(f"example:{key}", c.samples, cache.mel_settings(c.sample_rate, 64, h, max(25, h)))
                grid.append(
                    {
                        "title": f"{key.replace('_', ' ')}, hop {h} ms ({mh.log_mel.shape[0]} frames)",
                        "log_mel": mh.log_mel,
                        "hop_seconds": mh.hop_seconds,
                        "mel_frequencies": mh.mel_frequencies,
                    }
                )
        chart(
            figures.hop_grid_figure(grid, n_cols=2, colormap=cmap, height_per_row=260, time_link=False),
            key="lab_paper_chart",
            width="stretch",
        )


def spectrogram_view(clip: CurrentClip, mel: cache.MelResult, *, db_range: float, cmap: str, window: Any) -> Any:
    """The lab's waveform and log-mel (:func:`diffres.figures.spectrogram_figure`), cached by its inputs."""
    key = (clip.digest, mel.config, float(db_range), str(cmap), window, clip.event_times.tobytes())
    return cache.figure(
        "lab_spectrogram",
        key,
        lambda: figures.spectrogram_figure(
            mel.log_mel,
            mel.hop_seconds,
            mel.mel_frequencies,
            samples=clip.samples,
            sample_rate=clip.sample_rate,
            db_range=db_range,
            colormap=cmap,
            event_times=clip.event_times if clip.event_times.size else None,
            time_range=window,
        ),
    )


def hops_view(
    clip: CurrentClip,
    hops_ms: list[int],
    *,
    n_mels: int,
    win_ms: float,
    f_range: tuple[float, float],
    db_range: float,
    cmap: str,
) -> Any:
    """The sound at several hops side by side (window = max(window, hop)), cached by its inputs."""
    key = (clip.digest, tuple(hops_ms), int(n_mels), float(win_ms), tuple(f_range), float(db_range), str(cmap))

    def build() -> Any:
        panels = []
        for h in hops_ms:
            settings = cache.mel_settings(clip.sample_rate, n_mels, h, max(win_ms, h), *f_range)
            mh = cache.log_mel(clip.digest, clip.samples, settings)
            panels.append(
                {
                    "title": f"hop {h} ms: {mh.log_mel.shape[0]} frames",
                    "log_mel": mh.log_mel,
                    "hop_seconds": mh.hop_seconds,
                    "mel_frequencies": mh.mel_frequencies,
                }
            )
        return figures.hop_grid_figure(panels, db_range=db_range, colormap=cmap, height_per_row=300)

    return cache.figure("lab_hops", key, build)
