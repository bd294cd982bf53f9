"""What a spectrogram resolves: measures of time and frequency resolution on one clip.

The lessons' checks (:mod:`diffres.lessons`) and the app's readouts use them, so "the beeps
separate" or "the two tones show as two lines" is measured on the spectrogram the learner
is looking at, not assumed from the settings.

Input is one clip's natural-log power ``[T, K]`` (``K`` mel bands or linear bins, as
:class:`diffres.MelFrontend` or :func:`diffres.features.linear_spectrogram` give it, batch
axis dropped); times are seconds, levels dB.
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError
from .figures.style import DB_PER_NEPER

__all__ = [
    "frame_level_db",
    "loudest_frame",
    "separated_bursts",
    "tone_dip_db",
    "event_width_ms",
    "RESOLVED_DIP_DB",
]

#: A dip of at least this many dB between two peaks counts as "two, not one" (twice the
#: -3 dB half-power point: clearly visible on a spectrogram).
RESOLVED_DIP_DB = 6.0


def _check(log_power) -> np.ndarray:
    lp = np.asarray(log_power, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] < 1 or lp.shape[1] < 1:
        raise ParameterError(f"log_power must be [time, freq] with at least one cell, got shape {lp.shape}.")
    return lp


def frame_level_db(log_power, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Level of each frame in dB: ``10 log10`` of the mean power over the rows (all, or the
    boolean/index selection ``rows``), ``[T]``."""
    lp = _check(log_power)
    if rows is not None:
        lp = lp[:, rows]
    if lp.shape[1] == 0:
        raise ParameterError("no frequency rows selected.")
    peak = lp.max(axis=1, keepdims=True)  # log-mean-exp, stable
    return (peak[:, 0] + np.log(np.mean(np.exp(lp - peak), axis=1))) * DB_PER_NEPER


def loudest_frame(log_power) -> int:
    """Index of the loudest frame (:func:`frame_level_db`), e.g. a rhythm's strongest hit.

    Example:
        >>> loudest_frame(np.log(np.array([[1.0, 1.0], [4.0, 0.5], [2.0, 2.0]])))
        1
    """
    return int(np.argmax(frame_level_db(log_power)))


def separated_bursts(log_power, hop_seconds: float, span_s: tuple[float, float], *, dip_db: float = 20.0) -> int:
    """How many separate bursts the frames inside ``span_s`` show.

    Frames whose level (:func:`frame_level_db`) is within ``dip_db`` of the loudest frame in
    the span count as "on"; each run of consecutive "on" frames is one burst.  Two beeps whose
    gap never drops ``dip_db`` below the peak blur into one.

    Example:
        >>> on = np.log(np.array([1e-6, 1.0, 1.0, 1e-6, 1.0, 1e-6]))[:, None]
        >>> separated_bursts(on, 0.01, (0.0, 0.06)), separated_bursts(on, 0.01, (0.0, 0.06), dip_db=70)
        (2, 1)
    """
    level = frame_level_db(log_power)
    t = np.arange(level.size) * float(hop_seconds)
    inside = (t >= min(span_s)) & (t <= max(span_s))
    if not inside.any():
        return 0
    on = level[inside] >= level[inside].max() - float(dip_db)
    return int(np.count_nonzero(np.diff(on.astype(np.int8)) == 1) + int(on[0]))


def tone_dip_db(log_power, frequencies_hz, f1_hz: float, f2_hz: float) -> float:
    """How far the spectrum dips between two steady tones, in dB (0 = one merged peak).

    The median spectrum over time (robust to clicks and onsets) is read at the two tone
    frequencies and at its lowest point between them (linear interpolation between bins);
    the dip is the quieter tone's level minus that lowest point.  Two tones are resolved when
    the dip is at least :data:`RESOLVED_DIP_DB`.

    Example:
        >>> f = np.arange(0, 2000, 10.0)
        >>> two = np.log(np.exp(-((f - 1000) / 8) ** 2) + np.exp(-((f - 1060) / 8) ** 2) + 1e-6)
        >>> tone_dip_db(np.tile(two, (5, 1)), f, 1000, 1060) > RESOLVED_DIP_DB
        True
    """
    lp = _check(log_power)
    freqs = np.asarray(frequencies_hz, dtype=np.float64)
    if freqs.shape != (lp.shape[1],):
        raise ParameterError(f"frequencies_hz must have {lp.shape[1]} entries, got shape {freqs.shape}.")
    spectrum = np.median(lp, axis=0) * DB_PER_NEPER
    lo, hi = sorted((float(f1_hz), float(f2_hz)))
    between = np.linspace(lo, hi, 64)
    level = np.interp(between, freqs, spectrum)
    return float(max(0.0, min(level[0], level[-1]) - level.min()))


def event_width_ms(
    log_power,
    frequencies_hz,
    hop_seconds: float,
    span_s: tuple[float, float],
    *,
    f_min_hz: float = 0.0,
    drop_db: float = 6.0,
) -> float:
    """How long one short event looks on the spectrogram, in ms.

    Inside ``span_s`` (which should hold one event), the level of the rows at or above
    ``f_min_hz`` (e.g. above a steady tone, where only a click has energy) is taken per
    frame; the event's width is the number of frames within ``drop_db`` of its peak times
    the hop.  A 2 ms click looks about half a window long.

    Example:
        >>> lp = np.log(np.array([1e-6, 0.1, 1.0, 0.6, 1e-6]))[:, None]
        >>> event_width_ms(lp, np.array([5000.0]), 0.002, (0.0, 0.01))  # two frames within 6 dB
        4.0
    """
    lp = _check(log_power)
    freqs = np.asarray(frequencies_hz, dtype=np.float64)
    rows = freqs >= float(f_min_hz)
    level = frame_level_db(lp, rows=rows)
    t = np.arange(level.size) * float(hop_seconds)
    inside = (t >= min(span_s)) & (t <= max(span_s))
    if not inside.any():
        return float("nan")
    seg = level[inside]
    return float(np.count_nonzero(seg >= seg.max() - float(drop_db)) * float(hop_seconds) * 1000.0)
