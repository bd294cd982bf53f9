"""Figures the app and scripts draw: plotly figures from arrays (and PNG export via matplotlib).

Never imports Streamlit.  ``spectrogram`` holds the spectrogram and DiffRes views;
training figures live in ``training`` (added separately).
"""

from __future__ import annotations

from .spectrogram import (
    COLORMAPS,
    DB_PER_NEPER,
    MAX_DISPLAY_COLUMNS,
    colorscale,
    compact_figure,
    diffres_figure,
    diffres_png,
    effective_hop_ms,
    frontend_comparison_figure,
    hop_grid_figure,
    mel_ticks,
    merged_customdata,
    pool_columns,
    pool_edges,
    spectrogram_figure,
    to_db,
    waveform_envelope,
    window_indices,
)
from .training import (
    accuracy_vs_rate_figure,
    confusion_figure,
    mean_importance_figure,
    per_class_figure,
    probe_figure,
    runs_comparison_figure,
    thumbnail_rgb,
    topk_figure,
    training_curves_figure,
)

__all__ = [
    "COLORMAPS",
    "DB_PER_NEPER",
    "MAX_DISPLAY_COLUMNS",
    "colorscale",
    "compact_figure",
    "diffres_figure",
    "diffres_png",
    "effective_hop_ms",
    "frontend_comparison_figure",
    "hop_grid_figure",
    "mel_ticks",
    "merged_customdata",
    "pool_columns",
    "pool_edges",
    "spectrogram_figure",
    "to_db",
    "waveform_envelope",
    "window_indices",
    # training and inspection figures (diffres.figures.training)
    "accuracy_vs_rate_figure",
    "confusion_figure",
    "mean_importance_figure",
    "per_class_figure",
    "probe_figure",
    "runs_comparison_figure",
    "thumbnail_rgb",
    "topk_figure",
    "training_curves_figure",
]
