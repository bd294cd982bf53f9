"""Tests of diffres.datasets: built-in generators (tiny builds), cache, splits, user folders
and zip safety. Every built-in is built for real (espeak-ng, flite, festival, FluidSynth),
with a few clips per class so the whole file runs in well under a minute."""

from __future__ import annotations

import hashlib
import json
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import diffres.datasets as D
from diffres.datasets import _common, soundfonts
from diffres.errors import DatasetError, ParameterError

N = 3  # clips per class in the tiny builds

CONTRACT_CLASSES = {
    "events": ["alarm_clock", "background", "car_horn", "doorbell", "knock", "phone_ring", "siren", "smoke_alarm"],
    "digits": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "instruments": [
        "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
    ],
    "drums": ["clap", "cymbal", "hihat", "kick", "snare", "tom"],
}
CLIP_SECONDS = {"events": 2.0, "digits": 1.0, "instruments": 2.0, "drums": 1.0}


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache root for the whole module (never the user's cache)."""
    root = tmp_path_factory.mktemp("dcache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFRES_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(autouse=True)
def _private_cache(cache, monkeypatch):
    monkeypatch.setenv("DIFFRES_CACHE", str(cache))


@pytest.fixture(scope="module")
def built(cache):
    """Each built-in built once, tiny, seed 0, into the module cache."""
    return {name: D.build_dataset(name, seed=0, n_per_class=N) for name in CONTRACT_CLASSES}


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.wav"))
    }


def manifest_clips(root: Path) -> list[dict]:
    return D.read_manifest(root)["clips"]


def write_tone(path: Path, seconds: float = 0.5, f0: float = 440.0, sample_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), sample_rate, subtype="PCM_16")


def make_user_folder(root: Path, classes=("cat", "dog"), n=4, seconds=0.5) -> Path:
    for ci, c in enumerate(classes):
        for i in range(n):
            write_tone(root / c / f"{c}_{i}.wav", seconds=seconds, f0=300 + 100 * ci + 10 * i)
    return root


# ---------------------------------------------------------------------------- registry


def test_builtin_names_and_classes_match_contract():
    # the interface contract fixes these four sets' class names; ``rhythms`` names its own
    assert {k: v for k, v in D.BUILTIN_DATASETS.items() if k in CONTRACT_CLASSES} == CONTRACT_CLASSES
    assert set(D.BUILTIN_DATASETS) == set(CONTRACT_CLASSES) | {"rhythms"}
    for name, info in D.DATASET_INFO.items():
        assert info["clip_seconds"] == CLIP_SECONDS.get(name, info["clip_seconds"])
        assert isinstance(info["description"], str) and info["description"]
        assert isinstance(info["needs_system_packages"], list)
    assert D.DATASET_INFO["events"]["needs_system_packages"] == []


def test_cache_paths(built, cache):
    assert D.cache_root() == cache
    assert D.dataset_path("events", n_per_class=N) == built["events"]
    assert built["events"].name == f"events-v{D.DATASET_INFO['events']['version']}-seed0-n{N}"
    assert D.is_built("events", n_per_class=N) and not D.is_built("events", seed=99, n_per_class=N)


def test_unknown_name_and_bad_parameters():
    with pytest.raises(DatasetError, match="unknown built-in dataset 'nope'"):
        D.build_dataset("nope")
    with pytest.raises(DatasetError, match="neither a built-in dataset"):
        D.load_dataset("no-such-dataset-or-folder")
    with pytest.raises(ParameterError, match="n_per_class must be an integer >= 1"):
        D.build_dataset("events", n_per_class=0)
    with pytest.raises(ParameterError, match="sample_rate"):
        D.load_dataset("events", sample_rate=12.5)
    with pytest.raises(ParameterError, match="split must be"):
        D.export_dataset("events", "/tmp/x", split="training")


