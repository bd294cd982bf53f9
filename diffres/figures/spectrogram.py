"""Spectrogram and DiffRes figures (plotly for the app, matplotlib for PNG export).

Every function takes plain arrays (NumPy, or anything ``np.asarray`` accepts) and returns a
``plotly.graph_objects.Figure`` or PNG bytes; nothing here imports Streamlit.

Conventions
-----------
- Spectrograms come in the library's layout ``[T, F]`` (time first), as natural-log mel
  power (what :class:`diffres.MelFrontend` and the front-ends produce); figures show dB
  (``10 log10 P = ln P * 10 / ln 10``).
- Time is in seconds on every time axis.  Input frame ``i`` is drawn over
  ``[i * hop, (i + 1) * hop)``, so a DiffRes output bin with edges ``bin_edges[j]``,
  ``bin_edges[j + 1]`` (input-frame positions) covers ``bin_edges * hop`` seconds: the
  merged spectrogram is drawn on the *true* time axis with variable-width columns
  (``go.Heatmap`` with ``len(x) == n_columns + 1``, i.e. x as cell edges).
- Only the *display* is reduced: heatmaps wider than ``max_columns`` (default
  :data:`MAX_DISPLAY_COLUMNS`) are max-pooled over time (loud events stay visible), curves
  are mean-pooled; all values are sent as float32.
- Colour scales are lists of ``rgb(...)`` strings: Streamlit rewrites the hex colours
  ``#000001``-``#000030`` inside plotly figures (APP-NOTES.md, pitfall d1), and magma or
  inferno start at ``#000004``.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "MAX_DISPLAY_COLUMNS",
    "COLORMAPS",
    "DB_PER_NEPER",
    "colorscale",
    "to_db",
    "pool_columns",
    "pool_edges",
    "waveform_envelope",
    "mel_ticks",
    "merged_customdata",
    "window_indices",
    "effective_hop_ms",
    "spectrogram_figure",
    "hop_grid_figure",
    "diffres_figure",
    "compact_figure",
    "frontend_comparison_figure",
    "diffres_png",
]

#: Most columns a heatmap sends to the browser (about the pixel width of a wide plot).
MAX_DISPLAY_COLUMNS = 2000
#: Colour maps offered by the app (matplotlib names).
COLORMAPS = ("magma", "inferno", "viridis", "cividis", "plasma", "gray_r")
#: dB per natural-log unit of power: 10 / ln(10).
DB_PER_NEPER = 10.0 / math.log(10.0)

_PAPER = "rgba(0,0,0,0)"
_ACCENT = "rgb(31,119,180)"
_ORANGE = "rgb(230,120,20)"
_GREEN = "rgb(30,160,80)"
_GREY = "rgb(120,120,120)"


# --------------------------------------------------------------------------- helpers


def colorscale(name: str = "magma", n: int = 16) -> list[list]:
    """A plotly colour scale sampled from matplotlib colour map ``name`` as ``rgb(...)`` strings.

    Args:
        name: a matplotlib colour map name (e.g. one of :data:`COLORMAPS`, or ``"RdBu_r"``).
        n: number of stops (>= 2).

    Returns:
        ``[[position, "rgb(r,g,b)"], ...]`` with positions 0..1.  Never contains hex colours.
    """
    import matplotlib

    cmap = matplotlib.colormaps[name]
    stops = []
    for k in range(n):
        pos = k / (n - 1)
        r, g, b, _ = cmap(pos)
        stops.append([pos, f"rgb({int(round(r * 255))},{int(round(g * 255))},{int(round(b * 255))})"])
    return stops


def to_db(log_power: np.ndarray) -> np.ndarray:
    """Natural-log power -> dB (float32)."""
    return (np.asarray(log_power, dtype=np.float32) * np.float32(DB_PER_NEPER)).astype(np.float32)


def _group_bounds(n: int, max_groups: int) -> np.ndarray:
    """Boundaries ``[M + 1]`` (indices 0..n) of ``M <= max_groups`` nearly equal groups."""
    if n <= max_groups:
        return np.arange(n + 1)
    factor = int(math.ceil(n / max_groups))
    m = int(math.ceil(n / factor))
    return np.minimum(np.arange(m + 1) * factor, n)


def pool_columns(z: np.ndarray, max_columns: int = MAX_DISPLAY_COLUMNS, how: str = "max") -> tuple[np.ndarray, np.ndarray]:
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
    data = np.stack([e[:-1] * hop_seconds, e[1:] * hop_seconds, e[1:] - e[:-1]], axis=-1).astype(np.float32)
    if n_rows is not None:
        data = np.ascontiguousarray(np.broadcast_to(data, (n_rows,) + data.shape))
    return data


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


def _vlines(xs: Sequence[float], y0: float, y1: float) -> tuple[list, list]:
    """x, y lists drawing vertical segments separated by ``None`` (one trace, many lines)."""
    x: list = []
    y: list = []
    for v in xs:
        x += [float(v), float(v), None]
        y += [y0, y1, None]
    return x, y


def _db_limits(db: np.ndarray, db_range: float) -> tuple[float, float]:
    finite = db[np.isfinite(db)]
    top = float(finite.max()) if finite.size else 0.0
    return top - float(db_range), top


def _style_time_axes(fig: go.Figure, rows: int, cols: int = 1) -> None:
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text="Time (s)", row=rows, col=c)


def _heatmap(z_ft: np.ndarray, x_edges: np.ndarray, *, name: str, coloraxis: str = "coloraxis",
             customdata=None, hovertemplate: str | None = None) -> go.Heatmap:
    n_rows = z_ft.shape[0]
    return go.Heatmap(
        z=np.asarray(z_ft, dtype=np.float32),
        x=np.asarray(x_edges, dtype=np.float32),
        y=np.arange(n_rows, dtype=np.float32),
        coloraxis=coloraxis,
        name=name,
        customdata=customdata,
        hovertemplate=hovertemplate
        or "t = %{x:.3f} s<br>mel band %{y}<br>%{z:.1f} dB<extra>" + name + "</extra>",
    )


def _apply_mel_axis(fig: go.Figure, mel_frequencies, row: int, col: int = 1, title: str = "Frequency (mel)") -> None:
    vals, text = mel_ticks(mel_frequencies)
    fig.update_yaxes(tickvals=vals, ticktext=text, title_text=title, row=row, col=col)


def _base_layout(fig: go.Figure, height: int, colormap: str, zmin: float, zmax: float, title: str | None = None) -> None:
    # the legend goes under the time axis: at the top right it would sit under plotly's modebar
    bottom = 110
    plot_height = max(100, height - bottom - (60 if title else 40))
    fig.update_layout(
        height=height,
        margin=dict(l=70, r=20, t=60 if title else 40, b=bottom),
        coloraxis=dict(colorscale=colorscale(colormap), cmin=zmin, cmax=zmax,
                       colorbar=dict(title=dict(text="dB"), thickness=12, len=0.5, y=0.5)),
        legend=dict(orientation="h", yanchor="top", y=-62 / plot_height, xanchor="left", x=0.0),
        paper_bgcolor=_PAPER,
        title=dict(text=title) if title else None,
    )


# --------------------------------------------------------------------------- figures


def spectrogram_figure(
    log_mel: np.ndarray,
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    *,
    samples: np.ndarray | None = None,
    sample_rate: int | None = None,
    db_range: float = 80.0,
    colormap: str = "magma",
    event_times: Sequence[float] | None = None,
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
        event_times: seconds of known events, drawn as dashed lines.
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
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[0.22, 0.78] if with_wave else [1.0])
    spec_row = rows
    if with_wave:
        t, lo, hi = _wave_window(samples, int(sample_rate), time_range, max_columns)
        fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0.6, color=_ACCENT), name="waveform max",
                                 showlegend=False, hovertemplate="t = %{x:.3f} s<br>max %{y:.3f}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0.6, color=_ACCENT), fill="tonexty",
                                 name="waveform", showlegend=False,
                                 hovertemplate="t = %{x:.3f} s<br>min %{y:.3f}<extra></extra>"), row=1, col=1)
        fig.update_yaxes(title_text="Amplitude", range=[-1.05, 1.05], row=1, col=1)
    fig.add_trace(_heatmap(pooled, edges, name="log-mel"), row=spec_row, col=1)
    if event_times is not None and len(event_times):
        x, y = _vlines(event_times, -0.5, db.shape[0] - 0.5)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=_GREEN, dash="dash", width=1.5),
                                 name="known events", hoverinfo="skip"), row=spec_row, col=1)
    _apply_mel_axis(fig, mel_frequencies, spec_row)
    _style_time_axes(fig, rows)
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])])
    _base_layout(fig, height, colormap, zmin, zmax)
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
) -> go.Figure:
    """Several spectrograms side by side (e.g. the same clip at a 10 ms and a 40 ms hop).

    Args:
        panels: dicts with ``title``, ``log_mel`` ``[T, F]``, ``hop_seconds`` and
            ``mel_frequencies`` ``[F]``; filled row by row.  A panel with ``bin_edges``
            ``[T + 1]`` (input-frame positions, e.g. a DiffRes output) is drawn with
            variable-width columns at ``bin_edges * hop_seconds``.
        n_cols: panels per row (default: all in one row).
        link_x: link the time axes of all panels (same clip); False links per column.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("hop_grid_figure needs at least one panel.")
    n_cols = n_cols or n
    n_rows = int(math.ceil(n / n_cols))
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[p["title"] for p in panels],
                        horizontal_spacing=0.03, vertical_spacing=0.22 if n_rows > 1 else 0.1)
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
    return fig


