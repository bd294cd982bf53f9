"""The shipped ``drums`` and ``instruments`` models on real recordings they never heard.

    python benchmarks/real_recordings.py [--checkpoint PATH ...] [--json] [--list]

The built-in sets are rendered from soundfonts; this asks how the shipped models do on
recorded sound.  The check set (``benchmarks/real_audio.py``; nothing of it is used in
training):

- drums: the labelled drum hits of ``sonic-pi-samples`` (CC0) and ``lmms-common``, and the
  AVL Red Zeppelin kit (``avldrums.lv2-soundfont``, 6 GM notes classes, 3 velocities), one
  clip per hit;
- instruments: the labelled instrument recordings of ``sonic-pi-samples`` and
  ``lmms-common``; each recording gives up to ``--windows`` clips of the model's length,
  one at each of its strongest onsets (notes of a phrase), so the check set has more clips
  than recordings (both counts are printed).

Each clip is read on the window of the model's clip length that starts 0.1 s before its
onset (where training clips start).  Prints per-source and per-class accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffres  # noqa: E402
import real_audio as R  # noqa: E402

PRE_ROLL_S = 0.1


def onsets(samples: np.ndarray, *, max_onsets: int, min_gap_s: float) -> list[int]:
    """Sample positions of the strongest energy rises (10 ms frames), at least
    ``min_gap_s`` apart, strongest first."""
    hop = int(0.01 * R.SAMPLE_RATE)
    n = len(samples) // hop
    if n < 2:
        return [0]
    energy = 10 * np.log10(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    rise = np.diff(energy, prepend=energy[0])
    loud = energy > energy.max() - 30.0
    order = np.argsort(-(rise * loud))
    picked: list[int] = []
    for i in order:
        if rise[i] <= 3.0 or len(picked) >= max_onsets:
            break
        if all(abs(int(i) - j) * 0.01 >= min_gap_s for j in picked):
            picked.append(int(i))
    return [i * hop for i in picked] or [int(np.argmax(energy)) * hop]


def window(samples: np.ndarray, start: int, seconds: float) -> np.ndarray:
    start = max(0, start - int(PRE_ROLL_S * R.SAMPLE_RATE))
    n = int(round(seconds * R.SAMPLE_RATE))
    out = samples[start : start + n]
    return np.pad(out, (0, n - len(out))) if len(out) < n else out


def check_set(dataset: str, clip_seconds: float, max_windows: int) -> list[tuple[str, str, str, np.ndarray]]:
    """``(name, label, source, window)`` items of the check set for ``dataset``."""
    if dataset == "drums":
        return [(c.name, c.label, c.source, window(c.samples, onsets(c.samples, max_onsets=1, min_gap_s=1)[0], clip_seconds))
                for c in R.drum_hits()]
    if dataset == "instruments":
        items = []
        for c in R.instrument_notes():
            for k, at in enumerate(onsets(c.samples, max_onsets=max_windows, min_gap_s=clip_seconds)):
                items.append((f"{c.name}@{at / R.SAMPLE_RATE:.2f}s", c.label, c.source, window(c.samples, at, clip_seconds)))
        return items
    raise SystemExit(f"no real recordings are labelled for dataset '{dataset}'")


def evaluate(checkpoint: Path, max_windows: int) -> dict:
    loaded = diffres.load_checkpoint(checkpoint)
    model, card = loaded.model.eval(), loaded.card
    items = check_set(card["dataset"], model.config.clip_seconds, max_windows)
    waves = torch.from_numpy(np.stack([w for *_, w in items]).astype(np.float32))
    with torch.no_grad():
        probs = torch.softmax(model(model.mel(waves)), dim=1).numpy()
    rows = []
    for (name, label, source, _), p in zip(items, probs):
        top = np.argsort(-p)[:2]
        rows.append({"clip": name, "label": label, "source": source,
                     "top": [(model.classes[i], round(float(p[i]), 3)) for i in top]})
    ok = [r["top"][0][0] == r["label"] for r in rows]
    by_source, by_class = defaultdict(list), defaultdict(list)
    for r, o in zip(rows, ok):
        by_source[r["source"]].append(o)
        by_class[r["label"]].append(o)
    return {"checkpoint": checkpoint.name, "dataset": card["dataset"], "dataset_version": card.get("dataset_version"),
            "test_accuracy": card["metrics"].get("test_accuracy"), "n": len(rows),
            "n_recordings": len({r["clip"].split("@")[0] for r in rows}), "accuracy": float(np.mean(ok)),
            "by_source": {k: [float(np.mean(v)), len(v)] for k, v in sorted(by_source.items())},
            "by_class": {k: [float(np.mean(v)), len(v)] for k, v in sorted(by_class.items())}, "clips": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", type=Path,
                   default=[ROOT / "checkpoints" / f"{d}_diffres_r75.pt" for d in ("drums", "instruments")])
    p.add_argument("--windows", type=int, default=4, help="clips per instrument recording (one per onset)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--list", action="store_true", help="print every clip's reading")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f}", flush=True)
    for ck in args.checkpoint:
        res = evaluate(ck, args.windows)
        if args.json:
            print(json.dumps(res))
            continue
        print(f"\n{res['checkpoint']} (dataset v{res['dataset_version']}, synthetic test {res['test_accuracy']}): "
              f"{res['n']} clips from {res['n_recordings']} recordings, accuracy {res['accuracy']:.3f}")
        print("  by source: " + ", ".join(f"{k} {a:.2f} (n={n})" for k, (a, n) in res["by_source"].items()))
        print("  by class:  " + ", ".join(f"{k} {a:.2f} (n={n})" for k, (a, n) in res["by_class"].items()))
        if args.list:
            for r in res["clips"]:
                mark = "ok" if r["top"][0][0] == r["label"] else "--"
                print(f"  {mark} {r['clip']:40s} {r['label']:9s} " + "  ".join(f"{c} {q:.2f}" for c, q in r["top"]))


if __name__ == "__main__":
    main()
