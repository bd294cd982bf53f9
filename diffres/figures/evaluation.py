"""Model-inspection figures (plotly): top classes, confusion matrix, per-class accuracy and
mean importance, accuracy against the inference reduction rate, and spectrogram thumbnails.

Nothing here imports Streamlit; colours are ``rgb(...)`` (:mod:`diffres.figures.style`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go

from .display import _finite_or_none, _layout, _reference_line
from .style import BLUE, GREEN, GREY, ORANGE, PALETTE, RED, colorscale, to_db

__all__ = [
    "topk_figure",
    "confusion_figure",
    "per_class_figure",
    "mean_importance_figure",
    "accuracy_vs_rate_figure",
    "thumbnail_rgb",
]


def topk_figure(
    top: Sequence[tuple[str, float]],
    *,
    title: str | None = None,
    height: int | None = None,
    highlight: str | None = None,
) -> go.Figure:
    """Horizontal bars of the top classes and their probabilities (best on top).

    ``highlight``: a class name drawn in green (e.g. the true class)."""
    names = [str(n) for n, _ in top][::-1]
    probs = [float(p) * 100.0 for _, p in top][::-1]
    colours = [GREEN if n == highlight else BLUE for n in names]
    fig = go.Figure(
        go.Bar(
            x=probs,
            y=names,
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1f}%" for p in probs],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, 100], title_text="Probability (%)")
    fig.update_yaxes(automargin=True)  # room for the longest class name (else "alarm_clock" shows as "larm_clock")
    return _layout(fig, height or (90 + 34 * len(names)), title=title, legend=False)


# --------------------------------------------------------------------------- evaluation


def confusion_figure(
    confusion: np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = True,
    height: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Confusion matrix heatmap: rows = true class, columns = predicted class.

    ``normalize``: colour by the share of each true class (row); hover and cell text give
    both the count and the share."""
    cm = np.asarray(confusion, dtype=np.float64)
    n = len(classes)
    if cm.shape != (n, n):
        raise ValueError(f"confusion must be [{n}, {n}] for {n} classes, got {cm.shape}.")
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    z = share * 100.0 if normalize else cm
    text = [[f"{int(cm[i, j])}" if cm[i, j] else "" for j in range(n)] for i in range(n)]
    custom = np.stack([cm, share * 100.0], axis=-1)
    labels = [str(c) for c in classes]
    fig = go.Figure(
        go.Heatmap(
            z=z.astype(np.float32),
            x=labels,
            y=labels,
            colorscale=colorscale("viridis"),
            zmin=0,
            zmax=100 if normalize else max(1.0, float(cm.max())),
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            hovertemplate="true %{y}<br>predicted %{x}<br>"
            "%{customdata[0]:.0f} clips (%{customdata[1]:.0f}% of %{y})<extra></extra>",
            colorbar=dict(title=dict(text="% of row" if normalize else "clips"), thickness=12),
        )
    )
    # the margins grow to hold the class names (a fixed margin cut them in a narrow window)
    fig.update_yaxes(autorange="reversed", title_text="True class", automargin=True)
    fig.update_xaxes(title_text="Predicted class", tickangle=-35, automargin=True)
    return _layout(fig, height or max(360, 120 + 36 * n), title=title, legend=False)


def per_class_figure(
    per_class: Mapping[str, float],
    *,
    counts: Mapping[str, int] | None = None,
    height: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Accuracy per class (%) as bars; NaN (no clips) is left empty."""
    names = [str(c) for c in per_class]
    vals = _finite_or_none([float(v) * 100.0 for v in per_class.values()])
    hover = [
        f"{n}: "
        + ("no clips" if v is None else f"{v:.1f}%")
        + (f" of {counts[n]} clips" if counts and n in counts else "")
        for n, v in zip(names, vals, strict=True)
    ]
    colours = [GREY if v is None else (GREEN if v >= 90 else BLUE if v >= 60 else RED) for v in vals]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[0 if v is None else v for v in vals],
            marker_color=colours,
            text=["-" if v is None else f"{v:.0f}%" for v in vals],
            textposition="auto",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_yaxes(range=[0, 105], title_text="Accuracy (%)")
    fig.update_xaxes(tickangle=-35, automargin=True)  # room for the class names
    return _layout(fig, height or 340, title=title, legend=False)


def mean_importance_figure(
    mean_importance: Mapping[str, np.ndarray],
    hop_seconds: float,
    *,
    out_share: float | None = None,
    height: int = 360,
    title: str | None = None,
) -> go.Figure:
    """Mean importance curve of each class's clips against time (seconds).

    ``out_share``: draw the uniform share ``T' / T`` as a dotted reference line."""
    fig = go.Figure()
    duration = 0.0
    for i, (name, curve) in enumerate(mean_importance.items()):
        c = np.asarray(curve, dtype=np.float32).reshape(-1)
        t = ((np.arange(c.size) + 0.5) * float(hop_seconds)).astype(np.float32)
        duration = max(duration, c.size * float(hop_seconds))
        fig.add_trace(
            go.Scatter(
                x=t,
                y=c,
                mode="lines",
                name=str(name),
                line=dict(color=PALETTE[i % len(PALETTE)], width=1.6),
                hovertemplate="t = %{x:.3f} s<br>mean importance %{y:.3f}<extra>" + str(name) + "</extra>",
            )
        )
    if out_share is not None and duration > 0:
        fig.add_trace(_reference_line(0.0, duration, out_share, f"uniform share {out_share:.2f}"))
    fig.update_xaxes(title_text="Time (s)")
    fig.update_yaxes(title_text="Mean importance", rangemode="tozero")
    _layout(fig, height, title=title)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02))
    return fig


