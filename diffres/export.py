"""Files people download: importance and bin edges as CSV, the merged spectrogram as NPZ.

Shapes: ``importance`` ``[T]``, ``bin_edges`` ``[T' + 1]`` (input-frame positions),
spectrograms ``[T', F]`` or ``[T, F]``; one example, no batch axis.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["importance_csv", "bin_edges_csv", "merged_npz", "output_frame_of_input"]


def output_frame_of_input(bin_edges: np.ndarray, n_frames: int) -> np.ndarray:
    """``[T]`` index of the output frame that holds each input frame's centre."""
    edges = np.asarray(bin_edges, dtype=np.float64)
    centres = np.arange(n_frames) + 0.5
    return np.clip(np.searchsorted(edges, centres, side="right") - 1, 0, len(edges) - 2)


def importance_csv(importance: np.ndarray, bin_edges: np.ndarray, hop_seconds: float) -> str:
    """One row per input frame: frame, start_s, end_s, importance, output_frame.

    Example:
        >>> print(importance_csv(np.array([1.0, 0.5, 0.5]), np.array([0.0, 1.0, 3.0]), 0.01), end="")
        frame,start_s,end_s,importance,output_frame
        0,0.000000,0.010000,1.000000,0
        1,0.010000,0.020000,0.500000,1
        2,0.020000,0.030000,0.500000,1
    """
    imp = np.asarray(importance, dtype=np.float64)
    bins = output_frame_of_input(bin_edges, len(imp))
    lines = ["frame,start_s,end_s,importance,output_frame"]
    lines += [f"{i},{i * hop_seconds:.6f},{(i + 1) * hop_seconds:.6f},{imp[i]:.6f},{bins[i]}" for i in range(len(imp))]
    return "\n".join(lines) + "\n"


def bin_edges_csv(bin_edges: np.ndarray, hop_seconds: float) -> str:
    """One row per output frame: the input span it covers (frames, seconds), frames merged, effective hop (ms)."""
    e = np.asarray(bin_edges, dtype=np.float64)
    lines = ["output_frame,start_frame,end_frame,start_s,end_s,frames_merged,effective_hop_ms"]
    lines += [
        f"{j},{e[j]:.6f},{e[j + 1]:.6f},{e[j] * hop_seconds:.6f},{e[j + 1] * hop_seconds:.6f},"
        f"{e[j + 1] - e[j]:.6f},{(e[j + 1] - e[j]) * hop_seconds * 1000:.4f}"
        for j in range(len(e) - 1)
    ]
    return "\n".join(lines) + "\n"


def merged_npz(**arrays: Any) -> bytes:
    """A compressed NumPy archive of the given arrays and scalars (e.g. ``merged_avg``,
    ``bin_edges``, ``hop_seconds``)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()
