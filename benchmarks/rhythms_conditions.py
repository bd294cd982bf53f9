"""Where the shipped `rhythms` models win and lose: accuracy by background, timbre and SNR.

    python benchmarks/rhythms_conditions.py [--splits test val] [--checkpoints checkpoints/rhythms_*.pt]

For every shipped `rhythms` checkpoint (or those given), on the test split (held-out timbres
and backgrounds) and the validation split (training timbres and backgrounds): accuracy
overall and per background, per timbre and per SNR band (the clip's event-to-background
level, 12-32 dB), and for DiffRes models the concentration of importance on the patterns
(importance mass inside the pattern spans over their share of frames; 1 = uniform pooling,
4 = everything on the events at rate 0.75) per background.  Conditions come from each clip's
manifest entry.  Then, per model, accuracy per class and its most frequent confusions, and
for DiffRes models the share of a pattern's gaps (onsets at least 15 ms apart) that survive
the merge, on the clips it classifies right and on those it gets wrong: which classes the
gap to full resolution is made of, and whether it comes from merged gaps.  One thread;
prints the load average.
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
from diffres.datasets.rhythms import onset_times_s  # noqa: E402

SNR_BANDS = ((12.0, 18.0), (18.0, 25.0), (25.0, 33.0))
BATCH = 64
GAP_S = 0.015  # the coarse gaps (20-50 ms); grace notes (3-8 ms) lie within one 10 ms hop


def split_with_conditions(split_name: str):
    """(waveforms [N, n], labels [N], manifest params per clip) of one `rhythms` split."""
    from diffres.datasets import load_dataset
    from diffres.datasets.cache import split_params

    ds = load_dataset("rhythms")
    split = ds.splits[split_name]
    return np.asarray(split.waveforms, np.float32), np.asarray(split.labels), split_params(ds, split_name)


def conditions(params: dict) -> list[str]:
    snr = params["snr_db"]
    band = next(f"snr {lo:.0f}-{hi:.0f} dB" for lo, hi in SNR_BANDS if lo <= snr < hi)
    return [f"background {params['background']['kind']}", f"timbre {params['timbre']}", band]


def evaluate(model, x: np.ndarray, params: list[dict]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predicted class per clip; for DiffRes models also, per clip, the concentration
    (``concentration``), the share of its coarse gaps that survive the merge (``gaps_kept``)
    and the mean importance of its onset frames (``onset_importance``; 1 = kept one to one)."""
    preds, concs, kept, at_onsets = [], [], [], []
    is_diffres = model.config.frontend == "diffres"
    hop_s = model.mel.hop_seconds
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            log_mel = model.mel(torch.as_tensor(x[i : i + BATCH]))
            preds.append(model(log_mel).argmax(-1).numpy())
            if is_diffres:
                batch = params[i : i + BATCH]
                mask = analysis.event_mask([p["events_s"] for p in batch], log_mel.shape[1], hop_s)
                out = model.frontend(log_mel)
                concs.append(analysis.concentration(out.importance, mask).numpy())
                onsets = [onset_times_s(p) for p in batch]
                gaps = analysis.onsets_separated(out.bin_edges, onsets, hop_s, min_gap_s=GAP_S)
                kept.append(np.array([np.mean(g) if g else np.nan for g in gaps]))
                importance = out.importance.numpy()
                for row, clip_onsets in zip(importance, onsets, strict=True):
                    frames = np.minimum((np.asarray(clip_onsets) / hop_s).astype(int), row.shape[0] - 1)
                    at_onsets.append(row[frames].mean())
    if not is_diffres:
        return np.concatenate(preds), {}
    return np.concatenate(preds), {"concentration": np.concatenate(concs), "gaps_kept": np.concatenate(kept),
                                   "onset_importance": np.asarray(at_onsets)}


def confusions(y: np.ndarray, pred: np.ndarray, classes, top: int = 4) -> str:
    """The ``top`` most frequent wrong answers as ``true -> predicted n``."""
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for t, q in zip(y, pred, strict=True):
        if t != q:
            pairs[(int(t), int(q))] += 1
    ranked = sorted(pairs.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{classes[t]} -> {classes[q]} {n}" for (t, q), n in ranked) or "none"


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
        per_model = []
        for path in paths:
            loaded = diffres.load_checkpoint(path)
            model = loaded.model.eval()
            pred, merge = evaluate(model, x, params)
            conc = merge.get("concentration")
            ok = pred == y
            per_model.append((path.stem, model.classes, pred, merge))
            print(f"{path.stem:24s} {ok.mean():6.3f} " + " ".join(f"{ok[groups[g]].mean():12.3f}" for g in names))
            if conc is not None:
                print(f"{'  concentration':24s} {np.nanmean(conc):6.2f} "
                      + " ".join(f"{np.nanmean(conc[groups[g]]):12.2f}" for g in names))
        classes = per_model[0][1] if per_model else ()
        print(f"\n{split_name} split, accuracy per class:")
        print(f"{'model':24s} " + " ".join(f"{c:>11s}" for c in classes))
        for stem, _, pred, _ in per_model:
            print(f"{stem:24s} " + " ".join(f"{(pred[y == k] == k).mean():11.3f}" for k in range(len(classes))))
        for stem, _, pred, merge in per_model:
            print(f"{stem}: most frequent confusions: {confusions(y, pred, classes)}")
            if merge:
                ok = pred == y
                for key, what in (("gaps_kept", f"gaps of {GAP_S * 1000:.0f} ms or more kept apart by the merge"),
                                  ("onset_importance", "importance of the onset frames")):
                    print(f"{'':{len(stem)}s}  {what}: {np.nanmean(merge[key][ok]):.3f} on the {ok.sum()} clips "
                          f"it gets right, {np.nanmean(merge[key][~ok]):.3f} on the {(~ok).sum()} it gets wrong")
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
