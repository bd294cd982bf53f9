"""A fine hop reduced by DiffRes against full resolution at the same classifier frame count.

    python benchmarks/fine_hop.py [--threads 1] [--repeats 5]

Compares the shipped ``rhythms_diffres_fine`` (2.5 ms hop, DiffRes keeps the frame count
of a 10 ms spectrogram), ``rhythms_full_r75`` (10 ms hop, no reduction: the same number of
frames reach the classifier) and ``rhythms_diffres_r75`` (10 ms hop, a quarter kept):

- test accuracy on the ``rhythms`` test split (re-evaluated, not read from the cards);
- training cost: the fastest epoch in each checkpoint's history (one thread, a shared
  machine, so read these as rough) and, measured side by side in this run, one training
  step (batch 32, forward + backward from the waveform's log-mel, interleaved repeats,
  median);
- inference: ms per clip from the waveform (mel + front-end + classifier) in batches of
  128, interleaved repeats, median.

Prints the machine's load average.  The figure of issue 14: the fine model at least 0.03
above ``rhythms_full_r75``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import diffres  # noqa: E402
from diffres.checkpoints import LoadedCheckpoint  # noqa: E402
from diffres.training import evaluate_checkpoint  # noqa: E402

NAMES = ("rhythms_diffres_fine", "rhythms_full_r75", "rhythms_diffres_r75")


def fastest_epoch_seconds(loaded: LoadedCheckpoint) -> float:
    history = json.loads((loaded.training_state or {}).get("history") or "[]")
    return min((e["seconds"] for e in history), default=float("nan"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from diffres.datasets import load_dataset

    print(f"torch {torch.__version__}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}", flush=True)
    ds = load_dataset("rhythms")
    test = ds.splits["test"]
    wave = torch.as_tensor(test.waveforms[:128])
    labels = torch.as_tensor(test.labels[:32])
    loaded = {n: diffres.load_checkpoint(ROOT / "checkpoints" / f"{n}.pt") for n in NAMES}
    acc = {n: evaluate_checkpoint(ROOT / "checkpoints" / f"{n}.pt", ds) for n in NAMES}

    infer: dict[str, list[float]] = {n: [] for n in NAMES}
    step: dict[str, list[float]] = {n: [] for n in NAMES}
    for _ in range(args.repeats):  # interleaved, so load changes hit every model alike
        for n in NAMES:
            model = loaded[n].model
            model.eval()
            with torch.no_grad():
                t0 = time.perf_counter()
                model(model.mel(wave))
                infer[n].append((time.perf_counter() - t0) * 1000.0 / wave.shape[0])
            model.train()
            log_mel = model.mel(wave[:32])
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(log_mel), labels)
            loss.backward()
            step[n].append(time.perf_counter() - t0)
            model.zero_grad(set_to_none=True)

    full = "rhythms_full_r75"
    print("\n| model | hop ms | frames in / to classifier | test accuracy (n) | fastest epoch s (card) "
          "| training step s (batch 32, this run) | inference ms / clip (this run) |")
    print("|---|---|---|---|---|---|---|")
    for n in NAMES:
        m = loaded[n].model
        one = m.mel(wave[:1])
        t_in, t_out = one.shape[1], m.frontend(one).features.shape[2]
        print(f"| {n} | {m.config.hop_ms:g} | {t_in} / {t_out} | {acc[n].accuracy:.3f} ({acc[n].n}) "
              f"| {fastest_epoch_seconds(loaded[n]):.1f} | {statistics.median(step[n]):.3f} "
              f"| {statistics.median(infer[n]):.2f} |")
    fine = "rhythms_diffres_fine"
    diff = acc[fine].accuracy - acc[full].accuracy
    print(f"\nfine minus full: {diff:+.3f} (figure: at least +0.03: {'met' if diff >= 0.03 else 'NOT met'})")
    step_ratio = statistics.median(step[fine]) / statistics.median(step[full])
    infer_ratio = statistics.median(infer[fine]) / statistics.median(infer[full])
    print(f"cost of fine against full, same run: training step {step_ratio:.2f}x, inference {infer_ratio:.2f}x; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
