"""DiffRes step by step (plotly): every step of docs/METHOD.md on one time axis, for a window of
input frames small enough to count, with one output frame's span highlighted in every row.

Input is a :class:`diffres.explain.DiffResSteps` and the clip's log-mel; steps after the
current one keep their (empty) rows, so the figure does not jump while a learner steps
through.  Conventions as in :mod:`diffres.figures.spectrogram`: input frame ``i`` covers
``[i * hop, (i + 1) * hop)`` seconds, an output frame ``bin_edges[j] * hop`` to
``bin_edges[j + 1] * hop``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..explain import STEPS, DiffResSteps, frame_weights
from .display import (
    TIME_LINK,
    _apply_mel_axis,
    _base_layout,
    _db_limits,
    _encoding_heatmap,
    _heatmap,
    _vlines,
    merged_customdata,
)
from .style import BLUE, GREEN, GREY, ORANGE, RED, to_db, translucent

__all__ = ["steps_figure", "step_window"]

_ROWS = ("input", *(key for key, _, _ in STEPS[:5]), "avg", "max", "encoding")
_HIGHLIGHT = translucent(RED, 0.13)


def step_window(steps: DiffResSteps, j: int, n_shown: int) -> tuple[int, int]:
    """Input frames ``[a, b)`` to draw: ``n_shown`` frames centred on output frame ``j``'s span."""
    n = steps.n_frames
    n_shown = max(1, min(int(n_shown), n))
    centre = 0.5 * (steps.bin_edges[j] + steps.bin_edges[j + 1])
    a = int(np.clip(round(centre - n_shown / 2), 0, n - n_shown))
    return a, a + n_shown


def _bars(x: np.ndarray, y: np.ndarray, hop: float, name: str, color, hover: str, customdata=None) -> go.Bar:
    return go.Bar(
        x=(x + 0.5) * hop,
        y=y,
        width=hop * 0.9,
        marker=dict(color=color),
        name=name,
        customdata=customdata,
        hovertemplate=hover + "<extra></extra>",
    )


def steps_figure(
    steps: DiffResSteps,
    log_mel: np.ndarray,
    hop_seconds: float,
    mel_frequencies: np.ndarray,
    *,
    step: int,
    selected: int,
    n_shown: int = 80,
    db_range: float = 80.0,
    colormap: str = "magma",
    height: int = 1250,
) -> go.Figure:
    """The nine rows of the step view for steps ``1..step`` (1-7, :data:`diffres.explain.STEPS`).

    Rows: the input log-mel; (1) raw scores; (2) sigmoid; (3) normalised importance with the
    scaled and capped shares; (4) the cumulative sum with the integers it crosses; (5) the
    overlap weights of output frame ``selected``; (6) the average and max merges drawn at the
    true times; (7) the resolution encoding.  Output frame ``selected``'s span is shaded in every
    row (one shape per row); input frames outside ``step_window`` are not sent.

    Args:
        steps: DiffRes on the clip (:func:`diffres.explain.diffres_steps`).
        log_mel: ``[T, F]`` the module's input.
        hop_seconds: seconds per input frame.
        mel_frequencies: ``[F]`` band centres in Hz.
        step: how many steps to draw (1-7); later rows stay empty.
        selected: the output frame ``j`` whose span is highlighted and whose weights are drawn.
        n_shown: input frames in view (countable: tens, not thousands).
    """
    hop = float(hop_seconds)
    step = int(np.clip(step, 1, len(STEPS)))
    j = int(np.clip(selected, 0, steps.out_len - 1))
    a, b = step_window(steps, j, n_shown)
    idx = np.arange(a, b)
    edges = steps.bin_edges
    p = int(np.searchsorted(edges, a, side="right")) - 1  # output frames overlapping the window
    q = int(np.searchsorted(edges, b, side="left"))
    p, q = max(p, 0), min(max(q, p + 1), steps.out_len)
    titles = ["Input log-mel"] + [
        f"{k}. {title}" + ("" if k <= step else " (next)") for k, (_, title, _) in enumerate(STEPS[:5], start=1)
    ]
    titles += [f"6. Average merge{'' if step >= 6 else ' (next)'}", f"6. Max merge{'' if step >= 6 else ' (next)'}"]
    titles += [f"7. Resolution encoding{'' if step >= 7 else ' (next)'}"]
    fig = make_subplots(
        rows=len(_ROWS),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.13, 0.09, 0.09, 0.11, 0.13, 0.09, 0.12, 0.12, 0.12],
        subplot_titles=titles,
    )
    db = to_db(log_mel).T
    zmin, zmax = _db_limits(db, db_range)
    fig.add_trace(_heatmap(db[:, a:b], np.arange(a, b + 1) * hop, name="input"), row=1, col=1)
    _apply_mel_axis(fig, mel_frequencies, 1, title="Mel")
    frame_hover = "input frame %{customdata}<br>"
    if step >= 1:
        fig.add_trace(
            _bars(idx, steps.logits[a:b], hop, "raw score g(x)", GREY, frame_hover + "g = %{y:.3f}", idx), row=2, col=1
        )
    if step >= 2:
        fig.add_trace(
            _bars(idx, steps.scores[a:b], hop, "sigmoid", BLUE, frame_hover + "sigmoid = %{y:.3f}", idx), row=3, col=1
        )
        fig.update_yaxes(range=[0, 1.05], row=3, col=1)
    if step >= 3:
        _importance_row(fig, steps, idx, hop)
    if step >= 4:
        _cumulative_row(fig, steps, a, b, j, hop)
    if step >= 5:
        frames, weights = frame_weights(steps, j)
        w = np.zeros(b - a)
        inside = (frames >= a) & (frames < b)
        w[frames[inside] - a] = weights[inside]
        fig.add_trace(
            _bars(idx, w, hop, f"W[i, {j}]", RED, frame_hover + "W[i, " + str(j) + "] = %{y:.3f}", idx), row=6, col=1
        )
        fig.update_yaxes(range=[0, 1.05], row=6, col=1)
    out_edges = edges[p : q + 1] * hop
    custom = merged_customdata(edges[p : q + 1], hop, n_rows=db.shape[0])
    hover = (
        "output frame covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>%{customdata[2]:.2f} input frames<br>"
        "mel band %{y}<br>%{z:.1f} dB<extra>NAME</extra>"
    )
    if step >= 6:
        for row, name, z in ((7, "average", steps.avg), (8, "max", steps.max)):
            trace = _heatmap(
                to_db(z[p:q]).T, out_edges, name=name, customdata=custom, hovertemplate=hover.replace("NAME", name)
            )
            fig.add_trace(trace, row=row, col=1)
    if step >= 7:
        hover = "t = %{x:.3f} s<br>channel %{y}<br>%{z:.3f}<extra>encoding</extra>"
        fig.add_trace(_encoding_heatmap(steps.encoding[p:q].T, out_edges, hover), row=9, col=1)
    for row in (7, 8):
        _apply_mel_axis(fig, mel_frequencies, row, title="Mel")
    fig.update_yaxes(title_text="Channel", row=9, col=1)
    # the selected output frame's span, shaded across every row
    fig.add_vrect(x0=edges[j] * hop, x1=edges[j + 1] * hop, fillcolor=_HIGHLIGHT, line_width=0, layer="above")
    fig.update_xaxes(range=[a * hop, b * hop])
    fig.update_xaxes(title_text="Time (s)", row=len(_ROWS), col=1)
    _base_layout(fig, height, colormap, zmin, zmax)
    fig.update_layout(showlegend=False, bargap=0, meta=dict(TIME_LINK), hovermode="closest")
    fig.update_layout(coloraxis_colorbar=dict(len=0.2, y=0.93))
    fig.update_annotations(font_size=12)
    return fig