def diffres_figure(
    *,
    samples: np.ndarray,
    sample_rate: int,
    log_mel: np.ndarray,
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    importance: np.ndarray,
    bin_edges: np.ndarray,
    merged: np.ndarray,
    db_range: float = 80.0,
    colormap: str = "magma",
    event_times: Sequence[float] | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    max_boundaries: int = 400,
    height: int = 860,
    time_range: tuple[float, float] | None = None,
) -> go.Figure:
    """The linked DiffRes view: five rows on one zoomable time axis in seconds.

    Rows: (1) waveform envelope; (2) original log-mel; (3) importance per input frame;
    (4) the merged spectrogram on the true time axis, one variable-width column per output
    frame (``x = bin_edges * hop_seconds``), with merge boundaries; (5) the effective hop,
    milliseconds of input per output frame (log scale).

    Args:
        samples, sample_rate: the clip.
        log_mel: ``[T, F]`` natural-log mel power (the front-end's input).
        hop_seconds: seconds per input frame.
        mel_frequencies: ``[F]`` band centres in Hz.
        importance: ``[T]`` normalised importance in [0, 1] (sums to ``T'``).
        bin_edges: ``[T' + 1]`` input-frame positions of the output bins' edges.
        merged: ``[T', F]`` merged natural-log mel power (DiffRes ``avg``).
        event_times: seconds of known events (presets), drawn as dashed lines.
        max_columns: display budget per heatmap; wider data is max-pooled for display only.
        max_boundaries: draw boundary lines only up to this many output frames (in view).
        time_range: ``(start, end)`` seconds to show; only that part is pooled for display,
            so a narrow range shows every input and output frame.

    Hover on the merged spectrogram and on the effective-hop curve says which seconds an
    output frame covers and how many input frames it merged (``customdata``: start s,
    end s, frames).
    """
    hop = float(hop_seconds)
    db = to_db(log_mel).T  # [F, T]
    n_mels, n_frames = db.shape
    merged_db = to_db(merged).T  # [F, T']
    edges = np.asarray(bin_edges, dtype=np.float64).reshape(-1)
    out_len = merged_db.shape[1]
    if edges.size != out_len + 1:
        raise ValueError(f"bin_edges must have T' + 1 = {out_len + 1} entries, got {edges.size}.")
    imp = np.asarray(importance, dtype=np.float32).reshape(-1)
    zmin, zmax = _db_limits(db, db_range)
    duration = n_frames * hop

    fig = make_subplots(
        rows=5, cols=1, shared_xaxes=True, vertical_spacing=0.035,
        row_heights=[0.11, 0.27, 0.13, 0.27, 0.13],
        subplot_titles=(
            "Waveform",
            f"Original log-mel: {n_frames} frames at {hop * 1000:g} ms",
            "Importance per input frame (share of an output frame)",
            f"Merged by DiffRes, drawn at the true times: {out_len} frames",
            "Effective hop: ms of input per output frame",
        ),
    )
    a, b = window_indices(np.arange(n_frames + 1) * hop, time_range)  # input frames in view
    p, q = window_indices(edges * hop, time_range)  # output frames in view

    # (1) waveform
    t, lo, hi = _wave_window(samples, int(sample_rate), time_range, max_columns)
    fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0.6, color=_ACCENT), showlegend=False,
                             name="waveform max", hovertemplate="t = %{x:.3f} s<br>max %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0.6, color=_ACCENT), fill="tonexty", showlegend=False,
                             name="waveform", hovertemplate="t = %{x:.3f} s<br>min %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.update_yaxes(title_text="Amplitude", range=[-1.05, 1.05], row=1, col=1)

    # (2) original
    pooled, bounds = pool_columns(db[:, a:b], max_columns, "max")
    fig.add_trace(_heatmap(pooled, (a + bounds) * hop, name="original"), row=2, col=1)
    _apply_mel_axis(fig, mel_frequencies, 2)

    # (3) importance (mean-pooled for display), frame i drawn at its centre (i + 0.5) * hop
    imp_pooled, ib = pool_columns(imp[a:b], max_columns, "mean")
    centres = ((a + (ib[:-1] + ib[1:]) / 2.0) * hop).astype(np.float32)
    fig.add_trace(go.Scatter(x=centres, y=imp_pooled, mode="lines", line=dict(color=_ORANGE, width=1.3),
                             fill="tozeroy", name="importance",
                             hovertemplate="t = %{x:.3f} s<br>importance %{y:.3f}<extra></extra>"), row=3, col=1)
    uniform = out_len / max(1, n_frames)
    fig.add_trace(go.Scatter(x=[0.0, duration], y=[uniform, uniform], mode="lines", line=dict(color=_GREY, dash="dot", width=1),
                             name=f"uniform share T'/T = {uniform:.2f}", hoverinfo="skip"), row=3, col=1)
    fig.update_yaxes(title_text="Share (0-1)", range=[0, 1.05], row=3, col=1)

    # (4) merged, true time axis
    m_pooled, mb = pool_columns(merged_db[:, p:q], max_columns, "max")
    m_edges = edges[p + mb]
    custom = merged_customdata(m_edges, hop, n_rows=n_mels)
    fig.add_trace(_heatmap(
        m_pooled, m_edges * hop, name="merged", customdata=custom,
        hovertemplate="output frame covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>"
                      "%{customdata[2]:.1f} input frames merged<br>mel band %{y}<br>%{z:.1f} dB<extra>merged</extra>",
    ), row=4, col=1)
    _apply_mel_axis(fig, mel_frequencies, 4)
    in_view = q - p
    if in_view - 1 <= max_boundaries:
        # dense boundaries would hide the spectrogram: then they start hidden (click the legend to show)
        x, y = _vlines(edges[p + 1:q] * hop, -0.5, n_mels - 0.5)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color="rgba(255,255,255,0.5)", width=0.7),
                                 name="merge boundaries", hoverinfo="skip",
                                 visible=True if in_view <= 60 else "legendonly"), row=4, col=1)

    # (5) effective hop, a step per output frame
    widths = effective_hop_ms(edges, hop)
    w_pooled, wb = pool_columns(widths[p:q], max_columns, "mean")
    w_edges = edges[p + wb]
    hop_custom = merged_customdata(w_edges, hop)
    fig.add_trace(go.Scatter(
        x=(w_edges[:-1] * hop).astype(np.float32), y=w_pooled, mode="lines+markers" if w_pooled.size <= 150 else "lines",
        line=dict(color=_ACCENT, width=1.4, shape="hv"), marker=dict(size=3), name="effective hop",
        customdata=hop_custom,
        hovertemplate="output frame covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>"
                      "%{customdata[2]:.1f} input frames merged<br>effective hop %{y:.1f} ms<extra></extra>",
    ), row=5, col=1)
    fixed = duration * 1000.0 / max(1, out_len)
    fig.add_trace(go.Scatter(x=[0.0, duration], y=[fixed, fixed], mode="lines", line=dict(color=_GREY, dash="dot", width=1),
                             name=f"fixed hop at the same budget ({fixed:.1f} ms)", hoverinfo="skip"), row=5, col=1)
    fig.update_yaxes(title_text="ms / frame", type="log", row=5, col=1)

    if event_times is not None and len(event_times):
        for row, (y0, y1) in ((3, (0.0, 1.05)), (2, (-0.5, n_mels - 0.5))):
            x, y = _vlines(event_times, y0, y1)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=_GREEN, dash="dash", width=1.2),
                                     name="known events", legendgroup="events", showlegend=row == 3, hoverinfo="skip"),
                          row=row, col=1)
    view = (0.0, duration) if time_range is None else (max(0.0, min(time_range)), min(duration, max(time_range)))
    fig.update_xaxes(range=list(view))
    _style_time_axes(fig, 5)
    _base_layout(fig, height, colormap, zmin, zmax)
    fig.update_layout(coloraxis_colorbar=dict(len=0.6, y=0.5), hovermode="closest")
    fig.update_annotations(font_size=12)
    return fig


