"""Corpus training throughput per device: one epoch on a generated set, CPU vs CUDA, and
the data loader alone (is the GPU ever waiting for data?).

Generates ``--clips`` tiny WAVs (benchmarks/bench_streaming.py's generator, 10 classes),
then for each device in ``--devices`` that this machine has, trains one epoch with
:class:`diffres.training.corpus.CorpusTrainer` (streamed, ``--workers`` loader workers, AMP
``auto``) and reports training clips/s (validation excluded), and separately how fast the
loader alone delivers clips.  Issue 12's figure: the GPU's training throughput at least 20x
this 2-core CPU's on the 20k set, in the same script.

    python benchmarks/bench_corpus_devices.py --clips 20000 --devices cpu cuda --workers 8
    python benchmarks/bench_corpus_devices.py --clips 512 --devices cpu   # a quick check

CPU epochs are long on 20k clips; ``--cpu-steps N`` times N steps on CPU and scales.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _time_steps(trainer, n_steps: int) -> float:
    """Seconds for ``n_steps`` training steps (loader included, evaluation excluded)."""
    import torch

    trainer.sampler.set_epoch(0)
    loader = trainer._loader(trainer.train_set, trainer.local_batch, trainer.sampler)
    it = iter(loader)
    trainer._step(next(it), 0)  # warm-up: workers started, kernels compiled
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for batch in itertools.islice(it, n_steps):
        trainer._step(batch, 0)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20000)
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--cpu-steps", type=int, default=20, help="CPU steps timed (scaled to the epoch)")
    ap.add_argument("--folder", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import torch
    from bench_streaming import generate

    from diffres.datasets.streaming import scan_corpus
    from diffres.training import TrainConfig
    from diffres.training.corpus import CorpusOptions, CorpusTrainer

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, GPU: {gpu}, "
        f"{torch.get_num_threads()} torch threads, {args.workers} loader workers"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="diffres-bench-devices-"))
    rows = []
    try:
        generate(base, args.clips)
        index = scan_corpus(base, split_fractions=(0.9, 0.1, 0.0))
        for name in args.devices:
            if name.startswith("cuda") and not torch.cuda.is_available():
                print(f"{name}: no CUDA device here, skipped")
                continue
            cfg = TrainConfig(dataset=str(base), epochs=1, batch_size=args.batch_size, device=name)
            trainer = CorpusTrainer(cfg, index, options=CorpusOptions(clip_seconds=1.0, num_workers=args.workers))
            steps = trainer.steps_per_epoch - 1 if name != "cpu" else min(args.cpu_steps, trainer.steps_per_epoch - 1)
            seconds = _time_steps(trainer, steps)
            clips_s = steps * trainer.batch_size / seconds
            t0 = time.perf_counter()
            n = 0
            loader = trainer._loader(trainer.train_set, trainer.local_batch, trainer.sampler)
            for batch in itertools.islice(loader, steps):
                n += int(batch.labels.shape[0])
            loader_s = n / (time.perf_counter() - t0)
            row = {
                "device": name,
                "amp": trainer.amp.name,
                "steps_timed": steps,
                "train_clips_per_s": round(clips_s, 1),
                "epoch_seconds": round(trainer.n_train / clips_s, 1),
                "loader_clips_per_s": round(loader_s, 1),
                "load_average": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(
                f"{name:>6} (amp {row['amp']}): {clips_s:8.1f} training clips/s, epoch of {trainer.n_train} clips "
                f"{row['epoch_seconds']:.1f} s; loader alone {loader_s:8.1f} clips/s; load {row['load_average']}"
            )
    finally:
        if not args.folder:
            shutil.rmtree(base, ignore_errors=True)
    by = {r["device"]: r for r in rows}
    if "cpu" in by and any(d.startswith("cuda") for d in by):
        g = next(r for d, r in by.items() if d.startswith("cuda"))
        ratio = g["train_clips_per_s"] / by["cpu"]["train_clips_per_s"]
        print(
            f"GPU / CPU training throughput: {ratio:.1f}x (target >= 20x); "
            f"GPU waits for data: {'yes' if g['loader_clips_per_s'] < 1.1 * g['train_clips_per_s'] else 'no'}"
        )
    if args.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
