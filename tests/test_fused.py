"""The fused CPU merge kernel against the dense oracle and the PyTorch merge path."""

from __future__ import annotations

import pytest
import torch

from diffres import core, fused
from diffres import functional as Fn
from diffres.errors import DiffResError
from oracle import dense_diffres


pytestmark = pytest.mark.usefixtures("fused_kernel")  # conftest.py


def importance_of(kind: str, batch: int, n_frames: int, out_len: int, generator) -> torch.Tensor:
    if kind == "random":
        raw = torch.rand(batch, n_frames, generator=generator, dtype=torch.float64)
    elif kind == "spiky":  # a few frames carry almost everything
        raw = torch.rand(batch, n_frames, generator=generator, dtype=torch.float64) ** 8
    else:  # saturated: every score 1 except a few
        raw = torch.ones(batch, n_frames, dtype=torch.float64)
        raw[:, ::7] = 1e-6
    return Fn.normalize_importance(raw, out_len)


def run(log_mel, importance, rate, use_kernel, monkeypatch, grad_seed=0):
    monkeypatch.setenv("DIFFRES_FUSED", "1" if use_kernel else "0")
    x = log_mel.clone().requires_grad_(True)
    imp = importance.clone().requires_grad_(True)
    out = core.merge(x, imp, rate)
    g = torch.randn(out.features.shape, generator=torch.Generator().manual_seed(grad_seed), dtype=out.features.dtype)
    ((out.features * g).sum() + out.guide_loss).backward()
    return out, x.grad, imp.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["random", "spiky", "saturated"])
@pytest.mark.parametrize("batch, n_frames, n_mels, rate", [(3, 50, 7, 0.75), (2, 1, 5, 0.5), (2, 333, 64, 0.9),
                                                          (2, 40, 3, 0.01), (1, 64, 128, 0.5), (2, 17, 1, 0.95)])
def test_kernel_matches_oracle_and_torch_path(monkeypatch, dtype, kind, batch, n_frames, n_mels, rate):
    gen = torch.Generator().manual_seed(n_frames * 7 + n_mels)
    out_len = Fn.output_length(n_frames, rate)
    log_mel = (torch.randn(batch, n_frames, n_mels, generator=gen, dtype=torch.float64) * 3 - 4).to(dtype)
    importance = importance_of(kind, batch, n_frames, out_len, gen).to(dtype)
    fused_out, fused_gx, fused_gi = run(log_mel, importance, rate, True, monkeypatch)
    torch_out, torch_gx, torch_gi = run(log_mel, importance, rate, False, monkeypatch)
    avg, mx, enc = dense_diffres(log_mel.double(), importance.double(), out_len)
    # float64: the position code table is cached in float32 (error ~1e-8)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(fused_out.avg.double(), avg, **tol)
    torch.testing.assert_close(fused_out.max.double(), mx, **tol)
    torch.testing.assert_close(fused_out.resolution_encoding.double(), enc, **tol)
    assert fused_out.features.dtype == dtype and fused_out.features.shape == (batch, 3, out_len, n_mels)
    # float32: sums of up to F products with large per-bin factors (1 / merged power)
    gtol = dict(rtol=1e-3, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fused_gx, torch_gx, **gtol)
    torch.testing.assert_close(fused_gi, torch_gi, **gtol)
    assert fused_out.guide_loss.item() == pytest.approx(torch_out.guide_loss.item(), abs=1e-6)


def test_kernel_gradcheck_float64():
    gen = torch.Generator().manual_seed(5)
    batch, n_frames, n_mels, rate = 2, 11, 4, 0.6
    out_len = Fn.output_length(n_frames, rate)
    log_mel = (torch.randn(batch, n_frames, n_mels, generator=gen, dtype=torch.float64) - 1).requires_grad_()
    importance = importance_of("random", batch, n_frames, out_len, gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, s: core.merge(x, s, rate).features, (log_mel, importance),
                                    eps=1e-7, atol=1e-5)


def test_energy_is_mean_power_and_empty_frames_agree(monkeypatch):
    gen = torch.Generator().manual_seed(2)
    log_mel = torch.randn(2, 60, 16, generator=gen) - 3
    log_mel[:, 10:20] = torch.log(torch.tensor(1e-10))  # a masked stretch
    out_len = Fn.output_length(60, 0.5)
    importance = importance_of("random", 2, 60, out_len, gen).float()
    pieces = Fn.warp_pieces(importance, out_len)
    code = Fn.position_encoding(60, 16)
    _, energy = fused.merge(log_mel, pieces, code, out_len)
    torch.testing.assert_close(energy, torch.exp(log_mel).mean(-1), rtol=1e-6, atol=1e-12)
    assert Fn.empty_frames(energy)[:, 10:20].all() and not Fn.empty_frames(energy)[:, 25:].any()


