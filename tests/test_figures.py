"""Figures: right traces and shapes, time-true merged columns, display pooling, safe colours."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

import diffres
from diffres import figures
from diffres.examples import make_preset

HOP_S = 0.01
N_MELS = 32


def decode(a):
    """plotly 6 sends numpy arrays as typed arrays ``{"dtype", "bdata", "shape"}``."""
    if isinstance(a, dict) and "bdata" in a:
        arr = np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
        return arr.reshape([int(s) for s in a["shape"].split(",")]) if "shape" in a else arr
    return np.asarray(a)


def trace(fig_json: dict, name: str) -> dict:
    hits = [t for t in fig_json["data"] if t.get("name") == name]
    assert hits, f"no trace named {name!r}; have {[t.get('name') for t in fig_json['data']]}"
    return hits[0]


@pytest.fixture(scope="module")
def run():
    """An untrained (seeded) DiffRes on the tone-bursts preset: log-mel, importance, edges, merged."""
    samples = make_preset("tone_bursts", 16000, 2.0)
    mel = diffres.MelFrontend(16000, N_MELS, HOP_S * 1000, 25.0)
    torch.manual_seed(0)
    model = diffres.DiffRes(N_MELS, 0.6).eval()
    with torch.no_grad():
        lm = mel(torch.from_numpy(samples))
        out = model(lm)
    return {
        "samples": samples,
        "log_mel": lm[0].numpy(),
        "mel_frequencies": mel.mel_frequencies().numpy(),
        "importance": out.importance[0].numpy(),
        "bin_edges": out.bin_edges[0].numpy(),
        "merged": out.avg[0].numpy(),
        "encoding": out.resolution_encoding[0].numpy(),
    }


def diffres_fig(run, **kw):
    return figures.diffres_figure(samples=run["samples"], sample_rate=16000, log_mel=run["log_mel"], hop_seconds=HOP_S,
                                  mel_frequencies=run["mel_frequencies"], importance=run["importance"],
                                  bin_edges=run["bin_edges"], merged=run["merged"], **kw)


def grid_x(tr: dict, n_columns: int) -> np.ndarray:
    """Column centres of a heatmap drawn on an even grid (``x0``/``dx``, no ``x`` array)."""
    assert "x" not in tr, "an even grid has no x array (plotly.js then draws one image, not cell by cell)"
    return tr["x0"] + tr["dx"] * np.arange(n_columns)


def covering_frame(edges_s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index of the frame whose span [edges_s[j], edges_s[j + 1]) holds each time ``t`` (brute force)."""
    inside = (edges_s[None, :-1] <= t[:, None]) & (t[:, None] < edges_s[None, 1:])
    assert np.all(inside.sum(axis=1) == 1)
    return inside.argmax(axis=1)


def test_merged_heatmap_shows_the_frame_covering_each_time_on_an_even_grid(run):
    fj = json.loads(diffres_fig(run).to_json())
    merged = trace(fj, "merged")
    z = decode(merged["z"])
    n_frames, out_len = run["log_mel"].shape[0], run["merged"].shape[0]
    assert z.shape[0] == N_MELS and out_len < z.shape[1] <= figures.MAX_DISPLAY_COLUMNS
    t = grid_x(merged, z.shape[1])
    np.testing.assert_allclose(np.diff(t), merged["dx"], rtol=1e-9)  # evenly spaced: one image
    np.testing.assert_allclose([t[0] - merged["dx"] / 2, t[-1] + merged["dx"] / 2], [0.0, n_frames * HOP_S],
                               atol=1e-9)
    edges_s = run["bin_edges"].astype(np.float64) * HOP_S
    j = covering_frame(edges_s, t)
    np.testing.assert_allclose(z, figures.to_db(run["merged"][j]).T, rtol=1e-6)
    assert set(j) == set(range(out_len))  # every output frame is visible
    # the merge boundaries stay at the true edges, between the frames: one unbroken path whose
    # vertical strokes cross the whole band range and whose joins lie outside the row's fixed range
    b = trace(fj, "merge boundaries")
    bx, by = decode(b["x"]).reshape(-1, 2), decode(b["y"]).reshape(-1, 2)
    np.testing.assert_allclose(bx[:, 0], edges_s[1:-1], atol=1e-6)
    assert np.all(bx[:, 0] == bx[:, 1])
    lo, hi = fj["layout"][b.get("yaxis", "y").replace("y", "yaxis", 1)]["range"]
    assert (lo, hi) == (-0.5, N_MELS - 0.5)
    assert np.all(by.min(axis=1) < lo) and np.all(by.max(axis=1) > hi)
    # the original row spans the same seconds, one column per input frame
    orig = trace(fj, "original")
    ox = decode(orig["x"])
    assert decode(orig["z"]).shape == (N_MELS, n_frames)
    np.testing.assert_allclose(ox[[0, -1]], [0.0, n_frames * HOP_S], atol=1e-6)


