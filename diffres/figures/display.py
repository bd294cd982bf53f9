"""Display helpers shared by the figures: pooling to the pixel budget, axes, hover data.

Only the *display* is reduced: heatmaps wider than ``max_columns`` (default
:data:`MAX_DISPLAY_COLUMNS`) are max-pooled over time (loud events stay visible), curves are
mean-pooled; all values are sent as float32.  Time is in seconds; spectrograms come as
``[T, F]`` natural-log mel power.

Frames of uneven width (DiffRes's merged frames) are drawn on an even grid of columns
(:func:`time_columns`): plotly.js draws a heatmap whose columns are evenly spaced as one
scaled image, and one with uneven columns rectangle by rectangle, several times slower.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .style import BLUE, GREEN, GREY, ORANGE, PAPER, colorscale

__all__ = [
    "MAX_DISPLAY_COLUMNS",
    "pool_columns",
    "pool_edges",
    "waveform_envelope",
    "mel_ticks",
    "merged_customdata",
    "ColumnGrid",
    "time_columns",
    "window_indices",
    "effective_hop_ms",
    "TIME_LINK",
    "frame_link",
]

#: Most columns a heatmap sends to the browser (about the pixel width of a wide plot).
MAX_DISPLAY_COLUMNS = 2000

#: ``layout.meta`` of a figure whose x axes are time in seconds: the app links the zoom and a
#: time crosshair across every such figure of a page (:mod:`ui.links`).
TIME_LINK = {"link": "time"}


def frame_link(bin_edges: np.ndarray, hop_seconds: float) -> dict:
    """``layout.meta`` of a figure drawn on the output-frame index (the classifier's view):
    ``spans[j]`` is the time in seconds output frame ``j`` covers, so hovering column ``j``
    can highlight that time in the page's time figures (:mod:`ui.links`)."""
    e = np.round(np.asarray(bin_edges, dtype=np.float64) * float(hop_seconds), 5)
    return {"link": "frames", "spans": np.stack([e[:-1], e[1:]], axis=1).tolist()}


def _group_bounds(n: int, max_groups: int) -> np.ndarray:
    """Boundaries ``[M + 1]`` (indices 0..n) of ``M <= max_groups`` nearly equal groups."""
    if n <= max_groups:
        return np.arange(n + 1)
    factor = int(math.ceil(n / max_groups))
    m = int(math.ceil(n / factor))
    return np.minimum(np.arange(m + 1) * factor, n)


def pool_columns(
    z: np.ndarray, max_columns: int = MAX_DISPLAY_COLUMNS, how: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """Pool the last axis of ``z`` into at most ``max_columns`` groups of consecutive columns.

    Args:
        z: ``[..., N]`` array (a ``[F, T]`` spectrogram or a ``[T]`` curve).
        max_columns: most columns kept (>= 1).
        how: ``"max"`` (spectrogram energy: short loud events survive) or ``"mean"``
            (curves such as importance).

    Returns:
        ``(pooled [..., M], bounds [M + 1])``: ``bounds`` are the groups' first input
        column and the end (``bounds[-1] == N``); with ``N <= max_columns`` it is
        ``arange(N + 1)`` and ``pooled`` is ``z`` itself (as float32).
    """
    z = np.asarray(z, dtype=np.float32)
    n = z.shape[-1]
    bounds = _group_bounds(n, max(1, int(max_columns)))
    if len(bounds) == n + 1:
        return z, bounds
    starts = bounds[:-1]
    if how == "max":
        pooled = np.maximum.reduceat(z, starts, axis=-1)
    elif how == "mean":
        pooled = np.add.reduceat(z, starts, axis=-1) / np.diff(bounds).astype(np.float32)
    else:
        raise ValueError(f"how must be 'max' or 'mean', got {how!r}.")
    return pooled.astype(np.float32), bounds


def pool_edges(edges: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Cell edges ``[N + 1]`` reduced to the pooled groups' edges ``[M + 1]``."""
    return np.asarray(edges)[np.asarray(bounds)]


def waveform_envelope(samples: np.ndarray, sample_rate: int, max_points: int = MAX_DISPLAY_COLUMNS):
    """Min/max envelope of a waveform for display.

    Returns:
        ``(t [M], lo [M], hi [M])`` float32: bucket centre times in seconds and each
        bucket's minimum and maximum sample.
    """
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        z = np.zeros(1, np.float32)
        return z, z, z
    bounds = _group_bounds(x.size, max(1, max_points))
    starts = bounds[:-1]
    hi = np.maximum.reduceat(x, starts)
    lo = np.minimum.reduceat(x, starts)
    t = ((bounds[:-1] + bounds[1:]) / 2.0 / sample_rate).astype(np.float32)
    return t, lo.astype(np.float32), hi.astype(np.float32)


_NICE_HZ = (50, 100, 200, 300, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000, 20000)


def mel_ticks(mel_frequencies: np.ndarray, max_ticks: int = 7, min_gap: float = 0.09) -> tuple[list[float], list[str]]:
    """Tick positions (fractional mel-band index) and labels in Hz for a mel-band y axis.

    Ticks are "nice" frequencies at least ``min_gap`` of the axis height apart (so the
    crowded low end of a mel axis does not stack labels on each other).
    """
    f = np.asarray(mel_frequencies, dtype=np.float64)
    if f.size < 2:
        return [0.0], [f"{f[0]:.0f} Hz" if f.size else ""]
    lo, hi = f[0], f[-1]
    gap = min_gap * (f.size - 1)
    vals: list[float] = []
    hz_kept: list[int] = []
    for hz in sorted((h for h in _NICE_HZ if lo <= h <= hi), reverse=True):
        v = float(np.interp(hz, f, np.arange(f.size)))
        if not vals or vals[-1] - v >= gap:
            vals.append(v)
            hz_kept.append(hz)
        if len(vals) >= max_ticks:
            break
    vals, hz_kept = vals[::-1], hz_kept[::-1]
    text = [f"{hz / 1000:g} kHz" if hz >= 1000 else f"{hz} Hz" for hz in hz_kept]
    return vals, text


def merged_customdata(bin_edges: np.ndarray, hop_seconds: float, n_rows: int | None = None) -> np.ndarray:
    """Hover data of merged columns: ``[T', 3]`` (start s, end s, input frames merged).

    With ``n_rows`` the array is broadcast to ``[n_rows, T', 3]`` (one row per mel band, the
    shape ``go.Heatmap.customdata`` needs).
    """
    e = np.asarray(bin_edges, dtype=np.float64)
    return _spans(e[:-1], e[1:], hop_seconds, n_rows)


def _spans(start: np.ndarray, end: np.ndarray, hop_seconds: float, n_rows: int | None = None) -> np.ndarray:
    """``[N, 3]`` float32 (start s, end s, input frames) of spans ``[start, end)`` given in input
    frames; with ``n_rows`` broadcast to ``[n_rows, N, 3]``."""
    data = np.stack([start * hop_seconds, end * hop_seconds, end - start], axis=-1).astype(np.float32)
    if n_rows is not None:
        data = np.ascontiguousarray(np.broadcast_to(data, (n_rows, *data.shape)))
    return data


@dataclass(frozen=True)
class ColumnGrid:
    """Evenly spaced display columns over frames of any width (:func:`time_columns` makes one).

    Column ``c`` covers input-frame positions ``[origin + c * step, origin + (c + 1) * step)`` and
    shows output frames ``first[c] .. last[c] - 1`` (one frame unless the column is pooled).

    Attributes:
        origin: input-frame position of the first column's left edge.
        step: input frames per column (below 1 where a narrow view splits each frame).
        first: ``[M]`` int, the first output frame each column shows.
        last: ``[M]`` int, one past the last (``last > first``).
    """

    origin: float
    step: float
    first: np.ndarray
    last: np.ndarray

    @property
    def n_columns(self) -> int:
        return int(self.first.size)

    def x(self, scale: float) -> dict[str, float]:
        """plotly's ``x0`` (centre of column 0) and ``dx`` with ``scale`` x-axis units per input
        frame (the hop in seconds on a time axis, 1 on a frame index)."""
        return {"x0": (self.origin + 0.5 * self.step) * scale, "dx": self.step * scale}

    def pool(self, z: np.ndarray, how: str = "max") -> np.ndarray:
        """``z`` ``[..., T']`` (one value per output frame) on the columns, ``[..., M]`` float32:
        the frame each column shows, or the ``"max"`` / ``"mean"`` of the frames it pools."""
        z = np.asarray(z, dtype=np.float32)
        if np.all(self.last - self.first == 1):
            return np.take(z, self.first, axis=-1)
        # reduceat over (first, last) pairs: every other result is one column's [first, last) range
        ext = np.concatenate([z, z[..., -1:]], axis=-1)  # so that last == T' is a valid index
        idx = np.empty(2 * self.n_columns, dtype=np.intp)
        idx[0::2], idx[1::2] = self.first, self.last
        if how == "max":
            return np.maximum.reduceat(ext, idx, axis=-1)[..., 0::2].astype(np.float32)
        if how == "mean":
            sums = np.add.reduceat(ext, idx, axis=-1)[..., 0::2]
            return (sums / (self.last - self.first).astype(np.float32)).astype(np.float32)
        raise ValueError(f"how must be 'max' or 'mean', got {how!r}.")

    def spans(self, bin_edges: np.ndarray, hop_seconds: float, n_rows: int | None = None) -> np.ndarray:
        """Hover data of each column, ``[M, 3]`` float32 (start s, end s, input frames) of the
        frames it shows (their union where pooled); ``n_rows`` broadcasts to ``[n_rows, M, 3]``."""
        e = np.asarray(bin_edges, dtype=np.float64)
        return _spans(e[self.first], e[self.last], hop_seconds, n_rows)


def time_columns(bin_edges: np.ndarray, start: float, end: float, max_columns: int = MAX_DISPLAY_COLUMNS) -> ColumnGrid:
    """Evenly spaced display columns for frames with edges ``bin_edges`` over ``[start, end)``.

    Frames that are already evenly spaced in view keep their own grid.  Otherwise the columns
    lie on the input-frame grid (``start`` and ``end`` rounded out to whole frames), each frame
    split into ``k`` columns while fewer than ``max_columns / 2`` frames are in view (so an edge
    between input frames lands within half a column of its true time).  An unpooled column
    shows the frame covering its centre.  Past ``max_columns`` the columns pool ``f`` cells
    each and show every frame that overlaps them (the loudest wins, as in
    :func:`pool_columns`); the last column may reach past ``end`` (less than one column).

    Args:
        bin_edges: ``[T' + 1]`` non-decreasing input-frame positions of the frames' edges.
        start, end: the input-frame positions in view.
        max_columns: most columns (>= 1).

    Example:
        >>> g = time_columns(np.array([0.0, 1.0, 3.0, 4.0]), 0, 4, max_columns=8)
        >>> g.step, g.first.tolist()
        (1.0, [0, 1, 1, 2])
    """
    e = np.asarray(bin_edges, dtype=np.float64).reshape(-1)
    n_out = e.size - 1
    if n_out < 1:
        raise ValueError("bin_edges needs at least two entries (one frame).")
    budget = max(1, int(max_columns))
    p, q = window_indices(e, (float(start), max(float(end), float(start) + 1e-9)))
    width = (e[q] - e[p]) / (q - p)
    steps = e[p : q + 1] - (e[p] + np.arange(q - p + 1) * width)
    if width > 0 and np.max(np.abs(steps)) <= 1e-3 * width:  # evenly spaced: the frames' own columns
        origin, unit, cells, split = float(e[p]), float(width), q - p, 1
    else:
        origin, unit = float(math.floor(start)), 1.0
        cells = max(1, math.ceil(end) - int(origin))
        split = max(1, budget // (2 * cells))
    if cells > budget:
        factor = math.ceil(cells / budget)
        step, m = factor * unit, math.ceil(cells / factor)
        g = origin + np.arange(m + 1) * step
        tol = 1e-3 * unit  # a frame touching a column's edge (up to rounding) is not in it
        first = np.searchsorted(e, g[:-1] + tol, side="right") - 1
        last = np.searchsorted(e, g[1:] - tol, side="left")
    else:
        step, m = unit / split, cells * split
        centres = origin + (np.arange(m) + 0.5) * step
        first = np.searchsorted(e, centres, side="right") - 1
        last = first + 1
    first = np.clip(first, 0, n_out - 1)
    last = np.clip(last, first + 1, n_out)
    return ColumnGrid(origin=origin, step=float(step), first=first, last=last)


def effective_hop_ms(bin_edges: np.ndarray, hop_seconds: float) -> np.ndarray:
    """Milliseconds of input covered by each output frame, ``[T']``."""
    e = np.asarray(bin_edges, dtype=np.float64)
    return ((e[1:] - e[:-1]) * hop_seconds * 1000.0).astype(np.float32)


def window_indices(edges_seconds: np.ndarray, time_range: tuple[float, float] | None) -> tuple[int, int]:
    """Cells ``[lo, hi)`` (of ``len(edges_seconds) - 1``) that overlap ``time_range`` (seconds); all when None."""
    e = np.asarray(edges_seconds, dtype=np.float64)
    n = len(e) - 1
    if time_range is None or n <= 0:
        return 0, max(n, 0)
    t0, t1 = float(min(time_range)), float(max(time_range))
    lo = int(np.clip(np.searchsorted(e, t0, side="right") - 1, 0, n - 1))
    hi = int(np.clip(np.searchsorted(e, t1, side="left"), lo + 1, n))
    return lo, hi


def _wave_window(samples, sample_rate: int, time_range, max_points: int):
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    offset = 0
    if time_range is not None and x.size:
        offset = int(np.clip(np.floor(min(time_range) * sample_rate), 0, x.size - 1))
        end = int(np.clip(np.ceil(max(time_range) * sample_rate), offset + 1, x.size))
        x = x[offset:end]
    t, lo, hi = waveform_envelope(x, int(sample_rate), max_points)
    return (t + np.float32(offset / sample_rate)).astype(np.float32), lo, hi


def _vlines(xs: Iterable[float], y0: float, y1: float) -> tuple[list[float | None], list[float | None]]:
    """x, y lists drawing vertical segments separated by ``None`` (one trace, many lines)."""
    x: list[float | None] = []
    y: list[float | None] = []
    for v in xs:
        x += [float(v), float(v), None]
        y += [y0, y1, None]
    return x, y


def _vlines_path(xs: Iterable[float], y0: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
    """x, y (float32) of one unbroken path through vertical segments at ``xs``, alternately
    ``y0 -> y1`` and ``y1 -> y0``, joined along ``y = y0`` or ``y = y1``.

    Put ``y0`` and ``y1`` outside a fixed y range and the joins are clipped away: the lines
    of :func:`_vlines` without its gaps, which plotly.js draws as one SVG path per segment
    (hundreds of elements for the merge boundaries; this is one).

    Example:
        >>> _vlines_path([1.0, 2.0, 3.0], -1.0, 1.0)[1].tolist()
        [-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]
    """
    x = np.repeat(np.asarray(list(xs), dtype=np.float32), 2)
    up = np.array([y0, y1, y1, y0], dtype=np.float32)
    return x, np.resize(up, x.size)


def _db_limits(db: np.ndarray, db_range: float) -> tuple[float, float]:
    finite = db[np.isfinite(db)]
    top = float(finite.max()) if finite.size else 0.0
    return top - float(db_range), top


def _style_time_axes(fig: go.Figure, rows: int, cols: int = 1) -> None:
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text="Time (s)", row=rows, col=c)


def _x_args(x: np.ndarray | Mapping[str, float]) -> dict[str, Any]:
    """A heatmap's x: cell edges (an array) or an even grid (``{"x0", "dx"}``, :meth:`ColumnGrid.x`)."""
    if isinstance(x, Mapping):
        return dict(x)
    return {"x": np.asarray(x, dtype=np.float32)}


def _heatmap(
    z_ft: np.ndarray,
    x: np.ndarray | Mapping[str, float],
    *,
    name: str,
    coloraxis: str = "coloraxis",
    customdata=None,
    hovertemplate: str | None = None,
) -> go.Heatmap:
    """A spectrogram heatmap ``[rows, columns]`` on the shared dB colour axis; ``x``: cell
    edges ``[columns + 1]`` or an even grid ``{"x0", "dx"}`` (:meth:`ColumnGrid.x`)."""
    n_rows = z_ft.shape[0]
    return go.Heatmap(
        z=np.asarray(z_ft, dtype=np.float32),
        **_x_args(x),
        y=np.arange(n_rows, dtype=np.float32),
        coloraxis=coloraxis,
        name=name,
        customdata=customdata,
        hovertemplate=hovertemplate or "t = %{x:.3f} s<br>mel band %{y}<br>%{z:.1f} dB<extra>" + name + "</extra>",
    )


def _encoding_heatmap(
    z_cx: np.ndarray, x: np.ndarray | Mapping[str, float], hovertemplate: str, colorbar: dict | None = None
) -> go.Heatmap:
    """The resolution encoding ``[channels, columns]`` on its own diverging scale (-1 to 1),
    with a colour bar when ``colorbar`` (plotly colorbar settings) is given; ``x`` as in
    :func:`_heatmap`."""
    return go.Heatmap(
        z=np.asarray(z_cx, dtype=np.float32),
        **_x_args(x),
        y=np.arange(z_cx.shape[0], dtype=np.float32),
        colorscale=colorscale("RdBu_r", 11),
        zmin=-1,
        zmax=1,
        showscale=colorbar is not None,
        colorbar=colorbar,
        name="encoding",
        hovertemplate=hovertemplate,
    )


def _apply_mel_axis(fig: go.Figure, mel_frequencies, row: int, col: int = 1, title: str = "Frequency (mel)") -> None:
    vals, text = mel_ticks(mel_frequencies)
    fig.update_yaxes(tickvals=vals, ticktext=text, title_text=title, row=row, col=col)


#: Pixels right of the plots for the colour bars.  Margins are fixed (``autoexpand=False``): plotly.js's
#: automatic margins redraw a figure up to three times, a quarter of a rate change's browser time.
RIGHT_MARGIN = 90


def _base_layout(
    fig: go.Figure, height: int, colormap: str, zmin: float, zmax: float, title: str | None = None
) -> None:
    # the legend goes under the time axis: at the top right it would sit under plotly's modebar
    bottom = 110
    plot_height = max(100, height - bottom - (60 if title else 40))
    fig.update_layout(
        height=height,
        margin=dict(l=70, r=RIGHT_MARGIN, t=60 if title else 40, b=bottom, autoexpand=False),
        coloraxis=dict(
            colorscale=colorscale(colormap),
            cmin=zmin,
            cmax=zmax,
            colorbar=dict(title=dict(text="dB"), thickness=12, len=0.5, y=0.5),
        ),
        legend=dict(orientation="h", yanchor="top", y=-62 / plot_height, xanchor="left", x=0.0),
        paper_bgcolor=PAPER,
        title=dict(text=title) if title else None,
    )


def _get(rec: Any, name: str, default: Any = float("nan")) -> Any:
    if isinstance(rec, Mapping):
        return rec.get(name, default)
    return getattr(rec, name, default)


def _finite_or_none(values: Iterable[Any]) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v) for v in values]


def _layout(fig: go.Figure, height: int, *, title: str | None = None, legend: bool = True) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=60, r=20, t=70 if title else 45, b=45),
        paper_bgcolor=PAPER,
        title=dict(text=title) if title else None,
        legend=dict(orientation="h", yanchor="bottom", y=1.06, xanchor="right", x=1.0) if legend else None,
        showlegend=legend,
    )
    return fig


