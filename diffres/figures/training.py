"""Training figures (plotly), from plain arrays and records: the curves of a run, runs side
by side, and the probe clip ("watch DiffRes learn").

Nothing here imports Streamlit.  Time axes are in seconds (input frame ``i`` covers
``[i * hop, (i + 1) * hop)``; DiffRes output bins are drawn at ``bin_edges * hop``), spectrograms
come as ``[T, F]`` natural-log mel power and are shown in dB, and colours are ``rgb(...)``
(:mod:`diffres.figures.style`).  Model-inspection figures are in
:mod:`diffres.figures.evaluation`.

- :func:`training_curves_figure`: loss, accuracy, guide loss and activeness per epoch
  (train and validation), with the per-step training loss underneath.
- :func:`probe_figure`: one clip's spectrogram, importance curve and merged spectrogram on
  one time axis (the live view of training).
- :func:`kept_frames_figure`: the same clip with the importance curve drawn over its
  spectrogram, and the merged spectrogram under it (Inspect: "which frames did the model keep").
- :func:`importance_axis_top`: the top of an importance axis that fits several curves (two
  models compared on one scale).
- :func:`runs_comparison_figure`: validation accuracy (or loss) per epoch of several runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .display import (
    MAX_DISPLAY_COLUMNS,
    _finite_or_none,
    _get,
    _heatmap,
    _importance_trace,
    _layout,
    _reference_line,
    mel_ticks,
    merged_customdata,
    pool_columns,
    pool_edges,
)
from .style import BLUE, GREY, ORANGE, OVERLAY, PALETTE, colorscale, to_db, translucent

__all__ = [
    "STEP_LEGEND",
    "importance_axis_top",
    "kept_frames_figure",
    "probe_figure",
    "runs_comparison_figure",
    "training_curves_figure",
]

#: Legend entry of the per-step lines of :func:`training_curves_figure`.
STEP_LEGEND = "per step (one batch)"
#: Most points a per-step curve sends to the browser; longer runs are shown as block means.
MAX_STEP_POINTS = 600


def block_means(values: np.ndarray, max_points: int = MAX_STEP_POINTS) -> np.ndarray:
    """``values`` ``[n]`` as at most ``max_points`` means of consecutive blocks of equal size
    (the last block may be shorter; non-finite values are left out of a block's mean, a
    block with none is NaN).  Shorter inputs come back unchanged, as float64.

    Example: ``block_means(np.arange(10.0), 4)`` is ``[1.0, 4.0, 7.0, 9.0]`` (blocks of 3).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size <= max_points:
        return v
    size = -(-v.size // max_points)
    pad = (-v.size) % size
    blocks = np.concatenate([v, np.full(pad, np.nan)]).reshape(-1, size)
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=1)
    sums = np.where(finite, blocks, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(counts.shape, np.nan), where=counts > 0)