def accuracy_vs_rate_figure(
    curve: Sequence[tuple[float, float]],
    *,
    trained_rate: float | None = None,
    baselines: Mapping[str, tuple[float, float]] | None = None,
    label: str = "this model",
    height: int = 380,
    title: str | None = None,
) -> go.Figure:
    """Accuracy (%) against the reduction rate used at inference.

    Args:
        curve: ``[(rate, accuracy), ...]`` for one trained model (accuracy in [0, 1]).
        trained_rate: the rate the model was trained at (marked with a star and a line).
        baselines: name -> ``(rate, accuracy)`` of fixed front-ends trained at that rate
            (markers).
    """
    rates = [float(r) for r, _ in curve]
    accs = [float(a) * 100.0 for _, a in curve]
    fig = go.Figure(
        go.Scatter(
            x=rates,
            y=_finite_or_none(accs),
            mode="lines+markers",
            name=label,
            line=dict(color=BLUE, width=2),
            hovertemplate="rate %{x:.2f}<br>accuracy %{y:.1f}%<extra>" + label + "</extra>",
        )
    )
    if trained_rate is not None:
        fig.add_vline(x=float(trained_rate), line=dict(color=GREY, dash="dot", width=1))
        if rates:
            k = int(np.argmin(np.abs(np.asarray(rates) - float(trained_rate))))
            if abs(rates[k] - float(trained_rate)) < 1e-6:
                fig.add_trace(
                    go.Scatter(
                        x=[rates[k]],
                        y=[accs[k]],
                        mode="markers",
                        name=f"trained rate {float(trained_rate):g}",
                        marker=dict(symbol="star", size=16, color=ORANGE),
                        hovertemplate="trained rate %{x:.2f}<br>%{y:.1f}%<extra></extra>",
                    )
                )
    symbols = ("diamond", "square", "triangle-up", "circle-open", "x")
    for i, (name, (r, a)) in enumerate((baselines or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=[float(r)],
                y=[float(a) * 100.0],
                mode="markers",
                name=str(name),
                marker=dict(symbol=symbols[i % len(symbols)], size=12, color=PALETTE[(i + 2) % len(PALETTE)]),
                hovertemplate=str(name) + "<br>rate %{x:.2f}<br>accuracy %{y:.1f}%<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="Reduction rate at inference (fraction of frames removed)", range=[-0.02, 1.0])
    fig.update_yaxes(title_text="Accuracy (%)", range=[0, 101])
    return _layout(fig, height, title=title)


# --------------------------------------------------------------------------- thumbnails


def thumbnail_rgb(
    log_mel: np.ndarray, *, db_range: float = 70.0, colormap: str = "magma", width: int = 96, height: int = 48
) -> np.ndarray:
    """A small coloured spectrogram image ``uint8 [height, width, 3]`` (low frequencies at the
    bottom), for galleries of samples: max-pooled over time, nearest over frequency; colours
    span from ``max(top - db_range, median)`` to the loudest cell."""
    import matplotlib

    db = to_db(np.asarray(log_mel, dtype=np.float32)).T  # [F, T]
    n_f, n_t = db.shape
    if n_t == 0 or n_f == 0:
        return np.zeros((height, width, 3), np.uint8)
    cols = np.linspace(0, n_t, width + 1).astype(int)
    cols[1:] = np.maximum(cols[1:], cols[:-1] + 1)
    cols = np.minimum(cols, n_t)
    pooled = np.stack(
        [db[:, a : max(b, a + 1)].max(axis=1) if a < n_t else db[:, -1] for a, b in pairwise(cols)], axis=1
    )
    rows = np.minimum((np.arange(height) * n_f / height).astype(int), n_f - 1)
    img = pooled[rows][::-1]
    finite = img[np.isfinite(img)]
    top = float(finite.max()) if finite.size else 0.0
    # floor at the median cell too, so a noisy clip's background stays dark and events stand out
    floor = max(top - float(db_range), float(np.median(finite)) if finite.size else top - float(db_range))
    span = max(1e-6, top - floor)
    norm = np.clip((img - floor) / span, 0.0, 1.0)
    rgba = matplotlib.colormaps[colormap](np.nan_to_num(norm))
    return (rgba[..., :3] * 255).astype(np.uint8)