def compact_figure(
    merged: np.ndarray,
    resolution_encoding: np.ndarray,
    mel_frequencies: np.ndarray,
    *,
    db_range: float = 80.0,
    db_top: float | None = None,
    colormap: str = "magma",
    max_columns: int = 600,
    height: int = 520,
) -> go.Figure:
    """What the classifier sees: the compact ``T' x F`` merged image and the resolution encoding.

    Both are drawn on the output-frame index (uniform columns), as the classifier receives them.
    """
    mdb = to_db(merged).T
    enc = np.asarray(resolution_encoding, dtype=np.float32).T
    out_len = mdb.shape[1]
    top = float(db_top) if db_top is not None else float(np.max(mdb))
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.27,
                        subplot_titles=(f"Classifier input: {out_len} x {mdb.shape[0]}",
                                        "Resolution encoding"))
    mp, mb = pool_columns(mdb, max_columns, "max")
    fig.add_trace(go.Heatmap(z=mp, x=mb.astype(np.float32), y=np.arange(mdb.shape[0], dtype=np.float32), coloraxis="coloraxis",
                             name="merged", hovertemplate="output frame %{x:.0f}<br>mel band %{y}<br>%{z:.1f} dB<extra></extra>"),
                  row=1, col=1)
    ep, eb = pool_columns(enc, max_columns, "mean")
    fig.add_trace(go.Heatmap(z=ep, x=eb.astype(np.float32), y=np.arange(enc.shape[0], dtype=np.float32),
                             colorscale=colorscale("RdBu_r", 11), zmin=-1, zmax=1, showscale=False, name="encoding",
                             hovertemplate="output frame %{x:.0f}<br>channel %{y}<br>%{z:.2f}<extra></extra>"),
                  row=2, col=1)
    _apply_mel_axis(fig, mel_frequencies, 1)
    fig.update_yaxes(title_text="Channel", row=2, col=1)
    fig.update_xaxes(title_text="Output frame index", title_standoff=4, row=1, col=1)
    fig.update_xaxes(title_text="Output frame index", title_standoff=4, row=2, col=1)
    _base_layout(fig, height, colormap, top - float(db_range), top)
    fig.update_layout(coloraxis_colorbar=dict(len=0.4, y=0.8))
    return fig


