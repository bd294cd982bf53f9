"""``digits``: spoken "zero".."nine" from three free speech synthesisers.

espeak-ng (several English accents x voice variants, pitch, speed), flite (voices kal, awb,
rms, slt; duration stretch, mean f0) and festival (kal_diphone, cmu_us_slt_arctic_hts; one
``festival -b`` process for all words). Every word is resampled to 16 kHz, trimmed of
silence (-50 dBFS, 50 ms margins), slightly sped up or slowed down (pitch and tempo together),
placed at a random offset in a 1 s clip, mixed with noise and scaled.

The test split holds out whole voices: espeak-ng accents en-gb-scotland and en-029 and the
flite voice awb never appear in train or val.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import load_audio, resample
from ..errors import DatasetError
from ._common import (
    SAMPLE_RATE,
    ClipSpec,
    ProgressFn,
    assign_random_splits,
    clip_rng,
    colored_noise,
    db_to_gain,
    finish,
    place,
    require_tool,
    rms,
    speed_perturb,
    trim_silence,
    write_wav,
)

NAME = "digits"
VERSION = 1
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
CLIP_SECONDS = 1.0
DEFAULT_N_PER_CLASS = 150
NEEDS = ["espeak-ng", "flite", "festival", "festvox-kallpc16k", "festvox-us-slt-hts"]
SPLIT_POLICY = (
    "test: held-out voices (espeak-ng accents en-gb-scotland and en-029, flite awb); val: random 15% of the rest"
)
DESCRIPTION = (
    "Spoken digits zero..nine synthesised locally with espeak-ng, flite and festival; 1 s clips. "
    "Test uses voices never heard in training."
)

ESPEAK_ACCENTS_TRAIN = ["en-us", "en-gb", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc"]
ESPEAK_ACCENTS_TEST = ["en-gb-scotland", "en-029"]
# intelligible espeak-ng voice variants (Alicia, Demonic, shelby, Annie, Lee, norbert left out)
ESPEAK_VARIANTS = [
    "",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Andy",
    "Denis",
    "Gene",
    "Henrique",
    "Hugo",
    "Jacky",
    "Michael",
    "Mike",
    "Storm",
    "adam",
    "anika",
    "announcer",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "edward",
    "grandma",
    "grandpa",
    "iven",
    "john",
    "linda",
    "max",
    "michel",
    "paul",
    "quincy",
    "rob",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
    "klatt",
    "klatt2",
]
FLITE_TRAIN = ["kal", "rms", "slt"]
FLITE_TEST = ["awb"]
FESTIVAL_VOICES = ["kal_diphone", "cmu_us_slt_arctic_hts"]
_FESTIVAL_VOICE_DIRS = {
    "kal_diphone": ("/usr/share/festival/voices/english/kal_diphone", "festvox-kallpc16k"),
    "cmu_us_slt_arctic_hts": ("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts", "festvox-us-slt-hts"),
}
_FLITE_F0 = {"kal": (85, 130), "awb": (85, 130), "rms": (80, 125), "slt": (150, 220)}
_N_WORKERS = 2


def check_requirements() -> None:
    """Raise DatasetError naming the apt package of any missing synthesiser or voice."""
    require_tool("espeak-ng", "espeak-ng")
    require_tool("flite", "flite")
    require_tool("festival", "festival")
    for voice, (path, pkg) in _FESTIVAL_VOICE_DIRS.items():
        if not Path(path).is_dir():
            raise DatasetError(f"festival voice {voice} not found ({path}): apt-get install {pkg}")


def source_description(n_clips: int, seed: int) -> str:
    return (
        f"Synthetic speech: {n_clips} one-second clips of the words zero..nine synthesised locally "
        "(no recordings of people) with espeak-ng (formant synthesis; accents "
        f"{', '.join(ESPEAK_ACCENTS_TRAIN + ESPEAK_ACCENTS_TEST)} x {len(ESPEAK_VARIANTS)} voice variants, "
        "varied pitch and speed), flite (voices kal, awb, rms, slt; varied duration and mean f0) and "
        "festival (kal_diphone, cmu_us_slt_arctic_hts). Post-processing: 16 kHz mono, silence "
        "trimmed, +-8% speed change, random placement in the clip, coloured noise at 10-40 dB SNR, "
        "random gain. Test holds out whole voices (espeak-ng en-gb-scotland and en-029, flite awb); "
        f"validation is a random 15% of the other clips (seed {seed}). Synthetic voices are cleaner "
        "and more uniform than real speakers; expect lower accuracy on recordings."
    )


# ---------------------------------------------------------------------------- planning


def plan(seed: int, n_per_class: int) -> list[ClipSpec]:
    specs: list[ClipSpec] = []
    for ci, word in enumerate(CLASSES):
        splits = assign_random_splits(n_per_class, clip_rng(seed, 51, ci))
        for i in range(n_per_class):
            rng = clip_rng(seed, 52, ci, i)
            test = splits[i] == "test"
            u = rng.random()
            if test:
                engine = "espeak-ng" if u < 0.6 else "flite"
            else:
                engine = "espeak-ng" if u < 0.45 else ("flite" if u < 0.75 else "festival")
            p: dict[str, Any] = {"word": word, "engine": engine}
            if engine == "espeak-ng":
                accent = str(rng.choice(ESPEAK_ACCENTS_TEST if test else ESPEAK_ACCENTS_TRAIN))
                variant = str(rng.choice(ESPEAK_VARIANTS))
                p.update(
                    voice=f"{accent}+{variant}" if variant else accent,
                    pitch=int(rng.integers(20, 81)),
                    speed=int(rng.integers(120, 211)),
                )
            elif engine == "flite":
                voice = str(rng.choice(FLITE_TEST if test else FLITE_TRAIN))
                lo, hi = _FLITE_F0[voice]
                p.update(
                    voice=voice,
                    duration_stretch=round(float(rng.uniform(0.8, 1.3)), 3),
                    f0_mean=int(rng.integers(lo, hi + 1)),
                )
            else:
                voice = str(rng.choice(FESTIVAL_VOICES))
                p.update(
                    voice=voice,
                    duration_stretch=round(float(rng.uniform(0.8, 1.3)), 3),
                    f0_mean=int(rng.integers(90, 150)),
                )
            p.update(
                speed_factor=round(float(rng.uniform(0.92, 1.08)), 4),
                offset_frac=round(float(rng.random()), 4),
                snr_db=round(float(rng.uniform(10, 40)), 2),
                noise_exponent=round(float(rng.uniform(0, 2)), 2),
                peak_db=round(float(rng.uniform(-20, -1)), 2),
                rng_seed=int(rng.integers(0, 2**31 - 1)),
            )
            specs.append(ClipSpec(f"{word}_{i:04d}", word, splits[i], p))
    return specs


# ---------------------------------------------------------------------------- synthesis


def _run(cmd: list[str], what: str) -> None:
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{cmd[0]} not found: apt-get install {cmd[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DatasetError(f"{what} timed out") from exc
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace").strip()[-400:]
        raise DatasetError(f"{what} failed (exit {res.returncode}): {err}")


def _synth_one(spec: ClipSpec, tmp: Path) -> Path:
    p = spec.params
    out = tmp / f"{spec.clip_id}.raw.wav"
    if p["engine"] == "espeak-ng":
        cmd = ["espeak-ng", "-v", p["voice"], "-p", str(p["pitch"]), "-s", str(p["speed"]), "-w", str(out), p["word"]]
    else:
        cmd = [
            "flite",
            "-voice",
            p["voice"],
            "--setf",
            f"duration_stretch={p['duration_stretch']}",
            "--setf",
            f"int_f0_target_mean={p['f0_mean']}",
            "-t",
            p["word"],
            "-o",
            str(out),
        ]
    _run(cmd, f"{p['engine']} ({p['voice']}, {p['word']!r})")
    return out


def _festival_batch(specs: list[ClipSpec], tmp: Path) -> dict[str, Path]:
    """Synthesise every festival clip with one ``festival -b`` process."""
    lines = []
    current = None
    outs = {}
    for spec in sorted(specs, key=lambda s: (s.params["voice"], s.clip_id)):
        p = spec.params
        if p["voice"] != current:
            lines.append(f"(voice_{p['voice']})")
            current = p["voice"]
        out = tmp / f"{spec.clip_id}.raw.wav"
        outs[spec.clip_id] = out
        lines.append(f"(Parameter.set 'Duration_Stretch {p['duration_stretch']})")
        if p["voice"] == "kal_diphone":
            lines.append(
                f"(set! int_lr_params (list (list 'target_f0_mean {p['f0_mean']}) '(target_f0_std 14) "
                "'(model_f0_mean 170) '(model_f0_std 34)))"
            )
        lines.append(f'(set! u (Utterance Text "{p["word"]}"))')
        lines.append("(utt.synth u)")
        lines.append(f'(utt.save.wave u "{out}" \'riff)')
    script = tmp / "digits.scm"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run(["festival", "-b", str(script)], f"festival batch of {len(specs)} words")
    return outs


def postprocess(raw: np.ndarray, sr: int, params: dict[str, Any]) -> np.ndarray:
    """Resample, trim, speed-perturb, place in a 1 s clip, add noise and gain (the module docstring)."""
    rng = np.random.default_rng(params["rng_seed"])
    x = resample(raw.astype(np.float32), sr, SAMPLE_RATE).astype(np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-4:
        raise DatasetError(f"{params['engine']} produced silence for {params['word']!r} (voice {params['voice']})")
    x = x / peak * 0.9
    x = trim_silence(x, SAMPLE_RATE, threshold_db=-50.0, margin_ms=50.0)
    x = speed_perturb(x, params["speed_factor"]).astype(np.float64)
    n = int(round(CLIP_SECONDS * SAMPLE_RATE))
    max_len = int(0.98 * n)
    if len(x) > max_len:  # too long for the clip: speed up to fit rather than cut the word
        x = speed_perturb(x, len(x) / max_len).astype(np.float64)[:max_len]
    offset = int(params["offset_frac"] * (n - len(x)))
    clip = place(x, n, offset)
    noise = colored_noise(n, rng, params["noise_exponent"]) * rms(x) * db_to_gain(-params["snr_db"])
    return finish(clip + noise, params["peak_db"])


def render(specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
    """Synthesise ``specs`` (two subprocesses at a time; festival as one batch job)."""
    tmp = Path(tempfile.mkdtemp(prefix="diffres-digits-"))
    try:
        fest = [s for s in specs if s.params["engine"] == "festival"]
        others = [s for s in specs if s.params["engine"] != "festival"]

        def finish_clip(spec: ClipSpec, raw_path: Path) -> None:
            raw, sr = load_audio(raw_path, sample_rate=None)  # the TTS tool's own rate
            write_wav(out_dir / spec.relpath, postprocess(raw, sr, spec.params))
            raw_path.unlink(missing_ok=True)

        def one(spec: ClipSpec) -> str:
            finish_clip(spec, _synth_one(spec, tmp))
            return spec.clip_id

        with ThreadPoolExecutor(max_workers=_N_WORKERS) as pool:
            fest_future = pool.submit(_festival_batch, fest, tmp) if fest else None
            for clip_id in pool.map(one, others):
                progress(1, 0, clip_id)
            if fest_future is not None:
                outs = fest_future.result()
                for spec in fest:
                    finish_clip(spec, outs[spec.clip_id])
                    progress(1, 0, spec.clip_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
