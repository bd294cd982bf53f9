"""The teaching figures: DiffRes step by step, the window trade-off, the link metadata the app's
linked views read, and known events that never cover the spectrogram."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import diffres
from diffres import figures
from diffres.examples import make_preset
from diffres.explain import diffres_steps, frame_weights
from diffres.features import StftConfig, linear_spectrogram
from test_figures import decode, trace

HOP_S = 0.01


@pytest.fixture(scope="module")
def steps_run():
    x = make_preset("click_train", 16000, 2.0)
    fe = diffres.MelFrontend(16000, 32, 10.0, 25.0)
    lm = fe(torch.from_numpy(x))[0].numpy()
    torch.manual_seed(1)
    steps = diffres_steps(diffres.DiffRes(32, 0.75).eval(), lm, 0.75)
    return steps, lm, fe.mel_frequencies().numpy()


def _fig(steps_run, **kw):
    steps, lm, freqs = steps_run
    return json.loads(figures.steps_figure(steps, lm, HOP_S, freqs, **kw).to_json())


def test_steps_reveal_one_row_at_a_time(steps_run):
    names = []
    for step in range(1, 8):
        fig = _fig(steps_run, step=step, selected=10)
        names.append({t.get("name") for t in fig["data"]})
        assert all(a <= b for a, b in zip(names, names[1:], strict=False))  # nothing disappears
        titles = [a["text"] for a in fig["layout"]["annotations"]]
        assert sum("(next)" in t for t in titles) == {1: 7, 2: 6, 3: 5, 4: 4, 5: 3, 6: 1, 7: 0}[step]
    assert "raw score g(x)" in names[0] and "sigmoid" not in names[0]
    assert {"importance", "cumulative sum", "W[i, 10]", "average", "max", "encoding"} <= names[-1]


def test_selected_frame_is_highlighted_in_every_row_and_its_weights_drawn(steps_run):
    steps, _, _ = steps_run
    j = 12
    fig = _fig(steps_run, step=7, selected=j, n_shown=40)
    rects = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(rects) == 9 and len({r["yref"] for r in rects}) == 9  # one per row, each the row's full height
    for rect in rects:
        assert (rect["x0"], rect["x1"]) == pytest.approx((steps.bin_edges[j] * HOP_S, steps.bin_edges[j + 1] * HOP_S))
        assert rect["yref"].endswith(" domain") and (rect["y0"], rect["y1"]) == (0, 1)
    bars = trace(fig, f"W[i, {j}]")
    x, w = decode(bars["x"]), decode(bars["y"])
    frames, weights = frame_weights(steps, j)
    np.testing.assert_allclose(x[w > 0], (frames + 0.5) * HOP_S, rtol=1e-6)
    np.testing.assert_allclose(w[w > 0], weights, rtol=1e-6)
    assert len(x) == 40  # a countable window of input frames
    lo, hi = fig["layout"]["xaxis"]["range"]
    assert lo <= steps.bin_edges[j] * HOP_S and steps.bin_edges[j + 1] * HOP_S <= hi
    assert fig["layout"]["meta"] == {"link": "time"}


def test_importance_row_shows_the_rescaling(steps_run):
    steps, _, _ = steps_run
    fig = _fig(steps_run, step=3, selected=0, n_shown=40)
    a = int(round(decode(trace(fig, "importance")["x"])[0] / HOP_S - 0.5))
    np.testing.assert_allclose(decode(trace(fig, "scaled to sum T'")["y"]), steps.scaled[a : a + 40], rtol=1e-6)
    np.testing.assert_allclose(decode(trace(fig, "capped")["y"]), steps.capped[a : a + 40], rtol=1e-6)


def test_window_figure_tiles_and_bins():
    x = make_preset("tones_and_clicks", 16000, 1.0)
    panels = []
    for win_ms in (10.0, 100.0):
        c = StftConfig(16000, 2.0, win_ms)
        lp = linear_spectrogram(torch.from_numpy(x), c)[0].numpy()
        panels.append(dict(title=f"{win_ms:g} ms", log_power=lp, hop_seconds=c.hop_seconds,
                           window_seconds=c.window_seconds, bin_width_hz=c.bin_width_hz))
    fig = json.loads(figures.window_figure(panels, fmax_hz=2000, tile_at=(0.5, 1000.0)).to_json())
    rects = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(rects) == 2
    for rect, p in zip(rects, panels, strict=True):
        assert rect["x1"] - rect["x0"] == pytest.approx(p["window_seconds"])
        assert rect["y1"] - rect["y0"] == pytest.approx(p["bin_width_hz"])
        assert (rect["y0"] + rect["y1"]) / 2 == pytest.approx(1000.0)
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    for h, p in zip(heat, panels, strict=True):
        y = decode(h["y"])
        np.testing.assert_allclose(np.diff(y), p["bin_width_hz"], rtol=1e-5)  # one row per bin
        assert y[-1] <= 2000 + p["bin_width_hz"]  # nothing above the shown range is sent
    assert fig["layout"]["meta"] == {"link": "time"}
    assert "#0000" not in json.dumps({k: v for k, v in fig["layout"].items() if k != "template"} | {"d": fig["data"]})


def test_compact_figure_carries_each_columns_time_span():
    edges = np.array([0.0, 1.0, 3.5, 10.0])
    merged = np.zeros((3, 8), np.float32)
    fig = figures.compact_figure(merged, merged, np.linspace(100, 4000, 8), bin_edges=edges, hop_seconds=0.02)
    assert fig.layout.meta["link"] == "frames"
    np.testing.assert_allclose(fig.layout.meta["spans"], [[0.0, 0.02], [0.02, 0.07], [0.07, 0.2]])
    assert figures.compact_figure(merged, merged, np.linspace(100, 4000, 8)).layout.meta is None


def test_known_events_sit_on_the_waveform_not_over_the_spectrogram():
    x = make_preset("click_train", 16000, 2.0)
    fe = diffres.MelFrontend(16000, 32, 2.0, 5.0)
    lm = fe(torch.from_numpy(x))[0].numpy()
    events = np.array([0.125, 0.375])
    fig = figures.spectrogram_figure(lm, fe.hop_seconds, fe.mel_frequencies().numpy(), samples=x,
                                     sample_rate=16000, event_times=events)
    ev = next(t for t in fig.data if t.name == "known events")
    spec = next(t for t in fig.data if t.name == "log-mel")
    assert ev.yaxis != spec.yaxis and ev.yaxis == "y"  # the waveform's row
    alone = figures.spectrogram_figure(lm, fe.hop_seconds, fe.mel_frequencies().numpy(), event_times=events)
    ev = next(t for t in alone.data if t.name == "known events")
    assert min(v for v in ev.y if v is not None) >= lm.shape[1] - 0.5  # ticks above the top band
    assert fig.layout.meta == {"link": "time"}