def _importance_row(fig: go.Figure, steps: DiffResSteps, idx: np.ndarray, hop: float) -> None:
    a, b = int(idx[0]), int(idx[-1]) + 1
    fig.add_trace(
        _bars(
            idx, steps.importance[a:b], hop, "importance", ORANGE, "input frame %{customdata}<br>share %{y:.3f}", idx
        ),
        row=4,
        col=1,
    )
    for name, values, symbol in (("scaled to sum T'", steps.scaled, "circle-open"), ("capped", steps.capped, "x")):
        fig.add_trace(
            go.Scatter(
                x=(idx + 0.5) * hop,
                y=values[a:b],
                mode="markers",
                marker=dict(symbol=symbol, size=5, color="rgb(60,60,60)"),
                name=name,
                customdata=idx,
                hovertemplate="input frame %{customdata}<br>" + name + " %{y:.3f}<extra></extra>",
            ),
            row=4,
            col=1,
        )
    x0, x1 = a * hop, b * hop
    fig.add_trace(
        go.Scatter(x=[x0, x1], y=[1, 1], mode="lines", line=dict(color=GREY, dash="dot", width=1), hoverinfo="skip"),
        row=4,
        col=1,
    )
    top = max(1.05, float(np.max(steps.scaled[a:b])) * 1.05)
    fig.update_yaxes(range=[0, top], row=4, col=1)


def _cumulative_row(fig: go.Figure, steps: DiffResSteps, a: int, b: int, j: int, hop: float) -> None:
    c = steps.cumulative[a : b + 1]
    t = np.arange(a, b + 1) * hop
    fig.add_trace(
        go.Scatter(
            x=t,
            y=c,
            mode="lines+markers",
            marker=dict(size=3),
            line=dict(color=ORANGE, width=1.5),
            name="cumulative sum",
            customdata=np.arange(a, b + 1),
            hovertemplate="after frame %{customdata}: c = %{y:.3f}<extra></extra>",
        ),
        row=5,
        col=1,
    )
    lo, hi = int(np.floor(c[0])), int(np.ceil(c[-1]))
    integers = np.arange(lo, hi + 1)
    xs: list = []
    ys: list = []
    for k in integers:
        xs += [a * hop, b * hop, None]
        ys += [float(k), float(k), None]
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=GREY, dash="dot", width=0.8), hoverinfo="skip"),
        row=5,
        col=1,
    )
    crossing = steps.bin_edges[(steps.bin_edges >= a) & (steps.bin_edges <= b)]
    x, y = _vlines(crossing * hop, float(c[0]), float(c[-1]))
    fig.add_trace(
        go.Scatter(x=x, y=y, mode="lines", line=dict(color=GREEN, width=1), name="bin edges", hoverinfo="skip"),
        row=5,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[steps.bin_edges[j] * hop, steps.bin_edges[j + 1] * hop],
            y=[j, j + 1],
            mode="markers",
            marker=dict(color=RED, size=9, symbol="diamond"),
            name=f"crossings of {j} and {j + 1}",
            hovertemplate="c crosses %{y:.0f} at t = %{x:.4f} s<extra></extra>",
        ),
        row=5,
        col=1,
    )
    fig.update_yaxes(title_text="c", row=5, col=1)
