"""Training speed per built-in dataset: time per epoch and throughput (clips / s).

    python benchmarks/bench_training.py [--datasets events digits] [--frontends diffres full]
                                        [--epochs 2] [--threads 2] [--json]

For each dataset and front-end (default settings of :class:`diffres.training.TrainConfig`,
DiffRes at rate 0.75), builds a :class:`Trainer` (timing the one-off log-mel cache),
then trains ``--epochs`` epochs and reports, per epoch, the optimiser-step time, the
validation time and the training throughput.  The first epoch includes warm-up, so the
table shows the fastest epoch and the median.  The target on 2 CPU cores: one epoch of
``events`` in at most 15 s.

Timing on a shared machine is noisy (other processes take cores); the minimum over epochs
is the best estimate of the uncontended cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffres.training import TrainConfig, Trainer  # noqa: E402


def bench(dataset: str, frontend: str, epochs: int) -> dict:
    from diffres.datasets import load_dataset

    t0 = time.perf_counter()
    ds = load_dataset(dataset)
    load_s = time.perf_counter() - t0
    cfg = TrainConfig(dataset=dataset, frontend=frontend, epochs=epochs)
    t1 = time.perf_counter()
    tr = Trainer(cfg, ds)
    mel_s = time.perf_counter() - t1
    step_times, epoch_times = [], []
    while not tr.finished:
        recs = tr.run_for(1e9)  # exactly one epoch
        step_times.append(sum(r.seconds for r in recs))
        epoch_times.append(recs[-1].epoch_end.seconds)
    clips = tr.steps_per_epoch * tr.batch_size
    return {
        "dataset": dataset, "frontend": frontend, "n_train": tr.n_train, "clip_seconds": ds.clip_seconds,
        "frames": int(tr.probe_log_mel.shape[1]), "steps_per_epoch": tr.steps_per_epoch, "batch_size": tr.batch_size,
        "load_seconds": round(load_s, 2), "mel_cache_seconds": round(mel_s, 2),
        "epoch_seconds_min": round(min(epoch_times), 2), "epoch_seconds_median": round(float(np.median(epoch_times)), 2),
        "train_steps_seconds_min": round(min(step_times), 2),
        "throughput_clips_per_s": round(clips / min(step_times), 1),
        "val_accuracy_last": round(tr.history[-1].val_accuracy, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["events", "digits", "drums", "instruments"])
    p.add_argument("--frontends", nargs="*", default=["diffres"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()}, torch {torch.__version__}, device cpu "
          f"({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, load average {load:.1f}", flush=True)
    rows = []
    print(f"{'dataset':12s} {'front-end':10s} {'n_train':>7s} {'T':>5s} {'mel cache s':>11s} {'epoch s (min)':>13s} "
          f"{'epoch s (med)':>13s} {'clips/s':>8s} {'val acc':>7s}")
    for dataset in args.datasets:
        for fe in args.frontends:
            r = bench(dataset, fe, args.epochs)
            rows.append(r)
            print(f"{dataset:12s} {fe:10s} {r['n_train']:7d} {r['frames']:5d} {r['mel_cache_seconds']:11.1f} "
                  f"{r['epoch_seconds_min']:13.1f} {r['epoch_seconds_median']:13.1f} {r['throughput_clips_per_s']:8.1f} "
                  f"{r['val_accuracy_last']:7.3f}", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
