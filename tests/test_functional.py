"""diffres.functional against the dense oracle and the method's invariants."""

from __future__ import annotations

import math

import pytest
import torch

import diffres
from diffres import functional as Fn
from oracle import dense_position_encoding, dense_warp, dense_warp_max, dense_weights

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_importance(batch, n_frames, out_len, generator, spiky=False, dtype=torch.float64):
    raw = torch.rand(batch, n_frames, generator=generator, dtype=dtype) * 0.98 + 0.01
    if spiky:
        raw = torch.where(torch.rand(batch, n_frames, generator=generator, dtype=dtype) < 0.1, raw.new_tensor(0.999), raw * 0.02)
    return Fn.normalize_importance(raw, out_len)


def reference_normalize(raw: torch.Tensor, out_len: int) -> torch.Tensor:
    """docs/METHOD.md section 2, one example at a time (the published loop)."""
    rows = []
    for r in raw.to(torch.float64):
        s = r * out_len / r.sum()
        if s.max() >= 1:
            s = s / s.max()
        d = out_len - s.sum()
        inside = (s > 1e-4) & (s < 1 - 1e-4)
        if d > 0 and inside.any():
            a = min(1.0, float(d / (1 - s[inside]).sum()))
            s = torch.where(inside, s + a * (1 - s), s)
        rows.append(s)
    return torch.stack(rows)


# --- output_length ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "n_frames, rate, expected",
    [(100, 0.75, 25), (98, 0.75, 24), (1056, 0.75, 264), (1000, 0.9, 100), (3000, 0.9, 300),
     (10, 0.0, 10), (1, 0.5, 1), (3, 0.95, 1), (7, 0.5, 3), (400, 0.9, 40)],
)
def test_output_length_matches_formula(n_frames, rate, expected):
    assert diffres.output_length(n_frames, rate) == expected


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_output_length_rejects_bad_rate(bad):
    with pytest.raises(diffres.ParameterError, match="reduction_rate must be in \\[0, 1\\)"):
        diffres.output_length(100, bad)


def test_output_length_rejects_no_frames():
    with pytest.raises(diffres.ParameterError, match="n_frames"):
        diffres.output_length(0, 0.5)


# --- normalize_importance --------------------------------------------------------------

@pytest.mark.parametrize("n_frames, out_len", [(50, 12), (200, 50), (37, 36), (10, 1), (1, 1), (64, 64)])
def test_normalize_importance_in_unit_interval_and_sums_to_out_len(rng, n_frames, out_len):
    raw = torch.rand(4, n_frames, generator=rng, dtype=torch.float64)
    s = Fn.normalize_importance(raw, out_len)
    assert s.shape == raw.shape
    assert s.min() >= 0 and s.max() <= 1
    torch.testing.assert_close(s.sum(1), torch.full((4,), float(out_len), dtype=torch.float64), rtol=0, atol=1e-9)


def test_normalize_importance_matches_published_algorithm_when_reachable(rng):
    for spiky in (False, True):
        raw = torch.rand(6, 120, generator=rng, dtype=torch.float64) * 0.9 + 0.05
        if spiky:
            raw[:, ::10] = 0.999
            raw[:, 1::10] *= 0.01
        ours = Fn.normalize_importance(raw, 30)
        ref = reference_normalize(raw, 30)
        assert torch.allclose(ref.sum(1), torch.full((6,), 30.0, dtype=torch.float64), atol=1e-9)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-9)


