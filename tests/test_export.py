"""Downloads: CSV and NPZ contents."""

from __future__ import annotations

import io

import numpy as np

from diffres import export


def test_importance_csv_rows_and_output_frames():
    importance = np.array([0.5, 0.5, 1.0, 0.25, 0.25, 0.25, 0.25])
    edges = np.array([0.0, 2.0, 3.0, 7.0])  # 3 output frames
    text = export.importance_csv(importance, edges, 0.01)
    rows = [r.split(",") for r in text.strip().splitlines()]
    assert rows[0] == ["frame", "start_s", "end_s", "importance", "output_frame"]
    assert [int(r[4]) for r in rows[1:]] == [0, 0, 1, 2, 2, 2, 2]
    assert float(rows[3][1]) == 0.02 and float(rows[3][3]) == 1.0


def test_bin_edges_csv_spans_and_effective_hop():
    text = export.bin_edges_csv(np.array([0.0, 2.0, 3.0, 7.0]), 0.01)
    rows = [r.split(",") for r in text.strip().splitlines()][1:]
    assert [float(r[5]) for r in rows] == [2.0, 1.0, 4.0]
    assert [float(r[6]) for r in rows] == [20.0, 10.0, 40.0]


def test_merged_npz_round_trip():
    blob = export.merged_npz(merged_avg=np.ones((3, 4), np.float32), hop_seconds=0.01)
    data = np.load(io.BytesIO(blob))
    assert data["merged_avg"].shape == (3, 4) and float(data["hop_seconds"]) == 0.01