def training_curves_figure(
    history: Sequence,
    *,
    steps: Sequence | None = None,
    steps_per_epoch: int | None = None,
    total_epochs: int | None = None,
    selected_epoch: int | None = None,
    height: int = 420,
    prior_losses: Sequence[float] = (),
    prior_steps: int = 0,
) -> go.Figure:
    """Loss, accuracy, guide loss and activeness of one run, per epoch.

    Every kind of line and marker is named in the legend (under the plots): the epoch means
    over the training steps (blue; loss, accuracy, guide loss, activeness), the validation
    split's value at each epoch end (orange), the values of single training batches (pale,
    per step), and the epoch whose probe clip is shown (dotted).

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
        selected_epoch: draws a dotted vertical line at this epoch (the scrubbed one).
        height: pixels, legend included.
        prior_losses, prior_steps: the energy-prior fit's losses so far (mean squared
            error of the score network's logits) out of ``prior_steps``: drawn on the loss
            panel before epoch 0 (at ``(k - prior_steps) / steps_per_epoch``), so the curves
            move from the run's first seconds.

    Returns:
        A 2 x 2 figure: loss, accuracy (in %), guide loss, activeness.
    """
    fig = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes=True,
        vertical_spacing=0.14,
        horizontal_spacing=0.08,
        subplot_titles=("Loss (cross-entropy + guide)", "Accuracy (%)", "Guide loss", "Activeness"),
    )
    epochs = [int(_get(h, "epoch")) for h in history]
    if steps and steps_per_epoch:
        spe = float(steps_per_epoch)
        xs = block_means(np.array([int(_get(s, "global_step")) for s in steps], dtype=np.float64) / spe)
        thinned = len(steps) > MAX_STEP_POINTS
        for k, ((row, col), field, scale, what) in enumerate(
            (
                ((1, 1), "loss", 1.0, "train loss"),
                ((1, 2), "accuracy", 100.0, "train accuracy"),
                ((2, 1), "guide_loss", 1.0, "guide loss"),
                ((2, 2), "activeness", 1.0, "activeness"),
            )
        ):
            step_ys = block_means(np.array([float(_get(s, field)) for s in steps], dtype=np.float64) * scale)
            fig.add_trace(
                go.Scatter(  # float32 arrays travel as binary (plotly's typed arrays); NaN is a gap
                    x=xs.astype(np.float32),
                    y=step_ys.astype(np.float32),
                    mode="lines+markers" if len(xs) <= 60 else "lines",
                    name=STEP_LEGEND,
                    legendgroup="steps",
                    showlegend=k == 0,
                    marker=dict(size=4, color=translucent(BLUE, 0.5)),
                    line=dict(color=translucent(BLUE, 0.35), width=1),
                    hovertemplate="epoch %{x:.2f}<br>%{y:.3f}<extra>"
                    + what
                    + (" (mean of a few batches)" if thinned else " (one batch)")
                    + "</extra>",
                ),
                row=row,
                col=col,
            )
    if prior_steps and steps_per_epoch:
        spe = float(steps_per_epoch)
        fig.add_trace(
            go.Scatter(
                x=[(k - prior_steps) / spe for k in range(len(prior_losses))],
                y=_finite_or_none(float(v) for v in prior_losses),
                mode="lines+markers" if len(prior_losses) <= 60 else "lines",
                name="energy-prior fit (MSE, before step 1)",
                marker=dict(size=4, color=GREY),
                line=dict(color=GREY, width=1),
                hovertemplate="prior step %{customdata}<br>%{y:.3f}<extra>energy-prior fit</extra>",
                customdata=list(range(1, len(prior_losses) + 1)),
            ),
            row=1,
            col=1,
        )
    train, val = "train (epoch mean)", "validation (epoch end)"
    series = (
        ((1, 1), "train_loss", 1.0, train, BLUE, True),
        ((1, 1), "val_loss", 1.0, val, ORANGE, True),
        ((1, 2), "train_accuracy", 100.0, train, BLUE, False),
        ((1, 2), "val_accuracy", 100.0, val, ORANGE, False),
        # guide loss and activeness are means over the epoch's training steps too
        ((2, 1), "guide_loss", 1.0, train, BLUE, False),
        ((2, 2), "activeness", 1.0, train, BLUE, False),
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
                marker=dict(size=6, color=colour),
                hovertemplate="epoch %{x}<br>%{y:.3f}<extra>" + f"{field.replace('_', ' ')}, {name}" + "</extra>",
            ),
            row=row,
            col=col,
        )
    if total_epochs:
        start = -prior_steps / float(steps_per_epoch) if prior_steps and steps_per_epoch else 0.0
        fig.update_xaxes(range=[start, max(1, int(total_epochs)) + 0.1])
    if selected_epoch is not None:
        line = dict(color=GREY, dash="dot", width=1.5)
        for row in (1, 2):
            for col in (1, 2):
                fig.add_vline(x=selected_epoch, line=line, row=row, col=col)
        # shapes have no legend entry: a trace without points names the line
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="lines", line=line, name=f"probe clip shown: epoch {selected_epoch}"),
            row=1,
            col=1,
        )
    fig.update_yaxes(range=[0, 101], row=1, col=2)
    fig.update_xaxes(title_text="Epoch", row=2, col=1)
    fig.update_xaxes(title_text="Epoch", row=2, col=2)
    _layout(fig, height)
    # the legend goes under the epoch axes (above, it would cover the subplot titles), with room
    # for two rows of entries in a narrow window
    bottom = 115
    fig.update_layout(
        margin=dict(b=bottom),
        legend=dict(
            orientation="h",
            yanchor="top",
            y=-58 / max(100, height - bottom - 45),
            xanchor="left",
            x=0.0,
            font=dict(size=12),
        ),
    )
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


def importance_axis_top(*curves: tuple[np.ndarray, np.ndarray]) -> float:
    """Top of an importance axis (from 0) that shows every ``(importance [T], bin_edges [T' + 1])``
    curve and its uniform share ``T' / T``: 1.2 x the highest point or 1.5 x the highest
    uniform share, at least 0.05 and at most 1.05.  It zooms on the curves (an untrained
    model's importance hugs the uniform share, which 0 to 1 would flatten); give two models'
    curves to draw them on one scale.

    Example:
        >>> flat = (np.full(8, 0.25), np.arange(3) * 4.0)  # 8 frames into 2: uniform share 0.25
        >>> peaked = (np.array([0.1, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), np.arange(3) * 4.0)
        >>> round(importance_axis_top(flat), 3), round(importance_axis_top(flat, peaked), 3)
        (0.375, 1.05)
    """
    top = 0.05
    for importance, bin_edges in curves:
        imp = np.asarray(importance, dtype=np.float64).reshape(-1)
        finite = imp[np.isfinite(imp)]
        uniform = (np.asarray(bin_edges).size - 1) / max(1, imp.size)
        top = max(top, 1.2 * float(finite.max()) if finite.size else 1.2, 1.5 * uniform)
    return min(1.05, top)