def test_saturated_scores_still_cover_every_bin():
    # The published code's failure case: 40 frames at 1, 60 at ~0, T' = 50 -> 9 empty bins there.
    raw = torch.cat([torch.ones(40), torch.full((60,), 1e-6)]).unsqueeze(0).double()
    ref = reference_normalize(raw, 50)
    assert ref.sum() < 49  # the reference falls short
    s = Fn.normalize_importance(raw, 50)
    torch.testing.assert_close(s.sum(1), torch.tensor([50.0], dtype=torch.float64), rtol=0, atol=1e-9)
    coverage = dense_weights(s, 50).sum(1)  # weight reaching each output bin
    torch.testing.assert_close(coverage, torch.ones(1, 50, dtype=torch.float64), rtol=0, atol=1e-9)
    merged = Fn.warp(torch.zeros(1, 100, 3, dtype=torch.float64), s, 50)
    assert torch.isfinite(torch.log(torch.exp(merged).sum(-1))).all()


def test_all_zero_scores_become_uniform():
    s = Fn.normalize_importance(torch.zeros(2, 8), 4)
    torch.testing.assert_close(s, torch.full((2, 8), 0.5))


def test_normalize_importance_gradcheck(rng):
    raw = (torch.rand(2, 12, generator=rng, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda r: Fn.normalize_importance(r, 5), (raw,))
    spiky = raw.detach().clone()
    spiky[:, 3] = 0.99
    spiky.requires_grad_()
    assert torch.autograd.gradcheck(lambda r: Fn.normalize_importance(r, 5), (spiky,))


# --- warp / warp_max against the dense oracle -------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spiky", [False, True])
@pytest.mark.parametrize("n_frames, out_len, channels", [(60, 15, 7), (101, 50, 3), (33, 1, 4), (20, 20, 2), (1, 1, 5)])
def test_warp_matches_dense_oracle(rng, device, spiky, n_frames, out_len, channels):
    s = random_importance(3, n_frames, out_len, rng, spiky=spiky)
    values = torch.randn(3, n_frames, channels, generator=rng, dtype=torch.float64)
    expected = dense_warp(values, s, out_len)
    got = Fn.warp(values.to(device), s.to(device), out_len).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    # float32 path, as the module runs it
    got32 = Fn.warp(values.float().to(device), s.float().to(device), out_len).cpu()
    torch.testing.assert_close(got32.double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spiky", [False, True])
@pytest.mark.parametrize("n_frames, out_len", [(60, 15), (101, 50), (33, 1), (20, 20), (1, 1)])
def test_warp_max_matches_dense_oracle(rng, device, spiky, n_frames, out_len):
    s = random_importance(3, n_frames, out_len, rng, spiky=spiky)
    values = torch.randn(3, n_frames, 5, generator=rng, dtype=torch.float64)  # negative values too
    expected = dense_warp_max(values, s, out_len)
    got = Fn.warp_max(values.to(device), s.to(device), out_len).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_dense_weights_properties(rng):
    s = random_importance(2, 80, 20, rng, spiky=True)
    w = dense_weights(s, 20)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 20, dtype=torch.float64))  # bins: weights sum to 1
    torch.testing.assert_close(w.sum(2), s)  # frames: weights sum to importance
    assert ((w > 0).sum(2) <= 2).all()  # a frame touches at most two bins


def test_warp_keeps_constants_and_rate_zero_is_identity(rng):
    s = random_importance(2, 40, 10, rng)
    const = torch.full((2, 40, 3), 2.5, dtype=torch.float64)
    torch.testing.assert_close(Fn.warp(const, s, 10), torch.full((2, 10, 3), 2.5, dtype=torch.float64))
    values = torch.randn(2, 40, 3, generator=rng, dtype=torch.float64)
    ones = Fn.normalize_importance(torch.rand(2, 40, generator=rng, dtype=torch.float64), 40)
    torch.testing.assert_close(ones, torch.ones_like(ones))
    torch.testing.assert_close(Fn.warp(values, ones, 40), values)
    torch.testing.assert_close(Fn.warp_max(values, ones, 40), values)


