"""Streaming corpus benchmark: peak memory and throughput of reading 2k / 20k / 100k clips.

Generates tiny WAV clips (0.25-1 s of tones and noise, 16 kHz, 16-bit) into a temporary folder
of class folders, then, for each size, runs a fresh subprocess that scans the corpus and reads
every clip once through a ``DataLoader`` (decode, fit, log-mel in workers) and reports its
peak RSS (itself and, separately, its workers) and clips per second.  The figure: peak RSS
at 100k within 1.2x that at 2k.

Usage: ``python benchmarks/bench_streaming.py [--sizes 2000 20000 100000] [--workers 2]``
(``--json`` prints one JSON object last).  Prints versions, threads and the load average first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def generate(folder: Path, n_clips: int, n_classes: int = 10) -> None:
    """Write ``n_clips`` WAVs (class = tone frequency), reusing clips already there."""
    import numpy as np

    from diffres.audio import wav_bytes

    rng = np.random.default_rng(0)
    variants = []  # 64 distinct clips per class, written again under other names (keeps generation cheap)
    for c in range(n_classes):
        for _ in range(64):
            n = int(rng.integers(4000, 16001))
            t = np.arange(n) / 16000
            x = 0.3 * np.sin(2 * np.pi * (200.0 * (c + 1)) * t) + 0.02 * rng.standard_normal(n)
            variants.append(wav_bytes(x.astype(np.float32), 16000))
    for i in range(n_clips):
        c = i % n_classes
        d = folder / f"class{c:02d}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"clip{i:06d}.wav"
        if not f.exists():
            f.write_bytes(variants[c * 64 + (i // n_classes) % 64])


def child(folder: str, workers: int, batch: int) -> None:
    """Scan and read the corpus once; print one JSON line with peak RSS and throughput."""
    import torch
    from torch.utils.data import DataLoader

    from diffres.datasets.streaming import StreamingAudioDataset, collate_stream, scan_corpus
    from diffres.features import MelConfig

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    index = scan_corpus(folder, split_fractions=(1.0, 0.0, 0.0))
    scan_s = time.perf_counter() - t0
    ds = StreamingAudioDataset(index, "train", mel=MelConfig(n_mels=64), clip_seconds=1.0)
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=collate_stream, shuffle=True)
    n = failed = 0
    t1 = time.perf_counter()
    for b in loader:
        n += int(b.labels.shape[0])
        failed += len(b.failures)
    read_s = time.perf_counter() - t1
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "clips": len(index),
                "read": n,
                "failed": failed,
                "scan_s": round(scan_s, 2),
                "read_s": round(read_s, 2),
                "clips_per_s": round(n / read_s, 1),
                "peak_rss_mb": round(own, 1),
                "peak_worker_rss_mb": round(kids, 1),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--folder", default=None, help="where to generate (default a temporary folder, removed after)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.workers, args.batch_size)
        return
    import torch

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"{args.workers} workers (1 thread each), device cpu"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    base = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="diffres-bench-stream-"))
    rows = []
    try:
        for size in sorted(args.sizes):
            folder = base / f"n{size}"
            if not folder.exists() and rows:  # grow the previous corpus instead of writing it again
                shutil.copytree(base / f"n{rows[-1]['size']}", folder, copy_function=os.link)
            t0 = time.perf_counter()
            generate(folder, size)
            gen_s = time.perf_counter() - t0
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(folder),
                "--workers",
                str(args.workers),
                "--batch-size",
                str(args.batch_size),
            ]
            out = subprocess.run(
                cmd, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
            )
            row = {
                "size": size,
                "generate_s": round(gen_s, 1),
                **json.loads(out.stdout.strip().splitlines()[-1]),
                "load_average": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(
                f"{size:>7d} clips: peak RSS {row['peak_rss_mb']:7.1f} MB "
                f"(workers {row['peak_worker_rss_mb']:6.1f} MB), "
                f"{row['clips_per_s']:7.1f} clips/s, scan {row['scan_s']:.2f} s, {row['failed']} failed, "
                f"load {row['load_average']:.2f}",
                flush=True,
            )
    finally:
        if not args.folder:
            shutil.rmtree(base, ignore_errors=True)
    if len(rows) > 1:
        ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
        wratio = rows[-1]["peak_worker_rss_mb"] / rows[0]["peak_worker_rss_mb"]
        print(
            f"peak RSS {rows[-1]['size']} / {rows[0]['size']} clips: {ratio:.3f}x (workers {wratio:.3f}x); "
            f"target <= 1.2x: {'met' if max(ratio, wratio) <= 1.2 else 'NOT met'}"
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
