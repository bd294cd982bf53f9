"""Where the shipped `rhythms` models win and lose: accuracy by background, timbre and SNR.

    python benchmarks/rhythms_conditions.py [--splits test val] [--checkpoints checkpoints/rhythms_*.pt]

For every shipped `rhythms` checkpoint (or those given), on the test split (held-out timbres
and backgrounds) and the validation split (training timbres and backgrounds): accuracy
overall and per background, per timbre and per SNR band (the clip's event-to-background
level, 12-32 dB), and for DiffRes models the concentration of importance on the patterns
(importance mass inside the pattern spans over their share of frames; 1 = uniform pooling,
4 = everything on the events at rate 0.75) per background.  Conditions come from each clip's
manifest entry.  One thread; prints the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffres  # noqa: E402
from diffres import analysis  # noqa: E402

SNR_BANDS = ((12.0, 18.0), (18.0, 25.0), (25.0, 33.0))
BATCH = 64


def split_with_conditions(split_name: str):
    """(waveforms [N, n], labels [N], manifest params per clip) of one `rhythms` split."""
    from diffres.datasets import load_dataset
    from diffres.datasets.cache import read_manifest

    ds = load_dataset("rhythms")
    by_path = {str(Path(ds.root) / c["path"]): c["params"] for c in read_manifest(Path(ds.root))["clips"]}
    split = ds.splits[split_name]
    return np.asarray(split.waveforms, np.float32), np.asarray(split.labels), [by_path[p] for p in split.paths]


def conditions(params: dict) -> list[str]:
    snr = params["snr_db"]
    band = next(f"snr {lo:.0f}-{hi:.0f} dB" for lo, hi in SNR_BANDS if lo <= snr < hi)
    return [f"background {params['background']['kind']}", f"timbre {params['timbre']}", band]


def evaluate(model, x: np.ndarray, params: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    """Predicted class per clip, and the concentration per clip (None for fixed front-ends)."""
    preds, concs = [], []
    is_diffres = model.config.frontend == "diffres"
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            log_mel = model.mel(torch.as_tensor(x[i : i + BATCH]))
            preds.append(model(log_mel).argmax(-1).numpy())
            if is_diffres:
                spans = [p["events_s"] for p in params[i : i + BATCH]]
                mask = analysis.event_mask(spans, log_mel.shape[1], model.mel.hop_seconds)
                concs.append(analysis.concentration(model.frontend(log_mel).importance, mask).numpy())
    return np.concatenate(preds), (np.concatenate(concs) if is_diffres else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", nargs="*", default=["test", "val"])
    p.add_argument("--checkpoints", nargs="*", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    paths = [Path(c) for c in args.checkpoints] if args.checkpoints else sorted((ROOT / "checkpoints").glob("rhythms_*.pt"))
    print(f"torch {torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f}; {len(paths)} checkpoints")
    for split_name in args.splits:
        x, y, params = split_with_conditions(split_name)
        groups: dict[str, list[int]] = defaultdict(list)
        for j, prm in enumerate(params):
            for g in conditions(prm):
                groups[g].append(j)
        names = sorted(groups)
        print(f"\n{split_name} split, {len(y)} clips: " + ", ".join(f"{g} {len(groups[g])}" for g in names))
        print(f"{'model':24s} {'all':>6s} " + " ".join(f"{g.split(' ', 1)[1]:>12s}" for g in names))
        for path in paths:
            loaded = diffres.load_checkpoint(path)
            model = loaded.model.eval()
            pred, conc = evaluate(model, x, params)
            ok = pred == y
            print(f"{path.stem:24s} {ok.mean():6.3f} " + " ".join(f"{ok[groups[g]].mean():12.3f}" for g in names))
            if conc is not None:
                print(f"{'  concentration':24s} {np.nanmean(conc):6.2f} "
                      + " ".join(f"{np.nanmean(conc[groups[g]]):12.2f}" for g in names))
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
