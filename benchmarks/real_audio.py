"""Real recordings available on a Debian machine of this project's kind, for benchmarks only.

Nothing here is shipped.  The check sets never overlap training: the drums generator (v2)
trains on the AVL Black Pearl kit, so only the Red Zeppelin kit is read here.  Sources (install with apt-get; every one is a
recording of a real instrument, drum or voice):

- ``sonic-pi-samples`` (CC0): drum hits, guitar, piano, choir and bass samples;
- ``lmms-common`` (GPL-2+): LMMS's sample library: drum hits, orchestral and band
  instruments;
- ``avldrums.lv2-soundfont`` (CC-BY-SA-3.0, Glen MacArthur): two multi-sampled acoustic
  drum kits, Black Pearl and Red Zeppelin, played here through FluidSynth (notes labelled by
  the kit's own note names);
- ``pocketsphinx-testdata`` (BSD-2): read speech, among it spoken digit strings.

Labels come from file names (only unambiguous ones) or General MIDI drum notes.

- :func:`drum_hits`, :func:`instrument_notes`: labelled one-shots for classification;
- :func:`speech_phrases`: spoken-digit phrases with their voiced spans;
- :func:`sequence`: events placed in quiet background with known spans, for measuring
  where a model spends its resolution.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import diffres

SONIC_PI = Path("/usr/share/sonic-pi/samples")
LMMS = Path("/usr/share/lmms/samples")
AVL = {"Black_Pearl": Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
       "Red_Zeppelin": Path("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2")}
SPHINX = Path("/usr/share/pocketsphinx/test/data")
PACKAGES = {"sonic-pi": "sonic-pi-samples", "lmms": "lmms-common", "avl": "avldrums.lv2-soundfont",
            "sphinx": "pocketsphinx-testdata"}
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Clip:
    """One labelled recording: ``samples`` float32 mono at 16 kHz."""

    name: str
    label: str
    source: str
    samples: np.ndarray


SONIC_PI_DRUMS = {
    **{s: "kick" for s in ("drum_heavy_kick", "drum_bass_hard", "drum_bass_soft", "bd_boom", "bd_fat",
                           "bd_haus", "bd_klub", "bd_pure", "bd_808")},
    **{s: "snare" for s in ("drum_snare_hard", "drum_snare_soft", "sn_dolf", "sn_dub", "sn_generic", "sn_zome")},
    **{s: "tom" for s in ("drum_tom_hi_hard", "drum_tom_hi_soft", "drum_tom_mid_hard", "drum_tom_mid_soft",
                          "drum_tom_lo_hard", "drum_tom_lo_soft")},
    **{s: "hihat" for s in ("drum_cymbal_closed", "drum_cymbal_pedal", "drum_cymbal_open")},
    **{s: "cymbal" for s in ("drum_cymbal_hard", "drum_cymbal_soft", "drum_splash_hard", "drum_splash_soft")},
}
#: LMMS drum file prefixes -> class (rim, shaker, clav, wood and zap hits are left out).
LMMS_DRUM_PREFIXES = (("bassdrum", "kick"), ("kick", "kick"), ("clap", "clap"), ("crash", "cymbal"),
                      ("ride", "cymbal"), ("hihat", "hihat"), ("snare", "snare"), ("tom", "tom"))
LMMS_DRUM_EXCLUDE = ("snare_rim01", "kick_distorted01", "kick_hardcore01")
#: AVL kits: notes per class, from the plugin's own MIDI note names (its midnam): not the
#: General MIDI map (48 is a swish hi-hat, 50/52/58 are cymbal chokes, left out).
AVL_NOTES = {"kick": [36], "snare": [38, 40], "clap": [39], "hihat": [42, 44, 46, 48], "tom": [41, 43, 45, 47],
             "cymbal": [49, 51, 53, 55, 57, 59, 60]}
AVL_VELOCITIES = (50, 90, 127)

SONIC_PI_INSTRUMENTS = {
    **{s: "guitar" for s in ("guit_em9", "guit_e_fifths", "guit_e_slide", "guit_harmonics")},
    "ambi_piano": "keyboard",
    "ambi_choir": "vocal",
    **{s: "bass" for s in ("bass_hard_c", "bass_hit_c", "bass_thick_c", "bass_woodsy_c", "bass_voxy_c",
                           "bass_dnb_f", "bass_trance_c")},
}
LMMS_INSTRUMENTS = {
    "instruments/bassslap01": "bass", "instruments/bassslap02": "bass", "instruments/cello01": "string",
    **{f"instruments/church_organ0{k}": "organ" for k in range(1, 5)}, "instruments/e_organ01": "organ",
    "instruments/e_piano_accord01": "keyboard", "instruments/e_piano_accord02": "keyboard",
    "instruments/flute01": "flute", "instruments/harpsichord01": "keyboard", "instruments/piano01": "keyboard",
    "instruments/piano02": "keyboard", "instruments/steel_guitar01": "guitar", "instruments/trumpet01": "brass",
    "instruments/violin_double_stop01": "string", "instruments/violin_fingered01": "string",
    "instruments/violin_pizzicato01": "string", "latin/latin_brass01": "brass", "latin/latin_guitar01": "guitar",
    "latin/latin_guitar02": "guitar", "latin/latin_guitar03": "guitar", "stringsnpads/strings01": "string",
    "stringsnpads/chorus01": "vocal", "stringsnpads/chorus02": "vocal",
}


class MissingPackage(RuntimeError):
    """A source package is not installed; the message says what to install."""


def require(*keys: str) -> None:
    paths = {"sonic-pi": SONIC_PI, "lmms": LMMS, "avl": AVL["Black_Pearl"], "sphinx": SPHINX}
    missing = [PACKAGES[k] for k in keys if not paths[k].exists()]
    if missing:
        raise MissingPackage(f"install the recordings first: apt-get install {' '.join(missing)}")


#: Recordings that could not be decoded on this machine: (path, reason).
SKIPPED: list[tuple[str, str]] = []


def _load(path: Path) -> np.ndarray | None:
    try:
        samples, _ = diffres.load_audio(path, sample_rate=SAMPLE_RATE)
    except diffres.AudioError as exc:
        SKIPPED.append((str(path), str(exc)))
        return None
    return samples


def _clips(items) -> list[Clip]:
    """Clips from ``(name, label, source, path)``, leaving out undecodable files."""
    out = []
    for name, label, source, path in items:
        samples = _load(path)
        if samples is not None:
            out.append(Clip(name, label, source, samples))
    return out


def _avl_hits(kit: str) -> list[Clip]:
    from diffres.datasets.soundfonts import _Renderer, SOUNDFONTS

    name = f"AVL_{kit}"
    SOUNDFONTS.setdefault(name, (str(AVL[kit]), PACKAGES["avl"]))
    renderer = _Renderer((name,))
    clips = []
    for label, notes in AVL_NOTES.items():
        for note in notes:
            for velocity in AVL_VELOCITIES:
                x = renderer.render(name, 0, 0, [(0.05, 0.5, note, velocity)], 1.5, 0)  # bank 0 on a melodic channel
                if np.max(np.abs(x)) < 1e-4:
                    continue  # the kit has no sample on this note
                clips.append(Clip(f"{kit}:{note}:v{velocity}", label, f"avl:{kit}", x.astype(np.float32)))
    return clips


def drum_hits(*, avl_kits: tuple[str, ...] = ("Red_Zeppelin",)) -> list[Clip]:
    """Labelled real drum one-shots: sonic-pi, LMMS and the given AVL kits."""
    require("sonic-pi", "lmms", *(("avl",) if avl_kits else ()))
    items = [(stem, label, "sonic-pi", SONIC_PI / f"{stem}.flac") for stem, label in SONIC_PI_DRUMS.items()]
    for path in sorted((LMMS / "drums").glob("*.ogg")):
        label = next((c for prefix, c in LMMS_DRUM_PREFIXES if path.stem.startswith(prefix)), None)
        if label is not None and path.stem not in LMMS_DRUM_EXCLUDE:
            items.append((path.stem, label, "lmms", path))
    clips = _clips(items)
    for kit in avl_kits:
        clips += _avl_hits(kit)
    return clips


def instrument_notes() -> list[Clip]:
    """Labelled real instrument recordings: sonic-pi and LMMS."""
    require("sonic-pi", "lmms")
    return _clips([(stem, label, "sonic-pi", SONIC_PI / f"{stem}.flac") for stem, label in SONIC_PI_INSTRUMENTS.items()]
                  + [(rel, label, "lmms", LMMS / f"{rel}.ogg") for rel, label in LMMS_INSTRUMENTS.items()])


def voiced_spans(samples: np.ndarray, *, threshold_db: float = 15.0, bridge_s: float = 0.15,
                 hop_s: float = 0.01) -> list[tuple[float, float]]:
    """Spans (s) where the 10 ms frame energy is ``threshold_db`` above the recording's 10th
    percentile, with pauses shorter than ``bridge_s`` bridged."""
    hop = int(hop_s * SAMPLE_RATE)
    n = len(samples) // hop
    energy = 10 * np.log10(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    on = energy > np.percentile(energy, 10) + threshold_db
    bridge = int(round(bridge_s / hop_s))
    spans, i = [], 0
    while i < n:
        if not on[i]:
            i += 1
            continue
        j = i
        while j < n and (on[j] or on[j : j + bridge].any()):
            j += 1
        spans.append((i * hop_s, j * hop_s))
        i = j
    return spans


def speech_phrases() -> list[Clip]:
    """Spoken digit strings (pocketsphinx test data, read by real speakers), cut to their
    voiced phrases."""
    require("sphinx")
    clips = []
    for rel in ("numbers.raw", "tidigits/dhd.2934z.raw"):
        raw = np.fromfile(SPHINX / rel, dtype="<i2").astype(np.float32) / 32768.0
        for k, (a, b) in enumerate(voiced_spans(raw, bridge_s=0.05)):
            if b - a >= 0.2:
                cut = raw[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]
                clips.append(Clip(f"{rel}:{k}", "speech", "sphinx", cut))
    return clips


def onset_span(samples: np.ndarray, *, floor_db: float = -30.0) -> tuple[int, int]:
    """First and last sample within ``floor_db`` of the clip's peak (its audible extent)."""
    level = np.abs(samples)
    loud = np.flatnonzero(level >= level.max() * 10 ** (floor_db / 20))
    return int(loud[0]), int(loud[-1]) + 1


