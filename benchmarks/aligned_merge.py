"""The aligned merge behind a learnt importance, against the paper's merge (RESULTS 8.3).

    python benchmarks/aligned_merge.py                      # seed 0: stage 1 is the shipped model
    python benchmarks/aligned_merge.py --seeds 0 1 2        # seeds 1 and 2 train their stage 1 here

Stage 1 is a `rhythms` DiffRes model trained with the paper's merge and the default recipe:
the shipped ``rhythms_diffres_r75`` for seed 0 (``benchmarks/train_checkpoints.py``, seed 0),
trained here for other seeds.  Stage 2 freezes its score network (weights and BatchNorm
statistics) and trains a fresh classifier, seeded like stage 1, for ``--epochs`` epochs on

- the aligned merge (:func:`diffres.functional.warp_aligned`: each frame whole in the bin
  holding its centre, so frames of importance 1 are not mixed with their neighbours), and
- the paper's merge (the control: the same frozen scores, classifier seed and epochs).

Prints validation and test accuracy of both, per class, the paired difference, and, per
stage-1 model, the share of onsets whose frame shares its aligned bin with the frame before
(the grace-note cue is lost there; ``diffres.datasets.rhythms.onset_times_s``).  The shipped
full-resolution model's accuracy is printed for reference.  Two trainings at a time, one
thread each; prints the load average.  About 5 minutes per seed and merge on 2 cores, plus 8
for a stage 1 that is not cached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

CHECKPOINTS = ROOT / "checkpoints"


def stage_two_frontend(base, aligned: bool):
    """A DiffRes front-end that shares ``base``'s score network, frozen, and merges with the
    aligned merge (``aligned``) or the paper's."""
    from diffres.core import DiffRes

    class StageTwo(DiffRes):
        def train(self, mode: bool = True):
            super().train(mode)
            self.score_network.eval()  # frozen: BatchNorm keeps stage 1's statistics
            return self

    frontend = StageTwo(base.n_mels, base.reduction_rate, channels=base.channels, importance=base.importance)
    frontend.score_network = base.score_network
    frontend.aligned_merge = aligned
    for p in frontend.score_network.parameters():
        p.requires_grad_(False)
    return frontend


def config(seed: int, epochs: int, stage_two: bool):
    from diffres.training import TrainConfig

    extra = dict(score_prior_steps=0) if stage_two else {}
    return TrainConfig(dataset="rhythms", frontend="diffres", reduction_rate=0.75, seed=seed, epochs=epochs, **extra)


def stage_one(seed: int, epochs: int) -> dict:
    """Score-network weights of the stage-1 model of ``seed`` (trained here unless shipped or cached)."""
    import diffres
    from diffres.training import Trainer

    if seed == 0:
        return diffres.load_checkpoint(CHECKPOINTS / "rhythms_diffres_r75.pt").model.state_dict()
    from diffres.datasets.cache import cache_root

    path = cache_root().parent / "aligned_merge" / f"stage1_seed{seed}_e{epochs}.pt"  # next to the dataset cache
    if path.is_file():
        return torch.load(path, weights_only=True)
    torch.set_num_threads(1)
    tr = Trainer(config(seed, epochs, stage_two=False))
    tr.fit()
    state = tr.model.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def stage_two(seed: int, stage1_epochs: int, epochs: int, aligned: bool) -> dict:
    """Train the fresh classifier behind the frozen stage-1 scores; accuracy per split and class."""
    from diffres.training import Trainer

    torch.set_num_threads(1)
    scores = {k: v for k, v in stage_one(seed, stage1_epochs).items() if k.startswith("frontend.score_network.")}
    tr = Trainer(config(seed, epochs, stage_two=True))
    missing = tr.model.load_state_dict(scores, strict=False).missing_keys
    if not scores or any(k.startswith("frontend.score_network.") for k in missing):
        raise SystemExit(f"stage 1 of seed {seed} holds no complete score network")
    tr.model.frontend = stage_two_frontend(tr.model.frontend, aligned)
    t0 = time.perf_counter()
    tr.fit()
    out = {"seconds": time.perf_counter() - t0}
    for split in ("val", "test"):
        r = tr.evaluate(split)
        out[split] = r.accuracy
        out[f"{split}_per_class"] = r.per_class
    return out


