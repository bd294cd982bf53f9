"""Training and model-inspection figures (plotly), from plain arrays and records.

Nothing here imports Streamlit.  Time axes are in seconds (input frame ``i`` covers
``[i * hop, (i + 1) * hop)``; DiffRes output bins are drawn at ``bin_edges * hop``), spectrograms
come as ``[T, F]`` natural-log mel power and are shown in dB, and colour scales are ``rgb(...)``
lists (Streamlit rewrites hex colours ``#000001``-``#000030`` inside plotly figures).

Figures:

- :func:`training_curves_figure`: loss, accuracy, guide loss and activeness per epoch
  (train and validation), with the per-step training loss underneath.
- :func:`probe_figure`: one clip's spectrogram, importance curve and merged spectrogram on
  one time axis (the live "watch DiffRes learn" view, and the per-prediction overlay).
- :func:`runs_comparison_figure`: validation accuracy (or loss) per epoch of several runs.
- :func:`confusion_figure`, :func:`per_class_figure`, :func:`mean_importance_figure`,
  :func:`accuracy_vs_rate_figure`, :func:`topk_figure`.
- :func:`thumbnail_rgb`: a tiny coloured spectrogram image (``uint8 [H, W, 3]``) for sample
  galleries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .display import MAX_DISPLAY_COLUMNS, mel_ticks, merged_customdata, pool_columns, pool_edges
from .style import BLUE, GREEN, GREY, ORANGE, PALETTE, PAPER, RED, colorscale, to_db

__all__ = [
    "training_curves_figure",
    "probe_figure",
    "runs_comparison_figure",
    "confusion_figure",
    "per_class_figure",
    "mean_importance_figure",
    "accuracy_vs_rate_figure",
    "topk_figure",
    "thumbnail_rgb",
]


def _get(rec, name: str, default=float("nan")):
    if isinstance(rec, Mapping):
        return rec.get(name, default)
    return getattr(rec, name, default)


def _finite_or_none(values) -> list:
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


def training_curves_figure(
    history: Sequence,
    *,
    steps: Sequence | None = None,
    steps_per_epoch: int | None = None,
    total_epochs: int | None = None,
    selected_epoch: int | None = None,
    height: int = 460,
) -> go.Figure:
    """Loss, accuracy, guide loss and activeness of one run, per epoch.

    Args:
        history: :class:`~diffres.training.EpochRecord` s (or dicts with the same fields):
            ``epoch`` (1-based), ``train_loss``, ``val_loss``, ``train_accuracy``,
            ``val_accuracy``, ``guide_loss``, ``activeness``.
        steps: optional per-step records (``global_step``, ``loss``, ``accuracy``,
            ``guide_loss``, ``activeness``): drawn as thin lines on the fractional-epoch
            axis ``global_step / steps_per_epoch`` so the curves move before the first
            epoch ends.
        steps_per_epoch: needed with ``steps``.
        total_epochs: fixes the x range to ``[0, total_epochs]`` so the plot does not rescale.
        selected_epoch: draws a vertical marker at this epoch (the scrubbed one).

    Returns:
        A 2 x 2 figure: loss, accuracy (in %), guide loss, activeness.
    """
    fig = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes=True,
        vertical_spacing=0.16,
        horizontal_spacing=0.09,
        subplot_titles=("Loss (cross-entropy + guide)", "Accuracy (%)", "Guide loss", "Activeness"),
    )
    epochs = [int(_get(h, "epoch")) for h in history]
    if steps and steps_per_epoch:
        spe = float(steps_per_epoch)
        xs = [int(_get(s, "global_step")) / spe for s in steps]
        for (row, col), field, scale, name in (
            ((1, 1), "loss", 1.0, "train loss (per step)"),
            ((1, 2), "accuracy", 100.0, "train accuracy (per step)"),
            ((2, 1), "guide_loss", 1.0, "guide loss (per step)"),
            ((2, 2), "activeness", 1.0, "activeness (per step)"),
        ):
            ys = [float(_get(s, field)) * scale for s in steps]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=_finite_or_none(ys),
                    mode="lines+markers" if len(xs) <= 60 else "lines",
                    name=name,
                    showlegend=False,
                    marker=dict(size=4, color="rgba(31,119,180,0.5)"),
                    line=dict(color="rgba(31,119,180,0.35)", width=1),
                    hovertemplate="epoch %{x:.2f}<br>%{y:.3f}<extra>" + name + "</extra>",
                ),
                row=row,
                col=col,
            )
    series = (
        ((1, 1), "train_loss", 1.0, "train", BLUE, True),
        ((1, 1), "val_loss", 1.0, "validation", ORANGE, True),
        ((1, 2), "train_accuracy", 100.0, "train", BLUE, False),
        ((1, 2), "val_accuracy", 100.0, "validation", ORANGE, False),
        ((2, 1), "guide_loss", 1.0, "guide loss", GREEN, False),
        ((2, 2), "activeness", 1.0, "activeness", GREEN, False),
    )
    for (row, col), field, scale, name, colour, legend in series:
        ys = [float(_get(h, field)) * scale for h in history]
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=_finite_or_none(ys),
                mode="lines+markers",
                name=name,
                legendgroup=name,
                showlegend=legend,
                line=dict(color=colour, width=2),
                marker=dict(size=6),
                hovertemplate="epoch %{x}<br>%{y:.3f}<extra>" + name + "</extra>",
            ),
            row=row,
            col=col,
        )
    if total_epochs:
        fig.update_xaxes(range=[0, max(1, int(total_epochs)) + 0.1])
    if selected_epoch is not None:
        for row in (1, 2):
            for col in (1, 2):
                fig.add_vline(x=selected_epoch, line=dict(color=GREY, dash="dot", width=1), row=row, col=col)
    fig.update_yaxes(range=[0, 101], row=1, col=2)
    fig.update_xaxes(title_text="Epoch", row=2, col=1)
    fig.update_xaxes(title_text="Epoch", row=2, col=2)
    _layout(fig, height)
    fig.update_annotations(font_size=12)
    return fig


def runs_comparison_figure(
    runs: Mapping[str, Sequence], *, metric: str = "val_accuracy", height: int = 340
) -> go.Figure:
    """One line per run: ``metric`` (an EpochRecord field) against the epoch.

    Args:
        runs: run label -> its epoch records (EpochRecord or dicts).
        metric: ``val_accuracy`` (drawn in %), ``train_accuracy`` (%), ``val_loss``,
            ``train_loss``, ``guide_loss`` or ``activeness``.
    """
    pct = metric.endswith("accuracy")
    fig = go.Figure()
    for i, (label, history) in enumerate(runs.items()):
        xs = [int(_get(h, "epoch")) for h in history]
        ys = [float(_get(h, metric)) * (100.0 if pct else 1.0) for h in history]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=_finite_or_none(ys),
                mode="lines+markers",
                name=str(label),
                line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                hovertemplate="epoch %{x}<br>%{y:.3f}<extra>" + str(label) + "</extra>",
            )
        )
    names = {
        "val_accuracy": "Validation accuracy (%)",
        "train_accuracy": "Training accuracy (%)",
        "val_loss": "Validation loss",
        "train_loss": "Training loss",
        "guide_loss": "Guide loss",
        "activeness": "Activeness",
    }
    fig.update_xaxes(title_text="Epoch")
    fig.update_yaxes(title_text=names.get(metric, metric))
    if pct:
        fig.update_yaxes(range=[0, 101])
    _layout(fig, height)
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02))
    return fig


# --------------------------------------------------------------------------- one clip


def probe_figure(
    log_mel: np.ndarray,
    hop_seconds: float,
    *,
    importance: np.ndarray,
    bin_edges: np.ndarray,
    merged: np.ndarray,
    mel_frequencies: np.ndarray | None = None,
    db_range: float = 80.0,
    colormap: str = "magma",
    db_top: float | None = None,
    title: str | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    height: int = 520,
) -> go.Figure:
    """Original spectrogram, importance per input frame and the merged spectrogram, on one
    shared time axis in seconds ("which frames did the model keep").

    Args:
        log_mel: ``[T, F]`` natural-log mel power (the front-end's input).
        hop_seconds: seconds per input frame.
        importance: ``[T]`` normalised importance in [0, 1] (sums to ``T'``); for a fixed
            front-end, whatever it reports (e.g. uniform shares).
        bin_edges: ``[T' + 1]`` input-frame positions of the output bins.
        merged: ``[T', F]`` merged natural-log mel power.
        mel_frequencies: ``[F]`` band centres in Hz (tick labels); None labels bands by index.
        db_top: fixes the top of the colour scale (so frames of an animation share one scale);
            default the loudest cell.
    """
    hop = float(hop_seconds)
    db = to_db(np.asarray(log_mel, dtype=np.float32)).T  # [F, T]
    n_mels, n_frames = db.shape
    mdb = to_db(np.asarray(merged, dtype=np.float32)).T  # [F, T']
    edges = np.asarray(bin_edges, dtype=np.float64).reshape(-1)
    out_len = mdb.shape[1]
    if edges.size != out_len + 1:
        raise ValueError(f"bin_edges must have T' + 1 = {out_len + 1} entries, got {edges.size}.")
    imp = np.asarray(importance, dtype=np.float32).reshape(-1)
    if imp.size != n_frames:
        raise ValueError(f"importance must have T = {n_frames} entries, got {imp.size}.")
    finite = db[np.isfinite(db)]
    top = float(db_top) if db_top is not None else (float(finite.max()) if finite.size else 0.0)
    duration = n_frames * hop
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.38, 0.24, 0.38],
        subplot_titles=(
            f"Input log-mel: {n_frames} frames at {hop * 1000:g} ms",
            f"Importance per input frame (dotted: uniform share {out_len / max(1, n_frames):.2f})",
            f"Merged: {out_len} frames, drawn at the times they cover",
        ),
    )
    pooled, bounds = pool_columns(db, max_columns, "max")
    y = np.arange(n_mels, dtype=np.float32)
    fig.add_trace(
        go.Heatmap(
            z=pooled.astype(np.float32),
            x=(bounds * hop).astype(np.float32),
            y=y,
            coloraxis="coloraxis",
            name="input",
            hovertemplate="t = %{x:.3f} s<br>mel band %{y}<br>%{z:.1f} dB<extra>input</extra>",
        ),
        row=1,
        col=1,
    )
    ip, ib = pool_columns(imp, max_columns, "mean")
    centres = ((ib[:-1] + ib[1:]) / 2.0 * hop).astype(np.float32)
    fig.add_trace(
        go.Scatter(
            x=centres,
            y=ip.astype(np.float32),
            mode="lines",
            fill="tozeroy",
            name="importance",
            line=dict(color=ORANGE, width=1.4),
            hovertemplate="t = %{x:.3f} s<br>importance %{y:.3f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    uniform = out_len / max(1, n_frames)
    fig.add_trace(
        go.Scatter(
            x=[0.0, duration],
            y=[uniform, uniform],
            mode="lines",
            name=f"uniform share {uniform:.2f}",
            line=dict(color=GREY, dash="dot", width=1),
            hoverinfo="skip",
        ),
        row=2,
        col=1,
    )
    mp, mb = pool_columns(mdb, max_columns, "max")
    m_edges = pool_edges(edges, mb)
    fig.add_trace(
        go.Heatmap(
            z=mp.astype(np.float32),
            x=(m_edges * hop).astype(np.float32),
            y=y,
            coloraxis="coloraxis",
            name="merged",
            customdata=merged_customdata(m_edges, hop, n_rows=n_mels),
            hovertemplate="covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>%{customdata[2]:.1f} frames merged"
            "<br>mel band %{y}<br>%{z:.1f} dB<extra>merged</extra>",
        ),
        row=3,
        col=1,
    )
    if mel_frequencies is not None:
        vals, text = mel_ticks(np.asarray(mel_frequencies))
        for row in (1, 3):
            fig.update_yaxes(tickvals=vals, ticktext=text, row=row, col=1)
    fig.update_yaxes(title_text="Hz" if mel_frequencies is not None else "mel band", row=1, col=1)
    fig.update_yaxes(title_text="Hz" if mel_frequencies is not None else "mel band", row=3, col=1)
    # zoom on the curve (an untrained model's importance hugs the uniform share; 0-1 would hide it)
    top_share = float(np.nanmax(imp)) if imp.size and np.isfinite(imp).any() else 1.0
    fig.update_yaxes(title_text="share", range=[0, min(1.05, max(1.2 * top_share, 1.5 * uniform, 0.05))], row=2, col=1)
    fig.update_xaxes(range=[0.0, duration])
    fig.update_xaxes(title_text="Time (s)", row=3, col=1)
    _layout(fig, height, title=title, legend=False)
    fig.update_layout(
        coloraxis=dict(
            colorscale=colorscale(colormap),
            cmin=top - float(db_range),
            cmax=top,
            colorbar=dict(title=dict(text="dB"), thickness=10, len=0.5, y=0.5),
        )
    )
    fig.update_annotations(font_size=12)
    return fig


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
    fig.update_yaxes(autorange="reversed", title_text="True class")
    fig.update_xaxes(title_text="Predicted class", tickangle=-35)
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
    fig.update_xaxes(tickangle=-35)
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
        fig.add_trace(
            go.Scatter(
                x=[0.0, duration],
                y=[out_share, out_share],
                mode="lines",
                name=f"uniform share {out_share:.2f}",
                line=dict(color=GREY, dash="dot", width=1),
                hoverinfo="skip",
            )
        )
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
