"""Figures the app and scripts draw: plotly figures from arrays (and PNG export via matplotlib).

Never imports Streamlit.  One module per kind of view:

- :mod:`~diffres.figures.spectrogram`: a clip's spectrogram, a grid of hop settings;
- :mod:`~diffres.figures.merged`: the DiffRes views (merged spectrogram on the true time axis,
  the classifier's view, the fixed front-ends at the same budget);
- :mod:`~diffres.figures.steps`: DiffRes step by step (scores to resolution encoding) on one
  time axis, one output frame's span highlighted;
- :mod:`~diffres.figures.window`: linear-frequency spectrograms at several window lengths with
  the time-frequency tile of one analysis frame;
- :mod:`~diffres.figures.png`: the DiffRes view as a static PNG (matplotlib);
- :mod:`~diffres.figures.training`: training curves, runs side by side, the probe clip, the
  importance drawn over a clip's spectrogram;
- :mod:`~diffres.figures.evaluation`: top classes, confusion, per-class accuracy and importance,
  accuracy against the inference rate, thumbnails;
- :mod:`~diffres.figures.display` (pooling to the pixel budget, even display columns for frames
  of any width, axes, hover data) and
  :mod:`~diffres.figures.style` (the palette, colour scales, dB) serve them all.
"""

from __future__ import annotations

from .display import (
    MAX_DISPLAY_COLUMNS,
    TIME_LINK,
    ColumnGrid,
    effective_hop_ms,
    frame_link,
    mel_ticks,
    merged_customdata,
    pool_columns,
    pool_edges,
    time_columns,
    waveform_envelope,
    window_indices,
)
from .evaluation import (
    accuracy_vs_rate_figure,
    confusion_figure,
    mean_importance_figure,
    per_class_figure,
    thumbnail_rgb,
    topk_figure,
)
from .merged import DIFFRES_ROWS, INPUT_ROWS, MERGE_ROWS, compact_figure, diffres_figure, frontend_comparison_figure
from .png import diffres_png, hop_ticks
from .spectrogram import hop_grid_figure, spectrogram_figure
from .steps import step_window, steps_figure
from .style import COLORMAPS, DB_PER_NEPER, PALETTE, colorscale, to_db
from .training import (
    importance_axis_top,
    kept_frames_figure,
    probe_figure,
    runs_comparison_figure,
    training_curves_figure,
)
from .window import tile_corners, window_figure

__all__ = [
    "COLORMAPS",
    "DB_PER_NEPER",
    "MAX_DISPLAY_COLUMNS",
    "PALETTE",
    "TIME_LINK",
    "ColumnGrid",
    "colorscale",
    "compact_figure",
    "DIFFRES_ROWS",
    "INPUT_ROWS",
    "MERGE_ROWS",
    "diffres_figure",
    "diffres_png",
    "hop_ticks",
    "effective_hop_ms",
    "frame_link",
    "frontend_comparison_figure",
    "hop_grid_figure",
    "mel_ticks",
    "merged_customdata",
    "pool_columns",
    "pool_edges",
    "spectrogram_figure",
    "step_window",
    "steps_figure",
    "tile_corners",
    "time_columns",
    "to_db",
    "waveform_envelope",
    "window_figure",
    "window_indices",
    # training and inspection figures (diffres.figures.training, diffres.figures.evaluation)
    "accuracy_vs_rate_figure",
    "confusion_figure",
    "importance_axis_top",
    "kept_frames_figure",
    "mean_importance_figure",
    "per_class_figure",
    "probe_figure",
    "runs_comparison_figure",
    "thumbnail_rgb",
    "topk_figure",
    "training_curves_figure",
]
