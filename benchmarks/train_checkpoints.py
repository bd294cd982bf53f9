"""Regenerate the shipped checkpoints in ``checkpoints/``.

    python benchmarks/train_checkpoints.py                 # all missing ones
    python benchmarks/train_checkpoints.py --only events_diffres_r75 --force

For every built-in dataset a DiffRes model at rate 0.75; for ``events`` and ``digits`` also
the ``full``, ``avgpool`` and ``changehop`` baselines at the same frame budget.  Models are
trained with augmentation (SpecAugment, random gain, background noise, time shift, mixup
where it helps) so they do not just fit the synthetic test split, and are saved without
optimiser state to stay small.  The card records where the data came from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from diffres.training import TrainConfig, Trainer  # noqa: E402

OUT = ROOT / "checkpoints"

#: Per-dataset training settings (shared by DiffRes and the baselines of that dataset).
DATASET_SETTINGS = {
    "events": dict(epochs=24),
    "digits": dict(epochs=16),
    "drums": dict(epochs=24),
    # a held-out soundfont in the test split: needs timbre generalisation, so a wider
    # network, mixup, label smoothing, pitch-like mel shifts, random equalisation and bigger
    # frequency masks
    "instruments": dict(epochs=36, width=32, mixup_alpha=0.4, mixup_probability=0.5, label_smoothing=0.1,
                        freq_shift_bins=3, freq_mask_bins=12, eq_db=10.0),
}

JOBS = [(ds, "diffres") for ds in ("events", "digits", "drums", "instruments")] + [
    (ds, fe) for ds in ("events", "digits") for fe in ("avgpool", "changehop", "full")
]


def name_of(dataset: str, frontend: str, rate: float = 0.75) -> str:
    return f"{dataset}_{frontend}_r{int(round(rate * 100))}"


def train_one(dataset: str, frontend: str, *, seed: int = 0, out: Path = OUT) -> dict:
    from diffres.datasets import DATASET_INFO

    cfg = TrainConfig(dataset=dataset, frontend=frontend, reduction_rate=0.75, seed=seed, **DATASET_SETTINGS[dataset])
    t0 = time.time()
    trainer = Trainer(cfg)
    for rec in iter(lambda: trainer.step(), None):
        if rec.epoch_end is not None:
            e = rec.epoch_end
            print(f"  {dataset}/{frontend} epoch {e.epoch}/{cfg.epochs}: loss {e.train_loss:.3f} "
                  f"val {e.val_accuracy:.3f} ({e.seconds:.1f} s)", flush=True)
        if trainer.finished:
            break
    extra = {
        "dataset_version": DATASET_INFO[dataset]["version"],
        "description": f"{cfg.frontend} front-end at reduction rate {cfg.reduction_rate} on the built-in "
                       f"'{dataset}' set (benchmarks/train_checkpoints.py)",
        "augmentation": "SpecAugment (masks at zero power), random gain, background noise, circular time shift"
                        + (", mixup" if cfg.mixup_alpha > 0 else ""),
        "wall_seconds": round(time.time() - t0, 1),
    }
    card = trainer.save(out / f"{name_of(dataset, frontend)}.pt", card_extra=extra, include_optimizer=False)
    print(f"{name_of(dataset, frontend)}: val {card['metrics']['val_accuracy']} test {card['metrics']['test_accuracy']} "
          f"train {card['train_seconds']:.0f} s", flush=True)
    return card


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="names like events_diffres_r75")
    p.add_argument("--force", action="store_true", help="retrain even when the checkpoint exists")
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy 2-core machine")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for dataset, frontend in JOBS:
        name = name_of(dataset, frontend)
        if args.only and name not in args.only:
            continue
        if (OUT / f"{name}.pt").is_file() and not args.force:
            print(f"{name}: exists, skipped", flush=True)
            continue
        train_one(dataset, frontend)
    summary = {p.stem: json.loads(p.with_suffix(".json").read_text())["metrics"] for p in sorted(OUT.glob("*.pt"))}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
