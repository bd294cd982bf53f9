"""DiffRes views (plotly): the merged spectrogram on the true time axis, as the classifier
sees it, and next to the fixed front-ends at the same frame budget.

Conventions as in :mod:`diffres.figures.spectrogram`.
"""

from __future__ import annotations

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
    _encoding_heatmap,
    _event_lines,
    _heatmap,
    _importance_trace,
    _reference_line,
    _style_time_axes,
    _vlines_path,
    effective_hop_ms,
    frame_link,
    merged_customdata,
    pool_columns,
    time_columns,
    window_indices,
)
from .style import BLUE, to_db

__all__ = [
    "DIFFRES_ROWS",
    "INPUT_ROWS",
    "MERGE_ROWS",
    "diffres_figure",
    "compact_figure",
    "frontend_comparison_figure",
]


#: The rows of :func:`diffres_figure`, top to bottom, with their relative heights.
DIFFRES_ROWS = {"waveform": 0.11, "original": 0.27, "importance": 0.13, "merged": 0.27, "hop": 0.13}
#: The rows that do not depend on the reduction rate (the app draws them as a separate chart,
#: so a new rate redraws only the rest) and those that do.
INPUT_ROWS = ("waveform", "original")
MERGE_ROWS = ("importance", "merged", "hop")


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
    event_times: Sequence[float] | np.ndarray | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    max_boundaries: int = 400,
    height: int = 860,
    time_range: tuple[float, float] | None = None,
    rows: Sequence[str] = tuple(DIFFRES_ROWS),
) -> go.Figure:
    """The linked DiffRes view: up to five rows on one zoomable time axis in seconds.

    Rows (:data:`DIFFRES_ROWS`): ``waveform`` envelope; ``original`` log-mel; ``importance``
    per input frame; ``merged``, the merged spectrogram on the true time axis (each output
    frame spans ``bin_edges * hop_seconds``; drawn on an even grid of columns,
    :func:`~diffres.figures.display.time_columns`, with merge boundaries at the true edges);
    ``hop``, the effective hop, milliseconds of input per output frame (log scale).

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
            The merged row's columns lie on the input-frame grid (split finer in a narrow
            view), so plotly.js draws it as one image like the original row.
        max_boundaries: draw boundary lines only up to this many output frames (in view).
        height: pixels for all five rows; a subset gets its share of it.
        time_range: ``(start, end)`` seconds to show; only that part is pooled for display,
            so a narrow range shows every input and output frame.
        rows: which rows to draw, in :data:`DIFFRES_ROWS` order (e.g. :data:`INPUT_ROWS`).

    Hover on the effective-hop curve says which seconds an output frame covers and how many
    input frames it merged (``customdata`` ``[T', 3]``: start s, end s, frames); hover on the
    merged spectrogram gives the time, band and level (no per-cell data: it would be most of the
    figure's bytes).  The merge boundaries are one unbroken path (:func:`_vlines_path`).

    Example:
        >>> import numpy as np
        >>> t, f = 100, 8
        >>> fig = diffres_figure(samples=np.zeros(1600), sample_rate=16000, log_mel=np.zeros((t, f)),
        ...     hop_seconds=0.01, mel_frequencies=np.arange(f) * 100.0, importance=np.full(t, 0.25),
        ...     bin_edges=np.linspace(0, t, 26), merged=np.zeros((25, f)), rows=INPUT_ROWS)
        >>> [tr.name for tr in fig.data]
        ['waveform max', 'waveform', 'original']
    """
    unknown = [r for r in rows if r not in DIFFRES_ROWS]
    if unknown or not rows:
        raise ValueError(f"rows must be a non-empty subset of {tuple(DIFFRES_ROWS)}, got {tuple(rows)}.")
    names = [r for r in DIFFRES_ROWS if r in rows]
    row_of = {name: k for k, name in enumerate(names, start=1)}
    hop = float(hop_seconds)
    db = to_db(log_mel).T  # [F, T]
    n_frames = db.shape[1]
    merged_db = to_db(merged).T  # [F, T']
    edges = np.asarray(bin_edges, dtype=np.float64).reshape(-1)
    out_len = merged_db.shape[1]
    if edges.size != out_len + 1:
        raise ValueError(f"bin_edges must have T' + 1 = {out_len + 1} entries, got {edges.size}.")
    imp = np.asarray(importance, dtype=np.float32).reshape(-1)
    zmin, zmax = _db_limits(db, db_range)
    duration = n_frames * hop
    titles = {
        "waveform": "Waveform",
        "original": f"Original log-mel: {n_frames} frames at {hop * 1000:g} ms",
        "importance": "Importance per input frame (share of an output frame)",
        "merged": f"Merged by DiffRes, drawn at the true times: {out_len} frames",
        "hop": "Effective hop: ms of input per output frame",
    }
    share = sum(DIFFRES_ROWS[n] for n in names)
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.035 / share if len(names) > 1 else 0.0,
        row_heights=[DIFFRES_ROWS[n] / share for n in names],
        subplot_titles=[titles[n] for n in names],
    )
    a, b = window_indices(np.arange(n_frames + 1) * hop, time_range)  # input frames in view
    p, q = window_indices(edges * hop, time_range)  # output frames in view

    if "waveform" in row_of:
        _add_waveform(fig, samples, int(sample_rate), time_range, max_columns, row=row_of["waveform"])

    if "original" in row_of:
        pooled, bounds = pool_columns(db[:, a:b], max_columns, "max")
        fig.add_trace(_heatmap(pooled, (a + bounds) * hop, name="original"), row=row_of["original"], col=1)
        _apply_mel_axis(fig, mel_frequencies, row_of["original"])

    if "importance" in row_of:  # mean-pooled for display, frame i drawn at its centre (i + 0.5) * hop
        r = row_of["importance"]
        imp_pooled, ib = pool_columns(imp[a:b], max_columns, "mean")
        centres = ((a + (ib[:-1] + ib[1:]) / 2.0) * hop).astype(np.float32)
        fig.add_trace(_importance_trace(centres, imp_pooled, width=1.3), row=r, col=1)
        uniform = out_len / max(1, n_frames)
        fig.add_trace(_reference_line(0.0, duration, uniform, f"uniform share T'/T = {uniform:.2f}"), row=r, col=1)
        fig.update_yaxes(title_text="Share (0-1)", range=[0, 1.05], row=r, col=1)

    if "merged" in row_of:
        _merged_row(
            fig, row_of["merged"], merged_db, edges, (a, b), (p, q), hop, mel_frequencies, max_columns, max_boundaries
        )
    if "hop" in row_of:
        _hop_row(fig, row_of["hop"], edges, p, q, hop, duration, max_columns)
    _event_rows(fig, event_times, row_of)
    view = (0.0, duration) if time_range is None else (max(0.0, min(time_range)), min(duration, max(time_range)))
    fig.update_xaxes(range=list(view))
    _style_time_axes(fig, len(names))
    _base_layout(fig, max(200, int(round(height * share))), colormap, zmin, zmax)
    fig.update_layout(
        coloraxis_colorbar=dict(len=0.6, y=0.5),
        coloraxis_showscale="original" in row_of or "merged" in row_of,
        hovermode="closest",
        meta=dict(TIME_LINK),
    )
    fig.update_annotations(font_size=12)
    return fig


