"""Regenerate the shipped checkpoints in ``checkpoints/``.

    python benchmarks/train_checkpoints.py                          # all missing ones
    python benchmarks/train_checkpoints.py --only rhythms_diffres_r75 --force
    python benchmarks/train_checkpoints.py --familiarity-only       # refit the statistics only

For every built-in dataset a DiffRes model at rate 0.75; for ``rhythms``, ``events`` and
``digits`` also the ``full``, ``avgpool`` and ``changehop`` baselines at the same frame
budget; and ``rhythms_diffres_fine``, DiffRes on a 2.5 ms hop reduced to the frame count of
the 10 ms spectrogram.  Every model is trained with the default recipe of
:class:`~diffres.training.TrainConfig` (augmentation: SpecAugment, random gain, background
noise, time shift; for DiffRes the energy prior and the score network's own learning rate)
plus the per-dataset settings below, saved without optimiser state to stay small, and
carries its familiarity statistics (:mod:`diffres.familiarity`) so the app can tell when a
sound is unlike its training data.  The card records where the data came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402

from compare_frontends import fine_rate  # noqa: E402
from diffres import load_checkpoint, save_checkpoint  # noqa: E402
from diffres.training import TrainConfig, Trainer  # noqa: E402

OUT = ROOT / "checkpoints"
FINE_HOP_MS = 2.5

#: Per-dataset training settings (shared by DiffRes and the baselines of that dataset).
DATASET_SETTINGS: dict[str, dict] = {
    "events": dict(epochs=24),
    "digits": dict(epochs=16),
    # wider and longer: on the real-recording check set 0.914 against 0.856 at width 16 / 24
    # epochs (benchmarks/real_recordings.py), the synthetic test split 1.0 against 0.985.
    # A sharper energy prior (gain 1 per dB from 6 dB above the floor): importance on real drum
    # hits 3.18x their share of frames against 2.31 (benchmarks/concentration.py), real check
    # set 0.914 either way (docs/RESULTS.md 8.6)
    "drums": dict(epochs=40, width=32, score_prior_gain=1.0, score_prior_threshold=6.0),
    # a held-out soundfont in the test split: needs timbre generalisation, so a wider
    # network, mixup, label smoothing, pitch-like mel shifts, random equalisation and bigger
    # frequency masks
    "instruments": dict(epochs=36, width=32, mixup_alpha=0.4, mixup_probability=0.5, label_smoothing=0.1,
                        freq_shift_bins=3, freq_mask_bins=12, eq_db=10.0),
    "rhythms": dict(epochs=40),
}

#: name -> (dataset, front-end, extra settings)
JOBS: dict[str, tuple[str, str, dict]] = {
    **{f"{ds}_diffres_r75": (ds, "diffres", {}) for ds in ("rhythms", "events", "digits", "drums", "instruments")},
    **{f"{ds}_{fe}_r75": (ds, fe, {}) for ds in ("rhythms", "events", "digits") for fe in ("avgpool", "changehop", "full")},
    "rhythms_diffres_fine": ("rhythms", "diffres", dict(hop_ms=FINE_HOP_MS, reduction_rate=fine_rate("rhythms", FINE_HOP_MS))),
}


def train_one(name: str, *, seed: int = 0, out: Path = OUT) -> dict:
    from diffres.datasets import DATASET_INFO

    dataset, frontend, extra = JOBS[name]
    settings = {"reduction_rate": 0.75, **DATASET_SETTINGS[dataset], **extra}
    cfg = TrainConfig(dataset=dataset, frontend=frontend, seed=seed, **settings)
    t0 = time.time()
    trainer = Trainer(cfg)
    while not trainer.finished:
        rec = trainer.step()
        if rec.epoch_end is not None:
            e = rec.epoch_end
            print(f"  {name} epoch {e.epoch}/{cfg.epochs}: loss {e.train_loss:.3f} val {e.val_accuracy:.3f} "
                  f"({e.seconds:.1f} s)", flush=True)
    hop = f"{cfg.hop_ms:g} ms hop" + (f", reduced to the frame count of a 10 ms hop" if cfg.hop_ms != 10.0 else "")
    extra_card = {
        "dataset_version": DATASET_INFO[dataset]["version"],
        "description": f"{cfg.frontend} front-end at reduction rate {cfg.reduction_rate:g} on the built-in "
                       f"'{dataset}' set, {hop} (benchmarks/train_checkpoints.py)",
        "augmentation": "SpecAugment (masks at zero power), random gain, background noise, circular time shift"
                        + (", mixup" if cfg.mixup_alpha > 0 else "") + (", random equaliser" if cfg.eq_db > 0 else ""),
        "wall_seconds": round(time.time() - t0, 1),
        "load_average": round(os.getloadavg()[0], 2),
    }
    card = trainer.save(out / f"{name}.pt", card_extra=extra_card, include_optimizer=False, familiarity=True)
    print(f"{name}: val {card['metrics']['val_accuracy']} test {card['metrics']['test_accuracy']} "
          f"train {card['train_seconds']:.0f} s", flush=True)
    return card


def refit_familiarity(path: Path) -> None:
    """Add (or refresh) the familiarity statistics of an existing checkpoint; weights and
    card unchanged."""
    loaded = load_checkpoint(path)
    card = loaded.card
    settings = {**card.get("training", {}), "device": "cpu"}
    cfg = TrainConfig.from_dict(settings) if settings.get("dataset") else TrainConfig(dataset=card["dataset"])
    trainer = Trainer(cfg)
    trainer.model.load_state_dict(loaded.model.state_dict())
    save_checkpoint(path, loaded.model, card=card, training_state=loaded.training_state,
                    familiarity=trainer.familiarity())
    print(f"{path.stem}: familiarity statistics written", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="names like rhythms_diffres_r75")
    p.add_argument("--force", action="store_true", help="retrain even when the checkpoint exists")
    p.add_argument("--familiarity-only", action="store_true",
                   help="only add the familiarity statistics to existing checkpoints that lack them (with --force: all)")
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy 2-core machine")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}",
          flush=True)
    names = [n for n in JOBS if not args.only or n in args.only]
    for name in names:
        path = OUT / f"{name}.pt"
        if args.familiarity_only:
            if path.is_file() and (args.force or load_checkpoint(path).familiarity is None):
                refit_familiarity(path)
            continue
        if path.is_file() and not args.force:
            print(f"{name}: exists, skipped", flush=True)
            continue
        train_one(name)
    summary = {p.stem: json.loads(p.with_suffix(".json").read_text())["metrics"] for p in sorted(OUT.glob("*.pt"))}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
