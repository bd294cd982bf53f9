"""Why merging costs the grace-note classes: the full-resolution model under a fractional shift.

    python benchmarks/fractional_shift.py [--checkpoint checkpoints/rhythms_full_r75.pt] [--splits val test]

Once any frame's importance is below 1, DiffRes's output bins start at fractional positions
on the input frame axis, so an output frame over an onset is a mix of two input frames,
even where the importance is 1.  This script measures what that mix alone costs, with no
frame removed: the input of the shipped full-resolution `rhythms` model goes through the
library's own merge (:func:`diffres.functional.warp`, power domain) with importance 1 on
every frame but the first, which gets ``offset`` (and the last ``1 - offset``).  Output frame
``j`` is then ``offset * frame j + (1 - offset) * frame j+1``: the clip shifted by a fraction
of a hop, each frame blended with its neighbour, ``T - 1`` frames.  Offset 0 is a shift by one
whole frame (no blend) and is the control.  "random" draws one offset per clip, uniform in
[0, 1), as a merge does.  Prints accuracy overall and per class; one thread; load average.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import diffres  # noqa: E402
from diffres import functional as Fn  # noqa: E402

OFFSETS: tuple[float | None, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, None)
BATCH = 64


def shifted(log_mel: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``log_mel`` ``[B, T, F]`` merged with importance ``[offset, 1, ..., 1, 1 - offset]``
    (``offset`` ``[B]`` in [0, 1)): ``[B, T - 1, F]``, each frame a blend of two neighbours."""
    batch, n_frames, _ = log_mel.shape
    importance = torch.ones(batch, n_frames, dtype=log_mel.dtype)
    importance[:, 0] = offset
    importance[:, -1] = 1.0 - offset
    return torch.log(Fn.warp(torch.exp(log_mel), importance, n_frames - 1) + 1e-12)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "rhythms_full_r75.pt"))
    p.add_argument("--splits", nargs="*", default=["val", "test"])
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f}")
    model = diffres.load_checkpoint(args.checkpoint).model.eval()
    if model.config.frontend != "full":
        raise SystemExit(f"{args.checkpoint} is a {model.config.frontend} model; this needs a full-resolution one.")
    from diffres.datasets import load_dataset

    ds = load_dataset("rhythms")
    classes = list(model.classes)
    for split_name in args.splits:
        split = ds.splits[split_name]
        x = torch.as_tensor(np.asarray(split.waveforms, np.float32))
        y = np.asarray(split.labels)
        rng = torch.Generator().manual_seed(0)
        print(f"\n{split_name} split, {len(y)} clips; {Path(args.checkpoint).stem}")
        print(f"{'input':24s} {'all':>6s} " + " ".join(f"{c:>11s}" for c in classes))
        rows = [("as trained", None, False)] + [
            (f"offset {o}" if o is not None else "offset random", o, True) for o in OFFSETS
        ]
        for label, offset, shift in rows:
            preds = []
            with torch.no_grad():
                for i in range(0, len(x), BATCH):
                    log_mel = model.mel(x[i : i + BATCH])
                    if shift:
                        n = log_mel.shape[0]
                        o = torch.rand(n, generator=rng) if offset is None else torch.full((n,), float(offset))
                        log_mel = shifted(log_mel, o)
                    preds.append(model(log_mel).argmax(-1).numpy())
            pred = np.concatenate(preds)
            print(
                f"{label:24s} {(pred == y).mean():6.3f} "
                + " ".join(f"{(pred[y == k] == k).mean():11.3f}" for k in range(len(classes)))
            )
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