# ---------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", list(CONTRACT_CLASSES))
def test_tiny_build_layout_and_clips(built, name):
    root = built[name]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(CONTRACT_CLASSES[name])
    manifest = D.read_manifest(root)
    assert manifest["classes"] == CONTRACT_CLASSES[name]
    assert len(manifest["clips"]) == N * len(CONTRACT_CLASSES[name])
    ids = [c["id"] for c in manifest["clips"]]
    assert len(set(ids)) == len(ids)
    n_expected = int(CLIP_SECONDS[name] * 16000)
    for clip in manifest["clips"]:
        assert clip["split"] in ("train", "val", "test")
        x, sr = sf.read(str(root / clip["path"]), dtype="float32")
        assert sr == 16000 and x.ndim == 1 and x.shape[0] == n_expected
        assert np.all(np.isfinite(x))
        assert np.max(np.abs(x)) > 0.05, clip  # not silent (background is noise, also audible)
    # every class appears in every split
    for c in CONTRACT_CLASSES[name]:
        assert {k["split"] for k in manifest["clips"] if k["class"] == c} == {"train", "val", "test"}


@pytest.mark.parametrize("name", list(CONTRACT_CLASSES))
def test_same_seed_same_bytes_other_seed_differs(built, name, tmp_path):
    again = D.build_dataset(name, tmp_path / "again", seed=0, n_per_class=N)
    assert digest_tree(again) == digest_tree(built[name])
    assert manifest_clips(again) == manifest_clips(built[name])
    other = D.build_dataset(name, tmp_path / "other", seed=1, n_per_class=N)
    a, b = digest_tree(built[name]), digest_tree(other)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a) > 0.9 * len(a)


def test_digits_test_split_holds_out_voices(built):
    clips = manifest_clips(built["digits"])
    held = {("espeak-ng", a) for a in D.digits.ESPEAK_ACCENTS_TEST} | {("flite", v) for v in D.digits.FLITE_TEST}

    def voice(c):
        p = c["params"]
        return (p["engine"], p["voice"].split("+")[0])

    test = {voice(c) for c in clips if c["split"] == "test"}
    rest = {voice(c) for c in clips if c["split"] != "test"}
    assert test <= held
    assert not (rest & held)
    engines = {c["params"]["engine"] for c in clips}
    assert engines == {"espeak-ng", "flite", "festival"}


def test_instruments_test_split_holds_out_a_soundfont(built):
    clips = manifest_clips(built["instruments"])
    held = soundfonts.INSTRUMENTS.TEST_SOUNDFONT
    test_fonts = {c["params"]["soundfont"] for c in clips if c["split"] == "test"}
    rest_fonts = {c["params"]["soundfont"] for c in clips if c["split"] != "test"}
    assert test_fonts == {held} and held not in rest_fonts
    assert rest_fonts == set(soundfonts.INSTRUMENTS.TRAIN_SOUNDFONTS) == set(soundfonts.INSTRUMENT_SOUNDFONTS) - {held}
    assert {"sf_GMbank", "OPL3_FM"} <= rest_fonts  # sample sources independent of FluidR3 are in training
    for fam, programs in soundfonts.FAMILIES.items():
        assert {c["params"]["program"] for c in clips if c["class"] == fam} <= set(programs)


def test_drums_test_split_holds_out_kits(built):
    clips = manifest_clips(built["drums"])
    test = {c["params"]["kit"] for c in clips if c["split"] == "test"}
    rest = {c["params"]["kit"] for c in clips if c["split"] != "test"}
    assert test <= set(soundfonts.TEST_KITS) and not (test & rest)
    assert {c["params"]["soundfont"] for c in clips} <= set(soundfonts.DRUM_SOUNDFONTS)


def test_split_params_maps_each_clip_of_a_split_to_its_manifest_entry(built, tmp_path):
    from diffres.datasets.cache import split_params

    ds = D.load_dataset(built["events"])
    by_path = {str(Path(ds.root) / c["path"]): c["params"] for c in manifest_clips(Path(ds.root))}
    for split in ("train", "val", "test"):
        params = split_params(ds, split)
        assert len(params) == len(ds.splits[split]) > 0
        assert params == [by_path[str(p)] for p in ds.splits[split].paths]
    import shutil

    root = Path(shutil.copytree(built["events"], tmp_path / "copy"))
    ds = D.load_dataset(root)
    manifest = json.loads((root / D.MANIFEST).read_text())
    manifest["clips"] = manifest["clips"][1:]  # rewritten since: a loaded clip it no longer lists
    (root / D.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="not listed in the manifest"):
        [split_params(ds, s) for s in ("train", "val", "test")]


