"""Widgets of the Window page: the controls, the live readouts and the two figures.

Streamlit glue over :mod:`ui.cache` (the linear STFT), :mod:`diffres.resolution` (what the
spectrogram resolves) and :mod:`diffres.figures.window`.
"""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from diffres import figures, resolution
from diffres.audio import SAMPLE_RATE
from diffres.examples import CLOSE_TONES_HZ
from diffres.features import StftConfig
from diffres.lessons import THIN_CLICK_MS, tones_and_clicks_measures
from ui import cache
from ui.share import PARAMS
from ui.sound import CurrentClip
from ui.view import chart, metric_row

WINDOWS_MS = (5, 10, 16, 25, 32, 40, 64, 100, 128, 200)
HOPS_MS = (1, 2, 5, 10)
DEFAULTS = {k: PARAMS[k].default for k in ("win_ms", "win_hop", "win_fmax", "win_db", "win_compare", "win_tile_s")}
PERSIST: Literal["session"] = "session"

ss = st.session_state


def controls(clip: CurrentClip) -> dict[str, Any]:
    """The page's controls; returns their values."""
    for k, v in DEFAULTS.items():
        ss.setdefault(k, list(v) if isinstance(v, list) else v)
    if not 0.0 <= float(ss["win_tile_s"]) <= clip.seconds:  # a link's time beyond this clip
        ss["win_tile_s"] = round(min(float(DEFAULTS["win_tile_s"]), clip.seconds / 2), 2)
    c1, c2, c3 = st.columns(3)
    win = c1.select_slider(
        "Window (ms)",
        WINDOWS_MS,
        key="win_ms",
        persist_state=PERSIST,
        help="Length of each analysis window (Hann). The FFT is as long as the window, so the bins are "
        "1 / window apart: longer = finer frequency, blurrier time.",
    )
    hop = c1.select_slider(
        "Hop (ms)", HOPS_MS, key="win_hop", persist_state=PERSIST, help="Time between consecutive windows."
    )
    fmax = c2.slider(
        "Highest frequency shown (Hz)",
        500,
        SAMPLE_RATE // 2,
        step=250,
        key="win_fmax",
        persist_state=PERSIST,
        help="Zoom the frequency axis: narrow bins only show when the axis is short enough.",
    )
    db = c2.slider(
        "Dynamic range (dB)", 20, 120, step=5, key="win_db", persist_state=PERSIST, help="dB below the loudest cell."
    )
    tile_s = c3.slider(
        "Tile at (s)",
        0.0,
        max(0.01, round(clip.seconds, 2)),
        step=0.01,
        key="win_tile_s",
        persist_state=PERSIST,
        help="Where to draw the tile of one analysis frame: its width is the window, its height one bin.",
    )
    compare = c3.multiselect(
        "Windows side by side (ms)",
        WINDOWS_MS,
        key="win_compare",
        max_selections=4,
        persist_state=PERSIST,
        help="The same clip at several window lengths, each with its own tile.",
    )
    return dict(win_ms=int(win), hop_ms=int(hop), fmax=float(fmax), db=float(db), tile_s=float(tile_s), compare=compare)


def panel(clip: CurrentClip, win_ms: int, hop_ms: int) -> dict[str, Any]:
    """One window length as a :func:`diffres.figures.window_figure` panel (cached STFT)."""
    res = cache.linear_spec(clip.digest, clip.samples, StftConfig(clip.sample_rate, float(hop_ms), float(win_ms)))
    c = res.config
    return dict(
        title=f"{win_ms} ms window: bins {c.bin_width_hz:.1f} Hz",
        log_power=res.log_power,
        frequencies=res.frequencies,
        hop_seconds=c.hop_seconds,
        window_seconds=c.window_seconds,
        bin_width_hz=c.bin_width_hz,
    )


def readouts(clip: CurrentClip, main: dict[str, Any], win_ms: int) -> None:
    """Window, bin width, tile area, frames; on the close-tones preset, what it resolves."""
    c = StftConfig(clip.sample_rate, 1.0, float(win_ms))
    metric = metric_row()
    metric("Window", f"{c.window_seconds * 1000:g} ms", help=f"{c.win_length} samples at {clip.sample_rate} Hz.")
    metric("Bin width", f"{c.bin_width_hz:.1f} Hz", help="sample rate / window length = 1 / window duration.")
    metric(
        "Tile: window x bin width",
        f"{c.window_seconds * 1000:g} ms x {c.bin_width_hz:.1f} Hz = {c.window_seconds * c.bin_width_hz:g}",
        help="The time-frequency area one analysis frame sees. It is always 1: a longer window buys finer "
        "frequency with coarser time.",
    )
    metric("Frequency bins", f"{c.n_bins:,}", help="From 0 Hz to Nyquist.")
    metric("Frames", f"{main['log_power'].shape[0]:,}", help="1 + samples // hop.")
    if clip.digest.startswith("preset:tones_and_clicks"):
        dip, width = tones_and_clicks_measures(
            main["log_power"], main["frequencies"], main["hop_seconds"], clip.seconds
        )
        tones = "two lines" if dip >= resolution.RESOLVED_DIP_DB else "one blurred line"
        clicks = "thin lines" if width <= THIN_CLICK_MS else "smeared"
        st.info(
            f"**Tones {CLOSE_TONES_HZ[0]:.0f} and {CLOSE_TONES_HZ[1]:.0f} Hz:** the spectrum dips {dip:.1f} dB "
            f"between them, {tones} (two need {resolution.RESOLVED_DIP_DB:g} dB). **Clicks:** each spreads over "
            f"{width:.0f} ms, {clicks} (thin is {THIN_CLICK_MS:g} ms or less).",
            icon=":material/straighten:",
        )


def figure(clip: CurrentClip, windows_ms: list[int], values: dict[str, Any], key: str, height: int) -> None:
    """Panels of the clip at ``windows_ms`` side by side (:func:`diffres.figures.window_figure`),
    cached by their inputs."""
    windows = tuple(int(w) for w in windows_ms)
    ident = (clip.digest, windows, int(values["hop_ms"]), values["fmax"], values["db"], values["tile_s"], int(height))

    def build() -> Any:
        panels = [panel(clip, int(w), int(values["hop_ms"])) for w in windows_ms]
        return figures.window_figure(
            panels, fmax_hz=values["fmax"], db_range=values["db"], tile_at=(values["tile_s"], None), height=height
        )

    chart(cache.figure("window", ident, build), key=key)