def onsets_sharing_a_bin(seed: int, stage1_epochs: int) -> float:
    """Share of validation onsets whose frame lies in the same aligned bin as the frame before."""
    from diffres import functional as Fn
    from diffres.datasets import load_dataset
    from diffres.datasets.cache import split_params
    from diffres.datasets.rhythms import onset_times_s
    from diffres.training import Trainer

    torch.set_num_threads(1)
    tr = Trainer(config(seed, 1, stage_two=True))
    tr.model.load_state_dict(stage_one(seed, stage1_epochs))
    model = tr.model.eval()
    x, _ = tr.features("val")
    params = split_params(load_dataset("rhythms"), "val")
    with torch.no_grad():
        importance = model.frontend(x).importance
    bins = Fn.aligned_bins(importance, Fn.output_length(x.shape[1], model.config.reduction_rate)).numpy()
    hop_s = model.mel.hop_seconds
    shared = []
    for row, p in zip(bins, params, strict=True):
        for t in onset_times_s(p):
            n = min(int(t / hop_s), row.shape[0] - 1)
            if n >= 1:
                shared.append(row[n] == row[n - 1])
    return float(np.mean(shared))


def full_reference() -> dict:
    import diffres
    from diffres.training import Trainer

    torch.set_num_threads(1)
    model = diffres.load_checkpoint(CHECKPOINTS / "rhythms_full_r75.pt").model
    tr = Trainer(replace(config(0, 1, stage_two=False), frontend="full"))
    tr.model = model
    return {split: tr.evaluate(split).accuracy for split in ("val", "test")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--epochs", type=int, default=40, help="stage-2 epochs")
    p.add_argument("--stage1-epochs", type=int, default=40)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {args.jobs} jobs of one thread, load average {os.getloadavg()[0]:.1f}")
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        later = [s for s in args.seeds if s != 0]
        list(pool.map(stage_one, later, [args.stage1_epochs] * len(later)))  # cached for what follows
        jobs = {
            (s, a): pool.submit(stage_two, s, args.stage1_epochs, args.epochs, a)
            for s in args.seeds
            for a in (True, False)
        }
        shares = {s: pool.submit(onsets_sharing_a_bin, s, args.stage1_epochs) for s in args.seeds}
        full = pool.submit(full_reference).result()
        results = {k: f.result() for k, f in jobs.items()}
    print(
        f"\nrhythms, rate 0.75, stage 2 {args.epochs} epochs; full resolution (shipped): "
        f"val {full['val']:.3f}, test {full['test']:.3f}"
    )
    print(
        f"{'seed':>4s} {'aligned val':>11s} {'test':>6s} {'paper val':>10s} {'test':>6s} {'onsets sharing a bin':>21s}"
    )
    for s in args.seeds:
        a, b = results[(s, True)], results[(s, False)]
        print(f"{s:4d} {a['val']:11.3f} {a['test']:6.3f} {b['val']:10.3f} {b['test']:6.3f} {shares[s].result():21.3f}")
    for split in ("val", "test"):
        d = np.array([results[(s, True)][split] - results[(s, False)][split] for s in args.seeds])
        print(
            f"aligned minus paper's merge, {split}: {d.mean():+.3f} (per seed "
            + ", ".join(f"{v:+.3f}" for v in d)
            + f"; ahead on {(d > 0).sum()} of {len(d)})"
        )
    for s in args.seeds:
        for merge, aligned in (("aligned", True), ("paper's", False)):
            per = results[(s, aligned)]["val_per_class"]
            print(f"seed {s} {merge:8s} val per class: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
