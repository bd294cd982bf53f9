"""Where do the shipped DiffRes models spend their output frames?

    python benchmarks/concentration.py [--checkpoints checkpoints/*_diffres*.pt] [--json]

Every DiffRes checkpoint runs (eval mode, whole clips, its own hop and rate) on clips whose
event positions are known, and the script prints, per model and clip set:

- **concentration**: importance mass inside the events over their share of frames
  (1.0 = uniform pooling; the ceiling is ``1 / (1 - rate)``, 4 at rate 0.75, when the
  events fit in the output frames);
- the **finest** and the **median effective hop** over the events (ms; the input hop is
  the best possible);
- **gaps kept**: the share of consecutive onsets at least 20 ms apart (two frames of a
  10 ms hop) that the merge keeps apart with an output frame between them, as full
  resolution does.

Clip sets:

- ``rhythms test``: the held-out test split of the built-in ``rhythms`` set (timbres and
  backgrounds never heard in training; the manifest records every onset);
- ``real drums``: sequences of real drum one-shots (sonic-pi, LMMS, the AVL Red Zeppelin
  kit; see ``benchmarks/real_audio.py``), 0.3-0.9 s of faint noise between hits;
- ``real speech``: spoken digit strings read by real speakers (pocketsphinx test data),
  cut at pauses and placed the same way.

Needs ``apt-get install sonic-pi-samples lmms-common avldrums.lv2-soundfont
pocketsphinx-testdata`` for the real sets (each set is skipped with a message otherwise).
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffres  # noqa: E402
from diffres import analysis  # noqa: E402

N_SEQUENCES = 40
SEQUENCE_SECONDS = 6.0
GAP_S = 0.02  # onsets at least two 10 ms frames apart


def rhythms_test(n_clips: int | None = None):
    """(name, samples [N, n], spans per clip, onsets per clip) of the rhythms test split."""
    from diffres.datasets import load_dataset
    from diffres.datasets.cache import split_params
    from diffres.datasets.rhythms import onset_times_s

    ds = load_dataset("rhythms")
    split = ds.splits["test"]
    params = split_params(ds, "test")[:n_clips]
    onsets = [onset_times_s(p) for p in params]
    return "rhythms test", list(split.waveforms[: len(params)]), [p["events_s"] for p in params], onsets


def real_sets():
    """The real-recording sequence sets that the installed packages allow."""
    import real_audio as R

    sets = []
    rng = np.random.default_rng(0)
    try:
        hits = [c.samples for c in R.drum_hits()]
        clips, spans, onsets = [], [], []
        for _ in range(N_SEQUENCES):
            pick = [hits[i] for i in rng.choice(len(hits), 8)]
            x, sp = R.sequence(pick, rng, seconds=SEQUENCE_SECONDS, max_event_s=0.25)
            clips.append(x), spans.append(sp), onsets.append([a for a, _ in sp])
        sets.append(("real drums", clips, spans, onsets))
    except R.MissingPackage as exc:
        print(f"real drums: skipped ({exc})", flush=True)
    try:
        phrases = [c.samples for c in R.speech_phrases()]
        clips, spans, onsets = [], [], []
        for _ in range(N_SEQUENCES):
            pick = [phrases[i] for i in rng.choice(len(phrases), 3, replace=False)]
            x, sp = R.sequence(pick, rng, seconds=SEQUENCE_SECONDS, gap_s=(0.8, 1.8))
            clips.append(x), spans.append(sp), onsets.append([])
        sets.append(("real speech", clips, spans, onsets))
    except R.MissingPackage as exc:
        print(f"real speech: skipped ({exc})", flush=True)
    return sets


def measure(model, clips, spans, onsets) -> dict:
    hop_s = model.mel.hop_seconds
    conc, finest, median, kept, share = [], [], [], [], []
    for x, sp, on in zip(clips, spans, onsets):
        with torch.no_grad():
            log_mel = model.mel(torch.as_tensor(np.asarray(x, np.float32)).reshape(1, -1))
            out = model.frontend(log_mel)
        mask = analysis.event_mask([sp], log_mel.shape[1], hop_s)
        share.append(float(mask.float().mean()))
        conc.append(float(analysis.concentration(out.importance, mask)[0]))
        f, m = analysis.event_hops_ms(out.bin_edges, mask, hop_s * 1000.0)
        finest.append(float(f[0])), median.append(float(m[0]))
        if on:
            kept += analysis.onsets_separated(out.bin_edges, [on], hop_s, min_gap_s=GAP_S)[0]
    return {"n": len(clips), "concentration": float(np.nanmean(conc)), "concentration_median": float(np.nanmedian(conc)),
            "finest_hop_ms": float(np.nanmedian(finest)), "median_hop_ms": float(np.nanmedian(median)),
            "gaps_kept": float(np.mean(kept)) if kept else None, "n_gaps": len(kept), "event_share": float(np.mean(share)),
            "ceiling": 1.0 / (1.0 - model.config.reduction_rate), "hop_ms": hop_s * 1000.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="*", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = [Path(c) for c in args.checkpoints] if args.checkpoints else sorted((ROOT / "checkpoints").glob("*.pt"))
    models = []
    for path in paths:
        loaded = diffres.load_checkpoint(path)
        if loaded.model.config.frontend == "diffres":
            models.append((path.stem, loaded.model.eval()))
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average {load:.1f}; "
          f"{len(models)} DiffRes checkpoints", flush=True)
    sets = [rhythms_test()] + real_sets()
    rows = []
    t0 = time.time()
    for name, model in models:
        for set_name, clips, spans, onsets in sets:
            r = measure(model, clips, spans, onsets)
            rows.append({"checkpoint": name, "clips": set_name, **r})
    print()
    print("| checkpoint | clips | n | event share | concentration (mean / median; ceiling) "
          "| finest hop over events, ms (input) | median hop over events, ms | gaps >= 20 ms kept |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        gaps = "" if r["gaps_kept"] is None else f"{r['gaps_kept']:.2f} of {r['n_gaps']}"
        print(f"| {r['checkpoint']} | {r['clips']} | {r['n']} | {r['event_share']:.2f} "
              f"| {r['concentration']:.2f} / {r['concentration_median']:.2f} "
              f"({r['ceiling']:.0f}) | {r['finest_hop_ms']:.1f} ({r['hop_ms']:g}) | {r['median_hop_ms']:.1f} | {gaps} |")
    print(f"\n({time.time() - t0:.0f} s)")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