@pytest.mark.parametrize("name", ["drums", "digits", "events"])
def test_restart_after_deleting_files_gives_same_result(built, name, tmp_path):
    import shutil

    root = shutil.copytree(built[name], tmp_path / "copy")
    before = digest_tree(root)
    wavs = sorted(root.rglob("*.wav"))
    for p in wavs[::3]:
        p.unlink()
    (root / "manifest.json").unlink()
    calls = []
    D.build_dataset(name, root, seed=0, n_per_class=N, progress=lambda d, t, m: calls.append((d, t)))
    assert digest_tree(root) == before
    assert (root / "manifest.json").is_file()
    assert calls[0][0] == len(wavs) - len(wavs[::3])  # resumed: the kept clips count as done
    assert calls[-1] == (len(wavs), len(wavs))


def test_interrupted_build_is_resumed(tmp_path, built):
    class Stop(Exception):
        pass

    def stop_after_5(done, total, message):
        if done >= 5:
            raise Stop

    root = tmp_path / "events"
    with pytest.raises(Stop):
        D.build_dataset("events", root, seed=0, n_per_class=N, progress=stop_after_5)
    assert not (root / "manifest.json").exists()
    assert 0 < len(list(root.rglob("*.wav"))) < N * 8
    D.build_dataset("events", root, seed=0, n_per_class=N)
    assert digest_tree(root) == digest_tree(built["events"])


def test_missing_system_package_names_apt_package(monkeypatch, tmp_path):
    real_which = _common.shutil.which
    monkeypatch.setattr(_common.shutil, "which", lambda exe: None if exe == "espeak-ng" else real_which(exe))
    with pytest.raises(DatasetError, match="espeak-ng not found: apt-get install espeak-ng"):
        D.build_dataset("digits", tmp_path / "d", n_per_class=1)
    monkeypatch.setitem(soundfonts.SOUNDFONTS, "TimGM6mb", ("/nonexistent/TimGM6mb.sf2", "timgm6mb-soundfont"))
    with pytest.raises(DatasetError, match="apt-get install timgm6mb-soundfont"):
        D.build_dataset("drums", tmp_path / "k", n_per_class=1)
    monkeypatch.undo()
    monkeypatch.setitem(soundfonts.SOUNDFONTS, "OPL3_FM", ("/nonexistent/OPL-3_FM_128M.sf2", "opl3-soundfont"))
    with pytest.raises(DatasetError, match="apt-get install opl3-soundfont"):
        D.build_dataset("instruments", tmp_path / "i", n_per_class=1)


def test_each_soundfont_set_needs_only_its_own_packages():
    drums = D.DATASET_INFO["drums"]["needs_system_packages"]
    instruments = D.DATASET_INFO["instruments"]["needs_system_packages"]
    assert "opl3-soundfont" not in drums and "csound-soundfont" not in drums
    assert {"libfluidsynth3", "opl3-soundfont", "csound-soundfont", "timgm6mb-soundfont"} <= set(instruments)
    setup = (Path(__file__).resolve().parents[1] / "scripts" / "setup.sh").read_text()
    for package in set(drums) | set(instruments):
        assert package in setup, f"scripts/setup.sh does not install {package}"