@pytest.mark.parametrize("offset", [0.0, 0.1, 0.5, 0.75])
def test_warp_with_a_fractional_first_frame_blends_each_frame_with_its_neighbour(rng, offset):
    # benchmarks/fractional_shift.py relies on this: importance 1 everywhere but a fractional
    # first frame shifts every output bin off the frame grid, so each mixes two input frames.
    values = torch.randn(2, 12, 3, generator=rng, dtype=torch.float64)
    importance = torch.ones(2, 12, dtype=torch.float64)
    importance[:, 0], importance[:, -1] = offset, 1.0 - offset
    expected = offset * values[:, :-1] + (1.0 - offset) * values[:, 1:]
    torch.testing.assert_close(Fn.warp(values, importance, 11), expected)


def test_warp_gradcheck(rng):
    raw = (torch.rand(2, 10, generator=rng, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    values = torch.randn(2, 10, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, v: Fn.warp(v, Fn.normalize_importance(r, 4), 4), (raw, values))
    assert torch.autograd.gradcheck(lambda r, v: Fn.warp_max(v, Fn.normalize_importance(r, 4), 4), (raw, values))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shared", [False, True])
def test_warp_under_autocast_stays_in_float32_forward_and_backward(rng, device, dtype, shared):
    # Mixed-precision training (``--amp``) runs the front-end under autocast, which casts
    # matrix products to bf16/fp16. The merge's sparse product must stay in its inputs'
    # float32: CPU has no bf16/fp16 sparse kernel, and on CUDA the bf16 product left a bf16
    # gradient that the hand-written backward then met with float32 values (a crash at the
    # first step of a CUDA run with --amp auto).
    s = random_importance(3, 40, 10, rng).float().to(device).requires_grad_()
    values = torch.randn(1 if shared else 3, 40, 5, generator=rng).to(device)
    if shared:  # one table broadcast over the batch, as the position code is
        values = values.expand(3, -1, -1)
    values.requires_grad_()
    expected = Fn.warp(values, s, 10)
    grads = torch.autograd.grad(expected.square().sum(), (s, values))
    with torch.autocast(device_type=device, dtype=dtype):
        got = Fn.warp(values, s, 10)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    for a, b in zip(torch.autograd.grad(got.square().sum(), (s, values)), grads, strict=True):
        torch.testing.assert_close(a, b)


def test_warp_batch_items_independent(rng):
    s = random_importance(4, 50, 12, rng, spiky=True)
    values = torch.randn(4, 50, 6, generator=rng, dtype=torch.float64)
    batched = Fn.warp(values, s, 12)
    for b in range(4):
        torch.testing.assert_close(Fn.warp(values[b : b + 1], s[b : b + 1], 12), batched[b : b + 1])


def test_warp_rejects_mismatched_shapes():
    with pytest.raises(diffres.ParameterError, match="importance"):
        Fn.warp(torch.zeros(2, 10, 3), torch.ones(2, 9), 4)
    with pytest.raises(diffres.ParameterError, match="out_len"):
        Fn.warp(torch.zeros(2, 10, 3), torch.ones(2, 10), 11)


# --- bin edges and position code ---------------------------------------------------------

def test_bin_edges_invert_the_cumulative_importance(rng):
    s = random_importance(2, 70, 20, rng, spiky=True)
    edges = Fn.bin_edges(s, 20)
    assert edges.shape == (2, 21)
    assert (edges[:, 1:] >= edges[:, :-1]).all()
    assert torch.all(edges[:, 0] == 0) and torch.all(edges[:, -1] == 70)
    # Frame i maps [i, i+1) linearly onto [c_{i-1}, c_i): W[i, j] = s_i * |[i, i+1) ∩ [e_j, e_{j+1})|.
    i = torch.arange(70, dtype=torch.float64).view(1, 70, 1)
    lo = torch.maximum(i, edges[:, None, :-1])
    hi = torch.minimum(i + 1, edges[:, None, 1:])
    implied = s.unsqueeze(-1) * (hi - lo).clamp(min=0)
    torch.testing.assert_close(implied, dense_weights(s, 20), rtol=0, atol=1e-9)


@pytest.mark.parametrize("n_channels", [1, 7, 8, 64])
def test_position_encoding_matches_formula(n_channels):
    got = Fn.position_encoding(13, n_channels, dtype=torch.float64)
    torch.testing.assert_close(got, dense_position_encoding(13, n_channels), rtol=0, atol=1e-6)


# --- guide loss and activeness -------------------------------------------------------------

def test_empty_frames_need_near_zero_energy():
    energy = torch.tensor([[1e-10, 1e-10, 0.5, 0.7], [0.3, 0.4, 0.5, 0.35]])
    empty = Fn.empty_frames(energy)
    assert empty.tolist() == [[True, True, False, False], [False, False, False, False]]


def test_guide_loss_gate_and_value():
    importance = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]])
    empty = torch.tensor([[True, True, False, False], [False, False, False, False]])
    # mean over example 0's empty frames = 0.5 > (1 - 0.5)/2 -> counted; example 1 has none.
    torch.testing.assert_close(Fn.guide_loss(importance, empty, 0.5), torch.tensor(0.25))
    low = torch.tensor([[0.1, 0.1, 0.9, 0.9]])
    assert Fn.guide_loss(low, empty[:1], 0.5) == 0  # 0.1 < 0.25: gate closed