def frontend_comparison_figure(
    rows: Sequence[dict],
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    *,
    db_range: float = 80.0,
    db_top: float | None = None,
    colormap: str = "magma",
    max_columns: int = 1200,
    height_per_row: int = 210,
) -> go.Figure:
    """Several front-ends' outputs at the same frame budget, each on the true time axis.

    Args:
        rows: dicts with ``title``, ``merged`` ``[T', F]`` log power and ``bin_edges``
            ``[T' + 1]`` (input-frame positions; uniform for the fixed baselines).

    No per-column hover data (it would triple the figure's size): uniform rows state their
    constant span in the hover text; :func:`diffres_figure` has DiffRes's exact spans.
    """
    hop = float(hop_seconds)
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[r["title"] for r in rows])
    tops = []
    for k, r in enumerate(rows, start=1):
        mdb = to_db(r["merged"]).T
        tops.append(float(np.max(mdb)))
        pooled, b = pool_columns(mdb, max_columns, "max")
        edges = np.asarray(r["bin_edges"], dtype=np.float64)
        e = pool_edges(edges, b)
        widths = np.diff(edges)
        name = r["title"].split(":")[0]
        if np.allclose(widths, widths[0], rtol=1e-6, atol=1e-9):
            span = f"each output frame covers {widths[0]:.2f} input frames ({widths[0] * hop * 1000:.1f} ms)"
        else:
            span = "column width = the span this output frame covers (hover the linked view for its exact span)"
        trace = _heatmap(pooled, e * hop, name=name,
                         hovertemplate=f"t = %{{x:.3f}} s<br>{span}<br>mel band %{{y}}<br>%{{z:.1f}} dB<extra></extra>")
        fig.add_trace(trace, row=k, col=1)
        _apply_mel_axis(fig, mel_frequencies, k, title="Mel")
    top = float(db_top) if db_top is not None else max(tops)
    _style_time_axes(fig, len(rows))
    _base_layout(fig, height_per_row * len(rows) + 90, colormap, top - float(db_range), top)
    return fig


