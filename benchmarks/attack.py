"""Hostile and odd inputs against the library, the command line and the app (issue 11).

Runs every case and prints one table: area, case, expected, got, ok; then the figures:

- tracebacks on a page (AppTest and Chromium), untyped exceptions (anything but the
  library's typed errors, MemoryError where it is the point, or the CLI's JSON failure),
  silent partial reads (a damaged file accepted shorter than its original), writes outside
  the target folder (traversal entries, ``--name ../..``, pickle exploits): all must be 0;
- every zip is loaded in a fresh process: the extra memory over that process's baseline
  (the highest resident size sampled every 2 ms while loading, minus the resident size
  before, with the modules loading pulls in already imported) and the wall time, against
  512 MB and 30 s.

The inputs are built by ``benchmarks/attack_inputs.py``.  App cases run the real pages under
AppTest with the app's own last line of defence active (``DIFFRES_APP_RAISE=0``), so a
traceback or its "unexpected error" sentence both count; ``--browser`` adds a few checks in
Debian Chromium (the upload limit's message instead of "AxiosError 413", a damaged upload).

Run: ``python benchmarks/attack.py [--browser] [--skip-cli-training] [--save]``
(``--save`` writes ``benchmarks/results/attack.md``).  About 10 minutes on 2 busy cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ["DIFFRES_APP_RAISE"] = "0"  # the app as it is served: its guard on

import attack_inputs as AI  # noqa: E402
import numpy as np  # noqa: E402

ZIP_MEMORY_MB, ZIP_SECONDS = 512.0, 30.0
FLAGS = ("traceback", "untyped", "partial", "outside")


@dataclass
class Result:
    area: str
    case: str
    expected: str
    got: str
    ok: bool
    flags: set[str] = field(default_factory=set)


RESULTS: list[Result] = []


def record(area: str, case: str, expected: str, got: str, ok: bool, flags: set[str] | None = None) -> None:
    r = Result(area, case, expected, got.replace("\n", " ")[:110], ok and not flags, set(flags or ()))
    RESULTS.append(r)
    print(f"{'ok ' if r.ok else 'BAD'} {area:<11} {case[:44]:<44} {r.got[:70]}", flush=True)


def typed(exc: BaseException) -> bool:
    from diffres import DiffResError

    return isinstance(exc, DiffResError)


# --------------------------------------------------------------------------- library: audio


def audio_cases() -> None:
    from diffres.audio import load_clip

    originals = {"FLAC": 1.0, "MP3": 1.0, "OGG": 1.0, "Opus": 1.0, "M4A": 1.0, "WAV": 1.0}
    for name, data, expected in AI.audio_inputs():
        try:
            clip = load_clip(data)
        except Exception as exc:
            kind = type(exc).__name__
            flags = set() if typed(exc) else {"untyped"}
            record("audio", name, expected, f"{kind}: {exc}", expected == kind, flags)
            continue
        flags = set()
        fmt = name.split()[0]
        damaged = any(w in name for w in ("cut", "flips"))
        if damaged and fmt in originals and clip.seconds < originals[fmt] - 0.05 and fmt != "WAV":
            flags.add("partial")
        record("audio", name, expected, f"ok, {clip.seconds:.3f} s of {clip.original_seconds:.3f} s",
               expected == "ok", flags)
    # a MemoryError while decoding must propagate, not become "unreadable"
    import soundfile

    real = soundfile.SoundFile.read
    soundfile.SoundFile.read = lambda *a, **k: (_ for _ in ()).throw(MemoryError())
    try:
        load_clip(AI.encode(AI.tone(0.5)))
        got, ok = "accepted", False
    except MemoryError:
        got, ok = "MemoryError propagates", True
    except Exception as exc:
        got, ok = f"{type(exc).__name__}: {exc}", False
    finally:
        soundfile.SoundFile.read = real
    record("audio", "MemoryError while decoding", "MemoryError", got, ok)


# --------------------------------------------------------------------------- library: zips


CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
import diffres.datasets as D
# import what loading a zip pulls in lazily (torch, decoders), so that the baseline holds it
import numpy, soundfile, torch  # noqa: F401
import diffres.audio, diffres.datasets.folders, diffres.datasets.zips  # noqa: F401
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
before = rss_mb()
# sample the resident size while the work runs: ru_maxrss / VmHWM can carry the high-water
# mark of whatever this process was before (it read as the same 562 MB for every zip)
import threading
peak = [before]
done = threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.002)
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0 = time.perf_counter()
out = {{}}
try:
    ds = D.load_folder_dataset({path!r})
    out = {{"result": "ok", "n": len(ds), "warnings": ds.warnings, "skipped": len(ds.skipped),
           "server_paths": sum("user-zips" in why or "tmp-extract" in why for _, why in ds.skipped)}}
except BaseException as exc:
    out = {{"result": type(exc).__name__, "message": str(exc), "typed": isinstance(exc, D.DatasetError)}}
out["seconds"] = time.perf_counter() - t0
done.set()
sampler.join()
out["extra_mb"] = max(peak[0], rss_mb()) - before
print(json.dumps(out))
"""


