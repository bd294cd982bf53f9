"""Spectrogram views (plotly): one clip's log-mel on a true time axis, and a grid of them.

Every function takes plain arrays (NumPy, or anything ``np.asarray`` accepts) and returns a
``plotly.graph_objects.Figure``; nothing here imports Streamlit.  The DiffRes views (merged
spectrograms) are in :mod:`diffres.figures.merged`, the PNG export in
:mod:`diffres.figures.png`.

Conventions (all the figure modules)
------------------------------------
- Spectrograms come in the library's layout ``[T, F]`` (time first), as natural-log mel
  power (what :class:`diffres.MelFrontend` and the front-ends produce); figures show dB
  (``10 log10 P = ln P * 10 / ln 10``).
- Time is in seconds on every time axis.  Input frame ``i`` is drawn over
  ``[i * hop, (i + 1) * hop)``, so a DiffRes output bin with edges ``bin_edges[j]``,
  ``bin_edges[j + 1]`` (input-frame positions) covers ``bin_edges * hop`` seconds: the
  merged spectrogram is drawn on the *true* time axis with variable-width columns
  (``go.Heatmap`` with ``len(x) == n_columns + 1``, i.e. x as cell edges).
- Only the display is reduced (:mod:`diffres.figures.display`); colours come from
  :mod:`diffres.figures.style` (``rgb(...)``, never hex).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .display import (
    MAX_DISPLAY_COLUMNS,
    TIME_LINK,
    _add_waveform,
    _apply_mel_axis,
    _base_layout,
    _db_limits,
    _event_lines,
    _heatmap,
    _style_time_axes,
    pool_columns,
    pool_edges,
    window_indices,
)
from .style import to_db

__all__ = ["spectrogram_figure", "hop_grid_figure"]


def spectrogram_figure(
    log_mel: np.ndarray,
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    *,
    samples: np.ndarray | None = None,
    sample_rate: int | None = None,
    db_range: float = 80.0,
    colormap: str = "magma",
    event_times: Sequence[float] | np.ndarray | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    height: int = 480,
    time_range: tuple[float, float] | None = None,
) -> go.Figure:
    """Waveform (optional) over a log-mel spectrogram, time in seconds.

    Args:
        log_mel: ``[T, F]`` natural-log mel power.
        hop_seconds: seconds per frame.
        mel_frequencies: ``[F]`` band centres in Hz (for the y ticks).
        samples, sample_rate: the waveform to draw above (optional).
        db_range: dynamic range shown, dB below the loudest cell.
        colormap: matplotlib colour map name.
        event_times: seconds of known events, drawn as dashed lines on the waveform (ticks above
            the spectrogram without one), never over the spectrogram.
        time_range: ``(start, end)`` seconds to show; only that part is pooled for display,
            so a narrow range shows every frame (colours keep the whole clip's scale).
    """
    db = to_db(log_mel).T  # [F, T]
    n_frames = db.shape[1]
    hop = float(hop_seconds)
    a, b = window_indices(np.arange(n_frames + 1) * hop, time_range)
    pooled, bounds = pool_columns(db[:, a:b], max_columns, "max")
    edges = (a + bounds) * hop
    zmin, zmax = _db_limits(db, db_range)
    with_wave = samples is not None and sample_rate
    rows = 2 if with_wave else 1
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.22, 0.78] if with_wave else [1.0]
    )
    spec_row = rows
    if samples is not None and sample_rate:
        _add_waveform(fig, samples, int(sample_rate), time_range, max_columns)
    fig.add_trace(_heatmap(pooled, edges, name="log-mel"), row=spec_row, col=1)
    if event_times is not None and len(event_times):
        # on the waveform (or as ticks above the bands): lines across the spectrogram would hide
        # exactly the events they mark (a click is one thin column)
        y0, y1 = (-1.05, 1.05) if with_wave else (db.shape[0] - 0.5, db.shape[0] + 0.04 * db.shape[0])
        fig.add_trace(_event_lines(event_times, y0, y1), row=1, col=1)
    _apply_mel_axis(fig, mel_frequencies, spec_row)
    _style_time_axes(fig, rows)
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])])
    _base_layout(fig, height, colormap, zmin, zmax)
    fig.update_layout(meta=dict(TIME_LINK))
    return fig


def hop_grid_figure(
    panels: Sequence[dict],
    *,
    n_cols: int | None = None,
    db_range: float = 80.0,
    colormap: str = "magma",
    max_columns: int = MAX_DISPLAY_COLUMNS,
    height_per_row: int = 260,
    link_x: bool = True,
    time_link: bool = True,
) -> go.Figure:
    """Several spectrograms side by side (e.g. the same clip at a 10 ms and a 40 ms hop).

    Args:
        panels: dicts with ``title``, ``log_mel`` ``[T, F]``, ``hop_seconds`` and
            ``mel_frequencies`` ``[F]``; filled row by row.  A panel with ``bin_edges``
            ``[T + 1]`` (input-frame positions, e.g. a DiffRes output) is drawn with
            variable-width columns at ``bin_edges * hop_seconds``.
        n_cols: panels per row (default: all in one row).
        link_x: link the time axes of all panels (same clip); False links per column.
        time_link: mark the figure for the app's linked views (zoom and crosshair with the page's
            other time figures); False for panels of other clips than the page's.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("hop_grid_figure needs at least one panel.")
    n_cols = n_cols or n
    n_rows = int(math.ceil(n / n_cols))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=[p["title"] for p in panels],
        horizontal_spacing=0.03,
        vertical_spacing=0.22 if n_rows > 1 else 0.1,
    )
    tops = []
    for p in panels:
        tops.append(float(np.max(to_db(p["log_mel"]))))
    zmax = max(tops)
    for k, p in enumerate(panels):
        r, c = k // n_cols + 1, k % n_cols + 1
        db = to_db(p["log_mel"]).T
        pooled, bounds = pool_columns(db, max(200, max_columns // n_cols), "max")
        edges = bounds if p.get("bin_edges") is None else pool_edges(np.asarray(p["bin_edges"], np.float64), bounds)
        fig.add_trace(_heatmap(pooled, edges * float(p["hop_seconds"]), name=p["title"]), row=r, col=c)
        _apply_mel_axis(fig, p["mel_frequencies"], r, c, title="Frequency (mel)" if c == 1 else "")
        if c > 1:
            fig.update_yaxes(showticklabels=False, row=r, col=c)
        fig.update_xaxes(title_text="Time (s)", row=r, col=c)
    if link_x:
        fig.update_xaxes(matches="x")
    fig.update_yaxes(matches="y")
    _base_layout(fig, max(300, height_per_row * n_rows + 80), colormap, zmax - float(db_range), zmax)
    if time_link:
        fig.update_layout(meta=dict(TIME_LINK))
    return fig
