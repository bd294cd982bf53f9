"""Training and inspection figures: data placed where it belongs, sizes bounded, no colours
Streamlit would rewrite, and clear errors for mismatched inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from diffres import figures
from diffres.training import EpochRecord


def _json(fig) -> str:
    d = fig.to_plotly_json()
    d["layout"].pop("template", None)
    return json.dumps(d, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)).lower()


def _records(n=3, with_probe=False):
    out = []
    for e in range(1, n + 1):
        out.append(EpochRecord(epoch=e, global_step=10 * e, train_loss=2.0 / e, train_accuracy=0.2 * e, guide_loss=0.1,
                               activeness=0.05 * e, val_loss=2.2 / e, val_accuracy=0.25 * e, seconds=3.0))
    return out


def test_training_curves_place_epochs_and_percentages():
    steps = [dict(global_step=s, loss=1.0, accuracy=0.5, guide_loss=0.1, activeness=0.02) for s in range(1, 31)]
    fig = figures.training_curves_figure(_records(), steps=steps, steps_per_epoch=10, total_epochs=5, selected_epoch=2)
    val_acc = next(t for t in fig.data if t.name == "validation (epoch end)" and t.yaxis == "y2")
    assert list(val_acc.x) == [1, 2, 3] and np.allclose(val_acc.y, [25, 50, 75])
    per_step = next(t for t in fig.data if t.name == figures.training.STEP_LEGEND and t.yaxis == "y")
    assert np.isclose(per_step.x[-1], 3.0)  # global step 30 / 10 steps per epoch
    assert fig.layout.xaxis.range[1] >= 5
    assert "#0000" not in _json(fig)


def test_training_curves_accept_dicts_and_nan():
    hist = [r.to_dict() for r in _records(2)]
    hist[0]["val_accuracy"] = float("nan")
    fig = figures.training_curves_figure(hist)
    val_acc = next(t for t in fig.data if t.name == "validation (epoch end)" and t.yaxis == "y2")
    assert val_acc.y[0] is None and val_acc.y[1] == pytest.approx(50)


def test_training_curves_name_every_line_and_marker_in_a_legend():
    steps = [dict(global_step=s, loss=1.0, accuracy=0.5, guide_loss=0.1, activeness=0.02) for s in range(1, 31)]
    fig = figures.training_curves_figure(_records(), steps=steps, steps_per_epoch=10, total_epochs=5, selected_epoch=2)
    assert fig.layout.showlegend is not False and fig.layout.height >= 420
    named = {t.legendgroup or t.name for t in fig.data if t.showlegend is not False}
    for t in fig.data:  # every trace is in a group whose entry the legend shows
        assert (t.legendgroup or t.name) in named, (t.name, t.legendgroup)
    entries = [t.name for t in fig.data if t.showlegend is not False]
    assert len(entries) == len(set(entries))  # one entry per kind, not one per panel
    assert {"train (epoch mean)", "validation (epoch end)", figures.training.STEP_LEGEND} <= set(entries)
    shown = next(t for t in fig.data if t.showlegend is not False and "epoch 2" in t.name)
    assert shown.line.dash == "dot"  # the selected epoch's dotted line has an entry too
    assert all(s.line.dash == "dot" for s in fig.layout.shapes)
    # the legend sits under the plots, inside the figure
    assert fig.layout.legend.y < 0 and fig.layout.margin.b >= 100


def test_kept_frames_figure_draws_the_importance_over_the_spectrogram():
    T, F, hop = 100, 16, 0.01
    rng = np.random.default_rng(0)
    imp = np.full(T, 0.25)
    imp[40:45] = 0.9
    edges = np.linspace(0, T, 26)
    fig = figures.kept_frames_figure(rng.normal(-5, 1, (T, F)), hop, importance=imp, bin_edges=edges,
                                     merged=rng.normal(-5, 1, (25, F)), mel_frequencies=np.linspace(50, 7000, F))
    heat = next(t for t in fig.data if t.type == "heatmap" and t.name == "input")
    curve = next(t for t in fig.data if t.name == "importance (right axis)")
    assert heat.yaxis in (None, "y") and curve.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.yaxis2.side == "right" and fig.layout.yaxis2.title.text == "importance (share)"
    assert np.isclose(max(curve.y), 0.9) and np.isclose(curve.x[-1], (T - 0.5) * hop)
    assert fig.layout.yaxis2.range[1] == pytest.approx(figures.importance_axis_top((imp, edges)))
    uniform = next(t for t in fig.data if t.name.startswith("uniform share"))
    assert uniform.yaxis == "y2" and np.allclose(uniform.y, 0.25)
    merged = next(t for t in fig.data if t.name == "merged")
    assert merged.yaxis == "y3" and np.isclose(merged.x[-1], T * hop)
    assert "#0000" not in _json(fig)
    fixed = figures.kept_frames_figure(np.zeros((T, F)), hop, importance=imp, bin_edges=edges,
                                       merged=np.zeros((25, F)), importance_top=0.7)
    assert list(fixed.layout.yaxis2.range) == [0, 0.7]
    with pytest.raises(ValueError, match="bin_edges"):
        figures.kept_frames_figure(np.zeros((T, F)), hop, importance=imp, bin_edges=edges[:-1], merged=np.zeros((25, F)))
    with pytest.raises(ValueError, match="importance"):
        figures.kept_frames_figure(np.zeros((T, F)), hop, importance=imp[1:], bin_edges=edges, merged=np.zeros((25, F)))


def test_importance_axis_top_fits_every_curve_given():
    edges = np.linspace(0, 100, 26)  # uniform share 0.25
    flat, peaked = np.full(100, 0.25), np.full(100, 0.25)
    peaked[10] = 0.6
    assert figures.importance_axis_top((flat, edges)) == pytest.approx(0.375)
    both = figures.importance_axis_top((flat, edges), (peaked, edges))
    assert both == pytest.approx(0.72) and both == figures.importance_axis_top((peaked, edges), (flat, edges))
    assert figures.importance_axis_top((np.full(100, 3.0), edges)) == 1.05  # capped
    assert figures.importance_axis_top((np.full(100, np.nan), edges)) == 1.05
    assert figures.importance_axis_top() == 0.05


def test_probe_figure_true_time_axis():
    T, F, hop = 100, 16, 0.01
    rng = np.random.default_rng(0)
    log_mel = rng.normal(-5, 1, (T, F)).astype(np.float32)
    edges = np.linspace(0, T, 26)
    fig = figures.probe_figure(log_mel, hop, importance=np.full(T, 0.25), bin_edges=edges,
                               merged=rng.normal(-5, 1, (25, F)), mel_frequencies=np.linspace(50, 7000, F))
    merged = next(t for t in fig.data if t.name == "merged")
    assert len(merged.x) == 26 and np.isclose(merged.x[-1], T * hop)
    assert fig.layout.xaxis.range[1] == pytest.approx(T * hop)
    assert "#0000" not in _json(fig)
    with pytest.raises(ValueError, match="bin_edges"):
        figures.probe_figure(log_mel, hop, importance=np.full(T, 0.25), bin_edges=edges[:-1], merged=np.zeros((25, F)))
    with pytest.raises(ValueError, match="importance"):
        figures.probe_figure(log_mel, hop, importance=np.full(T - 1, 0.25), bin_edges=edges, merged=np.zeros((25, F)))


def test_probe_figure_pools_long_clips_for_display():
    T, F = 6000, 8
    fig = figures.probe_figure(np.zeros((T, F)), 0.001, importance=np.full(T, 0.5), bin_edges=np.linspace(0, T, 3001),
                               merged=np.zeros((3000, F)), max_columns=500)
    assert all(np.asarray(t.z).shape[1] <= 500 for t in fig.data if t.type == "heatmap")


def test_confusion_rows_are_true_classes():
    cm = np.array([[3, 1], [0, 4]])
    fig = figures.confusion_figure(cm, ["a", "b"])
    z = np.asarray(fig.data[0].z)
    assert np.allclose(z, [[75, 25], [0, 100]])
    assert fig.layout.yaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="confusion"):
        figures.confusion_figure(cm, ["a", "b", "c"])


def test_per_class_mean_importance_rate_and_topk():
    fig = figures.per_class_figure({"a": 1.0, "b": float("nan")}, counts={"a": 3, "b": 0})
    assert list(fig.data[0].y) == [100.0, 0]
    fig = figures.mean_importance_figure({"a": np.ones(10) * 0.3, "b": np.ones(10) * 0.2}, 0.01, out_share=0.25)
    assert len(fig.data) == 3 and np.isclose(fig.data[0].x[-1], 0.095)
    curve = [(r / 10, 0.9 - r / 20) for r in range(10)]
    fig = figures.accuracy_vs_rate_figure(curve, trained_rate=0.5, baselines={"avgpool": (0.5, 0.6)})
    names = [t.name for t in fig.data]
    assert "trained rate 0.5" in names and "avgpool" in names
    star = next(t for t in fig.data if t.name == "trained rate 0.5")
    assert star.y[0] == pytest.approx(65.0)
    fig = figures.topk_figure([("dog", 0.7), ("cat", 0.2)], highlight="cat")
    assert list(fig.data[0].y) == ["cat", "dog"]  # best on top
    assert "#0000" not in _json(fig)


def test_runs_comparison_one_line_per_run():
    fig = figures.runs_comparison_figure({"#1": _records(2), "#2": _records(3)}, metric="val_accuracy")
    assert [len(t.x) for t in fig.data] == [2, 3]
    fig = figures.runs_comparison_figure({"#1": _records(2)}, metric="val_loss")
    assert fig.data[0].y[0] == pytest.approx(2.2)


def test_thumbnail_rgb_shape_and_orientation():
    lm = np.full((50, 8), -20.0, np.float32)
    lm[:, 0] = 0.0  # loud lowest band
    img = figures.thumbnail_rgb(lm, width=40, height=16)
    assert img.shape == (16, 40, 3) and img.dtype == np.uint8
    assert img[-1].mean() > img[0].mean()  # low frequencies at the bottom, bright
    assert figures.thumbnail_rgb(np.zeros((0, 8))).shape == (48, 96, 3)


def test_training_curves_show_the_energy_prior_fit_before_epoch_zero():
    fig = figures.training_curves_figure(
        [], steps=[], steps_per_epoch=10, total_epochs=4, prior_losses=[0.9, 0.5, 0.4], prior_steps=20
    )
    prior = next(t for t in fig.data if t.name.startswith("energy-prior fit"))
    np.testing.assert_allclose(prior.x, [-2.0, -1.9, -1.8])  # (k - 20) / 10: fixed places as the fit proceeds
    np.testing.assert_allclose(prior.y, [0.9, 0.5, 0.4])
    assert fig.layout.xaxis.range[0] == pytest.approx(-2.0)
    none = figures.training_curves_figure([], steps=[], steps_per_epoch=10, total_epochs=4)
    assert not [t for t in none.data if t.name.startswith("energy-prior")] and none.layout.xaxis.range[0] == 0


def test_class_name_axes_grow_their_margins_to_fit_the_names():
    names = ["knock", "alarm_clock", "phone_ring"]
    top = figures.topk_figure([(n, 1 / 3) for n in names])
    assert top.layout.yaxis.automargin is True
    confusion = figures.confusion_figure(np.eye(3), names)
    assert confusion.layout.xaxis.automargin is True and confusion.layout.yaxis.automargin is True
    assert figures.per_class_figure(dict.fromkeys(names, 1.0)).layout.xaxis.automargin is True


def test_block_means_against_a_direct_computation():
    from diffres.figures.training import block_means

    np.testing.assert_array_equal(block_means(np.arange(10.0), 4), [1.0, 4.0, 7.0, 9.0])
    short = np.array([1.0, np.nan, 3.0])
    np.testing.assert_array_equal(block_means(short, 3), short)  # short enough: unchanged
    gaps = block_means(np.array([1.0, np.nan, np.nan, np.nan, 5.0, 7.0]), 3)
    np.testing.assert_array_equal(gaps[[0, 2]], [1.0, 6.0])
    assert np.isnan(gaps[1])  # a block of gaps stays a gap
    rng = np.random.default_rng(0)
    v = rng.standard_normal(2501)
    out = block_means(v, 600)
    size = -(-v.size // 600)
    assert out.size <= 600 and out.size == -(-v.size // size)
    np.testing.assert_allclose(out, [v[i : i + size].mean() for i in range(0, v.size, size)])


def test_long_runs_send_at_most_max_step_points_per_curve_as_binary():
    from diffres.figures.training import MAX_STEP_POINTS

    steps = [dict(global_step=i, loss=1.0 / i, accuracy=0.5, guide_loss=0.1, activeness=0.2) for i in range(1, 4001)]
    fig = figures.training_curves_figure(_records(), steps=steps, steps_per_epoch=800, total_epochs=5)
    per_step = [t for t in fig.data if t.legendgroup == "steps"]
    assert len(per_step) == 4
    for t in per_step:
        assert len(t.x) == len(t.y) <= MAX_STEP_POINTS
        assert t.x.dtype == np.float32  # typed arrays: sent as binary, not as JSON numbers
    assert per_step[0].x[-1] == pytest.approx(3999 / 800, rel=1e-6)  # the last block: steps 3998-4000
    assert "mean of a few batches" in per_step[0].hovertemplate
    assert len(json.dumps(fig.to_plotly_json(), cls=__import__("plotly").utils.PlotlyJSONEncoder)) < 80_000
