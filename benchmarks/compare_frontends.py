"""Compare time-reduction front-ends at equal frame budgets (the paper's main claim).

    python benchmarks/compare_frontends.py --datasets rhythms drums     # run what is missing, then report
    python benchmarks/compare_frontends.py --report                     # only rewrite the tables
    python benchmarks/compare_frontends.py --datasets rhythms --seeds 0 1 --rates 0.75 --jobs 2

Every run trains one model from scratch on a built-in dataset with the default
:class:`~diffres.training.TrainConfig` (the same recipe for every front-end; DiffRes's
score-network settings only matter to DiffRes) and evaluates the last model on the
held-out test split.  Finished runs are appended to ``benchmarks/results/compare_frontends.json``
(one JSON object per line) and skipped when the script runs again, so it can be stopped
and restarted at will; ``--jobs N`` runs N trainings at a time, one thread each.
``--device cuda`` trains on the GPU instead (the same recipe; several jobs share the card),
and ``--results FILE`` appends the new runs to FILE instead (runs already in either file are
skipped), which is how runs made on a lent GPU machine come back to be merged.

Reported per dataset and rate: test accuracy mean ± sd over seeds; whether the validation
curve has flattened (the mean of the last five epochs against the five before); and a
*paired* comparison across seeds: DiffRes minus each other front-end, seed by seed, with
the mean, the sd, how many seeds DiffRes won, and a two-sided paired t-test.

Also the high-resolution rows: DiffRes on a fine hop (``--fine-hop-ms``) reduced to the
frame count of the 10 ms spectrogram, against ``full`` at 10 ms (the same classifier
frame count).

The first two datasets (events, digits; 8 epochs, 3 seeds) were run by an earlier version
of this script with an earlier recipe; their rows are kept and marked so.

``--report`` writes ``benchmarks/results/compare_frontends.md`` (included in docs/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compare_frontends.json"
REPORT = ROOT / "benchmarks" / "results" / "compare_frontends.md"
FRONTEND_ORDER = ["diffres", "avgpool", "maxpool", "avgmaxpool", "convavgpool", "changehop", "full"]
EPOCHS = {"events": 8, "digits": 8, "rhythms": 40, "drums": 30}
CLIP_SECONDS = {"events": 2.0, "digits": 1.0, "rhythms": 3.0, "drums": 1.0}
FINE_WINDOW_MS = 25.0


def run_key(r: dict) -> str:
    return (f"{r['dataset']}|{r['frontend']}|{r['reduction_rate']:.4f}|{r['hop_ms']:g}|{r.get('win_ms', 25.0):g}|"
            f"{r['seed']}|{r['epochs']}")


def load_results(path: Path = RESULTS) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill: it is simply rerun
    return out


def all_results(extra: Path = RESULTS) -> list[dict]:
    """The shared results file's runs, and ``extra``'s when it is another file."""
    return load_results() + (load_results(extra) if extra.resolve() != RESULTS.resolve() else [])


def fine_rate(dataset: str, fine_hop_ms: float, hop_ms: float = 10.0) -> float:
    """Reduction rate that brings the fine-hop frame count down to the ``hop_ms`` count."""
    from diffres import output_length

    n = int(round(CLIP_SECONDS[dataset] * 16000))
    t_fine = 1 + n // int(round(fine_hop_ms * 16))
    t_ref = 1 + n // int(round(hop_ms * 16))
    rate = 1.0 - (t_ref + 0.5) / t_fine
    assert output_length(t_fine, rate) == t_ref
    return round(rate, 6)


def plan(datasets, rates, seeds, frontends, fine_hop_ms) -> list[dict]:
    """For each seed: the first rate (and the fine-hop rows), then the other rates; the
    most informative runs first when time is short."""
    jobs = []
    for stage in ("first", "rest"):
        for seed in seeds:
            for dataset in datasets:
                stage_rates = rates[:1] if stage == "first" else rates[1:]
                for rate in stage_rates:
                    for fe in frontends:
                        if fe == "full" and rate != rates[0]:
                            continue  # rate-independent: one run per seed
                        jobs.append(dict(dataset=dataset, frontend=fe, reduction_rate=rate, hop_ms=10.0, win_ms=25.0,
                                         seed=seed, epochs=EPOCHS[dataset], tag="budget"))
                if fine_hop_ms and stage == "first":
                    jobs.append(dict(dataset=dataset, frontend="diffres", reduction_rate=fine_rate(dataset, fine_hop_ms),
                                     hop_ms=fine_hop_ms, win_ms=FINE_WINDOW_MS, seed=seed, epochs=EPOCHS[dataset],
                                     tag="fine-hop"))
    return jobs


def run(job: dict) -> dict:
    """Train and test one job (in this process); returns its result record."""
    import torch

    from diffres.datasets import load_dataset
    from diffres.training import TrainConfig, Trainer

    torch.set_num_threads(1)
    device = job.get("device", "cpu")
    ds = load_dataset(job["dataset"])
    cfg = TrainConfig(dataset=job["dataset"], frontend=job["frontend"], reduction_rate=job["reduction_rate"],
                      hop_ms=job["hop_ms"], win_ms=job.get("win_ms", 25.0), seed=job["seed"], epochs=job["epochs"],
                      device=device)
    t0 = time.perf_counter()
    tr = Trainer(cfg, ds)
    prep = time.perf_counter() - t0
    tr.fit()
    x, _ = tr.features("test")
    t1 = time.perf_counter()
    test = tr.evaluate("test")
    infer = time.perf_counter() - t1
    with torch.no_grad():
        tr.model.eval()
        kept = tr.model.frontend(x[:2]).out_len
    epoch_seconds = [h.seconds for h in tr.history]
    return dict(job, val_accuracy=round(tr.history[-1].val_accuracy, 4), test_accuracy=round(test.accuracy, 4),
                n_test=test.n, val_curve=[round(h.val_accuracy, 4) for h in tr.history],
                per_class={k: round(v, 4) for k, v in test.per_class.items()},
                frames_in=int(x.shape[1]), frames_kept=int(kept), params=tr.model.n_parameters(),
                train_seconds=round(tr.elapsed_seconds, 2), prepare_seconds=round(prep, 2),
                median_epoch_seconds=round(float(np.median(epoch_seconds)), 3),
                min_epoch_seconds=round(float(np.min(epoch_seconds)), 3),
                inference_ms_per_clip=round(1000 * infer / max(1, test.n), 3),
                activeness_last_epoch=round(tr.history[-1].activeness, 4),
                load_average=round(os.getloadavg()[0], 2),
                device_name=torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
                finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def mean_sd(values) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def flattened(runs: list[dict]) -> str:
    """Mean change of validation accuracy from the 5 epochs before the last 5 to the last 5."""
    deltas = [np.mean(r["val_curve"][-5:]) - np.mean(r["val_curve"][-10:-5]) for r in runs if len(r.get("val_curve", [])) >= 10]
    return "" if not deltas else f"{np.mean(deltas):+.3f}"


def paired(a: dict[int, float], b: dict[int, float]) -> str:
    """DiffRes minus another front-end over the seeds both have: mean ± sd, wins, t-test p."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return ""
    d = np.array([a[s] - b[s] for s in seeds])
    sd = d.std(ddof=1)
    if sd > 0:
        from scipy import stats

        p = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
        ptxt = f"p = {p:.3f}" if p >= 0.001 else "p < 0.001"
    else:
        ptxt = "p n/a"
    return f"{d.mean():+.3f} ± {sd:.3f} ({int((d > 0).sum())}/{len(seeds)} seeds; {ptxt})"


