"""The figures' look in one place: palette, colour scales, dB conversion.

Colours are ``rgb(...)`` strings, never hex: Streamlit rewrites the hex colours
``#000001``-``#000030`` inside plotly figures (its placeholders for theme colours), and magma or
inferno start at ``#000004``, so a hex colour scale would turn the quietest cells pink.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "COLORMAPS",
    "DB_PER_NEPER",
    "PAPER",
    "BLUE",
    "ORANGE",
    "GREEN",
    "RED",
    "GREY",
    "OVERLAY",
    "PALETTE",
    "LAYOUT_TEMPLATE",
    "translucent",
    "colorscale",
    "to_db",
]

#: Colour maps offered by the app (matplotlib names).
COLORMAPS = ("magma", "inferno", "viridis", "cividis", "plasma", "gray_r")
#: dB per natural-log unit of power: 10 / ln(10).
DB_PER_NEPER = 10.0 / math.log(10.0)

#: Transparent figure background (the app's theme shows through).
PAPER = "rgba(0,0,0,0)"
BLUE = "rgb(31,119,180)"
ORANGE = "rgb(230,120,20)"
GREEN = "rgb(30,160,80)"
RED = "rgb(214,39,40)"
#: Secondary lines and markers (boundaries, the trained-rate marker, uniform references).
GREY = "rgb(128,128,128)"
#: A curve drawn over a spectrogram (on a dark halo): light cyan, which no colour map of
#: :data:`COLORMAPS` uses, so it stays visible over quiet and loud cells alike.
OVERLAY = "rgb(120,230,255)"
#: Qualitative colours for several runs / classes.
PALETTE = (
    "rgb(31,119,180)",
    "rgb(255,127,14)",
    "rgb(44,160,44)",
    "rgb(214,39,40)",
    "rgb(148,103,189)",
    "rgb(140,86,75)",
    "rgb(227,119,194)",
    "rgb(127,127,127)",
    "rgb(188,189,34)",
    "rgb(23,190,207)",
    "rgb(57,59,121)",
    "rgb(173,73,74)",
)


#: The figures' light look as a plotly layout template (fonts, grid, colourway).  The app draws
#: charts with it instead of Streamlit's chart theme, which re-encodes and re-parses every
#: figure in the browser to swap in its colours (about 70 ms per adaptive-resolution redraw).
LAYOUT_TEMPLATE = {
    "layout": {
        "font": {"family": '"Source Sans Pro", "Source Sans", sans-serif', "size": 13, "color": "rgb(49,51,63)"},
        "colorway": list(PALETTE),
        "paper_bgcolor": PAPER,
        "plot_bgcolor": PAPER,
        "hoverlabel": {"font": {"family": '"Source Sans Pro", "Source Sans", sans-serif'}},
        "xaxis": {
            "gridcolor": "rgb(230,234,241)",
            "zerolinecolor": "rgb(210,214,220)",
            "linecolor": "rgb(210,214,220)",
        },
        "yaxis": {
            "gridcolor": "rgb(230,234,241)",
            "zerolinecolor": "rgb(210,214,220)",
            "linecolor": "rgb(210,214,220)",
        },
        "legend": {"bgcolor": PAPER},
    }
}


def translucent(colour: str, alpha: float) -> str:
    """A palette colour ``"rgb(r,g,b)"`` with opacity ``alpha`` in [0, 1], as ``"rgba(...)"``.

    Example:
        >>> translucent(BLUE, 0.5)
        'rgba(31,119,180,0.5)'
    """
    if not (colour.startswith("rgb(") and colour.endswith(")")) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"expected an 'rgb(r,g,b)' colour and an alpha in [0, 1], got {colour!r}, {alpha!r}.")
    return f"rgba({colour[4:-1]},{alpha:g})"


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
