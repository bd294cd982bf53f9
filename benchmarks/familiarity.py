"""Does each shipped model know when a sound is unlike its training data?

    python benchmarks/familiarity.py [--write] [--checkpoints ...]

For every shipped checkpoint, fits :class:`diffres.familiarity.Familiarity` (two views,
the classifier's embeddings and a summary of the log-mel, each a Gaussian fitted on the
training split with its threshold at the 99th percentile of the validation split; the
score is the larger of the two), then scores the *test* split of every built-in dataset,
the real recordings of ``benchmarks/real_audio.py`` and the example gallery (its most
familiar window, as the app does):

- own test split: the share scored familiar (score <= 1; about 0.99 if calibrated);
- other datasets and recordings: the share scored unfamiliar (> 1), and the AUROC of the
  score between the model's own test clips and the others;
- the suggestion: for each test clip of each dataset, the shipped model with the lowest
  score; the share of clips for which that is a model of the clip's own dataset.

``--write`` stores the statistics in the checkpoints (the model weights are unchanged).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffres  # noqa: E402
from diffres.examples import list_examples, load_example  # noqa: E402
from diffres.familiarity import Familiarity, score_clip  # noqa: E402

MAX_TRAIN = 3000


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """P(score of an outside clip > score of an inside clip)."""
    scores = np.concatenate([inside, outside])
    ranks = scores.argsort().argsort() + 1.0
    r_out = ranks[len(inside):].sum()
    return float((r_out - len(outside) * (len(outside) + 1) / 2) / (len(inside) * len(outside)))


def main() -> None:
    from diffres.datasets import load_dataset
    from diffres.training import log_mel_of

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="*", default=None)
    p.add_argument("--write", action="store_true", help="store the statistics in the checkpoints")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = [Path(c) for c in args.checkpoints] if args.checkpoints else sorted((ROOT / "checkpoints").glob("*.pt"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}", flush=True)
    datasets = {}
    t0 = time.time()
    loaded = {}
    for path in paths:
        ck = diffres.load_checkpoint(path)
        name = ck.card["dataset"]
        if name not in datasets:
            datasets[name] = load_dataset(name)
        loaded[path.stem] = ck
    test_sets = {name: ds.splits["test"].waveforms for name, ds in datasets.items()}
    try:
        import real_audio as R

        test_sets["real drums"] = [c.samples for c in R.drum_hits()]
        test_sets["real instruments"] = [c.samples for c in R.instrument_notes()]
        test_sets["real speech"] = [c.samples for c in R.speech_phrases()]
    except Exception as exc:  # noqa: BLE001 - the real sets are optional
        print(f"real recordings skipped: {exc}", flush=True)
    scores: dict[str, dict[str, np.ndarray]] = {}
    gallery: dict[str, dict[str, float]] = {}
    for stem, ck in loaded.items():
        model, dataset = ck.model, datasets[ck.card["dataset"]]
        train = dataset.splits["train"]
        keep = np.random.default_rng(0).permutation(len(train))[:MAX_TRAIN]
        fam = Familiarity.fit(model, log_mel_of(model, train.waveforms[keep]), torch.as_tensor(train.labels[keep]),
                              log_mel_of(model, dataset.splits["val"].waveforms))
        scores[stem] = {}
        for set_name, waves in test_sets.items():
            fitted = torch.stack([model.fit_length(np.asarray(w, np.float32))[0] for w in waves])
            scores[stem][set_name] = fam.score(model, model.mel(fitted)).numpy()
        gallery[stem] = {ex.key: score_clip(model, fam, load_example(ex.key)) for ex in list_examples()}
        if args.write:
            diffres.save_checkpoint(path_of(paths, stem), model, card=ck.card, training_state=ck.training_state,
                                    familiarity=fam)
        own = scores[stem][ck.card["dataset"]]
        others = np.concatenate([v for k, v in scores[stem].items() if k != ck.card["dataset"]])
        print(f"{stem}: own test familiar {np.mean(own <= 1):.2f}; others unfamiliar {np.mean(others > 1):.2f}; "
              f"AUROC {auroc(own, others):.3f}", flush=True)
    print("\n| model | " + " | ".join(test_sets) + " |")
    print("|---|" + "---|" * len(test_sets))
    for stem, per in scores.items():
        print(f"| {stem} | " + " | ".join(f"{np.mean(v > 1):.2f}" for v in per.values()) + " |")
    print("\n(share of clips scored unfamiliar, score > 1)")
    # suggestion accuracy: the lowest-scoring model belongs to the clip's dataset
    stems = list(scores)
    for set_name in datasets:
        matrix = np.stack([scores[s][set_name] for s in stems])  # [models, clips]
        best = [loaded[stems[i]].card["dataset"] for i in matrix.argmin(axis=0)]
        print(f"suggestion for {set_name} test clips: right dataset {np.mean([b == set_name for b in best]):.2f}")
    print("\nGallery clips (score of the most familiar window; > 1 unfamiliar):\n")
    keys = [ex.key for ex in list_examples()]
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for stem, per in gallery.items():
        print(f"| {stem} | " + " | ".join(f"{per[k]:.1f}" for k in keys) + " |")
    print(f"({time.time() - t0:.0f} s)")


def path_of(paths, stem):
    return next(p for p in paths if p.stem == stem)


if __name__ == "__main__":
    main()