def _event_rows(fig: go.Figure, event_times: Sequence[float] | np.ndarray | None, row_of: dict[str, int]) -> None:
    """Known events as dashed lines on the waveform and importance rows, never over a spectrogram."""
    if event_times is None or not len(event_times):
        return
    first = True
    for name, (y0, y1) in (("importance", (0.0, 1.05)), ("waveform", (-1.05, 1.05))):
        if name in row_of:
            fig.add_trace(_event_lines(event_times, y0, y1, width=1.2, show_legend=first), row=row_of[name], col=1)
            first = False


def _merged_row(
    fig: go.Figure,
    r: int,
    merged_db: np.ndarray,
    edges: np.ndarray,
    frames_in_view: tuple[int, int],
    outputs_in_view: tuple[int, int],
    hop: float,
    mel_frequencies: np.ndarray,
    max_columns: int,
    max_boundaries: int,
) -> None:
    """The merged spectrogram ``[F, T']`` (``edges``: ``[T' + 1]`` input-frame positions) over the
    input frames ``frames_in_view`` on the true time axis, on an even grid of columns, with the
    boundaries of the output frames ``outputs_in_view`` at their true times."""
    n_mels = merged_db.shape[0]
    grid = time_columns(edges, *frames_in_view, max_columns)
    # no per-cell hover data: the span of each output frame is in the effective-hop row's hover
    # below.  One label per cell ([F, M] strings) was 1.3 MB of a 1.6 MB figure at M = 1000, sent
    # and parsed on every rate change (0.2 s of the page's 0.4 s server-to-script-end time).
    fig.add_trace(
        _heatmap(
            grid.pool(merged_db),
            grid.x(hop),
            name="merged",
            hovertemplate="t = %{x:.3f} s<br>mel band %{y}<br>%{z:.1f} dB<br>"
            "(the frame's span: hover the effective hop below)<extra>merged</extra>",
        ),
        row=r,
        col=1,
    )
    _apply_mel_axis(fig, mel_frequencies, r)
    fig.update_yaxes(range=[-0.5, n_mels - 0.5], row=r, col=1)  # clips the joins of the boundary path
    p, q = outputs_in_view
    if q - p - 1 <= max_boundaries:
        # shown by default; dense boundaries are fainter so they do not hide the spectrogram (legend click hides them)
        x, y = _vlines_path(edges[p + 1 : q] * hop, -1.5, n_mels + 0.5)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line=dict(color="rgba(255,255,255,0.5)" if q - p <= 60 else "rgba(255,255,255,0.3)", width=0.7),
                name="merge boundaries",
                hoverinfo="skip",
                visible=True,
            ),
            row=r,
            col=1,
        )