def test_load_dataset_arrays_and_npz_cache(built):
    t0 = time.perf_counter()
    ds = D.load_dataset("drums", n_per_class=N)
    assert isinstance(ds, D.AudioDataset) and ds.builtin
    assert ds.classes == CONTRACT_CLASSES["drums"] and ds.clip_seconds == 1.0 and ds.sample_rate == 16000
    assert set(ds.splits) == {"train", "val", "test"}
    total = 0
    for split in ds.splits.values():
        assert isinstance(split, D.Split)
        assert split.waveforms.dtype == np.float32 and split.waveforms.shape[1] == 16000
        assert split.labels.dtype == np.int64 and len(split.paths) == len(split.labels) == len(split)
        assert all(Path(p).is_file() for p in split.paths)
        total += len(split)
    assert total == N * 6
    assert not set(ds.train.paths) & set(ds.test.paths) and not set(ds.train.paths) & set(ds.val.paths)
    assert (built["drums"] / "arrays-sr16000.npz").is_file()
    assert "FluidR3_GM" in ds.source_description and "Synthetic" in ds.source_description
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = D.load_dataset(built["drums"])  # a built folder loads through its manifest
    assert time.perf_counter() - t0 < max(1.0, first)
    for s in ds.splits:
        np.testing.assert_array_equal(again.splits[s].waveforms, ds.splits[s].waveforms)
        np.testing.assert_array_equal(again.splits[s].labels, ds.splits[s].labels)
    # the arrays are the files on disk
    x, _ = sf.read(ds.train.paths[0], dtype="float32")
    np.testing.assert_allclose(ds.train.waveforms[0], x, atol=1e-6)


def test_load_other_rate_and_max_files(built):
    ds = D.load_dataset("events", n_per_class=N, sample_rate=8000, max_files_per_class=3)
    assert ds.train.waveforms.shape[1] == 16000  # 2 s at 8 kHz
    counts = ds.class_counts()
    for c in ds.classes:
        assert sum(counts[s][c] for s in counts) == 3
        assert counts["train"][c] >= 1