def sequence(events: list[np.ndarray], rng: np.random.Generator, *, seconds: float,
             gap_s: tuple[float, float] = (0.3, 0.9), noise_db: float = -60.0,
             max_event_s: float | None = None) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Place ``events`` (each trimmed to its audible extent, and to ``max_event_s`` with a
    10 ms fade) one after another with random quiet gaps in faint pink noise; returns the
    samples and each event's span in seconds.  Events that would run past ``seconds`` are
    left out."""
    n = int(round(seconds * SAMPLE_RATE))
    out = np.zeros(n)
    spans = []
    t = int(rng.uniform(*gap_s) * SAMPLE_RATE * 0.5)
    for ev in events:
        a, b = onset_span(ev)
        piece = ev[a:b].astype(np.float64)
        if max_event_s is not None and len(piece) > max_event_s * SAMPLE_RATE:
            piece = piece[: int(max_event_s * SAMPLE_RATE)].copy()
            fade = int(0.01 * SAMPLE_RATE)
            piece[-fade:] *= np.linspace(1.0, 0.0, fade)
        piece = piece / (np.max(np.abs(piece)) + 1e-12) * 10 ** (rng.uniform(-6, 0) / 20)
        if t + len(piece) > n:
            break
        out[t : t + len(piece)] += piece
        spans.append((t / SAMPLE_RATE, (t + len(piece)) / SAMPLE_RATE))
        t += len(piece) + int(rng.uniform(*gap_s) * SAMPLE_RATE)
    from diffres.datasets._common import colored_noise

    out += colored_noise(n, rng, 1.0) * 10 ** (noise_db / 20)
    return out.astype(np.float32), spans


def have_fluidsynth() -> bool:
    return shutil.which("fluidsynth") is not None or Path("/usr/lib/x86_64-linux-gnu/libfluidsynth.so.3").exists()
