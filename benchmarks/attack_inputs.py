"""Hostile and odd inputs for ``benchmarks/attack.py``: audio files, zips and checkpoints.

Each builder returns bytes (or writes a file) and never needs the network.  The inputs
reproduce what issue 11 reported (the 47 KB zip of 40 one-MiB 8-bit WAVs, crafted model
cards, cut and bit-flipped FLAC/MP3, ...) and add their neighbours.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import struct
import subprocess
import tempfile
import wave
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


# --------------------------------------------------------------------------- audio


def tone(seconds: float = 1.0, rate: int = SR, f0: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.4 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return x if channels == 1 else np.tile(x[:, None], (1, channels))


def encode(x: np.ndarray, rate: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def ffmpeg_encode(x: np.ndarray, suffix: str, *extra: str, rate: int = SR) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.wav", Path(d) / f"out{suffix}"
        sf.write(src, x, rate)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *extra, str(dst)], check=True)
        return dst.read_bytes()


def wav8(seconds: float, rate: int = 1000, *, noise: bool = False, seed: int = 0) -> bytes:
    """8-bit mono WAV: constant samples (compress ~1000x) or random ones (do not compress)."""
    n = int(seconds * rate)
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes() if noise else bytes([128]) * n
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(data)
    return buf.getvalue()


def wav_header(rate: int, channels: int, bits: int, data_bytes: int, fmt_tag: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", data_bytes)


def flip(data: bytes, n: int = 50, seed: int = 0) -> bytes:
    b = bytearray(data)
    for i in np.random.default_rng(seed).integers(len(b) // 4, len(b), n):
        b[i] ^= 0xFF
    return bytes(b)


def flac_claiming(total_samples: int) -> bytes:
    """A valid 1 s FLAC whose STREAMINFO claims ``total_samples`` (36 bits)."""
    data = bytearray(encode(tone(1.0), SR, "FLAC"))
    # STREAMINFO starts at byte 8; bytes 8+10..8+17 hold rate(20) ch(3) bps(5) total(36)
    info = int.from_bytes(data[18:26], "big")
    info = (info & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    data[18:26] = info.to_bytes(8, "big")
    return bytes(data)


def audio_inputs() -> list[tuple[str, bytes, str]]:
    """(name, bytes, expected): expected is "ok" or "AudioError"."""
    wav = encode(tone(1.0), SR, "WAV", "PCM_16")
    flac = encode(tone(1.0), SR, "FLAC")
    mp3 = encode(tone(1.0), SR, "MP3", "MPEG_LAYER_III")
    ogg = encode(tone(1.0), SR, "OGG", "VORBIS")
    opus = encode(tone(1.0, 48000), 48000, "OGG", "OPUS")
    m4a = ffmpeg_encode(tone(1.0), ".m4a")
    vbr = ffmpeg_encode(tone(1.0), ".mp3", "-q:a", "5", "-write_xing", "0")
    nan = tone(0.5)
    nan[100:110] = np.nan
    inf = tone(0.5)
    inf[5] = np.inf
    cases = [
        ("empty", b"", "AudioError"),
        ("one byte", b"\x00", "AudioError"),
        ("text", b"hello, this is not audio\n" * 40, "AudioError"),
        ("PNG", b"\x89PNG\r\n\x1a\n" + bytes(200), "AudioError"),
        ("PDF", b"%PDF-1.4\n" + bytes(200), "AudioError"),
        ("zip as audio", b"PK\x03\x04" + bytes(200), "AudioError"),
        ("random bytes", np.random.default_rng(1).bytes(4096), "AudioError"),
        ("raw PCM", (tone(0.5) * 30000).astype("<i2").tobytes(), "AudioError"),
        ("WAV header only", wav[:44], "AudioError"),
        ("WAV cut at 50%", wav[: len(wav) // 2], "AudioError"),
        ("WAV cut at 99%", wav[: int(len(wav) * 0.99)], "AudioError"),
        ("WAV with a streaming-size header", wav_header(SR, 1, 16, 0xFFFFFFFF) + bytes(3200), "ok"),
        ("WAV at 0 Hz", wav_header(0, 1, 16, 3200) + bytes(3200), "AudioError"),
        ("WAV at 10 MHz", wav_header(10_000_000, 1, 16, 3200) + bytes(3200), "AudioError"),
        ("WAV with 0 channels", wav_header(SR, 0, 16, 3200) + bytes(3200), "AudioError"),
        ("WAV with 1000 channels", wav_header(SR, 1000, 16, 64000) + bytes(64000), "AudioError"),
        ("WAV of NaN", encode(nan, SR, "WAV", "FLOAT"), "AudioError"),
        ("WAV of inf", encode(inf, SR, "WAV", "FLOAT"), "AudioError"),
        ("WAV of 0 samples", encode(np.zeros(0, np.float32), SR, "WAV", "PCM_16"), "AudioError"),
        ("WAV bit flips", flip(wav), "ok"),
        ("WAV 1 sample", encode(np.array([0.5], np.float32), SR, "WAV", "PCM_16"), "ok"),
        ("WAV 8-bit 1 kHz", wav8(2.0, noise=True), "ok"),
        ("WAV 96 kHz 6 ch", encode(tone(0.5, 96000, channels=6), 96000, "WAV", "PCM_24"), "ok"),
        ("WAV silent", encode(np.zeros(SR, np.float32), SR, "WAV", "PCM_16"), "ok"),
        ("FLAC magic only", flac[:4] + bytes(len(flac) - 4), "AudioError"),
        ("FLAC cut at 26%", flac[: int(len(flac) * 0.26)], "AudioError"),
        ("FLAC cut at 90%", flac[: int(len(flac) * 0.9)], "AudioError"),
        ("FLAC bit flips", flip(flac), "AudioError"),
        ("FLAC claims 7 days", flac_claiming(SR * 86400 * 7), "AudioError"),
        ("MP3 cut at 26%", mp3[: int(len(mp3) * 0.26)], "AudioError"),
        ("MP3 cut at 90%", mp3[: int(len(mp3) * 0.9)], "AudioError"),
        ("MP3 bit flips", flip(mp3), "AudioError"),
        ("MP3 VBR without length header", vbr, "ok"),
        ("OGG cut at 26%", ogg[: int(len(ogg) * 0.26)], "AudioError"),
        ("OGG bit flips", flip(ogg), "AudioError"),
        ("Opus cut at 50%", opus[: len(opus) // 2], "AudioError"),
        ("M4A cut at 50%", m4a[: len(m4a) // 2], "AudioError"),
        ("M4A bit flips", flip(m4a), "AudioError"),
        ("M4A whole", m4a, "ok"),
        ("FLAC whole", flac, "ok"),
    ]
    return cases


# --------------------------------------------------------------------------- zips


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _good(n: int = 3, classes: tuple[str, ...] = ("cat", "dog")) -> list[tuple[str, bytes]]:
    return [(f"{c}/{c}{i}.wav", encode(tone(0.5, f0=300 + 300 * k + 20 * i))) for k, c in enumerate(classes)
            for i in range(n)]


def zip_inputs(folder: Path, marker: str) -> list[tuple[str, Path, str]]:
    """(name, zip path, expected): expected is "ok", "ok+warning" or "DatasetError".
    ``marker`` names the files a traversal entry would write (checked afterwards)."""
    folder.mkdir(parents=True, exist_ok=True)
    z = lambda name, entries, **kw: _zip(folder / name, entries, **kw)  # noqa: E731
    link = zipfile.ZipInfo("cat/link.wav")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    enc = zipfile.ZipInfo("cat/secret.wav")
    enc.flag_bits |= 0x1
    cases = [
        ("the reported 47 KB bomb: 40 x 1 MiB 8-bit WAVs",
         z("bomb47.zip", [(f"c{k % 2}/x{k}.wav", wav8((1 << 20) / 1000 - 0.044)) for k in range(40)]), "DatasetError"),
        ("the reported 587 KB bomb: 490 x 1 MiB",
         z("bomb587.zip", [(f"c{k % 2}/x{k}.wav", wav8((1 << 20) / 1000 - 0.044)) for k in range(490)]),
         "DatasetError"),
        ("incompressible: 11 h of 1 kHz noise in 40 MB",
         z("noise.zip", [(f"c{k % 2}/x{k}.wav", wav8(1000.0, noise=True, seed=k)) for k in range(40)],
           method=zipfile.ZIP_STORED), "DatasetError"),
        ("many small entries (21 000)", z("many.zip", [(f"c{k % 2}/x{k}.txt", b"") for k in range(21000)]),
         "DatasetError"),
        ("6000 tiny valid clips",
         z("count.zip", [(f"c{k % 2}/x{k}.wav", encode(tone(0.06, f0=300 + k % 50))) for k in range(6000)]),
         "DatasetError"),
        ("one 70 MB entry", z("huge.zip", [*_good(), ("cat/huge.wav", wav8(70_000.0, noise=True))],
                              method=zipfile.ZIP_STORED), "DatasetError"),
        ("path traversal", z("trav.zip", [*_good(), (f"cat/../../{marker}-trav.wav", b"x")]), "DatasetError"),
        ("absolute path", z("abs.zip", [*_good(), (f"/tmp/{marker}-abs.wav", b"x")]), "DatasetError"),
        ("symlink entry", z("link.zip", [*_good(), (link, b"/etc/passwd")]), "DatasetError"),
        ("encrypted entry", z("enc.zip", [*_good(), (enc, b"x" * 100)]), "ok+skipped"),  # skipped with its reason
        ("NUL in a name", z("nul.zip", [*_good(), ("cat/a\x00b.wav", b"x")]), "ok+skipped"),
        ("right-to-left override class", z("rtl.zip", _good(3, ("cat", "go\u202etac"))), "DatasetError"),
        ("zero-width space class", z("zws.zip", _good(3, ("cat", "ca\u200bt"))), "DatasetError"),
        ("one class only", z("one.zip", _good(3, ("cat",))), "DatasetError"),
        ("only corrupt files", z("junk.zip", [(f"{c}/{i}.wav", b"RIFFjunk") for c in "ab" for i in range(3)]),
         "DatasetError"),
        ("empty zip", z("empty.zip", []), "DatasetError"),
        ("a class of 1-sample clips",
         z("short.zip", [*_good(3, ("cat",)), *[(f"dog/{i}.wav", encode(np.array([0.3], np.float32))) for i in range(3)]]),
         "DatasetError"),
        ("2 clips a class (no test split)", z("two.zip", _good(2)), "ok+warning"),
        ("nested wrapper folders", z("wrap.zip", [(f"a/b/{n}", d) for n, d in _good()]), "ok"),
        ("odd but valid names", z("names.zip", _good(3, ("café", "犬 dog"))), "ok"),
        ("a zip inside the zip", z("nested.zip", [*_good(), ("cat/inner.zip", (folder / "two.zip").read_bytes())]),
         "ok"),
        ("deep folders (60 levels)", z("deep.zip", [*_good(), ("cat/" + "d/" * 60 + "x.wav", encode(tone(0.5)))]),
         "ok"),
        ("a valid zip", z("valid.zip", _good(4)), "ok"),
    ]
    # a truncated archive and one with a corrupt entry
    data = (folder / "valid.zip").read_bytes()
    (folder / "truncated.zip").write_bytes(data[: len(data) // 2])
    cases.append(("truncated archive", folder / "truncated.zip", "DatasetError"))
    bad = bytearray(data)
    with zipfile.ZipFile(folder / "valid.zip") as zf:
        info = zf.infolist()[1]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    bad[start + 40 : start + 60] = bytes(20)
    (folder / "crc.zip").write_bytes(bytes(bad))
    cases.append(("corrupt entry data", folder / "crc.zip", "DatasetError"))
    (folder / "text.zip").write_text("not a zip")
    cases.append(("text named .zip", folder / "text.zip", "DatasetError"))
    # an entry whose header declares less than it inflates to (a lying header)
    liar = bytearray((z("liar.zip", [*_good(), ("cat/liar.wav", bytes(300_000))])).read_bytes())
    with zipfile.ZipFile(folder / "liar.zip") as zf:
        li = zf.getinfo("cat/liar.wav")
    cd = bytes(liar).rfind(b"cat/liar.wav") - 46
    liar[cd + 24 : cd + 28] = (1000).to_bytes(4, "little")  # uncompressed size in the central directory
    (folder / "liar.zip").write_bytes(bytes(liar))
    assert li.file_size == 300_000
    cases.append(("entry inflating beyond its declared size", folder / "liar.zip", "DatasetError"))
    return cases


# --------------------------------------------------------------------------- checkpoints


class Exploit:
    """Unpickling runs ``fn(*args)``."""

    def __init__(self, fn, args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def checkpoint_inputs(marker_dir: Path) -> list[tuple[str, bytes, str]]:
    """(name, bytes, expected): "ok" or "CheckpointError".  Exploits would create files in
    ``marker_dir``."""
    import torch

    from diffres import save_checkpoint
    from diffres.models import AudioClassifier, ModelConfig

    torch.manual_seed(0)
    buf = io.BytesIO()
    save_checkpoint(buf, AudioClassifier(ModelConfig.from_dict({"classes": ["a", "b", "c"], "n_mels": 16, "width": 4})))
    good = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    card = json.loads(good["card"])

    def save(**changes) -> bytes:
        out = io.BytesIO()
        torch.save({**good, **changes}, out)
        return out.getvalue()

    def with_card(**fields) -> bytes:
        return save(card=json.dumps({**card, **fields}))

    m = str(marker_dir)
    cases = [
        ("valid", save(), "ok"),
        ("empty", b"", "CheckpointError"),
        ("text", b"not a checkpoint", "CheckpointError"),
        ("truncated", buf.getvalue()[: len(buf.getvalue()) // 2], "CheckpointError"),
        ("foreign state_dict", (lambda b: (torch.save({"w": torch.zeros(2)}, b), b.getvalue())[1])(io.BytesIO()),
         "CheckpointError"),
        ("raw pickle os.system", pickle.dumps(Exploit(os.system, (f"touch {m}/pwned-system",))), "CheckpointError"),
        ("torch.save exploit: open", save(x=Exploit(open, (f"{m}/pwned-open", "w"))), "CheckpointError"),
        ("torch.save exploit: os.system", save(x=Exploit(os.system, (f"touch {m}/pwned-sys2",))), "CheckpointError"),
        ("torch.save exploit: eval", save(x=Exploit(eval, (f"open('{m}/pwned-eval','w')",))), "CheckpointError"),
        ("torch.save exploit: exec", save(x=Exploit(exec, (f"open('{m}/pwned-exec','w')",))), "CheckpointError"),
        ("card null", save(card="null"), "CheckpointError"),
        ("card a list", save(card="[1, 2]"), "CheckpointError"),
        ("card 200k levels deep", save(card="[" * 200_000 + "]" * 200_000), "CheckpointError"),
        ("card 60k levels deep", save(card="[" * 60_000 + "]" * 60_000), "CheckpointError"),
        ("card not JSON", save(card="{nope"), "CheckpointError"),
        ("card missing", save(card=None), "CheckpointError"),
        ("card of 2M class names", with_card(classes=[f"c{i}" for i in range(2_000_000)]), "CheckpointError"),
        ("card of 1001 classes", with_card(classes=[f"c{i}" for i in range(1001)]), "CheckpointError"),
        ("hop_ms 'ten'", with_card(hop_ms="ten"), "CheckpointError"),
        ("hop_ms NaN", with_card(hop_ms=float("nan")), "CheckpointError"),
        ("n_mels 10 000", with_card(n_mels=10_000), "CheckpointError"),
        ("width '16'", with_card(width="16"), "CheckpointError"),
        ("rate 1.0", with_card(reduction_rate=1.0), "CheckpointError"),
        ("sample rate 16000.5", with_card(sample_rate=16000.5), "CheckpointError"),
        ("frontend a list", with_card(frontend=["diffres"]), "CheckpointError"),
        ("importance 'random'", with_card(importance="random"), "CheckpointError"),
        ("channels repeated", with_card(diffres_channels=["avg", "avg"]), "CheckpointError"),
        ("RTL class name", with_card(classes=["a", "b", "c\u202e"]), "CheckpointError"),
        ("huge filter bank", with_card(sample_rate=768000, win_ms=200.0, n_mels=512), "CheckpointError"),
        ("more classes than outputs", with_card(classes=["a", "b", "c", "d"]), "CheckpointError"),
        ("NaN weights", save(state_dict={k: v.fill_(float("nan")) if v.is_floating_point() else v
                                         for k, v in {k: v.clone() for k, v in good["state_dict"].items()}.items()}),
         "CheckpointError"),
        ("weights not tensors", save(state_dict={"x": [1, 2]}), "CheckpointError"),
        ("newer version", save(version=99), "CheckpointError"),
        ("training state a list", save(training_state=[1]), "CheckpointError"),
        ("training state step -1", save(training_state={"global_step": -1}), "CheckpointError"),
        ("familiarity a string", save(familiarity="x"), "CheckpointError"),
        ("familiarity wrong shapes", save(familiarity={"class_means": torch.zeros(2, 2), "precision": torch.eye(2),
                                                       "threshold": 1.0}), "CheckpointError"),
    ]
    return cases