def test_figure_rows_share_one_time_axis(run):
    fig = diffres_fig(run)
    names = [t.name for t in fig.data]
    for expected in ("waveform", "original", "importance", "merged", "effective hop"):
        assert expected in names
    fj = json.loads(fig.to_json())
    layout = fj["layout"]
    assert layout["xaxis"].get("matches") == "x5"
    assert all(layout[f"xaxis{k}"].get("matches") == "x5" for k in range(2, 5))
    assert layout["xaxis5"]["title"]["text"] == "Time (s)"
    assert layout["yaxis5"]["type"] == "log"


def test_hover_gives_each_frames_span_on_the_effective_hop_row(run):
    fj = json.loads(diffres_fig(run).to_json())
    merged = trace(fj, "merged")
    assert "customdata" not in merged  # no per-cell data: it was most of the figure's bytes
    assert "dB" in merged["hovertemplate"] and "effective hop" in merged["hovertemplate"]
    e = run["bin_edges"].astype(np.float64)
    hop = trace(fj, "effective hop")
    assert "input frames merged" in hop["hovertemplate"]
    np.testing.assert_allclose(decode(hop["customdata"])[:, :2], np.stack([e[:-1], e[1:]], 1) * HOP_S, atol=1e-5)
    np.testing.assert_allclose(decode(hop["y"]), np.diff(e) * HOP_S * 1000, rtol=1e-5)
    np.testing.assert_allclose(decode(hop["customdata"])[:, 2], np.diff(e), atol=1e-4)


def test_merged_customdata_helper():
    cd = figures.merged_customdata(np.array([0.0, 2.5, 3.0, 10.0]), 0.01)
    np.testing.assert_allclose(cd, [[0, 0.025, 2.5], [0.025, 0.03, 0.5], [0.03, 0.1, 7.0]], atol=1e-6)
    assert figures.merged_customdata(np.array([0.0, 1.0]), 0.01, n_rows=4).shape == (4, 1, 3)