def _hop_row(
    fig: go.Figure, r: int, edges: np.ndarray, p: int, q: int, hop: float, duration: float, max_columns: int
) -> None:
    """The effective hop of output frames ``p..q`` as a step curve, against the fixed hop."""
    out_len = len(edges) - 1
    widths = effective_hop_ms(edges, hop)
    w_pooled, wb = pool_columns(widths[p:q], max_columns, "mean")
    w_edges = edges[p + wb]
    hop_custom = merged_customdata(w_edges, hop)
    fig.add_trace(
        go.Scatter(
            x=(w_edges[:-1] * hop).astype(np.float32),
            y=w_pooled,
            mode="lines+markers" if w_pooled.size <= 150 else "lines",
            line=dict(color=BLUE, width=1.4, shape="hv"),
            marker=dict(size=3),
            name="effective hop",
            customdata=hop_custom,
            hovertemplate="output frame covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>"
            "%{customdata[2]:.1f} input frames merged<br>effective hop %{y:.1f} ms<extra></extra>",
        ),
        row=r,
        col=1,
    )
    fixed = duration * 1000.0 / max(1, out_len)
    fig.add_trace(_reference_line(0.0, duration, fixed, f"fixed hop at the same budget ({fixed:.1f} ms)"), row=r, col=1)
    fig.update_yaxes(title_text="ms / frame", type="log", row=r, col=1)


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
    bin_edges: np.ndarray | None = None,
    hop_seconds: float | None = None,
) -> go.Figure:
    """What the classifier sees: the compact ``T' x F`` merged image and the resolution encoding.

    Both are drawn on the output-frame index (uniform columns), as the classifier receives them.
    With ``bin_edges`` ``[T' + 1]`` and ``hop_seconds`` the figure carries each column's time
    span (``layout.meta``, :func:`~diffres.figures.display.frame_link`), so the app can highlight
    the time a hovered column covers in the page's time figures.
    """
    mdb = to_db(merged).T
    enc = np.asarray(resolution_encoding, dtype=np.float32).T
    out_len = mdb.shape[1]
    top = float(db_top) if db_top is not None else float(np.max(mdb))
    fig = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.27,
        subplot_titles=(f"Classifier input: {out_len} x {mdb.shape[0]}", "Resolution encoding"),
    )
    grid = time_columns(np.arange(out_len + 1), 0, out_len, max_columns)  # even columns: one image each
    hover = "output frame %{x:.0f}<br>mel band %{y}<br>%{z:.1f} dB<extra></extra>"
    fig.add_trace(_heatmap(grid.pool(mdb, "max"), grid.x(1.0), name="merged", hovertemplate=hover), row=1, col=1)
    fig.add_trace(
        _encoding_heatmap(
            grid.pool(enc, "mean"),
            grid.x(1.0),
            "output frame %{x:.0f}<br>channel %{y}<br>%{z:.2f}<extra></extra>",
            colorbar=dict(title=dict(text="code"), thickness=12, len=0.35, y=0.18, tickvals=[-1, 0, 1]),
        ),
        row=2,
        col=1,
    )
    _apply_mel_axis(fig, mel_frequencies, 1)
    fig.update_yaxes(title_text="Channel", row=2, col=1)
    for row in (1, 2):  # a pooled grid's last column may reach past the last frame
        fig.update_xaxes(title_text="Output frame index", title_standoff=4, range=[0, out_len], row=row, col=1)
    _base_layout(fig, height, colormap, top - float(db_range), top)
    fig.update_layout(coloraxis_colorbar=dict(len=0.4, y=0.8))
    if bin_edges is not None and hop_seconds is not None:
        fig.update_layout(meta=frame_link(bin_edges, hop_seconds))
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

    Each row is drawn on an even grid of columns (:func:`~diffres.figures.display.time_columns`:
    the frames' own when they are evenly spaced, else the input-frame grid), so plotly.js draws
    it as one image.  No per-column hover data (it would triple the figure's size): uniform rows
    state their constant span in the hover text; :func:`diffres_figure` has DiffRes's exact spans.
    """
    hop = float(hop_seconds)
    fig = make_subplots(
        rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=[r["title"] for r in rows]
    )
    tops = []
    duration = 0.0
    for k, r in enumerate(rows, start=1):
        mdb = to_db(r["merged"]).T
        tops.append(float(np.max(mdb)))
        edges = np.asarray(r["bin_edges"], dtype=np.float64)
        duration = max(duration, float(edges[-1]) * hop)
        grid = time_columns(edges, 0.0, float(edges[-1]), max_columns)
        widths = np.diff(edges)
        name = r["title"].split(":")[0]
        if np.allclose(widths, widths[0], rtol=1e-6, atol=1e-9):
            span = f"each output frame covers {widths[0]:.2f} input frames ({widths[0] * hop * 1000:.1f} ms)"
        else:
            span = "the output frame covering this time (hover the linked view for its exact span)"
        trace = _heatmap(
            grid.pool(mdb, "max"),
            grid.x(hop),
            name=name,
            hovertemplate=f"t = %{{x:.3f}} s<br>{span}<br>mel band %{{y}}<br>%{{z:.1f}} dB<extra></extra>",
        )
        fig.add_trace(trace, row=k, col=1)
        _apply_mel_axis(fig, mel_frequencies, k, title="Mel")
    top = float(db_top) if db_top is not None else max(tops)
    fig.update_xaxes(range=[0.0, duration])  # a pooled grid's last column may reach past the clip
    _style_time_axes(fig, len(rows))
    _base_layout(fig, height_per_row * len(rows) + 90, colormap, top - float(db_range), top)
    fig.update_layout(meta=dict(TIME_LINK))
    return fig