def zip_cases(work: Path) -> list[dict]:
    marker = f"attack-{os.getpid()}"
    cache = work / "cache"
    figures = []
    for name, path, expected in AI.zip_inputs(work / "zips", marker):
        env = dict(os.environ, DIFFRES_CACHE=str(cache), OMP_NUM_THREADS="1")
        before = set(_files_outside(work, cache))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path))],
                              capture_output=True, text=True, env=env, timeout=600)
        wall = time.perf_counter() - t0
        try:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            record("zip", name, expected, f"child failed: {proc.stderr[-200:]}", False, {"untyped"})
            continue
        flags = set()
        if out["result"] not in ("ok", "DatasetError"):
            flags.add("untyped")
        escaped = [p for p in (work / f"{marker}-trav.wav", work.parent / f"{marker}-trav.wav",
                               Path("/tmp") / f"{marker}-abs.wav") if p.exists()]
        if escaped or set(_files_outside(work, cache)) - before:
            flags.add("outside")
        leftovers = list((cache / "user-zips").glob("*")) if (cache / "user-zips").is_dir() else []
        got = out["result"] if out["result"] != "ok" else f"ok, {out['n']} clips"
        if out["result"] == "ok" and out.get("skipped"):
            got += f", {out['skipped']} skipped"
        if out["result"] == "ok" and out["warnings"]:
            got += f", warning: {out['warnings'][0][:40]}"
        if out.get("message"):
            got += f": {out['message']}"
        want_ok = expected.startswith("ok")
        ok = ((out["result"] == "ok") == want_ok and (expected != "ok+warning" or bool(out.get("warnings")))
              and (expected != "ok+skipped" or out.get("skipped", 0) >= 1) and not out.get("server_paths"))
        ok = ok and out["extra_mb"] <= ZIP_MEMORY_MB and out["seconds"] <= ZIP_SECONDS and not leftovers
        record("zip", name, expected, f"{got} [{out['extra_mb']:.0f} MB, {out['seconds']:.1f} s]", ok, flags)
        figures.append({"case": name, "extra_mb": out["extra_mb"], "seconds": out["seconds"], "wall": wall,
                        "zip_mb": path.stat().st_size / 1e6})
    return figures


def _files_outside(work: Path, cache: Path) -> list[str]:
    return [str(p) for p in work.rglob("*") if cache not in p.parents and p != cache and "zips" not in p.parts]


# --------------------------------------------------------------------------- library: checkpoints


def checkpoint_cases(work: Path) -> None:
    from diffres import load_checkpoint

    markers = work / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    for name, data, expected in AI.checkpoint_inputs(markers):
        t0 = time.perf_counter()
        try:
            load_checkpoint(data)
            got, kind, flags = "loaded", "ok", set()
        except Exception as exc:
            kind = type(exc).__name__
            got, flags = f"{kind}: {exc}", (set() if typed(exc) else {"untyped"})
        if any(markers.iterdir()):
            flags.add("outside")
        record("checkpoint", name, expected, f"{got} [{time.perf_counter() - t0:.2f} s]", kind == expected, flags)


# --------------------------------------------------------------------------- command line