def test_export_dataset_with_split_filter(built, tmp_path):
    out = D.export_dataset("instruments", tmp_path / "test_only", split="test", n_per_class=N)
    clips = [c for c in manifest_clips(built["instruments"]) if c["split"] == "test"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == sorted(c["path"] for c in clips)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(CONTRACT_CLASSES["instruments"])
    full = D.export_dataset("instruments", tmp_path / "all", n_per_class=N)
    assert digest_tree(full) == digest_tree(built["instruments"])
    ds = D.load_dataset(full)  # keeps the held-out split of the manifest
    assert sorted(Path(p).name for p in ds.test.paths) == sorted(Path(c["path"]).name for c in clips)


# ---------------------------------------------------------------------------- user folders


def test_user_folder_stratified_split_and_median_length(tmp_path):
    root = make_user_folder(tmp_path / "mine", classes=("a", "b", "c"), n=10, seconds=0.8)
    write_tone(root / "a" / "long.wav", seconds=3.0)
    ds = D.load_folder_dataset(root, seed=3)
    assert ds.classes == ["a", "b", "c"] and not ds.builtin
    assert ds.clip_seconds == pytest.approx(0.8)
    assert ds.n_samples == 12800
    counts = ds.class_counts()
    for c in ds.classes:
        assert counts["val"][c] >= 1 and counts["test"][c] >= 1 and counts["train"][c] >= 6
    assert sum(len(s) for s in ds.splits.values()) == 31
    same = D.load_folder_dataset(root, seed=3)
    assert same.test.paths == ds.test.paths
    other = D.load_folder_dataset(root, seed=4)
    assert other.test.paths != ds.test.paths
    # the long clip is centre-cropped; load_dataset dispatches folders here too
    assert D.load_dataset(root, seed=3).test.paths == ds.test.paths


def test_user_clip_seconds_clamped(tmp_path):
    short = make_user_folder(tmp_path / "short", seconds=0.1)
    assert D.load_folder_dataset(short).clip_seconds == 0.5


@pytest.mark.parametrize("seconds", [0.3, 1.7])  # shorter and longer than the dataset's 1 s clips
def test_training_and_inference_fit_a_clip_the_same_way(tmp_path, seconds):
    """A clip of another length is centred in its window by the dataset loader (training)
    exactly as the model fits it before classifying (inference)."""
    import soundfile

    from diffres.models import AudioClassifier, ModelConfig

    root = make_user_folder(tmp_path / "mine", classes=("a", "b"), n=4, seconds=1.0)
    odd = root / "a" / "odd.wav"
    write_tone(odd, seconds=seconds, f0=500.0)
    ds = D.load_folder_dataset(root)
    assert ds.clip_seconds == 1.0
    split = next(s for s in ds.splits.values() if str(odd) in s.paths)
    trained_on = split.waveforms[split.paths.index(str(odd))]
    raw, _ = soundfile.read(str(odd), dtype="float32")
    model = AudioClassifier(ModelConfig(classes=("a", "b"), clip_seconds=ds.clip_seconds))
    np.testing.assert_array_equal(trained_on, model.fit_length(raw)[0].numpy())
    centre = (16000 - len(raw)) // 2 if len(raw) < 16000 else 0
    assert trained_on[centre : centre + 100].any() and not trained_on[: max(0, centre - 1)].any()


def test_unreadable_file_is_reported_by_name_and_skipped(tmp_path):
    root = make_user_folder(tmp_path / "mine", n=3)
    (root / "dog" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    (root / "cat" / "notes.txt").write_text("hello")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: ignored, not an error
    ds = D.load_folder_dataset(root)
    names = {Path(p).name: reason for p, reason in ds.skipped}
    assert set(names) == {"broken.wav", "notes.txt"}
    assert all(reason for reason in names.values())
    assert sum(len(s) for s in ds.splits.values()) == 6
    assert "2 unreadable files were skipped" in ds.source_description


def test_too_few_classes_or_clips(tmp_path):
    one = make_user_folder(tmp_path / "one", classes=("only",), n=4)
    with pytest.raises(DatasetError, match="needs at least 2 classes"):
        D.load_folder_dataset(one)
    few = make_user_folder(tmp_path / "few", classes=("a", "b"), n=3)
    for p in list((few / "b").iterdir())[1:]:
        p.unlink()
    with pytest.raises(DatasetError, match="at least 2 readable audio clips: 'b' has 1"):
        D.load_folder_dataset(few)
    # an evaluation set may allow single clips
    assert len(D.load_folder_dataset(few, min_clips_per_class=1)) == 4
    bad = make_user_folder(tmp_path / "bad", classes=("a", "b"), n=3)
    for p in (bad / "b").iterdir():
        p.write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="'b' has 0"):
        D.load_folder_dataset(bad)


# ---------------------------------------------------------------------------- zips


def zip_folder(folder: Path, zpath: Path, wrap: str | None = None) -> Path:
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                arc = p.relative_to(folder).as_posix()
                zf.write(p, f"{wrap}/{arc}" if wrap else arc)
    return zpath


def test_zip_with_wrapper_folder_loads(tmp_path):
    folder = make_user_folder(tmp_path / "src", n=3)
    (folder / "dog" / "broken.wav").write_bytes(b"junk")
    zpath = zip_folder(folder, tmp_path / "pets.zip", wrap="pets")
    ds = D.load_dataset(zpath)
    assert ds.classes == ["cat", "dog"] and ds.name == "pets"
    assert sum(len(s) for s in ds.splits.values()) == 6
    assert ds.skipped and ds.skipped[0][0] == "pets.zip:pets/dog/broken.wav"
    # clips are read into memory and the temporary extraction is gone: paths name the archive
    assert all(p.startswith("pets.zip:pets/") for p in ds.train.paths)
    assert not list((D.cache_root() / "user-zips").glob("*/*"))


def _zip_with(tmp_path: Path, entries) -> Path:
    folder = make_user_folder(tmp_path / "src", n=2)
    zpath = zip_folder(folder, tmp_path / "evil.zip")
    with zipfile.ZipFile(zpath, "a") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return zpath


def test_zip_rejects_path_traversal(tmp_path):
    z = _zip_with(tmp_path, [(zipfile.ZipInfo("cat/../../escape.wav"), b"x")])
    with pytest.raises(DatasetError, match=r"contains '\.\.' \(path traversal\)"):
        D.load_folder_dataset(z)
    assert not (tmp_path.parent / "escape.wav").exists()


def test_zip_rejects_absolute_path(tmp_path):
    z = _zip_with(tmp_path, [(zipfile.ZipInfo("/tmp/abs.wav"), b"x")])
    with pytest.raises(DatasetError, match="has an absolute path"):
        D.load_folder_dataset(z)


def test_zip_rejects_symlink_entry(tmp_path):
    info = zipfile.ZipInfo("cat/link.wav")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip_with(tmp_path, [(info, b"/etc/passwd")])
    with pytest.raises(DatasetError, match="is a symbolic link"):
        D.load_folder_dataset(z)


def test_zip_rejects_too_large_uncompressed(tmp_path):
    info = zipfile.ZipInfo("cat/big.wav")
    info.compress_type = zipfile.ZIP_STORED
    z = _zip_with(tmp_path, [(info, np.random.default_rng(0).bytes(2_000_000))])
    with pytest.raises(DatasetError, match="zip too large: its uncompressed size exceeds the limit of 1 MB"):
        D.load_folder_dataset(z, max_archive_bytes=1_000_000)


def test_zip_rejects_suspicious_compression_ratio(tmp_path):
    info = zipfile.ZipInfo("cat/bomb.wav")
    info.compress_type = zipfile.ZIP_DEFLATED
    z = _zip_with(tmp_path, [(info, bytes(50_000_000))])
    assert z.stat().st_size < 1_000_000
    with pytest.raises(DatasetError, match=r"possible zip bomb.*expands \d+x"):
        D.load_folder_dataset(z)


def test_zip_rejects_too_many_entries(tmp_path):
    z = _zip_with(tmp_path, [(zipfile.ZipInfo(f"cat/e{i}.txt"), b"") for i in range(30)])
    with pytest.raises(DatasetError, match="too many entries: 34 \\(the limit is 20\\)"):
        D.load_folder_dataset(z, max_entries=20)


def test_not_a_zip(tmp_path):
    p = tmp_path / "data.zip"
    p.write_bytes(b"plain text")
    with pytest.raises(DatasetError, match="not a readable .zip"):
        D.load_folder_dataset(p)


def test_a_new_generator_version_removes_older_cached_builds(tmp_path, monkeypatch):
    from diffres.datasets import events

    monkeypatch.setenv("DIFFRES_CACHE", str(tmp_path))
    current = events.VERSION
    old = [tmp_path / f"events-v{current - 1}-seed0", tmp_path / f"events-v{current - 1}-seed3-n7"]
    for folder in old:
        (folder / "alarm").mkdir(parents=True)
        (folder / "alarm" / "a.wav").write_bytes(b"RIFF")
        (folder / "manifest.json").write_text(json.dumps({"name": "events", "version": current - 1}))
    keep = [
        tmp_path / f"events-v{current + 1}-seed0",  # a newer generator's build (another install)
        tmp_path / f"drums-v{current - 1}-seed0",  # another dataset
        tmp_path / "user-zips",  # extracted user archives
        tmp_path / f"events-v{current - 1}-seed0-notes",  # not a build's name
        tmp_path / f"events-v{current - 1}-seed9",  # a build's name, but its manifest is another dataset's
    ]
    for folder in keep:
        folder.mkdir()
    (keep[-1] / "manifest.json").write_text(json.dumps({"name": "digits"}))
    messages = []
    out = D.build_dataset("events", seed=0, n_per_class=2, progress=lambda d, t, m: messages.append(m))
    assert out.parent == tmp_path and out.name.startswith(f"events-v{current}-")
    assert not any(f.exists() for f in old)
    assert all(f.is_dir() for f in keep)
    assert any(f"removed events-v{current - 1}-seed0 " in m for m in messages)
    # a build into a folder of the caller's choosing never touches the cache
    (old[0] / "alarm").mkdir(parents=True)
    D.build_dataset("events", tmp_path / "elsewhere", seed=0, n_per_class=2)
    assert old[0].is_dir()


def test_finding_a_cached_build_also_removes_older_ones(tmp_path, monkeypatch):
    from diffres.datasets import events

    monkeypatch.setenv("DIFFRES_CACHE", str(tmp_path))
    D.build_dataset("events", seed=0, n_per_class=2)
    stale = tmp_path / f"events-v{events.VERSION - 1}-seed0"
    stale.mkdir()
    D.build_dataset("events", seed=0, n_per_class=2)  # cached: returns at once, and prunes
    assert not stale.exists()