def test_activeness_is_std_over_non_empty_frames():
    importance = torch.tensor([[0.0, 0.2, 0.4, 0.6]])
    empty = torch.tensor([[True, False, False, False]])
    torch.testing.assert_close(Fn.activeness(importance, empty), torch.tensor([0.2, 0.4, 0.6]).std())


# --- process-wide state, tied maxima ----------------------------------------------------
def test_merges_never_touch_the_warning_state(rng, monkeypatch):
    """``warnings.catch_warnings()`` swaps the process-wide filter list; inside an autograd
    forward it races with every other thread (the app trains in Streamlit's threads)."""
    import warnings

    calls = []

    class Spy(warnings.catch_warnings):
        def __init__(self, *args, **kwargs):
            calls.append(args)
            super().__init__(*args, **kwargs)

    before = list(warnings.filters)
    monkeypatch.setattr(warnings, "catch_warnings", Spy)
    values = torch.rand(2, 12, 3, generator=rng, dtype=torch.float64, requires_grad=True)
    importance = random_importance(2, 12, 5, rng).requires_grad_(True)
    (Fn.warp(values, importance, 5).sum() + Fn.warp_max(values, importance, 5).sum()).backward()
    monkeypatch.undo()
    assert not calls, "warnings.catch_warnings() was called inside a merge"
    assert warnings.filters == before


@pytest.mark.parametrize("importance, out_len", [([0.25, 0.25, 0.25, 0.25], 1),  # four first pieces tie
                                                 ([0.5, 1.0, 0.5], 2)])  # a crossing frame's pieces tie too
def test_warp_max_gradient_on_tied_maxima_matches_finite_differences(importance, out_len):
    """Equal pieces in a bin: moving every value by ``eps`` moves each bin's max by
    ``w * eps``, so the gradient summed over the frames must equal that finite difference
    (the old path gave every tied piece the full upstream gradient: 4x too large)."""
    imp = torch.tensor([importance], dtype=torch.float64)
    values = torch.ones(1, imp.shape[1], 2, dtype=torch.float64, requires_grad=True)
    Fn.warp_max(values, imp, out_len).sum().backward()
    eps = 1e-6
    with torch.no_grad():
        up = Fn.warp_max(values + eps, imp, out_len).sum()
        down = Fn.warp_max(values - eps, imp, out_len).sum()
    directional = float((up - down) / (2 * eps))
    assert float(values.grad.sum()) == pytest.approx(directional, rel=1e-6)
    # one winner per output cell, the earliest piece in time (as the fused kernel picks it)
    assert int((values.grad != 0).sum()) == out_len * 2
    assert (values.grad[0, 0] != 0).all()


