"""Hostile and odd user zips and folders: budgets before and during the work, bounded memory,
temporary extractions cleaned up, clear messages without server paths, short clips, empty
splits and spoofed class names."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import diffres.datasets as D
from diffres.datasets import folders, zips
from diffres.datasets.folders import DatasetBudget
from diffres.errors import DatasetError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFRES_CACHE", str(tmp_path / "cache"))


def wav8(seconds: float, rate: int = 1000, *, noise: bool = False, seed: int = 0) -> bytes:
    """An 8-bit mono WAV: constant (compresses ~1000x) or random (does not compress)."""
    n = int(seconds * rate)
    data = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes() if noise else bytes([128]) * n
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(data)
    return buf.getvalue()


def tone(seconds: float = 0.5, f0: float = 440.0, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def good_entries(n: int = 4, classes=("cat", "dog")) -> dict[str, bytes]:
    return {f"{c}/{c}{i}.wav": tone(0.5, 300 + 200 * k + 10 * i) for k, c in enumerate(classes) for i in range(n)}


def test_the_reported_47_kb_bomb_is_refused_before_extraction(tmp_path):
    """40 entries of 1 MiB 8-bit 1 kHz constant WAVs (exactly 1 MiB each slipped past the
    old 'over 1 MiB' ratio check) took the server to 3.9 GB."""
    entries = {f"c{k % 2}/x{k}.wav": wav8((1048576 - 44) / 1000) for k in range(40)}
    z = make_zip(tmp_path / "bomb.zip", entries)
    assert z.stat().st_size < 100_000
    tracemalloc.start()
    with pytest.raises(DatasetError, match=r"possible zip bomb\): entry 'c0/x0.wav' expands \d+x"):
        D.load_folder_dataset(z)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6
    assert not any((tmp_path / "cache").rglob("*.wav"))  # nothing was extracted


def test_incompressible_hours_of_audio_are_refused_from_the_headers(tmp_path, monkeypatch):
    """Random 8-bit samples at 1 kHz do not compress, so the ratio check cannot see them: the
    total length from the headers is over budget before any file is decoded."""
    entries = {f"c{k % 2}/x{k}.wav": wav8(50.0, noise=True, seed=k) for k in range(12)}  # 10 min in 600 kB
    z = make_zip(tmp_path / "long.zip", entries)

    def never(*args, **kwargs):
        raise AssertionError("decoded although over budget")

    monkeypatch.setattr("diffres.audio.load_clip", never)
    budget = DatasetBudget(max_total_seconds=300.0)
    with pytest.raises(DatasetError, match=r"holds 10.0 min of audio; at most 5.0 min are read"):
        D.load_folder_dataset(z, budget=budget)


def test_the_total_is_counted_while_decoding_when_headers_say_nothing(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "d.zip", good_entries(6))  # 12 clips of 0.5 s
    monkeypatch.setattr(folders, "_header", lambda path: None)
    with pytest.raises(DatasetError, match=r"holds more than 4 s of audio, the most that is read"):
        D.load_folder_dataset(z, budget=DatasetBudget(max_total_seconds=4.0))
    assert D.load_folder_dataset(z, budget=DatasetBudget(max_total_seconds=7.0)).n_classes == 2


def test_file_count_and_fitted_size_budgets(tmp_path):
    z = make_zip(tmp_path / "d.zip", good_entries(6))
    with pytest.raises(DatasetError, match=r"the dataset has 12 files; at most 10 are read"):
        D.load_folder_dataset(z, budget=DatasetBudget(max_files=10))
    # 12 clips padded to 0.5 s hold 6 s: over a 5 s budget for the fitted arrays
    with pytest.raises(DatasetError, match=r"12 clips of 0.5 s would hold 6 s of audio, more than 5 s"):
        D.load_folder_dataset(z, budget=DatasetBudget(max_total_samples=5 * 16000))


def test_long_files_are_skipped_with_a_reason_by_their_header(tmp_path, monkeypatch):
    entries = good_entries(3)
    entries["cat/long.wav"] = tone(3.0)
    z = make_zip(tmp_path / "d.zip", entries)
    ds = D.load_folder_dataset(z, budget=DatasetBudget(max_file_seconds=2.0))
    assert ds.skipped == [("d.zip:cat/long.wav", "3 s long; files longer than 2 s are not used (cut it into clips)")]
    # the same when the header is unknown: the decode stops at the limit and says why
    monkeypatch.setattr(folders, "_header", lambda path: None)
    ds = D.load_folder_dataset(z, budget=DatasetBudget(max_file_seconds=2.0))
    assert ds.skipped == [("d.zip:cat/long.wav", "3 s long; files longer than 2 s are not used (cut it into clips)")]


def test_one_sample_clips_are_not_training_clips(tmp_path):
    entries = good_entries(3)
    buf = io.BytesIO()
    sf.write(buf, np.array([0.5], np.float32), 16000, format="WAV", subtype="PCM_16")
    entries["dog/one.wav"] = buf.getvalue()
    ds = D.load_folder_dataset(make_zip(tmp_path / "d.zip", entries))
    assert ds.skipped == [("d.zip:dog/one.wav", "only 1 sample long (0.062 ms); a clip needs at least 50 ms of audio")]
    assert len(ds) == 6


def test_two_clips_a_class_say_that_the_test_split_is_empty(tmp_path):
    ds = D.load_folder_dataset(make_zip(tmp_path / "d.zip", good_entries(2)))
    assert len(ds.test) == 0 and len(ds.val) == 2
    assert ds.warnings == [
        "The test split is empty: every class has fewer than 3 readable clips, so no test accuracy can be "
        "measured. Give each class at least 3 clips."
    ]
    entries = {k: v for k, v in good_entries(3).items() if not k.endswith("dog2.wav")}
    ds = D.load_folder_dataset(make_zip(tmp_path / "e.zip", entries))
    assert ds.warnings == ["1 classes have no test clip ('dog'): they have fewer than 3 clips."]
    assert D.load_folder_dataset(make_zip(tmp_path / "f.zip", good_entries(4))).warnings == []


def test_a_right_to_left_override_in_a_class_name_is_refused(tmp_path):
    entries = good_entries(3, classes=("cat", "go\u202etac"))
    with pytest.raises(DatasetError, match=r"class folder 'go\\u202etac' contains U\+202E RIGHT-TO-LEFT OVERRIDE"):
        D.load_folder_dataset(make_zip(tmp_path / "d.zip", entries))


def test_memory_error_is_not_an_unreadable_file(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "d.zip", good_entries(3))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("diffres.audio.load_clip", no_memory)
    with pytest.raises(MemoryError):
        D.load_folder_dataset(z)
    assert not [p for p in (tmp_path / "cache" / "user-zips").iterdir()]  # the extraction went anyway


def test_extractions_are_temporary_and_old_ones_are_pruned(tmp_path):
    z = make_zip(tmp_path / "d.zip", good_entries(3))
    D.load_folder_dataset(z)
    root = tmp_path / "cache" / "user-zips"
    assert list(root.iterdir()) == []
    kept = D.extract_zip_safely(z)  # the public extractor keeps its copy in the cache ...
    stale = root / ".tmp-extract-dead"  # ... and a killed process may leave a temporary one
    stale.mkdir()
    now = time.time()
    os.utime(stale, (now - 7200, now - 7200))
    assert D.prune_extractions() == [stale]
    assert kept.is_dir()
    assert D.prune_extractions(now=now + 2 * zips.EXTRACTION_MAX_AGE_SECONDS) == [kept]
    assert list(root.iterdir()) == []


def test_corrupt_entries_are_named_without_server_paths(tmp_path):
    z = make_zip(tmp_path / "d.zip", good_entries(3))
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("cat/cat1.wav")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 50 : start + 60] = bytes(10)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError) as exc:
        D.load_folder_dataset(bad)
    message = str(exc.value)
    assert "bad.zip: entry 'cat/cat1.wav' is corrupt" in message
    assert str(tmp_path) not in message and "user-zips" not in message


def test_skipped_entries_give_their_reason_by_entry_name_not_server_path(tmp_path):
    z = make_zip(tmp_path / "d.zip", {**good_entries(3), "cat/notes.wav": b"just some text, not audio" * 8})
    ds = D.load_folder_dataset(z)
    assert len(ds.skipped) == 1
    shown, reason = ds.skipped[0]
    assert shown == "d.zip:cat/notes.wav" and "not audio" in reason and "d.zip:cat/notes.wav" in reason
    assert "user-zips" not in reason and "/" + "root" not in reason and str(tmp_path) not in reason


def test_per_entry_limits(tmp_path):
    z = make_zip(tmp_path / "big.zip", {**good_entries(2), "cat/big.wav": wav8(3.0, 48000, noise=True)})
    with pytest.raises(DatasetError, match=r"entry 'cat/big.wav' is 0 MB uncompressed; entries larger than 0 MB"):
        D.load_folder_dataset(z, budget=DatasetBudget(max_entry_bytes=100_000))
    small_bomb = make_zip(tmp_path / "sb.zip", {**good_entries(2), "cat/z.wav": bytes(200_000)})
    with pytest.raises(DatasetError, match=r"possible zip bomb\): entry 'cat/z.wav' expands"):
        D.load_folder_dataset(small_bomb)
    lzma = make_zip(tmp_path / "lzma.zip", good_entries(2), zipfile.ZIP_LZMA)
    assert D.load_folder_dataset(lzma).n_classes == 2
    weird = bytearray(make_zip(tmp_path / "w.zip", good_entries(2), zipfile.ZIP_STORED).read_bytes())
    weird[8:10] = (99).to_bytes(2, "little")  # the first local header's method: AES (99)
    cd = bytes(weird).rfind(b"PK\x01\x02", 0, len(weird))
    first_cd = bytes(weird).find(b"PK\x01\x02")
    assert cd >= first_cd
    weird[first_cd + 10 : first_cd + 12] = (99).to_bytes(2, "little")
    (tmp_path / "w.zip").write_bytes(bytes(weird))
    with pytest.raises(DatasetError, match=r"uses compression method 99, which is not supported"):
        D.load_folder_dataset(tmp_path / "w.zip")
