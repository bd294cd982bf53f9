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


def test_merged_heatmap_x_edges_are_bin_edges_times_hop(run):
    fj = json.loads(diffres_fig(run).to_json())
    merged = trace(fj, "merged")
    x = decode(merged["x"])
    z = decode(merged["z"])
    out_len = run["merged"].shape[0]
    assert z.shape == (N_MELS, out_len)
    assert x.shape == (out_len + 1,)
    np.testing.assert_allclose(x, run["bin_edges"] * HOP_S, rtol=1e-6, atol=1e-6)
    assert x[0] == 0 and np.all(np.diff(x) >= 0)
    # the original row spans the same seconds, one column per input frame
    orig = trace(fj, "original")
    ox = decode(orig["x"])
    assert decode(orig["z"]).shape == (N_MELS, run["log_mel"].shape[0])
    np.testing.assert_allclose(ox[[0, -1]], [0.0, run["log_mel"].shape[0] * HOP_S], atol=1e-6)
    np.testing.assert_allclose(x[-1], ox[-1], atol=1e-6)


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


def test_hover_customdata_says_span_and_frames_merged(run):
    fj = json.loads(diffres_fig(run).to_json())
    merged = trace(fj, "merged")
    cd = decode(merged["customdata"])
    e = run["bin_edges"]
    assert cd.shape == (N_MELS, len(e) - 1, 3)
    np.testing.assert_allclose(cd[0, :, 0], e[:-1] * HOP_S, atol=1e-5)
    np.testing.assert_allclose(cd[0, :, 1], e[1:] * HOP_S, atol=1e-5)
    np.testing.assert_allclose(cd[0, :, 2], np.diff(e), atol=1e-4)
    np.testing.assert_array_equal(cd[0], cd[-1])
    assert "customdata[2]" in merged["hovertemplate"] and "merged" in merged["hovertemplate"]
    hop = trace(fj, "effective hop")
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
        z, x = decode(t["z"]), decode(t["x"])
        assert z.shape[1] <= figures.MAX_DISPLAY_COLUMNS and x.shape[0] == z.shape[1] + 1
        np.testing.assert_allclose(z.max(), source.max() * figures.DB_PER_NEPER, rtol=1e-5)
        assert z.dtype == np.float32
    mx = decode(trace(fj, "merged")["x"])
    np.testing.assert_allclose(mx[[0, -1]], [0.0, T * 0.001], atol=1e-6)
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
    mx = decode(trace(fj, "merged")["x"])
    p, q = figures.window_indices(edges * 0.001, (4.0, 5.0))
    np.testing.assert_allclose(mx, edges[p:q + 1] * 0.001, atol=1e-6)
    assert mx[0] <= 4.0 <= mx[1] and mx[-2] <= 5.0 <= mx[-1]
    assert fj["layout"]["xaxis5"]["range"] == [4.0, 5.0]
    cd = decode(trace(fj, "merged")["customdata"])
    np.testing.assert_allclose(cd[0, :, 2], np.diff(edges[p:q + 1]), atol=1e-3)


def test_window_indices():
    e = np.array([0.0, 1.0, 2.0, 3.0])
    assert figures.window_indices(e, None) == (0, 3)
    assert figures.window_indices(e, (1.5, 2.5)) == (1, 3)
    assert figures.window_indices(e, (1.0, 2.0)) == (1, 2)
    assert figures.window_indices(e, (5.0, 6.0)) == (2, 3)  # never empty