def _importance_overlay(fig: go.Figure, x: np.ndarray, y: np.ndarray, uniform: float, duration: float) -> None:
    """The importance curve over row 1's spectrogram, on its secondary y axis: a light line on
    a dark halo (visible on every colour map), and the uniform share dotted."""
    for colour, width, name, legend in (
        ("rgba(0,0,0,0.55)", 4.0, "importance", False),
        (OVERLAY, 1.8, "importance (right axis)", True),
    ):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                legendgroup="importance",
                showlegend=legend,
                line=dict(color=colour, width=width),
                hovertemplate="t = %{x:.3f} s<br>importance %{y:.3f}<extra></extra>" if legend else None,
                hoverinfo=None if legend else "skip",
            ),
            row=1,
            col=1,
            secondary_y=True,
        )
    fig.add_trace(
        go.Scatter(
            x=[0.0, duration],
            y=[uniform, uniform],
            mode="lines",
            name=f"uniform share {uniform:.2f}",
            line=dict(color=OVERLAY, dash="dot", width=1.2),
            hoverinfo="skip",
        ),
        row=1,
        col=1,
        secondary_y=True,
    )


def kept_frames_figure(
    log_mel: np.ndarray,
    hop_seconds: float,
    *,
    importance: np.ndarray,
    bin_edges: np.ndarray,
    merged: np.ndarray,
    mel_frequencies: np.ndarray | None = None,
    importance_top: float | None = None,
    db_range: float = 80.0,
    colormap: str = "magma",
    title: str | None = None,
    max_columns: int = MAX_DISPLAY_COLUMNS,
    height: int = 480,
) -> go.Figure:
    """Which frames a model kept for its decision: the input log-mel with the importance curve
    drawn over it (on a secondary y axis at the right), and the merged spectrogram under it,
    on one time axis in seconds.  Peaks of the curve sit on the sounds they belong to.

    Args:
        log_mel: ``[T, F]`` natural-log mel power (the front-end's input).
        hop_seconds: seconds per input frame.
        importance: ``[T]`` normalised importance (sums to ``T'``); for a fixed front-end,
            whatever it reports (uniform shares).
        bin_edges: ``[T' + 1]`` input-frame positions of the output bins.
        merged: ``[T', F]`` merged natural-log mel power.
        mel_frequencies: ``[F]`` band centres in Hz (tick labels); None labels bands by index.
        importance_top: top of the importance axis (give two figures the same one to compare
            them, :func:`importance_axis_top`); default this curve's own.
        db_range: dB below the loudest cell that the colour scale spans.
        colormap: a name from :data:`~diffres.figures.style.COLORMAPS`.
        title: figure title.
        max_columns: pixel budget of the time axis (longer clips are pooled for display).
        height: pixels.

    Returns:
        Two rows: ``Input log-mel`` with the importance on ``yaxis2`` (the right axis, from 0
        to ``importance_top``) and the merged spectrogram; one ``dB`` colour scale.
    """
    hop = float(hop_seconds)
    db, mdb, edges, imp = _clip_views(log_mel, merged, bin_edges, importance)
    n_frames = db.shape[1]
    out_len = mdb.shape[1]
    finite = db[np.isfinite(db)]
    top = float(finite.max()) if finite.size else 0.0
    duration = n_frames * hop
    uniform = out_len / max(1, n_frames)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        row_heights=[0.55, 0.45],
        specs=[[{"secondary_y": True}], [{}]],
        subplot_titles=(
            f"Input log-mel ({n_frames} frames at {hop * 1000:g} ms) and the importance of each frame",
            f"Merged: {out_len} frames, drawn at the times they cover",
        ),
    )
    pooled, bounds = pool_columns(db, max_columns, "max")
    fig.add_trace(_heatmap(pooled, bounds * hop, name="input"), row=1, col=1, secondary_y=False)
    ip, ib = pool_columns(imp, max_columns, "mean")
    centres = ((ib[:-1] + ib[1:]) / 2.0 * hop).astype(np.float32)
    _importance_overlay(fig, centres, ip.astype(np.float32), uniform, duration)
    fig.add_trace(_merged_heatmap(mdb, edges, hop, max_columns), row=2, col=1)
    freq_title = "Hz" if mel_frequencies is not None else "mel band"
    if mel_frequencies is not None:
        vals, text = mel_ticks(np.asarray(mel_frequencies))
        for row in (1, 2):
            fig.update_yaxes(tickvals=vals, ticktext=text, row=row, col=1, secondary_y=False)
    for row in (1, 2):
        fig.update_yaxes(title_text=freq_title, row=row, col=1, secondary_y=False)
    axis_top = float(importance_top) if importance_top is not None else importance_axis_top((imp, edges))
    fig.update_yaxes(
        title_text="importance (share)",
        range=[0, axis_top],
        tickmode="auto",  # its own ticks, not the mel axis' positions
        nticks=6,
        showgrid=False,
        zeroline=False,
        row=1,
        col=1,
        secondary_y=True,
    )
    fig.update_xaxes(range=[0.0, duration])
    fig.update_xaxes(title_text="Time (s)", row=2, col=1)
    _layout(fig, height, title=title)
    bottom = 95
    plot_height = max(100, height - bottom - (70 if title else 45))
    fig.update_layout(
        margin=dict(r=70, b=bottom),
        legend=dict(orientation="h", yanchor="top", y=-58 / plot_height, xanchor="left", x=0.0),
        coloraxis=dict(
            colorscale=colorscale(colormap),
            cmin=top - float(db_range),
            cmax=top,
            # left of the importance axis' labels, which sit on the right of the top row
            colorbar=dict(title=dict(text="dB"), thickness=10, len=0.45, y=0.22, x=1.02),
        ),
    )
    fig.update_annotations(font_size=12)
    return fig


