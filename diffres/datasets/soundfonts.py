"""``instruments`` and ``drums``: General MIDI notes rendered with FluidSynth from the
soundfonts Debian ships, reverb and chorus off.

Held-out test splits measure generalisation rather than memorised samples:
``instruments`` renders its test clips with a soundfont never used in training (TimGM6mb;
training and validation use FluidR3_GM, MuseScore_General_Lite, csound's sf_GMbank and the
OPL3 FM bank, four sample sources of which two are independent of FluidR3);
``drums`` holds out two whole drum kits (Power and Jazz, bank 128 presets 16 and 32) in
every soundfont. Validation is a random 15 % of the remaining clips.

Determinism: FluidSynth's output depends (by ~1e-7) on the synth's history (voice reuse),
so a build always renders *every* clip in plan order with a fresh synthesizer and writes
only the missing files; rendering is ~1 ms per clip, the cost is negligible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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
    require_file,
    rms,
    write_wav,
)

SOUNDFONTS: dict[str, tuple[str, str]] = {
    # short name -> (path, apt package)
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
    "MuseScore_General_Lite": ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3", "musescore-general-soundfont-small"),
    "sf_GMbank": ("/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont"),
    "OPL3_FM": ("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "opl3-soundfont"),
    # a multi-sampled recording of a real acoustic kit (Glen MacArthur, CC-BY-SA-3.0): one
    # preset (bank 0, program 0) with the kit's own note map
    "AVL_Black_Pearl": ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2", "avldrums.lv2-soundfont"),
}
#: The drum set's soundfonts (its plan indexes this tuple; v1 clips depend on its order).
DRUM_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb", "MuseScore_General_Lite", "AVL_Black_Pearl")
#: Recorded acoustic kits: one preset each (bank 0, program 0), in training and validation only.
RECORDED_KITS = ("AVL_Black_Pearl",)
#: The recorded kits' notes per class, from the AVL plugin's own note names (its midnam), not
#: the General MIDI map: 48 is a swish hi-hat there; the cymbal chokes 50/52/58 are left out.
RECORDED_KIT_NOTES: dict[str, list[int]] = {
    "clap": [39],
    "cymbal": [49, 51, 53, 55, 57, 59, 60],
    "hihat": [42, 44, 46, 48],
    "kick": [36],
    "snare": [38, 40],
    "tom": [41, 43, 45, 47],
}
#: The instrument set's soundfonts: the test split uses the held-out one only, training the rest.
INSTRUMENT_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb", "MuseScore_General_Lite", "sf_GMbank", "OPL3_FM")
INSTRUMENT_TEST_SOUNDFONT = "TimGM6mb"
INSTRUMENT_TRAIN_SOUNDFONTS = tuple(sf for sf in INSTRUMENT_SOUNDFONTS if sf != INSTRUMENT_TEST_SOUNDFONT)


def _needs(fonts: tuple[str, ...]) -> list[str]:
    return ["libfluidsynth3"] + [SOUNDFONTS[name][1] for name in fonts]


FAMILIES: dict[str, list[int]] = {
    "bass": list(range(32, 40)),
    "brass": list(range(56, 64)),
    "flute": list(range(72, 80)),
    "guitar": list(range(24, 32)),
    "keyboard": list(range(0, 8)),
    "mallet": list(range(8, 16)),
    "organ": list(range(16, 24)),
    "reed": list(range(64, 72)),
    "string": [40, 41, 42, 43, 44, 48, 49, 50, 51],
    "synth_lead": list(range(80, 88)),
    "vocal": [52, 53, 54],
}
# playable MIDI note ranges (inclusive): per family, with per-program overrides
_FAMILY_RANGE = {
    "bass": (28, 55),
    "brass": (45, 77),
    "flute": (62, 93),
    "guitar": (40, 76),
    "keyboard": (36, 88),
    "mallet": (55, 91),
    "organ": (36, 84),
    "reed": (48, 79),
    "string": (43, 84),
    "synth_lead": (48, 84),
    "vocal": (48, 76),
}
_PROGRAM_RANGE = {
    9: (72, 100),
    14: (60, 77),
    12: (45, 84),
    41: (48, 79),
    42: (36, 67),
    43: (28, 55),
    40: (55, 88),
    57: (40, 70),
    58: (28, 55),
    60: (41, 72),
    64: (56, 86),
    66: (44, 75),
    67: (36, 65),
    70: (34, 65),
    72: (72, 100),
    68: (58, 88),
    69: (52, 79),
}

DRUM_NOTES: dict[str, list[int]] = {
    "clap": [39],
    "cymbal": [49, 51, 52, 53, 55, 57, 59],
    "hihat": [42, 44, 46],
    "kick": [35, 36],
    "snare": [38, 40],
    "tom": [41, 43, 45, 47, 48, 50],
}
DRUM_KITS: dict[int, str] = {
    0: "Standard",
    8: "Room",
    16: "Power",
    24: "Electronic",
    25: "TR-808",
    32: "Jazz",
    40: "Brush",
    48: "Orchestra",
}
TEST_KITS = (16, 32)


# ---------------------------------------------------------------------------- synth


def _mix_params(rng: np.random.Generator) -> dict:
    """Noise, level and augmentation seed of one clip (drawn in this order, so specs are
    reproducible from the generator's seed)."""
    return {
        "snr_db": round(float(rng.uniform(20, 50)), 2),
        "noise_exponent": round(float(rng.uniform(0, 2)), 2),
        "peak_db": round(float(rng.uniform(-18, -1)), 2),
        "rng_seed": int(rng.integers(0, 2**31 - 1)),
    }


class _Renderer:
    """One FluidSynth instance with the given soundfonts loaded, float output."""

    def __init__(self, fonts: tuple[str, ...]) -> None:
        try:
            import fluidsynth  # pyfluidsynth
        except (ImportError, OSError) as exc:
            raise DatasetError(
                f"FluidSynth is not available: apt-get install libfluidsynth3 and pip install pyfluidsynth ({exc})"
            ) from exc
        from ctypes import c_int, c_void_p

        self._write = fluidsynth.cfunc(
            "fluid_synth_write_float",
            c_int,
            ("synth", c_void_p, 1),
            ("len", c_int, 1),
            ("lout", c_void_p, 1),
            ("loff", c_int, 1),
            ("lincr", c_int, 1),
            ("rout", c_void_p, 1),
            ("roff", c_int, 1),
            ("rincr", c_int, 1),
        )
        self.fs = fluidsynth.Synth(gain=0.5, samplerate=float(SAMPLE_RATE))
        self.fs.setting("synth.reverb.active", 0)
        self.fs.setting("synth.chorus.active", 0)
        self.sfid: dict[str, int] = {}
        for name in fonts:
            path, pkg = SOUNDFONTS[name]
            sid = self.fs.sfload(path)
            if sid < 0:
                raise DatasetError(f"FluidSynth could not load {path}; reinstall it: apt-get install --reinstall {pkg}")
            self.sfid[name] = sid

    def _run(self, n: int) -> np.ndarray:
        buf = np.zeros((2, n), np.float32)
        if n > 0:
            self._write(self.fs.synth, n, buf[0].ctypes.data, 0, 1, buf[1].ctypes.data, 0, 1)
        return buf.mean(axis=0)

    def render(
        self,
        soundfont: str,
        bank: int,
        program: int,
        events: list[tuple[float, float, int, int]],
        seconds: float,
        channel: int,
    ) -> np.ndarray:
        """Render note events ``(onset_s, duration_s, key, velocity)`` into ``seconds`` of audio."""
        fs = self.fs
        fs.system_reset()
        self._run(256)
        fs.program_select(channel, self.sfid[soundfont], bank, program)
        n = int(round(seconds * SAMPLE_RATE))
        marks: list[tuple[int, int, int, int]] = []  # (sample, is_on, key, vel)
        for onset, dur, key, vel in events:
            marks.append((int(round(onset * SAMPLE_RATE)), 1, key, vel))
            marks.append((int(round((onset + dur) * SAMPLE_RATE)), 0, key, vel))
        marks.sort(key=lambda m: (m[0], m[1]))
        out = []
        pos = 0
        for at, is_on, key, vel in marks:
            at = min(max(at, 0), n)
            out.append(self._run(at - pos))
            pos = at
            if is_on:
                fs.noteon(channel, key, vel)
            else:
                fs.noteoff(channel, key)
        out.append(self._run(n - pos))
        fs.all_sounds_off(channel)
        return np.concatenate(out)


def _check(fonts: tuple[str, ...]) -> None:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError) as exc:
        raise DatasetError(
            f"FluidSynth is not available: apt-get install libfluidsynth3 and pip install pyfluidsynth ({exc})"
        ) from exc
    for name in fonts:
        path, pkg = SOUNDFONTS[name]
        require_file(path, pkg, f"soundfont {name}")