@pytest.mark.parametrize("n", [1, 1999, 2000, 2001, 4001, 10001])
def test_pool_columns_keeps_budget_and_max(n):
    rng = np.random.default_rng(n)
    z = rng.normal(size=(8, n)).astype(np.float32)
    z[3, n // 2] = 50.0  # a one-frame event must survive the display pooling
    pooled, bounds = figures.pool_columns(z, 2000, "max")
    assert pooled.shape[1] <= 2000 and pooled.shape[1] == len(bounds) - 1
    assert bounds[0] == 0 and bounds[-1] == n and np.all(np.diff(bounds) > 0)
    np.testing.assert_allclose(pooled.max(axis=1), z.max(axis=1))
    for j in (0, len(bounds) - 2):
        np.testing.assert_allclose(pooled[:, j], z[:, bounds[j]:bounds[j + 1]].max(axis=1))
    mean, mb = figures.pool_columns(z[0], 2000, "mean")
    np.testing.assert_allclose(mean[-1], z[0, mb[-2]:mb[-1]].mean(), rtol=1e-5)
    assert pooled.dtype == np.float32


def overlapping(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``[M, T']`` whether frame j's span [edges[j], edges[j + 1]) overlaps column [lo, hi) (brute force)."""
    return (edges[None, :-1] < hi[:, None]) & (edges[None, 1:] > lo[:, None])


def test_time_columns_keep_evenly_spaced_frames_as_their_own_columns():
    edges = np.linspace(0, 1001, 251).astype(np.float32).astype(np.float64)  # a baseline's float32 edges
    g = figures.time_columns(edges, 0, 1001, 1200)
    assert g.n_columns == 250 and g.step == pytest.approx(1001 / 250)
    np.testing.assert_array_equal(g.first, np.arange(250))
    np.testing.assert_array_equal(g.last, np.arange(1, 251))
    z = np.random.default_rng(0).normal(size=(4, 250)).astype(np.float32)
    np.testing.assert_array_equal(g.pool(z), z)
    pooled = figures.time_columns(edges, 0, 1001, 100)  # 3 frames a column, the last one reaching past
    assert pooled.n_columns == 84 and pooled.step == pytest.approx(3 * 1001 / 250)
    np.testing.assert_array_equal(pooled.last - pooled.first, [3] * 83 + [1])
    np.testing.assert_allclose(pooled.pool(z)[:, 5], z[:, 15:18].max(axis=1))
    np.testing.assert_allclose(pooled.pool(z, "mean")[:, -1], z[:, -1])


def test_time_columns_show_uneven_frames_at_their_true_times():
    rng = np.random.default_rng(3)
    n = 400
    widths = rng.uniform(0.3, 3.0, 240)  # some frames narrower than an input frame
    edges = np.concatenate([[0.0], np.cumsum(widths) * n / widths.sum()])
    z = rng.normal(size=(3, edges.size - 1)).astype(np.float32)
    # unpooled: each column shows the frame covering its centre; a narrow view splits each input frame
    for start, end, split in ((0, n, 2), (100, 110, 100)):
        g = figures.time_columns(edges, start, end, 2000)
        assert g.step == pytest.approx(1 / split) and g.origin == start and g.n_columns == (end - start) * split
        centres = g.origin + (np.arange(g.n_columns) + 0.5) * g.step
        np.testing.assert_array_equal(g.first, covering_frame(edges, centres))
        np.testing.assert_array_equal(g.pool(z), z[:, g.first])
        # where the shown frame changes, a true edge lies within half a column
        change = np.flatnonzero(np.diff(g.first)) + 1
        cut = g.origin + change * g.step
        assert np.all(np.min(np.abs(cut[:, None] - edges[None, :]), axis=1) <= g.step / 2 + 1e-9)
    # pooled: a column shows the loudest of every frame overlapping it, even one narrower than a frame
    edges2 = np.concatenate([[0.0, 1000.0, 1000.2], np.linspace(1000.2, 4000, 50)[1:]])
    z2 = np.zeros((2, edges2.size - 1), np.float32)
    z2[1, 1] = 9.0  # the 0.2-frame-wide frame
    g = figures.time_columns(edges2, 0, 4000, 100)
    assert g.n_columns == 100 and g.step == 40
    lo = g.origin + np.arange(g.n_columns) * g.step
    ov = overlapping(edges2, lo, lo + g.step)
    np.testing.assert_array_equal(g.first, ov.argmax(axis=1))
    np.testing.assert_array_equal(g.last, ov.shape[1] - ov[:, ::-1].argmax(axis=1))
    np.testing.assert_allclose(g.pool(z2), np.where(ov[None], z2[:, None, :], -np.inf).max(axis=2))
    assert g.pool(z2)[1, 25] == 9.0  # the column [1000, 1040) keeps the narrow loud frame
    # its hover span is the union of the frames it shows (frame 0 only touches it and is not one of them)
    assert g.spans(edges2, 0.01)[25].tolist() == pytest.approx([10.0, edges2[3] * 0.01, edges2[3] - 1000], abs=1e-4)


def test_compact_and_comparison_heatmaps_are_even_grids(run):
    """Every heatmap a rate change redraws has evenly spaced columns (plotly.js's one-image path)."""
    rng = np.random.default_rng(1)
    out_len, F = 5000, 8
    merged = rng.normal(-10, 1, (out_len, F)).astype(np.float32)
    fj = json.loads(figures.compact_figure(merged, merged, np.linspace(50, 7000, F)).to_json())
    f27 = merged[27:36]  # the frames of column 3
    for name, column_3 in (("merged", figures.to_db(f27).max(axis=0)), ("encoding", f27.mean(axis=0))):
        tr = trace(fj, name)
        z = decode(tr["z"])
        assert z.shape[1] <= 600 and tr["x0"] == tr["dx"] / 2 and tr["dx"] == 9  # 9 frames a column
        np.testing.assert_allclose(z[:, 3], column_3, rtol=1e-5)  # the loudest dB, the mean code
    assert fj["layout"]["xaxis"]["range"] == [0, out_len] and fj["layout"]["xaxis2"]["range"] == [0, out_len]
    n = run["log_mel"].shape[0]
    rows = [{"title": "DiffRes: x", "merged": run["merged"], "bin_edges": run["bin_edges"]},
            {"title": "Average pooling: x", "merged": run["merged"],
             "bin_edges": np.linspace(0, n, run["merged"].shape[0] + 1)}]
    fj = json.loads(figures.frontend_comparison_figure(rows, HOP_S, run["mel_frequencies"]).to_json())
    for r in rows:
        tr = trace(fj, r["title"].split(":")[0])
        z = decode(tr["z"])
        t = grid_x(tr, z.shape[1])
        j = covering_frame(np.asarray(r["bin_edges"], np.float64) * HOP_S, t)
        np.testing.assert_allclose(z, figures.to_db(r["merged"][j]).T, rtol=1e-6)
    assert decode(trace(fj, "Average pooling")["z"]).shape[1] == run["merged"].shape[0]  # its own columns
    assert fj["layout"]["xaxis"]["range"] == [0.0, pytest.approx(n * HOP_S)]


def test_wide_figures_are_pooled_for_display_only():
    """A 10 s clip at a 1 ms hop (10 001 frames) sends <= 2000 columns per heatmap, max preserved."""
    T, Tp, F = 10001, 5000, 16
    rng = np.random.default_rng(0)
    log_mel = rng.normal(-10, 1, size=(T, F)).astype(np.float32)
    log_mel[4321, 5] = 5.0
    importance = np.full(T, Tp / T, np.float32)
    edges = np.linspace(0, T, Tp + 1)
    merged = rng.normal(-10, 1, size=(Tp, F)).astype(np.float32)
    merged[1234, 7] = 4.0
    fig = figures.diffres_figure(samples=rng.uniform(-1, 1, 160000).astype(np.float32), sample_rate=16000,
                                 log_mel=log_mel, hop_seconds=0.001, mel_frequencies=np.linspace(50, 7000, F),
                                 importance=importance, bin_edges=edges, merged=merged)
    fj = json.loads(fig.to_json())
    for name, source in (("original", log_mel), ("merged", merged)):
        t = trace(fj, name)
        z = decode(t["z"])
        width = decode(t["x"]).shape[0] - 1 if "x" in t else z.shape[1]
        assert z.shape[1] <= figures.MAX_DISPLAY_COLUMNS and width == z.shape[1]
        np.testing.assert_allclose(z.max(), source.max() * figures.DB_PER_NEPER, rtol=1e-5)
        assert z.dtype == np.float32
    mt = trace(fj, "merged")
    mx = grid_x(mt, decode(mt["z"]).shape[1])
    assert mx[0] - mt["dx"] / 2 == pytest.approx(0.0, abs=1e-9)
    assert T * 0.001 <= mx[-1] + mt["dx"] / 2 < T * 0.001 + mt["dx"]  # the last pooled column may reach past
    assert decode(trace(fj, "importance")["y"]).shape[0] <= figures.MAX_DISPLAY_COLUMNS
    assert "merge boundaries" not in [t.get("name") for t in fj["data"]]  # too many to draw


def all_figures(run) -> list:
    panels = [{"title": "a", "log_mel": run["log_mel"], "hop_seconds": HOP_S, "mel_frequencies": run["mel_frequencies"]}]
    rows = [{"title": "DiffRes", "merged": run["merged"], "bin_edges": run["bin_edges"]}]
    figs = [diffres_fig(run, event_times=[0.2, 0.74])]
    for cmap in figures.COLORMAPS:
        figs += [
            figures.spectrogram_figure(run["log_mel"], HOP_S, run["mel_frequencies"], samples=run["samples"],
                                       sample_rate=16000, colormap=cmap, event_times=[0.2]),
            figures.hop_grid_figure(panels * 2, colormap=cmap),
            figures.compact_figure(run["merged"], run["encoding"], run["mel_frequencies"], colormap=cmap),
            figures.frontend_comparison_figure(rows, HOP_S, run["mel_frequencies"], colormap=cmap),
        ]
    return figs


def test_no_colour_streamlit_rewrites(run):
    """Streamlit replaces #000001-#000030 in plotly JSON with theme colours (APP-NOTES d1)."""
    for fig in all_figures(run):
        fj = json.loads(fig.to_json())
        fj["layout"].pop("template", None)  # the active default template is not ours (Streamlit registers one)
        assert "#0000" not in json.dumps(fj).lower()
    scale = figures.colorscale("magma")
    assert all(c.startswith("rgb(") for _, c in scale)


def test_every_axis_has_units(run):
    for fig in all_figures(run)[:5]:
        layout = json.loads(fig.to_json())["layout"]
        for name, axis in layout.items():
            if name.startswith(("xaxis", "yaxis")) and axis.get("showticklabels", True) is not False:
                title = (axis.get("title") or {}).get("text", "")
                if name.startswith("xaxis") and axis.get("matches") and not title:
                    continue  # linked time axes: the bottom one carries the title
                assert title, f"{name} has no title"


def test_mel_ticks_in_hz_and_spaced():
    f = diffres.MelFrontend(16000, 64).mel_frequencies().numpy()
    vals, text = figures.mel_ticks(f)
    assert all(t.endswith("Hz") for t in text)
    assert np.all(np.diff(vals) >= 0.09 * 63 - 1e-9)


def test_png_export_is_png(run):
    png = figures.diffres_png(samples=run["samples"], sample_rate=16000, log_mel=run["log_mel"], hop_seconds=HOP_S,
                              mel_frequencies=run["mel_frequencies"], importance=run["importance"],
                              bin_edges=run["bin_edges"], merged=run["merged"], title="test", dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_figures_do_not_import_streamlit():
    import subprocess
    import sys

    code = "import sys, diffres.figures; sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=str(__import__('pathlib').Path(__file__).parents[1])).returncode == 0


def test_time_range_shows_full_resolution_inside_the_window():
    T, Tp, F = 10001, 5000, 8
    rng = np.random.default_rng(1)
    log_mel = rng.normal(-10, 1, size=(T, F)).astype(np.float32)
    edges = np.sort(np.concatenate([[0.0, float(T)], rng.uniform(0, T, Tp - 1)]))
    merged = rng.normal(-10, 1, size=(Tp, F)).astype(np.float32)
    fig = figures.diffres_figure(samples=np.zeros(160000, np.float32), sample_rate=16000, log_mel=log_mel,
                                 hop_seconds=0.001, mel_frequencies=np.linspace(50, 7000, F),
                                 importance=np.full(T, Tp / T, np.float32), bin_edges=edges, merged=merged,
                                 time_range=(4.0, 5.0))
    fj = json.loads(fig.to_json())
    ox = decode(trace(fj, "original")["x"])
    assert len(ox) - 1 == 1000  # frames 4000..4999 cover [4, 5) s, one column each
    np.testing.assert_allclose(np.diff(ox), 0.001, atol=1e-6)
    np.testing.assert_allclose(decode(trace(fj, "original")["z"]), figures.to_db(log_mel[4000:5000]).T, rtol=1e-6)
    mt = trace(fj, "merged")
    mz = decode(mt["z"])
    mx = grid_x(mt, mz.shape[1])
    assert mz.shape[1] == 1000  # frames 4000..4999, one column each (the budget allows no finer split)
    np.testing.assert_allclose(mx[[0, -1]], [4.0005, 4.9995], atol=1e-9)
    j = covering_frame(edges * 0.001, mx)
    np.testing.assert_allclose(mz, figures.to_db(merged[j]).T, rtol=1e-6)
    assert fj["layout"]["xaxis5"]["range"] == [4.0, 5.0]
    hop = decode(trace(fj, "effective hop")["customdata"])  # the spans of the frames in view
    np.testing.assert_allclose(hop[0, :2], [edges[j[0]] * 0.001, edges[j[0] + 1] * 0.001], atol=1e-5)


def test_window_indices():
    e = np.array([0.0, 1.0, 2.0, 3.0])
    assert figures.window_indices(e, None) == (0, 3)
    assert figures.window_indices(e, (1.5, 2.5)) == (1, 3)
    assert figures.window_indices(e, (1.0, 2.0)) == (1, 2)
    assert figures.window_indices(e, (5.0, 6.0)) == (2, 3)  # never empty
