"""The window trade-off (plotly): linear-frequency spectrograms at several window lengths, each
with the time-frequency tile of one analysis frame drawn on it.

A panel is a dict with ``title``, ``log_power`` ``[T, K]`` (natural-log power of a linear STFT,
:func:`diffres.features.linear_spectrogram`), ``hop_seconds``, ``window_seconds`` and
``bin_width_hz`` (bin ``k`` is centred at ``k * bin_width_hz``).  Frequency is in Hz on a linear
axis, time in seconds; rows above ``fmax_hz`` are not sent, and wide or tall panels are
max-pooled for display only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .display import MAX_DISPLAY_COLUMNS, TIME_LINK, _base_layout, _heatmap, pool_columns
from .style import to_db

__all__ = ["window_figure", "tile_corners"]

_TILE = "rgb(0,230,255)"
#: Most frequency rows a panel sends (taller ones are max-pooled).
MAX_ROWS = 400


def tile_corners(
    t_s: float, f_hz: float, window_seconds: float, bin_width_hz: float
) -> tuple[float, float, float, float]:
    """``(t0, t1, f0, f1)`` of the tile of the analysis frame centred at ``t_s``, the bin at ``f_hz``.

    Example:
        >>> tile_corners(0.5, 1000.0, 0.025, 40.0)
        (0.4875, 0.5125, 980.0, 1020.0)
    """
    return (t_s - window_seconds / 2, t_s + window_seconds / 2, f_hz - bin_width_hz / 2, f_hz + bin_width_hz / 2)


def window_figure(
    panels: Sequence[dict],
    *,
    fmax_hz: float = 4000.0,
    db_range: float = 70.0,
    colormap: str = "magma",
    tile_at: tuple[float, float | None] | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    height: int = 420,
) -> go.Figure:
    """Linear-frequency spectrograms side by side (one row), time axes linked.

    Args:
        panels: see the module docstring.
        fmax_hz: highest frequency shown.
        db_range: dB below the loudest cell (over all panels) still coloured.
        tile_at: ``(t_s, f_hz)``: draw each panel's tile (window x bin width) on the frame at
            ``t_s``, centred on the bin at ``f_hz`` (None: that frame's loudest bin below ``fmax_hz``).
    """
    if not panels:
        raise ValueError("window_figure needs at least one panel.")
    n = len(panels)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[p["title"] for p in panels], horizontal_spacing=0.025)
    top = max(float(np.max(to_db(p["log_power"]))) for p in panels)
    for c, p in enumerate(panels, start=1):
        bw = float(p["bin_width_hz"])
        n_rows = min(p["log_power"].shape[1], int(np.floor(fmax_hz / bw)) + 1)
        db = to_db(p["log_power"][:, :n_rows])  # [T, K]
        rows, rb = pool_columns(db, MAX_ROWS, "max")  # pool frequency (last axis) first
        cols, cb = pool_columns(rows.T, max(100, max_columns // n), "max")  # then time
        y_edges = (rb - 0.5) * bw
        x_edges = cb * float(p["hop_seconds"])
        trace = _heatmap(
            cols,
            x_edges,
            name=p["title"],
            hovertemplate="t = %{x:.3f} s<br>f = %{y:.0f} Hz<br>%{z:.1f} dB<extra>" + f"bins {bw:.1f} Hz</extra>",
        )
        trace.update(y=y_edges.astype(np.float32))
        fig.add_trace(trace, row=1, col=c)
        if tile_at is not None:
            frame = int(np.clip(round(tile_at[0] / float(p["hop_seconds"])), 0, db.shape[0] - 1))
            f_hz = tile_at[1] if tile_at[1] is not None else float(np.argmax(db[frame])) * bw
            t_s = (frame + 0.5) * float(p["hop_seconds"])  # the column of frame `frame`
            t0, t1, f0, f1 = tile_corners(t_s, round(f_hz / bw) * bw, float(p["window_seconds"]), bw)
            fig.add_shape(
                type="rect", x0=t0, x1=t1, y0=f0, y1=f1, line=dict(color=_TILE, width=2), row=1, col=c, layer="above"
            )
        fig.update_yaxes(range=[0, fmax_hz], showticklabels=c == 1, row=1, col=c)
        fig.update_xaxes(title_text="Time (s)", row=1, col=c)
    fig.update_yaxes(title_text="Frequency (Hz)", row=1, col=1)
    fig.update_xaxes(matches="x")
    fig.update_yaxes(matches="y")
    _base_layout(fig, height, colormap, top - float(db_range), top)
    fig.update_layout(meta=dict(TIME_LINK), showlegend=False)
    return fig
