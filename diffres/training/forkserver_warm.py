"""Imported once by the fork server of :mod:`diffres.training.remote` (see its ``PRELOAD``):
trains a tiny model for one step on one thread, so that torch's first-call costs (FFT and
kernel set-up, optimiser imports: about a second on a small machine) are paid there once and
every training process forked from it starts warm.

One thread, so that no thread pool exists at the fork (a child builds its own).  Importing
this module anywhere else only costs that one tiny step.
"""

from __future__ import annotations

import numpy as np
import torch

from ..datasets.base import AudioDataset, Split
from .config import TrainConfig
from .trainer import Trainer


def _warm() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        splits = {
            name: Split(
                (0.1 * rng.standard_normal((4, 8000))).astype(np.float32),
                np.array([0, 1, 0, 1]),
                [f"{name}/{i}.wav" for i in range(4)],
            )
            for name in ("train", "val")
        }
        dataset = AudioDataset("warm-up", ["a", "b"], 0.5, 16000, splits, source_description="fork server warm-up")
        Trainer(TrainConfig(epochs=1, batch_size=4, width=8, device="cpu"), dataset).step()
    finally:
        torch.set_num_threads(threads)


_warm()
