"""Compare time-reduction front-ends at equal frame budgets (the paper's main claim).

    python benchmarks/compare_frontends.py                  # run what is missing, then report
    python benchmarks/compare_frontends.py --report         # only rewrite the tables
    python benchmarks/compare_frontends.py --seeds 0 --datasets digits --rates 0.75

Every run trains one model from scratch on a built-in dataset and evaluates it on the
held-out test split.  Finished runs are appended to ``benchmarks/results/compare_frontends.json``
(one JSON object per line) and skipped when the script runs again, so it can be stopped
and restarted at will.  Order: the first rate (and the fine-hop rows) for all seeds,
then the other rates for all seeds.

Also the high-resolution rows: DiffRes on a fine hop (``--fine-hop-ms``, default 2.5 ms)
reduced to the frame count of the 10 ms spectrogram, against ``full`` at 10 ms and
average pooling from the same fine hop.

``--report`` writes ``benchmarks/results/compare_frontends.md`` (included in docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffres import output_length  # noqa: E402
from diffres.training import TrainConfig, Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compare_frontends.json"
REPORT = ROOT / "benchmarks" / "results" / "compare_frontends.md"
FRONTEND_ORDER = ["diffres", "avgpool", "maxpool", "avgmaxpool", "convavgpool", "changehop", "full"]
EPOCHS = {"events": 8, "digits": 8}
CLIP_SECONDS = {"events": 2.0, "digits": 1.0}


def run_key(r: dict) -> str:
    return f"{r['dataset']}|{r['frontend']}|{r['reduction_rate']:.4f}|{r['hop_ms']:g}|{r['seed']}|{r['epochs']}"


def load_results() -> list[dict]:
    if not RESULTS.is_file():
        return []
    out = []
    for line in RESULTS.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill: it is simply rerun
    return out


def fine_rate(dataset: str, fine_hop_ms: float, hop_ms: float = 10.0) -> float:
    """Reduction rate that brings the fine-hop frame count down to the ``hop_ms`` count."""
    n = int(round(CLIP_SECONDS[dataset] * 16000))
    t_fine = 1 + n // int(round(fine_hop_ms * 16))
    t_ref = 1 + n // int(round(hop_ms * 16))
    rate = 1.0 - (t_ref + 0.5) / t_fine
    assert output_length(t_fine, rate) == t_ref
    return round(rate, 6)


def plan(datasets, rates, seeds, frontends, fine_hop_ms) -> list[dict]:
    """The first rate and the fine-hop rows for every seed, then the other rates for every
    seed (the most informative runs first when time is short)."""
    jobs = []
    for stage in ("first", "rest"):
        for seed in seeds:
            for dataset in datasets:
                stage_rates = rates[:1] if stage == "first" else rates[1:]
                for rate in stage_rates:
                    for fe in frontends:
                        if fe == "full" and rate != rates[0]:
                            continue  # rate-independent: one run per seed
                        jobs.append(dict(dataset=dataset, frontend=fe, reduction_rate=rate, hop_ms=10.0, seed=seed,
                                         epochs=EPOCHS[dataset], tag="budget"))
                if fine_hop_ms and stage == "first":
                    r = fine_rate(dataset, fine_hop_ms)
                    for fe in ("diffres", "avgpool"):
                        jobs.append(dict(dataset=dataset, frontend=fe, reduction_rate=r, hop_ms=fine_hop_ms, seed=seed,
                                         epochs=EPOCHS[dataset], tag="fine-hop"))
    return jobs


def run(job: dict, datasets_cache: dict) -> dict:
    from diffres.datasets import load_dataset

    ds = datasets_cache.get(job["dataset"])
    if ds is None:
        ds = datasets_cache[job["dataset"]] = load_dataset(job["dataset"])
    cfg = TrainConfig(dataset=job["dataset"], frontend=job["frontend"], reduction_rate=job["reduction_rate"],
                      hop_ms=job["hop_ms"], seed=job["seed"], epochs=job["epochs"], device="cpu")
    t0 = time.perf_counter()
    tr = Trainer(cfg, ds)
    prep = time.perf_counter() - t0
    tr.fit()
    x, y = tr.features("test")
    t1 = time.perf_counter()
    test = tr.evaluate("test")
    infer = time.perf_counter() - t1
    val = tr.history[-1].val_accuracy
    n_frames = x.shape[1]
    with torch.no_grad():
        tr.model.eval()
        kept = tr.model.frontend(x[:2]).out_len
    epoch_seconds = [h.seconds for h in tr.history]
    return dict(job, val_accuracy=round(val, 4), test_accuracy=round(test.accuracy, 4), n_test=test.n,
                frames_in=int(n_frames), frames_kept=int(kept), params=tr.model.n_parameters(),
                train_seconds=round(tr.elapsed_seconds, 2), prepare_seconds=round(prep, 2),
                median_epoch_seconds=round(float(np.median(epoch_seconds)), 3),
                min_epoch_seconds=round(float(np.min(epoch_seconds)), 3),
                inference_ms_per_clip=round(1000 * infer / max(1, test.n), 3),
                guide_loss_last_epoch=round(tr.history[-1].guide_loss, 4),
                finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def fmt_ms(values) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def report(results: list[dict]) -> str:
    lines = [f"_Generated by `benchmarks/compare_frontends.py --report` from {len(results)} runs "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Times: fastest epoch over the "
             "runs (one thread, shared machine); inference: median ms per test clip in batches of 128._", ""]
    groups = defaultdict(list)
    for r in results:
        groups[(r["dataset"], r["tag"], r["reduction_rate"], r["hop_ms"], r["frontend"])].append(r)
    for dataset in ("events", "digits"):
        rows = [(k, v) for k, v in groups.items() if k[0] == dataset and k[1] == "budget"]
        if not rows:
            continue
        lines += [f"### `{dataset}` (hop 10 ms; {rows[0][1][0]['epochs']} epochs; test split, n = {rows[0][1][0]['n_test']})", "",
                  "| rate | front-end | seeds | test accuracy (mean ± sd) | val accuracy | frames kept / input | train s / epoch (fastest) | inference ms / clip |",
                  "|---|---|---|---|---|---|---|---|"]
        full = [v for k, v in rows if k[4] == "full"]
        rates = sorted({k[2] for k, _ in rows if k[4] != "full"}, reverse=True)
        for rate in rates:
            for fe in FRONTEND_ORDER:
                runs = groups.get((dataset, "budget", rate, 10.0, fe)) if fe != "full" else (full[0] if full else None)
                if not runs:
                    continue
                lines.append(
                    f"| {rate:g} | {fe} | {len(runs)} | {fmt_ms([r['test_accuracy'] for r in runs])} | "
                    f"{fmt_ms([r['val_accuracy'] for r in runs])} | {runs[0]['frames_kept']} / {runs[0]['frames_in']} | "
                    f"{np.min([r['min_epoch_seconds'] for r in runs]):.1f} | "
                    f"{np.median([r['inference_ms_per_clip'] for r in runs]):.2f} |")
        lines.append("")
        fine = [(k, v) for k, v in groups.items() if k[0] == dataset and k[1] == "fine-hop"]
        if fine:
            lines += [f"High resolution on `{dataset}`: a fine hop reduced to the 10 ms frame count", "",
                      "| setting | seeds | test accuracy | frames kept / input | train s / epoch (fastest) |", "|---|---|---|---|---|"]
            for k, runs in sorted(fine, key=lambda kv: kv[0][4]):
                lines.append(f"| {k[4]} from hop {k[3]:g} ms (rate {k[2]:.3f}) | {len(runs)} | "
                             f"{fmt_ms([r['test_accuracy'] for r in runs])} | {runs[0]['frames_kept']} / {runs[0]['frames_in']} | "
                             f"{np.min([r['min_epoch_seconds'] for r in runs]):.1f} |")
            if full:
                runs = full[0]
                lines.append(f"| full at hop 10 ms | {len(runs)} | {fmt_ms([r['test_accuracy'] for r in runs])} | "
                             f"{runs[0]['frames_kept']} / {runs[0]['frames_in']} | "
                             f"{np.min([r['min_epoch_seconds'] for r in runs]):.1f} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["digits", "events"])
    p.add_argument("--rates", nargs="*", type=float, default=[0.75, 0.5])
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--frontends", nargs="*", default=FRONTEND_ORDER)
    p.add_argument("--fine-hop-ms", type=float, default=2.5, help="0 disables the high-resolution rows")
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy 2-core machine")
    p.add_argument("--report", action="store_true", help="only write the report from finished runs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads, cpu", flush=True)
    if not args.report:
        done = {run_key(r) for r in load_results()}
        cache: dict = {}
        jobs = plan(args.datasets, args.rates, args.seeds, args.frontends, args.fine_hop_ms)
        todo = [j for j in jobs if run_key(j) not in done]
        print(f"{len(jobs)} runs planned, {len(jobs) - len(todo)} already done", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for i, job in enumerate(todo, 1):
            t0 = time.time()
            res = run(job, cache)
            with RESULTS.open("a") as fh:
                fh.write(json.dumps(res) + "\n")
            print(f"[{i}/{len(todo)}] {job['dataset']} {job['frontend']} rate {job['reduction_rate']:.3f} hop {job['hop_ms']:g} "
                  f"seed {job['seed']}: test {res['test_accuracy']:.3f} val {res['val_accuracy']:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    text = report(load_results())
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
