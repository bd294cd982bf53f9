"""The shipped ``drums`` and ``instruments`` models on real recordings they never heard.

    python benchmarks/real_recordings.py [--checkpoint PATH ...] [--json]

The built-in sets are rendered from soundfonts; this asks how the shipped DiffRes models
do on recorded samples.  The recordings are the CC0 samples of the Debian package
``sonic-pi-samples`` (``apt-get install sonic-pi-samples``), labelled here by their file
names: real kicks, snares, toms, hi-hats and cymbals for ``drums``; guitar, piano, choir
and bass samples for ``instruments`` (most of the basses are synthesised, as General
MIDI's bass family allows).  A handful of clips per class: a sanity check, not a test set.

Each clip is classified twice: on the window of the model's clip length that starts
0.1 s before the first onset (where training clips start), and on the whole recording
(the classifier pools over time, so any length works).  Prints one line per clip and the
accuracy of each reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import diffres  # noqa: E402

SAMPLES = Path("/usr/share/sonic-pi/samples")
PACKAGE = "sonic-pi-samples"

#: file stem -> class, per dataset (only unambiguous names).
LABELS: dict[str, dict[str, str]] = {
    "drums": {
        **{s: "kick" for s in ("drum_heavy_kick", "drum_bass_hard", "drum_bass_soft", "bd_boom", "bd_fat",
                               "bd_haus", "bd_klub", "bd_pure", "bd_808")},
        **{s: "snare" for s in ("drum_snare_hard", "drum_snare_soft", "sn_dolf", "sn_dub", "sn_generic", "sn_zome")},
        **{s: "tom" for s in ("drum_tom_hi_hard", "drum_tom_hi_soft", "drum_tom_mid_hard", "drum_tom_mid_soft",
                              "drum_tom_lo_hard", "drum_tom_lo_soft")},
        **{s: "hihat" for s in ("drum_cymbal_closed", "drum_cymbal_pedal", "drum_cymbal_open")},
        **{s: "cymbal" for s in ("drum_cymbal_hard", "drum_cymbal_soft", "drum_splash_hard", "drum_splash_soft")},
    },
    "instruments": {
        **{s: "guitar" for s in ("guit_em9", "guit_e_fifths", "guit_e_slide", "guit_harmonics")},
        "ambi_piano": "keyboard",
        "ambi_choir": "vocal",
        **{s: "bass" for s in ("bass_hard_c", "bass_hit_c", "bass_thick_c", "bass_woodsy_c", "bass_voxy_c",
                               "bass_dnb_f", "bass_trance_c")},
    },
}

ONSET_DB = -30.0  # an onset: the first sample within this many dB of the clip's peak
PRE_ROLL_S = 0.1


def onset_window(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """``seconds`` of audio starting ``PRE_ROLL_S`` before the first onset (zero-padded)."""
    peak = float(np.max(np.abs(samples))) or 1.0
    first = int(np.argmax(np.abs(samples) >= peak * 10 ** (ONSET_DB / 20)))
    start = max(0, first - int(PRE_ROLL_S * sample_rate))
    n = int(round(seconds * sample_rate))
    out = samples[start : start + n]
    return np.pad(out, (0, n - len(out))) if len(out) < n else out


def evaluate(checkpoint: Path) -> dict:
    loaded = diffres.load_checkpoint(checkpoint)
    model, card = loaded.model.eval(), loaded.card
    dataset = card["dataset"]
    if dataset not in LABELS:
        raise SystemExit(f"{checkpoint.name}: no real recordings labelled for dataset '{dataset}'")
    rows = []
    for stem, label in sorted(LABELS[dataset].items(), key=lambda kv: (kv[1], kv[0])):
        path = SAMPLES / f"{stem}.flac"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: apt-get install {PACKAGE}")
        samples, _ = diffres.load_audio(path, sample_rate=model.config.sample_rate)
        window = model.predict(onset_window(samples, model.config.sample_rate, model.config.clip_seconds))
        whole = model.predict(samples, fit=False)
        rows.append({"clip": stem, "label": label, "seconds": round(len(samples) / model.config.sample_rate, 2),
                     "window": window.top(2), "whole": whole.top(2)})
    acc = {k: float(np.mean([r[k][0][0] == r["label"] for r in rows])) for k in ("window", "whole")}
    return {"checkpoint": checkpoint.name, "dataset": dataset, "dataset_version": card.get("dataset_version"),
            "test_accuracy": card["metrics"].get("test_accuracy"), "n": len(rows), "accuracy": acc, "clips": rows}


def _reading(top: list[tuple[str, float]], label: str) -> str:
    """``ok``/``--`` for the first class, then the top classes with their probabilities."""
    return ("ok " if top[0][0] == label else "-- ") + "  ".join(f"{c} {p:.2f}" for c, p in top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", type=Path,
                   default=[ROOT / "checkpoints" / f"{d}_diffres_r75.pt" for d in LABELS])
    p.add_argument("--json", action="store_true", help="print one JSON object per checkpoint instead of tables")
    args = p.parse_args()
    for ck in args.checkpoint:
        res = evaluate(ck)
        if args.json:
            print(json.dumps(res))
            continue
        print(f"\n{res['checkpoint']} (dataset v{res['dataset_version']}, synthetic test split "
              f"{res['test_accuracy']}): {res['n']} real recordings from {PACKAGE}")
        print(f"{'clip':22s} {'label':9s} {'s':>5s}  {'onset window (top 2)':34s} whole clip (top 2)")
        for r in res["clips"]:
            window, whole = (_reading(r[k], r["label"]) for k in ("window", "whole"))
            print(f"{r['clip']:22s} {r['label']:9s} {r['seconds']:5.1f}  {window:34s} {whole}")
        print(f"accuracy: onset window {res['accuracy']['window']:.2f}, whole clip {res['accuracy']['whole']:.2f} "
              f"(n = {res['n']})")


if __name__ == "__main__":
    main()