def test_max_merge_gradient_goes_to_the_winning_piece(monkeypatch):
    # two frames per bin, one clearly louder: only it may receive the max's gradient
    log_mel = torch.tensor([[[0.0], [3.0], [1.0], [-2.0]]], requires_grad=True)
    importance = torch.full((1, 4), 0.5)
    out = core.merge(log_mel, importance, 0.5)
    out.max.sum().backward()
    assert log_mel.grad[0, :, 0].tolist() == pytest.approx([0.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("importance", [[0.25] * 8, [0.5, 1.0, 0.5, 0.5, 1.0, 0.5]])
def test_both_paths_give_tied_maxima_the_same_gradient(monkeypatch, importance):
    """Equal pieces in a bin (a constant clip): both merge paths send the max's gradient to
    the earliest attaining piece, so they agree exactly where the max is not differentiable."""
    imp = torch.tensor([importance], dtype=torch.float64)
    log_mel = torch.zeros(1, imp.shape[1], 3, dtype=torch.float64)
    rate = 1.0 - imp.sum().item() / imp.shape[1]
    _, kernel_x, kernel_imp = run(log_mel, imp, rate, True, monkeypatch)
    _, torch_x, torch_imp = run(log_mel, imp, rate, False, monkeypatch)
    torch.testing.assert_close(kernel_x, torch_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kernel_imp, torch_imp, rtol=1e-12, atol=1e-12)


def test_both_paths_agree_on_a_batch_full_of_ties(monkeypatch):
    """Quantised log-mel and equal shares make many pieces tie, in many bins of every example."""
    g = torch.Generator().manual_seed(7)
    log_mel = torch.randint(-2, 1, (3, 60, 5), generator=g).double()
    imp = torch.full((3, 60), 0.25, dtype=torch.float64)
    imp[1, ::3] = 1.0  # the second example: crossing pieces tie with first pieces too
    imp[1] = Fn.normalize_importance(imp[1:2], 15)[0]
    _, kernel_x, kernel_imp = run(log_mel, imp, 0.75, True, monkeypatch)
    _, torch_x, torch_imp = run(log_mel, imp, 0.75, False, monkeypatch)
    torch.testing.assert_close(kernel_x, torch_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kernel_imp, torch_imp, rtol=1e-12, atol=1e-12)


def test_usable_only_where_it_applies(monkeypatch):
    x = torch.zeros(1, 4, 3)
    assert fused.usable_for(x) and fused.usable_for(x.double())
    assert not fused.usable_for(x.half())
    monkeypatch.setenv("DIFFRES_FUSED", "0")
    assert not fused.usable_for(x)


def test_build_is_keyed_by_source_and_a_failed_build_is_a_clear_error(monkeypatch, tmp_path):
    broken = tmp_path / "fused_merge.cpp"
    broken.write_text("this is not C++\n")
    before = fused.build_directory()
    monkeypatch.setattr(fused, "SOURCE", broken)
    monkeypatch.setattr(fused.Path, "home", classmethod(lambda cls: tmp_path))
    assert fused.build_directory() != before and fused.build_directory().is_relative_to(tmp_path)
    with pytest.raises(DiffResError, match="building the fused merge kernel failed"):
        fused.build(force=True)


def test_cli_build_ext_reports_the_loaded_library(capsys):
    import json

    from diffres import cli

    assert cli.main(["build-ext", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["library"].endswith("diffres_fused.so") and fused.build_directory().name in result["library"]


def test_old_builds_are_pruned(monkeypatch, tmp_path):
    import os

    monkeypatch.setattr(fused.Path, "home", classmethod(lambda cls: tmp_path))
    root = fused.build_directory().parent
    for age in range(5):
        folder = root / f"fused-old{age}"
        folder.mkdir(parents=True)
        os.utime(folder, (1000 + age, 1000 + age))
    fused._prune_old_builds(keep=3)
    assert sorted(p.name for p in root.iterdir()) == ["fused-old2", "fused-old3", "fused-old4"]


@pytest.mark.parametrize("loss_kind", ["sum", "permuted", "transposed"])
def test_backward_takes_gradients_of_any_layout(monkeypatch, loss_kind):
    gen = torch.Generator().manual_seed(9)
    log_mel = torch.randn(2, 45, 6, generator=gen) - 2
    out_len = Fn.output_length(45, 0.75)
    importance = importance_of("random", 2, 45, out_len, gen).float()
    h = torch.randn(2, out_len, 3, 6, generator=gen)

    def grads(use_kernel):
        monkeypatch.setenv("DIFFRES_FUSED", "1" if use_kernel else "0")
        x, s = log_mel.clone().requires_grad_(True), importance.clone().requires_grad_(True)
        features = core.merge(x, s, 0.75).features
        if loss_kind == "sum":  # gradient: an expanded scalar (all strides 0)
            loss = features.sum()
        elif loss_kind == "permuted":  # gradient with unit stride along freq, permuted elsewhere
            loss = (features.permute(0, 2, 1, 3) * h).sum()
        else:  # gradient whose freq axis is not the innermost one
            loss = (features.transpose(2, 3) * h.permute(0, 2, 3, 1)).sum()
        loss.backward()
        return x.grad, s.grad

    for fused_grad, torch_grad in zip(grads(True), grads(False)):
        torch.testing.assert_close(fused_grad, torch_grad, rtol=1e-4, atol=1e-5)