def _merged_heatmap(mdb: np.ndarray, edges: np.ndarray, hop: float, max_columns: int) -> go.Heatmap:
    """The merged spectrogram ``[F, T']`` (dB) on the true time axis, pooled to ``max_columns``
    for display, with each column's span and frames merged on hover."""
    mp, mb = pool_columns(mdb, max_columns, "max")
    m_edges = pool_edges(edges, mb)
    hover = (
        "covers %{customdata[0]:.3f}-%{customdata[1]:.3f} s<br>%{customdata[2]:.1f} frames merged"
        "<br>mel band %{y}<br>%{z:.1f} dB<extra>merged</extra>"
    )
    custom = merged_customdata(m_edges, hop, n_rows=mdb.shape[0])
    return _heatmap(mp, m_edges * hop, name="merged", customdata=custom, hovertemplate=hover)


def _clip_views(
    log_mel: np.ndarray, merged: np.ndarray, bin_edges: np.ndarray, importance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A clip's input dB ``[F, T]``, merged dB ``[F, T']``, bin edges ``[T' + 1]`` and
    importance ``[T]``, checked against each other (ValueError naming the mismatch)."""
    db = to_db(np.asarray(log_mel, dtype=np.float32)).T
    mdb = to_db(np.asarray(merged, dtype=np.float32)).T
    edges = np.asarray(bin_edges, dtype=np.float64).reshape(-1)
    if edges.size != mdb.shape[1] + 1:
        raise ValueError(f"bin_edges must have T' + 1 = {mdb.shape[1] + 1} entries, got {edges.size}.")
    imp = np.asarray(importance, dtype=np.float32).reshape(-1)
    if imp.size != db.shape[1]:
        raise ValueError(f"importance must have T = {db.shape[1]} entries, got {imp.size}.")
    return db, mdb, edges, imp


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
    db, mdb, edges, imp = _clip_views(log_mel, merged, bin_edges, importance)
    n_frames = db.shape[1]
    out_len = mdb.shape[1]
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
    fig.add_trace(_heatmap(pooled, bounds * hop, name="input"), row=1, col=1)
    ip, ib = pool_columns(imp, max_columns, "mean")
    centres = ((ib[:-1] + ib[1:]) / 2.0 * hop).astype(np.float32)
    fig.add_trace(_importance_trace(centres, ip.astype(np.float32), width=1.4), row=2, col=1)
    uniform = out_len / max(1, n_frames)
    fig.add_trace(_reference_line(0.0, duration, uniform, f"uniform share {uniform:.2f}"), row=2, col=1)
    fig.add_trace(_merged_heatmap(mdb, edges, hop, max_columns), row=3, col=1)
    if mel_frequencies is not None:
        vals, text = mel_ticks(np.asarray(mel_frequencies))
        for row in (1, 3):
            fig.update_yaxes(tickvals=vals, ticktext=text, row=row, col=1)
    fig.update_yaxes(title_text="Hz" if mel_frequencies is not None else "mel band", row=1, col=1)
    fig.update_yaxes(title_text="Hz" if mel_frequencies is not None else "mel band", row=3, col=1)
    # zoom on the curve (an untrained model's importance hugs the uniform share; 0-1 would hide it)
    fig.update_yaxes(title_text="share", range=[0, importance_axis_top((imp, edges))], row=2, col=1)
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
