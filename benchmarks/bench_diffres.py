"""DiffRes forward + backward: our linear-time module vs the published dense formulation.

Prints, side by side in one run: time and peak process memory of one forward+backward at
B = 8, F = 128, rate 0.75, for T = 1000, 3000, 10000, 30000; the speed-up over a dense
implementation of the same formulas (the published construction: a [B, T, T'] overlap
matrix, batched matmuls, a Python loop over the batch in the normalisation); and the share
of the module's time spent after the score network; the module with the fused CPU merge
kernel and with the PyTorch merge path (no kernel).  Each measurement runs in its own
process so that peak memory is that configuration's alone.  Needs the kernel built
(``python -m diffres build-ext``, which ``scripts/setup.sh`` runs).

    python benchmarks/bench_diffres.py            # full table (a few minutes on 2 cores)
    python benchmarks/bench_diffres.py --quick    # T = 1000 and 3000 only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Published figures, measured on this kind of 2-core machine with the reference package
# (pydiffres 0.0.1) at B = 8, F = 128, rate 0.75, forward + backward (project issue #2).
REFERENCE_FIGURES = {3000: "1.25 s, 1.2 GB", 10000: "15-20 s, 5.6-5.9 GB"}


def _dense_forward(module, log_mel, rate):
    """The published formulation: dense overlap matrix and batched matmuls."""
    import torch

    from diffres import functional as Fn

    batch, n_frames, n_mels = log_mel.shape
    out_len = Fn.output_length(n_frames, rate)
    raw = torch.sigmoid(module.score_network(log_mel))
    rows = []  # the reference normalises one example at a time
    for r in raw:
        s = r * out_len / r.sum()
        if s.max() >= 1:
            s = s / s.max()
        inside = ((s > 1e-4) & (s < 1 - 1e-4)).float()
        d = out_len - s.sum()
        a = torch.clamp(d / ((1 - s) * inside).sum().clamp(min=1e-12), max=1.0)
        rows.append(s + a * (1 - s) * inside)
    s = torch.stack(rows)
    c_end = torch.cumsum(s, 1)
    c_start = c_end - s
    j = torch.arange(out_len, dtype=s.dtype)
    w = (torch.minimum(c_end.unsqueeze(-1), j + 1) - torch.maximum(c_start.unsqueeze(-1), j)).clamp(min=0)  # [B,T,T']
    power = torch.exp(log_mel)
    avg = torch.log(torch.bmm(w.transpose(1, 2), power) + 1e-12)
    code = Fn.position_encoding(n_frames, n_mels).expand(batch, -1, -1)
    enc = torch.bmm(w.transpose(1, 2), code)
    # max via the reference's parity trick: per frame its (at most one) odd and even bin
    mx = torch.full((batch, out_len, n_mels), 0.0)
    for parity in (0, 1):
        wp = w[:, :, parity::2]
        weight = wp.sum(-1)
        index = (wp.argmax(-1) * 2 + parity).clamp(max=out_len - 1)
        src = weight.unsqueeze(-1) * power
        mx = mx.scatter_reduce(1, index.unsqueeze(-1).expand(-1, -1, n_mels), src, "amax", include_self=True)
    mx = torch.log(mx * (n_frames / out_len) + 1e-12)
    return torch.stack([avg, mx, enc], 1)


def _measure(kind: str, n_frames: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    os.environ["DIFFRES_FUSED"] = "1" if kind == "fused" else "0"
    import diffres
    from diffres import fused

    if kind == "fused" and not fused.load():
        raise SystemExit("the fused kernel is not built: run `python -m diffres build-ext` first")
    module = diffres.DiffRes(128, 0.75).train()
    x = torch.randn(8, n_frames, 128) - 5.0
    if kind in ("fused", "torch"):
        def step():
            out = module(x)
            (out.features.sum() + out.guide_loss).backward()
    elif kind == "dense":
        def step():
            _dense_forward(module, x, 0.75).sum().backward()
    else:
        raise ValueError(kind)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step()  # warm-up
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    score_output: dict = {}

    def keep_logits(_module, _inputs, logits) -> None:
        score_output["logits"], score_output["at"] = logits, time.perf_counter()

    module.score_network.register_forward_hook(keep_logits)

    def split_step() -> tuple[float, float]:
        """``step`` with the backward split at the score network's output: returns (whole
        step, the part after the score network in forward and backward)."""
        t0 = time.perf_counter()
        out = module(x)
        loss = out.features.sum() + out.guide_loss
        logits, t1 = score_output["logits"], score_output["at"]
        (grad_logits,) = torch.autograd.grad(loss, logits)  # backward of everything after the score network
        t3 = time.perf_counter()
        logits.backward(grad_logits)  # backward of the score network
        return time.perf_counter() - t0, t3 - t1

    times, shares = [], []
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        if kind != "dense":
            module.zero_grad(set_to_none=True)
            total, tail = split_step()
            shares.append(tail / total)
    return {"kind": kind, "T": n_frames, "seconds": statistics.median(times), "peak_mb": peak_mb,
            "baseline_mb": baseline_mb, "after_score_share": statistics.median(shares) if shares else None}


def _run_child(kind: str, n_frames: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(n_frames), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"kind": kind, "T": n_frames, "seconds": float("nan"), "peak_mb": float("nan"),
                "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="T = 1000 and 3000 only")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child[0], int(args.child[1]), int(args.child[2]))))
        return

    import torch

    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} cores, 2 threads, device cpu")
    print("B = 8, F = 128, rate 0.75, one forward + backward; median of repeats; peak = process max RSS\n")
    lengths = [1000, 3000] if args.quick else [1000, 3000, 10000, 30000]
    dense_limit = 10000  # beyond this the dense [B, T, T'] matrices need > 20 GB
    rows = []
    for n_frames in lengths:
        repeats = 7 if n_frames <= 10000 else 3
        ours = _run_child("fused", n_frames, repeats)
        fallback = _run_child("torch", n_frames, repeats if n_frames <= 10000 else 1)
        dense = _run_child("dense", n_frames, 1 if n_frames >= 10000 else 3) if n_frames <= dense_limit else None
        rows.append((n_frames, ours, fallback, dense))

    header = (f"{'T':>6} | {'ours s':>7} {'ours MB':>8} {'+MB':>5} | {'s / 1k frames':>13} | {'after score net':>15} | "
              f"{'no-kernel s':>11} {'after':>6} | {'dense s':>8} {'dense MB':>9} | {'speed-up':>8} | published reference")
    print(header)
    print("-" * len(header))
    out = []
    for n_frames, ours, fallback, dense in rows:
        if "error" in ours:
            print(f"{n_frames:>6} | fused kernel run failed: {ours['error']}")
            continue
        tail = ours["after_score_share"]
        fb_txt = (f"{fallback['seconds']:11.3f} {100 * fallback['after_score_share']:5.0f}%"
                  if "error" not in fallback else f"{'n/a':>11} {'':>6}")
        if dense is not None and "error" not in dense:
            dense_txt = f"{dense['seconds']:8.2f} {dense['peak_mb']:9.0f}"
            speedup = f"{dense['seconds'] / ours['seconds']:7.1f}x"
        else:
            dense_txt = f"{'n/a':>8} {'n/a':>9}"
            speedup = f"{'n/a':>8}"
        ref = REFERENCE_FIGURES.get(n_frames, "")
        print(f"{n_frames:>6} | {ours['seconds']:7.3f} {ours['peak_mb']:8.0f} {ours['peak_mb'] - ours['baseline_mb']:5.0f} | "
              f"{1000 * ours['seconds'] / n_frames:13.4f} | {100 * tail:14.1f}% | {fb_txt} | {dense_txt} | {speedup} | {ref}")
        out.append({"T": n_frames, "ours": ours, "no_kernel": fallback, "dense": dense, "after_score_share": tail})
    print("\n+MB = peak above the process's size after importing torch and building the module (the CUDA build of"
          " torch alone maps ~0.7 GB).")
    print("after score net = share of the module's forward+backward spent outside the score network "
          "(normalisation, merge, max, encoding, guide loss), timed directly: a hook marks the end of the "
          "score network's forward and the backward is split at its output (median share over repeats); "
          "s / 1k frames flat = linear in T.")
    print("ours = with the fused CPU merge kernel (diffres.fused); no-kernel = the PyTorch merge path "
          "(DIFFRES_FUSED=0), as on CUDA or without a compiler.")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
