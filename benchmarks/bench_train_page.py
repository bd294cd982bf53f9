"""Train page speed: one epoch of the default ``events`` set on 2 CPU threads, and how fast
the page answers a click while a trainer is live.

Run: ``python benchmarks/bench_train_page.py [--json] [--frontends diffres,avgpool]``

Measures
1. Library: ``Trainer`` preparation (load + log-mel cache) and one epoch through ``run_for``
   in 0.3 s slices, exactly as the page calls it, with the page's default settings
   (``TrainConfig`` as built by ``pages/train.py``), plus the per-step time split into the
   front-end and the classifier.
2. App (AppTest, no browser): time of a fragment tick (a plain ``run()`` while playing =
   one training chunk + redraw), and time of a Pause click's rerun while another thread is
   inside an optimiser step of the same trainer (the situation in a real browser: the click
   arrives mid-step).  The goal is an epoch in at most 15 s and a click answered within 1 s.

Load from other processes distorts the numbers, so the load average is printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

THREADS = 2
torch.set_num_threads(THREADS)

# The page's defaults (pages/train.py): width 16, batch 32, 64 mel bins, 10 ms hop, rate 0.75.
PAGE_DEFAULTS = dict(dataset="events", reduction_rate=0.75, hop_ms=10.0, epochs=8, learning_rate=3e-3, seed=0, width=16,
                     batch_size=32, n_mels=64, spec_augment=True, device="cpu")


def header() -> dict:
    import streamlit

    info = {
        "python": platform.python_version(), "torch": torch.__version__, "streamlit": streamlit.__version__,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None, "device": "cpu",
    }
    for k, v in info.items():
        print(f"{k:>15}: {v}")
    return info


def bench_library(frontend: str) -> dict:
    from diffres.training import TrainConfig, Trainer

    cfg = TrainConfig(frontend=frontend, **PAGE_DEFAULTS)
    t0 = time.perf_counter()
    tr = Trainer(cfg)
    prepare = time.perf_counter() - t0
    # correctness check before timing: a step runs and the loss is finite
    chunks = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    while tr.epoch < 1:
        c0 = time.perf_counter()
        recs = tr.run_for(0.3)
        chunks.append(time.perf_counter() - c0)
        assert all(torch.isfinite(torch.tensor(r.loss)) for r in recs)
    epoch = time.perf_counter() - t0
    epoch_cpu = time.process_time() - cpu0
    rec = tr.history[-1]
    # front-end vs classifier, forward + backward on one batch
    x = tr.features("train")[0][: tr.batch_size]
    tr.model.train()
    timings = {}
    for _ in range(2):
        t0 = time.perf_counter()
        out = tr.model.frontend(x)
        t1 = time.perf_counter()
        logits = tr.model.classifier(out.features)
        t2 = time.perf_counter()
        (logits.sum() + out.guide_loss).backward()
        t3 = time.perf_counter()
        timings = {"frontend_forward_s": t1 - t0, "classifier_forward_s": t2 - t1, "backward_s": t3 - t2}
    tr.model.zero_grad(set_to_none=True)
    return {
        "frontend": frontend, "n_train": tr.n_train, "steps_per_epoch": tr.steps_per_epoch, "prepare_s": prepare,
        "epoch_s": epoch, "epoch_record_s": rec.seconds, "epoch_cpu_s": epoch_cpu,
        # CPU seconds spread over the threads: the wall time an otherwise idle machine would need
        # (an estimate that assumes the threads kept busy; other processes' load does not count here)
        "epoch_idle_estimate_s": epoch_cpu / THREADS, "val_accuracy_after_1": rec.val_accuracy,
        "max_chunk_s": max(chunks), "median_chunk_s": sorted(chunks)[len(chunks) // 2],
        "step_s": (epoch / tr.steps_per_epoch), **timings,
    }


def bench_app() -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("DIFFRES_RUNS_DIR", "/tmp/diffres_bench_runs")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/train.py").run()
    t0 = time.perf_counter()
    at.button(key="train_play").click().run()
    play_first = time.perf_counter() - t0
    run = at.session_state["train_runs"][at.session_state["train_active"]]
    ticks = []
    for _ in range(6):
        t0 = time.perf_counter()
        at.run()
        ticks.append(time.perf_counter() - t0)
    assert not at.exception, at.exception
    # a click while another thread is inside an optimiser step of this trainer
    tr = run.trainer
    started = threading.Event()

    def busy():
        with run.lock:
            started.set()
            tr.step()

    th = threading.Thread(target=busy)
    th.start()
    started.wait()
    t0 = time.perf_counter()
    at.button(key="train_play").click().run()  # Pause
    click = time.perf_counter() - t0
    th.join()
    assert run.status == "paused", run.status
    # a click on a paused page (no training anywhere)
    t0 = time.perf_counter()
    at.toggle(key="train_follow").set_value(False).run() if [t for t in at.toggle if t.key == "train_follow"] else at.run()
    idle_click = time.perf_counter() - t0
    return {"first_play_click_s (prepares data)": play_first, "tick_median_s": sorted(ticks)[len(ticks) // 2],
            "tick_max_s": max(ticks), "pause_click_mid_step_s": click, "click_when_paused_s": idle_click,
            "note": "AppTest reruns include the whole page twice (ui.frame.ensure_entrypoint), so they bound the "
                    "browser's fragment time from above"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--frontends", default="diffres,avgpool")
    ap.add_argument("--skip-app", action="store_true")
    args = ap.parse_args()
    info = header()
    results = {"env": info, "library": [], "app": None}
    print(f"\n{'front-end':>10} {'prepare s':>10} {'epoch s':>8} {'CPU s/2':>8} {'step s':>7} {'fe fwd s':>8} "
          f"{'cnn fwd s':>9} {'bwd s':>6} {'max chunk s':>11} {'val acc':>7}")
    for fe in args.frontends.split(","):
        r = bench_library(fe.strip())
        results["library"].append(r)
        print(f"{r['frontend']:>10} {r['prepare_s']:>10.2f} {r['epoch_s']:>8.2f} {r['epoch_idle_estimate_s']:>8.2f} "
              f"{r['step_s']:>7.3f} "
              f"{r['frontend_forward_s']:>8.3f} {r['classifier_forward_s']:>9.3f} {r['backward_s']:>6.3f} "
              f"{r['max_chunk_s']:>11.2f} {r['val_accuracy_after_1']:>7.1%}")
    if not args.skip_app:
        app = bench_app()
        results["app"] = app
        print()
        for k, v in app.items():
            print(f"{k:>36}: {v:.2f}" if isinstance(v, float) else f"{k:>36}: {v}")
    print(f"\nload average after: {os.getloadavg()}")
    if args.json:
        print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
