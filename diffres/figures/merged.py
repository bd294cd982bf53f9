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
    _vlines,
    effective_hop_ms,
    frame_link,
    merged_customdata,
    pool_columns,
    pool_edges,
    window_indices,
)
from .style import BLUE, to_db

__all__ = ["diffres_figure", "compact_figure", "frontend_comparison_figure"]


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
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.035,
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
    _add_waveform(fig, samples, int(sample_rate), time_range, max_columns)

    # (2) original
    pooled, bounds = pool_columns(db[:, a:b], max_columns, "max")
    fig.add_trace(_heatmap(pooled, (a + bounds) * hop, name="original"), row=2, col=1)
    _apply_mel_axis(fig, mel_frequencies, 2)

    # (3) importance (mean-pooled for display), frame i drawn at its centre (i + 0.5) * hop
    imp_pooled, ib = pool_columns(imp[a:b], max_columns, "mean")
    centres = ((a + (ib[:-1] + ib[1:]) / 2.0) * hop).astype(np.float32)
    fig.add_trace(_importance_trace(centres, imp_pooled, width=1.3), row=3, col=1)
    uniform = out_len / max(1, n_frames)
    fig.add_trace(_reference_line(0.0, duration, uniform, f"uniform share T'/T = {uniform:.2f}"), row=3, col=1)
    fig.update_yaxes(title_text="Share (0-1)", range=[0, 1.05], row=3, col=1)

    # (4) merged, true time axis
    m_pooled, mb = pool_columns(merged_db[:, p:q], max_columns, "max")
    m_edges = edges[p + mb]
    custom = merged_customdata(m_edges, hop, n_rows=n_mels)
    fig.add_trace(
        _heatmap(
            m_pooled,
            m_edges * hop,
            name="merged",
            customdata=custom,
            hovertemplate="output frame covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>"
            "%{customdata[2]:.1f} input frames merged<br>mel band %{y}<br>%{z:.1f} dB<extra>merged</extra>",
        ),
        row=4,
        col=1,
    )
    _apply_mel_axis(fig, mel_frequencies, 4)
    in_view = q - p
    if in_view - 1 <= max_boundaries:
        # dense boundaries would hide the spectrogram: then they start hidden (click the legend to show)
        x, y = _vlines(edges[p + 1 : q] * hop, -0.5, n_mels - 0.5)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line=dict(color="rgba(255,255,255,0.5)", width=0.7),
                name="merge boundaries",
                hoverinfo="skip",
                visible=True if in_view <= 60 else "legendonly",
            ),
            row=4,
            col=1,
        )

    # (5) effective hop, a step per output frame
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
        row=5,
        col=1,
    )
    fixed = duration * 1000.0 / max(1, out_len)
    fig.add_trace(_reference_line(0.0, duration, fixed, f"fixed hop at the same budget ({fixed:.1f} ms)"), row=5, col=1)
    fig.update_yaxes(title_text="ms / frame", type="log", row=5, col=1)

    if event_times is not None and len(event_times):  # on the waveform and importance rows, never over a spectrogram
        for row, (y0, y1) in ((3, (0.0, 1.05)), (1, (-1.05, 1.05))):
            fig.add_trace(_event_lines(event_times, y0, y1, width=1.2, show_legend=row == 3), row=row, col=1)
    view = (0.0, duration) if time_range is None else (max(0.0, min(time_range)), min(duration, max(time_range)))
    fig.update_xaxes(range=list(view))
    _style_time_axes(fig, 5)
    _base_layout(fig, height, colormap, zmin, zmax)
    fig.update_layout(coloraxis_colorbar=dict(len=0.6, y=0.5), hovermode="closest", meta=dict(TIME_LINK))
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
    mp, mb = pool_columns(mdb, max_columns, "max")
    hover = "output frame %{x:.0f}<br>mel band %{y}<br>%{z:.1f} dB<extra></extra>"
    fig.add_trace(_heatmap(mp, mb, name="merged", hovertemplate=hover), row=1, col=1)
    ep, eb = pool_columns(enc, max_columns, "mean")
    fig.add_trace(
        _encoding_heatmap(ep, eb, "output frame %{x:.0f}<br>channel %{y}<br>%{z:.2f}<extra></extra>"), row=2, col=1
    )
    _apply_mel_axis(fig, mel_frequencies, 1)
    fig.update_yaxes(title_text="Channel", row=2, col=1)
    fig.update_xaxes(title_text="Output frame index", title_standoff=4, row=1, col=1)
    fig.update_xaxes(title_text="Output frame index", title_standoff=4, row=2, col=1)
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

    No per-column hover data (it would triple the figure's size): uniform rows state their
    constant span in the hover text; :func:`diffres_figure` has DiffRes's exact spans.
    """
    hop = float(hop_seconds)
    fig = make_subplots(
        rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=[r["title"] for r in rows]
    )
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
        trace = _heatmap(
            pooled,
            e * hop,
            name=name,
            hovertemplate=f"t = %{{x:.3f}} s<br>{span}<br>mel band %{{y}}<br>%{{z:.1f}} dB<extra></extra>",
        )
        fig.add_trace(trace, row=k, col=1)
        _apply_mel_axis(fig, mel_frequencies, k, title="Mel")
    top = float(db_top) if db_top is not None else max(tops)
    _style_time_axes(fig, len(rows))
    _base_layout(fig, height_per_row * len(rows) + 90, colormap, top - float(db_range), top)
    fig.update_layout(meta=dict(TIME_LINK))
    return fig
