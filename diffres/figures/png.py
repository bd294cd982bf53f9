"""Static PNG export of the DiffRes view (matplotlib ``Figure`` with the Agg canvas, no
pyplot state, so concurrent app sessions cannot race).  Conventions as in
:mod:`diffres.figures.spectrogram`.
"""

from __future__ import annotations

import io

import numpy as np

from .display import _db_limits, effective_hop_ms, mel_ticks, pool_columns, pool_edges, waveform_envelope
from .style import to_db

__all__ = ["diffres_png", "hop_ticks"]


def hop_ticks(low_ms: float, high_ms: float) -> list[float]:
    """Tick values for a log axis of milliseconds from ``low_ms`` to ``high_ms``: the 1-2-5
    values inside the range, and both ends when fewer than two fall inside.

    Example:
        >>> hop_ticks(10.0, 40.0)
        [10.0, 20.0]
        >>> hop_ticks(11.0, 13.0)
        [11.0, 13.0]
    """
    nice = [m * 10.0**k for k in range(-2, 6) for m in (1.0, 2.0, 5.0)]
    inside = [v for v in nice if low_ms * (1 - 1e-9) <= v <= high_ms * (1 + 1e-9)]
    if len(inside) < 2:
        inside = sorted({round(low_ms, 3), *inside, round(high_ms, 3)})
    return inside


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

    axes[4].set_yticks(hop_ticks(float(widths.min()), float(widths.max())))  # a log axis inside one decade has none
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