def _loop_aligned(values, importance, out_len):
    """The aligned merge one frame at a time: each frame whole in the bin of its centre."""
    batch, n_frames, channels = values.shape
    avg = torch.zeros(batch, out_len, channels, dtype=torch.float64)
    mx = torch.full((batch, out_len, channels), -math.inf, dtype=torch.float64)
    for b in range(batch):
        s = importance[b].double() * (out_len / importance[b].double().sum())
        start, mass = 0.0, torch.zeros(out_len, dtype=torch.float64)
        for i in range(n_frames):
            j = min(int(math.floor(start + s[i] / 2)), out_len - 1)
            avg[b, j] += s[i] * values[b, i]
            mass[j] += s[i]
            mx[b, j] = torch.maximum(mx[b, j], values[b, i].double())
            start += float(s[i])
        avg[b] /= mass.unsqueeze(1)
    return avg, mx


@pytest.mark.parametrize("n_frames, out_len", [(50, 12), (37, 36), (20, 1), (64, 64), (301, 75)])
def test_warp_aligned_matches_a_loop_and_fills_every_bin(rng, n_frames, out_len):
    s = random_importance(3, n_frames, out_len, rng, spiky=True)
    values = torch.rand(3, n_frames, 4, generator=rng, dtype=torch.float64) + 0.1
    bins = Fn.aligned_bins(s, out_len)
    assert bins.min() == 0 and bins.max() == out_len - 1
    assert bool((bins.diff(dim=1) >= 0).all()) and bool((bins.diff(dim=1) <= 1).all())  # no bin skipped
    avg, mx = _loop_aligned(values, s, out_len)
    torch.testing.assert_close(Fn.warp_aligned(values, s, out_len), avg)
    torch.testing.assert_close(Fn.warp_aligned_max(values, s, out_len), mx)


def test_warp_aligned_keeps_a_run_of_whole_frames_that_warp_blends(rng):
    # The run of importance-1 frames starts at warped position 0.3: warp mixes each frame with
    # its neighbour (the cost measured by benchmarks/fractional_shift.py), the aligned merge
    # passes them through one to one.
    importance = torch.tensor([[0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0, 0.35, 0.35]], dtype=torch.float64)
    values = torch.arange(1.0, 10.0, dtype=torch.float64).view(1, 9, 1)
    aligned = Fn.warp_aligned(values, importance, 5)[0, :, 0]
    torch.testing.assert_close(aligned[1:4], values[0, 4:7, 0])  # frames 4-6 each own a bin
    assert float(aligned[0]) == pytest.approx((0.1 * (1 + 2 + 3) + 4.0) / 1.3)
    blended = Fn.warp(values, importance, 5)[0, :, 0]
    assert not torch.allclose(blended[1:4], values[0, 4:7, 0])
    ones = torch.ones(2, 9, dtype=torch.float64)
    v = torch.randn(2, 9, 3, generator=rng, dtype=torch.float64)
    torch.testing.assert_close(Fn.warp_aligned(v, ones, 9), v)  # rate 0: identity
    torch.testing.assert_close(Fn.warp_aligned_max(v, ones, 9), v)


def test_warp_aligned_gradient_reaches_values_and_the_weights_inside_a_bin(rng):
    raw = (torch.rand(2, 12, generator=rng, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    values = (torch.rand(2, 12, 3, generator=rng, dtype=torch.float64) + 0.5).requires_grad_()
    bins = Fn.aligned_bins(Fn.normalize_importance(raw, 4), 4)  # held fixed: piecewise constant
    torch.autograd.gradcheck(lambda r, v: Fn.warp_aligned(v, Fn.normalize_importance(r, 4), 4, bins=bins), (raw, values))


def test_warp_aligned_rejects_bins_of_another_shape():
    with pytest.raises(diffres.ParameterError, match="bins"):
        Fn.warp_aligned(torch.ones(1, 4, 2), torch.ones(1, 4), 4, bins=torch.zeros(1, 3, dtype=torch.long))