def on_gpu(r: dict) -> bool:
    return str(r.get("device", "cpu")).startswith("cuda")


def seeds_text(runs: list[dict]) -> str:
    """How many seeds, and how many of them ran on a GPU."""
    gpu = sum(on_gpu(r) for r in runs)
    return f"{len(runs)}" + (f" ({gpu} on GPU)" if gpu else "")


def cost_text(runs: list[dict]) -> str:
    """Fastest epoch and median inference time, from the CPU runs only (GPU runs are not
    comparable with them); a group with GPU runs alone is timed from those, marked so."""
    timed = [r for r in runs if not on_gpu(r)] or runs
    mark = " (GPU)" if on_gpu(timed[0]) else ""
    return (f"{np.min([r['min_epoch_seconds'] for r in timed]):.1f}{mark} | "
            f"{np.median([r['inference_ms_per_clip'] for r in timed]):.2f}{mark}")


def report(results: list[dict]) -> str:
    lines = [f"_Generated by `benchmarks/compare_frontends.py --report` from {len(results)} runs "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). Times: fastest epoch over the "
             "CPU runs (one thread each, a shared 2-core machine; runs on a GPU are counted in 'seeds' and timed "
             "only where a row has no CPU run, marked GPU); inference: median ms per test clip in batches of 128. "
             "'Flattened' is the mean change in validation accuracy from epochs -10..-6 to the last five._", ""]
    groups = defaultdict(list)
    for r in results:
        groups[(r["dataset"], r["tag"], r["reduction_rate"], r["hop_ms"], r["frontend"])].append(r)
    for dataset in ("rhythms", "drums", "events", "digits"):
        rows = [(k, v) for k, v in groups.items() if k[0] == dataset and k[1] == "budget"]
        if not rows:
            continue
        epochs = sorted({r["epochs"] for _, v in rows for r in v})
        old = " (earlier recipe, 8 epochs)" if dataset in ("events", "digits") else ""
        lines += [f"### `{dataset}`{old} (hop 10 ms; {'/'.join(map(str, epochs))} epochs; test split, n = {rows[0][1][0]['n_test']})", "",
                  "| rate | front-end | seeds | test accuracy (mean ± sd) | val accuracy | flattened | frames kept / input | train s / epoch (fastest) | inference ms / clip |",
                  "|---|---|---|---|---|---|---|---|---|"]
        full = [v for k, v in rows if k[4] == "full"]
        rates = sorted({k[2] for k, _ in rows if k[4] != "full"}, reverse=True)
        for rate in rates:
            for fe in FRONTEND_ORDER:
                runs = groups.get((dataset, "budget", rate, 10.0, fe)) if fe != "full" else (full[0] if full else None)
                if not runs:
                    continue
                lines.append(
                    f"| {rate:g} | {fe} | {seeds_text(runs)} | {mean_sd([r['test_accuracy'] for r in runs])} | "
                    f"{mean_sd([r['val_accuracy'] for r in runs])} | {flattened(runs)} | {runs[0]['frames_kept']} / {runs[0]['frames_in']} | "
                    f"{cost_text(runs)} |")
        lines.append("")
        if dataset in ("rhythms", "drums"):
            lines += [f"Paired across seeds on `{dataset}` (test accuracy, DiffRes minus each front-end at the same rate; full at any rate):", "",
                      "| rate | DiffRes minus | difference (mean ± sd; seeds won; paired t-test) |", "|---|---|---|"]
            for rate in rates:
                mine = {r["seed"]: r["test_accuracy"] for r in groups.get((dataset, "budget", rate, 10.0, "diffres"), [])}
                for fe in FRONTEND_ORDER[1:]:
                    other = full[0] if fe == "full" and full else groups.get((dataset, "budget", rate, 10.0, fe), [])
                    text = paired(mine, {r["seed"]: r["test_accuracy"] for r in other})
                    if text:
                        lines.append(f"| {rate:g} | {fe} | {text} |")
            lines.append("")
        fine = [(k, v) for k, v in groups.items() if k[0] == dataset and k[1] == "fine-hop"]
        if fine:
            lines += [f"High resolution on `{dataset}`: a fine hop reduced to the 10 ms frame count", "",
                      "| setting | seeds | test accuracy | frames kept / input | train s / epoch (fastest) | inference ms / clip |",
                      "|---|---|---|---|---|---|"]
            for k, runs in sorted(fine, key=lambda kv: kv[0][4]):
                lines.append(f"| {k[4]} from hop {k[3]:g} ms, window {runs[0].get('win_ms', 25.0):g} ms (rate {k[2]:.3f}) | "
                             f"{seeds_text(runs)} | {mean_sd([r['test_accuracy'] for r in runs])} | {runs[0]['frames_kept']} / {runs[0]['frames_in']} | "
                             f"{cost_text(runs)} |")
            if full:
                runs = full[0]
                lines.append(f"| full at hop 10 ms, window 25 ms | {seeds_text(runs)} | {mean_sd([r['test_accuracy'] for r in runs])} | "
                             f"{runs[0]['frames_kept']} / {runs[0]['frames_in']} | {cost_text(runs)} |")
                mine = {r["seed"]: r["test_accuracy"] for _, v in fine for r in v}
                text = paired(mine, {r["seed"]: r["test_accuracy"] for r in runs})
                if text:
                    lines.append(f"\nFine-hop DiffRes minus full at 10 ms, paired across seeds: {text}")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["rhythms", "drums"])
    p.add_argument("--rates", nargs="*", type=float, default=[0.75, 0.5])
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--frontends", nargs="*", default=FRONTEND_ORDER)
    p.add_argument("--fine-hop-ms", type=float, default=2.5, help="0 disables the high-resolution rows")
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (one thread each)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (every job of this call)")
    p.add_argument("--results", type=Path, default=RESULTS, help="append new runs here (default: the shared results file)")
    p.add_argument("--report", action="store_true", help="only write the report from finished runs")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one job given as JSON, print its result
    args = p.parse_args()
    if args.one:
        print(json.dumps(run(json.loads(args.one))), flush=True)
        return
    print(f"python {platform.python_version()}, {args.jobs} job(s) at a time, one thread each, {args.device}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.report:
        done = {run_key(r) for r in all_results(args.results)}
        jobs = [dict(j, device=args.device) for j in plan(args.datasets, args.rates, args.seeds, args.frontends, args.fine_hop_ms)
                if run_key(j) not in done]
        print(f"{len(jobs)} runs to do", flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        running: list[tuple[dict, subprocess.Popen, float]] = []
        finished = 0
        while jobs or running:
            while jobs and len(running) < args.jobs:
                job = jobs.pop(0)
                proc = subprocess.Popen([sys.executable, __file__, "--one", json.dumps(job)], stdout=subprocess.PIPE, text=True)
                running.append((job, proc, time.time()))
            time.sleep(2)
            for item in list(running):
                job, proc, t0 = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                out = proc.stdout.read().strip().splitlines() if proc.stdout else []
                if proc.returncode != 0 or not out:
                    print(f"FAILED {run_key(job)} (exit {proc.returncode})", flush=True)
                    continue
                res = json.loads(out[-1])
                with args.results.open("a") as fh:
                    fh.write(json.dumps(res) + "\n")
                finished += 1
                print(f"[{finished}] {job['dataset']} {job['frontend']} rate {job['reduction_rate']:.3f} hop {job['hop_ms']:g} "
                      f"seed {job['seed']}: test {res['test_accuracy']:.3f} val {res['val_accuracy']:.3f} "
                      f"({time.time() - t0:.0f} s)", flush=True)
    text = report(all_results(args.results))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