def cli(*args: str, env_extra: dict | None = None, timeout: float = 600) -> tuple[int, dict | None, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **(env_extra or {}))
    proc = subprocess.run([sys.executable, "-m", "diffres", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)
    try:
        last = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = None
    return proc.returncode, last, proc.stderr


def _cli_record(case: str, expected_code: int, code: int, last: dict | None, err: str, extra_ok: bool = True) -> None:
    flags = set()
    if last is None:
        flags.add("untyped")  # the JSON contract broke
    if "Traceback" in err and expected_code != 1:
        flags.add("traceback")
    message = (last or {}).get("error", {}).get("message", "") if last else err[-100:]
    record("cli", case, f"exit {expected_code} + JSON", f"exit {code}: {message}", code == expected_code and extra_ok,
           flags)


def toy_folder(folder: Path, n: int = 10) -> Path:
    for k, c in enumerate(("low", "high")):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            x = AI.tone(0.5, f0=(500 if k == 0 else 3000) + 10 * i)
            (folder / c / f"{i}.wav").write_bytes(AI.encode(x))
    return folder


TINY = ["--n-mels", "16", "--width", "8", "--batch-size", "8", "--threads", "1", "--json"]


def cli_cases(work: Path, training: bool) -> None:
    data = toy_folder(work / "toy")
    out = work / "cli-out"
    marker = work / "outside"
    marker.mkdir()
    for case, args in [
        ("no arguments", []),
        ("unknown command", ["frobnicate"]),
        ("missing --dataset", ["train", "--out", str(out)]),
        ("rate 1.5", ["train", "--dataset", "events", "--out", str(out), "--reduction-rate", "1.5"]),
        ("epochs 0", ["train", "--dataset", "events", "--out", str(out), "--epochs", "0"]),
        ("hop 'abc'", ["train", "--dataset", "events", "--out", str(out), "--hop-ms", "abc"]),
        ("--resume with --dataset", ["train", "--resume", str(out), "--dataset", "events"]),
    ]:
        code, last, err = cli(*args, "--json")
        _cli_record(case, 2, code, last, err)
    for case, args, needle in [
        ("--name ../../escape", ["--name", f"../../{marker.name}/x"], "plain file name"),
        ("--name absolute", ["--name", str(marker / "x")], "plain file name"),
        ("--name with RTL override", ["--name", "a\u202eb"], "plain file name"),
        ("--out is a file", ["--out", str(data / "low" / "0.wav")], "is a file"),
        ("missing dataset folder", ["--dataset", str(work / "nowhere")], "neither a built-in"),
        ("dataset is a zip bomb", ["--dataset", str(work / "zips" / "bomb47.zip")], "zip bomb"),
        ("dataset with one class", ["--dataset", str(data / "low")], "at least 2 classes"),
    ]:
        base = {"--dataset": str(data), "--out": str(out)}
        rest = []
        for i in range(0, len(args), 2):
            base[args[i]] = args[i + 1]
        for k, v in base.items():
            rest += [k, v]
        code, last, err = cli("train", *rest, "--epochs", "1", *TINY)
        msg = (last or {}).get("error", {}).get("message", "")
        _cli_record(case, 2, code, last, err, needle in msg and not any(marker.iterdir()))
    for case, args in [
        ("evaluate a text file", ["evaluate", "--checkpoint", str(data / "low" / "0.wav"), "--data", str(data)]),
        ("evaluate missing data", ["evaluate", "--checkpoint", str(work / "x.pt"), "--data", str(work / "no")]),
        ("resume a folder without a run", ["train", "--resume", str(data)]),
        ("build an unknown set", ["datasets", "build", "nope", "--out", str(work / "b"), "--quiet"]),
    ]:
        code, last, err = cli(*args, "--json")
        _cli_record(case, 2, code, last, err)
    if training:
        _cli_training_cases(work, data)


def _cli_training_cases(work: Path, data: Path) -> None:
    # SIGTERM after the first epoch: exit 130, "interrupted": true, resumable
    run_dir = work / "sig"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "diffres", "train", "--dataset", str(data), "--out", str(run_dir),
                             "--name", "run", "--epochs", "3", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("epoch 1/3") and "saved" in line:
            break
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    last = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    _cli_record("SIGTERM after epoch 1", 130, proc.returncode, last, stderr,
                bool(last and last.get("interrupted") is True))
    code, last, err = cli("train", "--resume", str(run_dir), "--threads", "1", "--json")  # its own settings
    _cli_record("resume after SIGTERM", 0, code, last, err, bool(last and last.get("ok")))
    # a real full disk: --out on a small tmpfs that fills up after epoch 1 (root only)
    mount = work / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        record("cli", "full disk (tmpfs)", "exit 1 + JSON", "not run: mounting a tmpfs needs root", True)
        return
    try:
        proc = subprocess.Popen([sys.executable, "-m", "diffres", "train", "--dataset", str(data), "--out",
                                 str(mount), "--name", "run", "--epochs", "3", *TINY], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("epoch 1/3") and "saved" in line:
                with open(mount / "filler", "wb") as fh:  # fill the rest of the disk
                    with_room = True
                    while with_room:
                        try:
                            fh.write(bytes(65536))
                            fh.flush()
                        except OSError:
                            with_room = False
                break
        stdout, stderr = proc.communicate(timeout=300)
        last = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
        names = sorted(p.name for p in mount.iterdir())
        from diffres import load_checkpoint

        intact = names == ["filler", "run.json", "run.pt"] and load_checkpoint(mount / "run.pt").card["epochs"] == 1
        _cli_record("full disk after epoch 1 (tmpfs)", 1, proc.returncode, last, stderr,
                    intact and "No space left" in (last or {}).get("error", {}).get("message", ""))
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# --------------------------------------------------------------------------- app (AppTest)


def app_cases(work: Path) -> None:
    os.environ["DIFFRES_RUNS_DIR"] = str(work / "runs")
    os.environ["DIFFRES_CACHE"] = str(work / "cache")
    from streamlit.testing.v1 import AppTest

    from ui.frame import UNEXPECTED

    def start(page: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.run()
        at.switch_page(page).run()
        return at

    def check(case: str, at: AppTest, needle: str) -> None:
        flags = set()
        if at.exception:
            flags.add("traceback")
        errors = [e.value for e in at.error] + [e.value for e in at.sidebar.error] + [w.value for w in at.warning]
        if any(UNEXPECTED in e for e in errors):
            flags.add("untyped")
        hit = next((e for e in errors if needle in e), None)
        record("app", case, f"message: {needle}", hit or f"no such message ({len(errors)} others)", hit is not None,
               flags)

    audio = {name: (data, exp) for name, data, exp in AI.audio_inputs()}
    for page in ("pages/home.py", "pages/spectrogram_lab.py", "pages/adaptive_resolution.py"):
        for name, needle in (("FLAC cut at 26%", "damaged or truncated"), ("MP3 cut at 90%", "damaged or truncated"),
                             ("text", "not audio"), ("WAV at 0 Hz", "could not be decoded")):
            at = start(page)
            at.sidebar.file_uploader(key="sound_upload").set_value((name + ".wav", audio[name][0], "audio/wav")).run()
            check(f"{page.split('/')[1][:-3]}: {name}", at, needle)
    markers = work / "app-markers"
    markers.mkdir()
    for name, data, expected in AI.checkpoint_inputs(markers):
        if expected == "ok" or name in ("card 60k levels deep", "card of 1001 classes", "hop_ms NaN"):
            continue
        at = start("pages/inspect.py")
        at.segmented_control(key="inspect_source").set_value("upload").run()
        at.file_uploader(key="inspect_upload").set_value(("evil.pt", data, "application/octet-stream")).run()
        check(f"inspect: {name}", at, "Could not open")
        if any(markers.iterdir()):
            RESULTS[-1].flags.add("outside")
            RESULTS[-1].ok = False
    zips = work / "zips"
    for name, file, needle in (("bomb47.zip", "bomb", "zip bomb"), ("trav.zip", "trav", "path traversal"),
                               ("rtl.zip", "rtl", "RIGHT-TO-LEFT"), ("one.zip", "one", "at least 2 classes"),
                               ("two.zip", "two", "test split is empty"), ("crc.zip", "crc", "is corrupt"),
                               ("noise.zip", "noise", "longer than 60 s")):
        at = start("pages/train.py")
        at.segmented_control(key="train_source").set_value("zip").run()
        at.file_uploader(key="train_zip").set_value((name, (zips / name).read_bytes(), "application/zip")).run()
        check(f"train zip: {file}", at, needle)
        if any(str(work) in e.value for e in at.error):
            RESULTS[-1].flags.add("outside")
            RESULTS[-1].ok = False
    at = start("pages/train.py")
    at.segmented_control(key="train_source").set_value("buckets").run()
    bid = at.session_state["train_buckets"][0].bucket_id
    at.file_uploader(key=f"train_bup_{bid}").set_value([("junk.wav", b"junk" * 100, "audio/wav")]).run()
    check("train bucket: junk upload", at, "Could not add 'junk.wav'")
    _app_full_disk(start, check)


def _app_full_disk(start, check) -> None:
    import errno

    from diffres import checkpoints

    at = start("pages/train.py")
    at.selectbox(key="train_quick").select(10).run()
    at.button(key="train_play").click().run()
    real = checkpoints.write_files_atomically

    def full(files):
        raise OSError(errno.ENOSPC, f"could not write {files[0][0].name}: No space left on device; the previous "
                                    "checkpoint (if any) is intact")

    checkpoints.write_files_atomically = full
    try:
        run = at.session_state["train_runs"][at.session_state["train_active"]]
        for _ in range(60):
            at.run()
            if run.status != "playing":
                break
    finally:
        checkpoints.write_files_atomically = real
    check("train: full disk while training", at, "No space left on device")
    if at.button(key="train_play").label != "Play":
        RESULTS[-1].ok = False
        RESULTS[-1].got += " (the Play button was not reset)"


# --------------------------------------------------------------------------- browser


def browser_cases(work: Path) -> None:
    from playwright.sync_api import sync_playwright

    port = 8600 + os.getpid() % 300
    env = dict(os.environ, DIFFRES_RUNS_DIR=str(work / "runs-browser"))
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    big = work / "big.wav"
    with open(big, "wb") as fh:
        fh.write(AI.wav_header(16000, 1, 16, 51 * 2**20))
        fh.truncate(51 * 2**20 + 44)
    cut = work / "cut.flac"
    flac = AI.encode(AI.tone(1.0), 16000, "FLAC")
    cut.write_bytes(flac[: len(flac) // 3])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    page.goto(url, timeout=5000)
                    break
                except Exception:
                    time.sleep(1)
            page.wait_for_selector("[data-testid='stFileUploaderDropzoneInput']", state="attached", timeout=120000)
            for case, path, needle in (("51 MB upload (limit 50 MB)", big, "File must be 50.0MB or smaller"),
                                       ("cut FLAC upload", cut, "damaged or truncated")):
                page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(path))
                try:
                    page.get_by_text(needle).first.wait_for(timeout=60000)
                    found = True
                except Exception:
                    found = False
                text = page.inner_text("body")
                flags = {"traceback"} if page.locator("[data-testid='stException']").count() else set()
                if "AxiosError" in text or "413" in text:
                    flags.add("untyped")
                record("browser", case, needle, needle if found else "no message", found, flags)
                page.reload()
                page.wait_for_selector("[data-testid='stFileUploaderDropzoneInput']", state="attached", timeout=120000)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


# --------------------------------------------------------------------------- report


def table() -> str:
    lines = ["| area | case | expected | got | ok |", "| --- | --- | --- | --- | --- |"]
    for r in RESULTS:
        flags = f" ({', '.join(sorted(r.flags))})" if r.flags else ""
        got = r.got.replace("|", "/")
        lines.append(f"| {r.area} | {r.case} | {r.expected} | {got}{flags} | {'yes' if r.ok else '**no**'} |")
    return "\n".join(lines)


def summary(zip_figures: list[dict]) -> str:
    counts = {f: sum(f in r.flags for r in RESULTS) for f in FLAGS}
    worst_mb = max((z["extra_mb"] for z in zip_figures), default=0.0)
    worst_s = max((z["seconds"] for z in zip_figures), default=0.0)
    lines = [
        f"cases: {len(RESULTS)}; as expected: {sum(r.ok for r in RESULTS)}; not: {sum(not r.ok for r in RESULTS)}",
        f"tracebacks on a page: {counts['traceback']}; untyped exceptions: {counts['untyped']}; "
        f"silent partial reads: {counts['partial']}; writes outside the target: {counts['outside']}",
        f"zips: {len(zip_figures)} loaded in fresh processes; worst extra memory {worst_mb:.0f} MB "
        f"(limit {ZIP_MEMORY_MB:.0f}); slowest {worst_s:.1f} s (limit {ZIP_SECONDS:.0f})",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--browser", action="store_true", help="also run the Chromium checks")
    ap.add_argument("--skip-cli-training", action="store_true", help="skip the CLI cases that train (SIGTERM, disk)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/attack.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="diffres-attack-"))
    t0 = time.perf_counter()
    try:
        audio_cases()
        zip_figures = zip_cases(work)
        checkpoint_cases(work)
        cli_cases(work, training=not args.skip_cli_training)
        app_cases(work)
        if args.browser:
            browser_cases(work)
    except Exception:  # the harness itself failed: say where
        traceback.print_exc()
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = table() + "\n\n" + summary(zip_figures)
    print("\n" + report)
    print(f"\n{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}, "
          f"peak RSS of the harness {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.save:
        out = ROOT / "benchmarks" / "results" / "attack.md"
        out.write_text(f"# benchmarks/attack.py\n\n{report}\n")
    return 0 if all(r.ok for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