def diffres_png(
    *,
    samples: np.ndarray,
    sample_rate: int,
    log_mel: np.ndarray,
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    importance: np.ndarray,
    bin_edges: np.ndarray,
    merged: np.ndarray,
    db_range: float = 80.0,
    colormap: str = "magma",
    title: str = "",
    dpi: int = 120,
) -> bytes:
    """The DiffRes view as a PNG, drawn server-side with a matplotlib ``Figure`` (Agg, no pyplot).

    Same rows as :func:`diffres_figure`: waveform, original, importance, merged at true
    times (``pcolormesh`` with ``bin_edges * hop`` as column edges), effective hop.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hop = float(hop_seconds)
    db = to_db(log_mel).T
    n_mels, n_frames = db.shape
    mdb = to_db(merged).T
    edges = np.asarray(bin_edges, dtype=np.float64)
    zmin, zmax = _db_limits(db, db_range)
    fig = Figure(figsize=(11, 9), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(5, 1, sharex=True, height_ratios=[1, 2.2, 1, 2.2, 1])
    t, lo, hi = waveform_envelope(samples, int(sample_rate), 3000)
    axes[0].fill_between(t, lo, hi, color="tab:blue", linewidth=0.5)
    axes[0].set_ylabel("Amplitude")
    axes[0].set_ylim(-1.05, 1.05)
    pooled, b = pool_columns(db, 1500, "max")
    y_edges = np.arange(n_mels + 1) - 0.5
    mesh = axes[1].pcolormesh(b * hop, y_edges, pooled, cmap=colormap, vmin=zmin, vmax=zmax, shading="flat")
    axes[1].set_title(f"Original log-mel ({n_frames} frames at {hop * 1000:g} ms)", fontsize=10)
    imp_p, ib = pool_columns(np.asarray(importance, dtype=np.float32), 3000, "mean")
    axes[2].plot((ib[:-1] + ib[1:]) / 2 * hop, imp_p, color="tab:orange", linewidth=1)
    axes[2].set_ylim(0, 1.05)
    axes[2].set_ylabel("Importance")
    mp, mb = pool_columns(mdb, 1500, "max")
    axes[3].pcolormesh(pool_edges(edges, mb) * hop, y_edges, mp, cmap=colormap, vmin=zmin, vmax=zmax, shading="flat")
    axes[3].set_title(f"Merged by DiffRes at true times ({mdb.shape[1]} frames)", fontsize=10)
    widths = effective_hop_ms(edges, hop)
    axes[4].stairs(widths, edges * hop, color="tab:blue")
    axes[4].set_yscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axes[4].yaxis.set_major_formatter(ScalarFormatter())
    axes[4].yaxis.set_minor_formatter(NullFormatter())
    axes[4].set_ylabel("ms / frame")
    axes[4].set_xlabel("Time (s)")
    axes[4].set_xlim(0, n_frames * hop)
    vals, text = mel_ticks(mel_frequencies, 5)
    for ax in (axes[1], axes[3]):
        ax.set_yticks(vals, text)
        ax.set_ylabel("Frequency (mel)")
    fig.colorbar(mesh, ax=[axes[1], axes[3]], label="dB", shrink=0.8)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