# --------------------------------------------------------------------------- training curves


def _add_waveform(
    fig: go.Figure, samples: Any, sample_rate: int, time_range: Any, max_points: int, *, row: int = 1
) -> None:
    """The waveform's min/max envelope (filled between) in ``row`` of ``fig``."""
    t, lo, hi = _wave_window(samples, int(sample_rate), time_range, max_points)
    for y, name, fill, what in ((hi, "waveform max", None, "max"), (lo, "waveform", "tonexty", "min")):
        fig.add_trace(
            go.Scatter(
                x=t,
                y=y,
                mode="lines",
                line=dict(width=0.6, color=BLUE),
                fill=fill,
                name=name,
                showlegend=False,
                hovertemplate="t = %{x:.3f} s<br>" + what + " %{y:.3f}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    fig.update_yaxes(title_text="Amplitude", range=[-1.05, 1.05], row=row, col=1)


def _reference_line(x0: float, x1: float, y: float, name: str) -> go.Scatter:
    """A dotted grey horizontal line at ``y`` (a uniform share, a fixed hop...)."""
    return go.Scatter(
        x=[x0, x1], y=[y, y], mode="lines", name=name, line=dict(color=GREY, dash="dot", width=1), hoverinfo="skip"
    )


def _importance_trace(x: np.ndarray, y: np.ndarray, *, width: float = 1.3) -> go.Scatter:
    """The importance curve: an orange line filled down to zero, hover in seconds."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        fill="tozeroy",
        name="importance",
        line=dict(color=ORANGE, width=width),
        hovertemplate="t = %{x:.3f} s<br>importance %{y:.3f}<extra></extra>",
    )


def _event_lines(
    event_times: Iterable[float], y0: float, y1: float, *, width: float = 1.5, show_legend: bool = True
) -> go.Scatter:
    """Dashed green vertical lines at a preset's known events, between ``y0`` and ``y1``."""
    x, y = _vlines(event_times, y0, y1)
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line=dict(color=GREEN, dash="dash", width=width),
        name="known events",
        legendgroup="events",
        showlegend=show_legend,
        hoverinfo="skip",
    )