_SILENT = 1e-4


def _augment(x: np.ndarray, p: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    if float(np.max(np.abs(x))) < _SILENT:
        raise DatasetError(f"a soundfont note rendered silent ({p}); the soundfont may be damaged")
    noise = colored_noise(len(x), rng, p["noise_exponent"]) * rms(x) * db_to_gain(-p["snr_db"])
    return finish(x + noise, p["peak_db"])


def _render_all(gen: Any, specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
    """Render the *whole* plan in order (for determinism), writing only missing clips."""
    all_specs = gen.plan(specs[0].params["seed"], specs[0].params["n_per_class"]) if specs else []
    wanted = {s.clip_id for s in specs}
    renderer = _Renderer(gen.SOUNDFONTS)
    for spec in all_specs:
        x = gen.render_clip(renderer, spec)
        if spec.clip_id in wanted:
            write_wav(out_dir / spec.relpath, x)
            progress(1, 0, spec.clip_id)


# ---------------------------------------------------------------------------- instruments


class _Instruments:
    NAME = "instruments"
    VERSION = 3
    CLASSES: ClassVar[list[str]] = list(FAMILIES)
    CLIP_SECONDS = 2.0
    DEFAULT_N_PER_CLASS = 500
    SOUNDFONTS = INSTRUMENT_SOUNDFONTS
    NEEDS = _needs(INSTRUMENT_SOUNDFONTS)
    TEST_SOUNDFONT = INSTRUMENT_TEST_SOUNDFONT
    TRAIN_SOUNDFONTS = INSTRUMENT_TRAIN_SOUNDFONTS
    SPLIT_POLICY = (
        f"test: every clip rendered with {TEST_SOUNDFONT}, a soundfont never used in training; "
        f"train and val: the {len(TRAIN_SOUNDFONTS)} other soundfonts, val a random 15%"
    )
    DESCRIPTION = (
        "General MIDI instrument families (11 classes) rendered note by note with FluidSynth from "
        "five soundfonts; 2 s clips. Test uses a soundfont (other samples of every instrument) never "
        "heard in training."
    )

    def check_requirements(self) -> None:
        _check(self.SOUNDFONTS)

    def source_description(self, n_clips: int, seed: int) -> str:
        return (
            f"Synthetic: {n_clips} two-second single notes and short phrases rendered with FluidSynth "
            "(reverb and chorus off) from the soundfonts FluidR3_GM (MIT), MuseScore_General_Lite (MIT, "
            "derived from FluidR3), csound's sf_GMbank (LGPL-2.1), OPL-3_FM_128M (CC-BY-SA-4.0, "
            "samples of an OPL3 FM chip) and TimGM6mb (GPL-2). Classes are General MIDI program "
            "families (keyboard 0-7, mallet 8-15, organ 16-23, guitar 24-31, bass 32-39, string 40-44 "
            "and 48-51, vocal 52-54, brass 56-63, reed 64-71, flute 72-79, synth_lead 80-87), every "
            "program of a family drawn alike; pitch, velocity, onset and duration vary per clip, with "
            f"light gain and noise augmentation. Test clips (seed {seed}) are all rendered with "
            f"{self.TEST_SOUNDFONT}, whose samples the model never heard (training and validation use "
            f"{', '.join(self.TRAIN_SOUNDFONTS)}, one drawn at random per clip; validation is a random "
            "15%). Rendered samples, not "
            "performances: expect lower accuracy on real recordings."
        )

    def plan(self, seed: int, n_per_class: int) -> list[ClipSpec]:
        specs = []
        for ci, fam in enumerate(self.CLASSES):
            splits = assign_random_splits(n_per_class, clip_rng(seed, 32, ci))
            for i in range(n_per_class):
                rng = clip_rng(seed, 33, ci, i)
                program = int(rng.choice(FAMILIES[fam]))
                lo, hi = _PROGRAM_RANGE.get(program, _FAMILY_RANGE[fam])
                n_notes = int(rng.choice([1, 1, 1, 2, 3]))
                onset = float(rng.uniform(0.0, 0.35))
                notes = []
                key = int(rng.integers(lo, hi + 1))
                t = onset
                for _ in range(n_notes):
                    dur = float(rng.uniform(0.25, 1.6)) if n_notes == 1 else float(rng.uniform(0.15, 0.6))
                    notes.append([round(t, 4), round(dur, 4), key, int(rng.integers(50, 128))])
                    t += dur + float(rng.uniform(0.0, 0.1))
                    key = int(np.clip(key + rng.choice([-7, -5, -4, -3, 2, 3, 4, 5, 7, 12]), lo, hi))
                params = {
                    "seed": int(seed),
                    "n_per_class": int(n_per_class),
                    "soundfont": (
                        self.TEST_SOUNDFONT
                        if splits[i] == "test"
                        else self.TRAIN_SOUNDFONTS[int(rng.integers(0, len(self.TRAIN_SOUNDFONTS)))]
                    ),
                    "program": program,
                    "notes": notes,
                    **_mix_params(rng),
                }
                specs.append(ClipSpec(f"{fam}_{i:04d}", fam, splits[i], params))
        return specs

    def render_clip(self, renderer: _Renderer, spec: ClipSpec) -> np.ndarray:
        p = spec.params
        notes = [tuple(n) for n in p["notes"]]
        x = renderer.render(p["soundfont"], 0, p["program"], notes, self.CLIP_SECONDS, 0)
        # a few presets have no sample for extreme keys in some soundfonts: move the phrase an
        # octave at a time towards the middle of the keyboard until it sounds
        for _ in range(4):
            if float(np.max(np.abs(x))) >= _SILENT:
                break
            shift = -12 if np.mean([n[2] for n in notes]) > 66 else 12
            notes = [(o, d, int(np.clip(k + shift, 0, 127)), v) for o, d, k, v in notes]
            x = renderer.render(p["soundfont"], 0, p["program"], notes, self.CLIP_SECONDS, 0)
        return _augment(x, p, np.random.default_rng(p["rng_seed"]))

    def render(self, specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
        _render_all(self, specs, out_dir, progress)


# ---------------------------------------------------------------------------- drums


class _Drums:
    NAME = "drums"
    VERSION = 2
    CLASSES: ClassVar[list[str]] = list(DRUM_NOTES)
    CLIP_SECONDS = 1.0
    DEFAULT_N_PER_CLASS = 150
    SOUNDFONTS = DRUM_SOUNDFONTS
    NEEDS = _needs(DRUM_SOUNDFONTS)
    SPLIT_POLICY = (
        "test: held-out drum kits Power and Jazz (bank 128 presets 16, 32) in the three General MIDI "
        "soundfonts; val: random 15% of the rest"
    )
    DESCRIPTION = (
        "General MIDI percussion (kick, snare, clap, hihat, tom, cymbal) rendered with FluidSynth "
        "from three General MIDI soundfonts (eight kits each) and one recorded acoustic kit; 1 s "
        "clips. Test uses two kits never seen in training."
    )

    def check_requirements(self) -> None:
        _check(self.SOUNDFONTS)

    def source_description(self, n_clips: int, seed: int) -> str:
        return (
            f"Synthetic: {n_clips} one-second drum hits rendered with FluidSynth (reverb and chorus "
            "off, MIDI channel 10, bank 128) from the soundfonts FluidR3_GM (MIT), TimGM6mb (GPL-2) "
            "and MuseScore_General_Lite (MIT, derived from FluidR3), kits Standard, Room, Power, "
            "Electronic, TR-808, Jazz, Brush and Orchestra, and the multi-sampled recording of a real "
            "acoustic kit AVL Black Pearl (Glen MacArthur, CC-BY-SA-3.0; bank 0, its own note map: "
            "kick 36, snare 38/40, clap 39, hihat 42/44/46/48, tom 41/43/45/47, cymbal "
            "49/51/53/55/57/59/60). GM notes per class: kick 35/36, snare "
            "38/40, clap 39, hihat 42/44/46, tom 41/43/45/47/48/50, cymbal 49/51/52/53/55/57/59; one "
            "to four hits per clip, velocity, onset and length vary, with light gain and noise "
            "augmentation. Test clips use the Power and Jazz kits only, never seen in training; "
            f"validation is a random 15% of the other clips (seed {seed})."
        )

    def plan(self, seed: int, n_per_class: int) -> list[ClipSpec]:
        train_kits = [k for k in DRUM_KITS if k not in TEST_KITS]
        specs = []
        for ci, cls in enumerate(self.CLASSES):
            splits = assign_random_splits(n_per_class, clip_rng(seed, 42, ci))
            for i in range(n_per_class):
                rng = clip_rng(seed, 43, ci, i)
                kit = int(rng.choice(TEST_KITS)) if splits[i] == "test" else int(rng.choice(train_kits))
                fonts = [f for f in DRUM_SOUNDFONTS if f not in RECORDED_KITS or splits[i] != "test"]
                font = fonts[int(rng.integers(0, len(fonts)))]
                notes = RECORDED_KIT_NOTES[cls] if font in RECORDED_KITS else DRUM_NOTES[cls]
                n_hits = int(rng.choice([1, 1, 1, 2, 3, 4]))
                t = float(rng.uniform(0.0, 0.3))
                gap = float(rng.uniform(0.08, 0.25))
                hits = []
                for _ in range(n_hits):
                    if t > 0.85:
                        break
                    hits.append(
                        [
                            round(t, 4),
                            round(float(rng.uniform(0.05, 0.4)), 4),
                            int(rng.choice(notes)),
                            int(rng.integers(40, 128)),
                        ]
                    )
                    t += gap * float(rng.uniform(0.9, 1.1))
                params = {
                    "seed": int(seed),
                    "n_per_class": int(n_per_class),
                    "soundfont": font,
                    "kit": kit,
                    "kit_name": font if font in RECORDED_KITS else DRUM_KITS[kit],
                    "hits": hits,
                    **_mix_params(rng),
                }
                specs.append(ClipSpec(f"{cls}_{i:04d}", cls, splits[i], params))
        return specs

    def render_clip(self, renderer: _Renderer, spec: ClipSpec) -> np.ndarray:
        p = spec.params
        hits = [tuple(h) for h in p["hits"]]
        if p["soundfont"] in RECORDED_KITS:  # one kit on bank 0, played on a melodic channel
            x = renderer.render(p["soundfont"], 0, 0, hits, self.CLIP_SECONDS, 0)
        else:
            x = renderer.render(p["soundfont"], 128, p["kit"], hits, self.CLIP_SECONDS, 9)
        return _augment(x, p, np.random.default_rng(p["rng_seed"]))

    def render(self, specs: list[ClipSpec], out_dir: Path, progress: ProgressFn) -> None:
        _render_all(self, specs, out_dir, progress)


INSTRUMENTS = _Instruments()
DRUMS = _Drums()
