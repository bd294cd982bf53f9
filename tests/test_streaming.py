"""Streamed corpora (diffres.datasets.streaming): listing, decoding in workers, the on-disk
feature cache and skipped files."""

import json
import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from diffres.audio import fit_length, load_audio, save_wav
from diffres.datasets.streaming import (
    FeatureCache,
    StreamingAudioDataset,
    collate_stream,
    scan_corpus,
    split_of,
)
from diffres.errors import DatasetError
from diffres.features import MelConfig, MelFrontend

MEL = MelConfig(n_mels=16)


def _tone(freq_hz: float, n: int, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq_hz * np.arange(n) / rate)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    for c, f in (("low", 300.0), ("high", 2000.0)):
        (root / c / "sub").mkdir(parents=True)
        for i in range(3):
            save_wav(root / c / f"{i}.wav", _tone(f * (1 + 0.01 * i), 4000), 16000)
        save_wav(root / c / "sub" / "deep.wav", _tone(f, 2000), 8000)  # 0.25 s at 8 kHz, one level down
    (root / "low" / "notes.txt").write_text("not a clip")  # ignored: not an audio ending
    (root / "high" / "broken.wav").write_bytes(b"RIFF....garbage")
    return root


def test_scan_folder_lists_relative_paths_labels_and_hashed_splits(corpus):
    idx = scan_corpus(corpus, seed=3)
    assert idx.classes == ("high", "low") and idx.kind == "folder" and idx.name == "corpus"
    rel = [idx.relpath(i) for i in range(len(idx))]
    assert len(rel) == 9 and "low/notes.txt" not in rel and "high/sub/deep.wav" in rel
    assert all(not r.startswith("/") for r in rel)
    assert [idx.classes[k] for k in idx.labels] == [r.split("/")[0] for r in rel]
    # the split of a clip depends on its path and the seed only: a growing corpus never moves clips
    assert [int(s) for s in idx.splits] == [split_of(r, 3, (0.8, 0.1, 0.1)) for r in rel]
    assert idx.paths.dtype.kind == "S"  # one byte array, no Python object per clip
    assert idx.fingerprint() == scan_corpus(corpus, seed=3).fingerprint()
    assert idx.fingerprint() != scan_corpus(corpus, seed=4).fingerprint() or (idx.splits == 0).all()


def test_split_of_follows_the_fractions():
    picks = np.array([split_of(f"c/{i}.wav", 0, (0.6, 0.3, 0.1)) for i in range(6000)])
    shares = np.bincount(picks, minlength=3) / picks.size
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.025)


def test_manifest_with_and_without_split_and_bad_rows(tmp_path, corpus):
    m = corpus / "list.csv"
    m.write_text("path,label,split\nlow/0.wav,quiet,train\nhigh/0.wav,loud,test\nhigh/1.wav,loud,\n,loud,train\n")
    idx = scan_corpus(m)
    assert idx.kind == "manifest" and idx.name == "list" and idx.classes == ("loud", "quiet")
    assert [idx.relpath(i) for i in range(len(idx))] == ["low/0.wav", "high/0.wav", "high/1.wav"]
    assert idx.splits[:2].tolist() == [0, 2] and idx.splits[2] == split_of("high/1.wav", 0, (0.8, 0.1, 0.1))
    assert idx.skipped == (("list.csv:5", "empty path or label"),)
    (tmp_path / "bad.csv").write_text("file,class\na.wav,x\n")
    with pytest.raises(DatasetError, match="path,label"):
        scan_corpus(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("path,label,split\na.wav,x,holdout\nb.wav,y,train\n")
    with pytest.raises(DatasetError, match=r"line 2: split must be train, val or test.*'holdout'"):
        scan_corpus(tmp_path / "bad2.csv")


def test_items_equal_the_mel_of_the_fitted_clip_and_failures_are_listed(corpus):
    idx = scan_corpus(corpus, split_fractions=(1.0, 0.0, 0.0))
    ds = StreamingAudioDataset(idx, "train", mel=MEL, clip_seconds=0.2)
    assert len(ds) == 9 and ds.n_frames == 1 + 3200 // MEL.hop_length
    fe = MelFrontend.from_config(MEL)
    k = [idx.relpath(int(p)) for p in ds.positions].index("low/1.wav")
    item = ds[k]
    samples, _ = load_audio(corpus / "low" / "1.wav", 16000)
    expected = fe(torch.from_numpy(fit_length(samples, 3200).copy()))[0]
    torch.testing.assert_close(item.log_mel, expected, rtol=0, atol=1e-5)  # oracle: decode, fit, mel
    np.testing.assert_allclose(samples, _tone(303.0, 4000), atol=1e-4)  # the file holds the tone (16-bit)
    # the 8 kHz clip is resampled to the mel's 16 kHz: same frame count
    deep = ds[[idx.relpath(int(p)) for p in ds.positions].index("low/sub/deep.wav")]
    assert deep.log_mel is not None and deep.log_mel.shape == (ds.n_frames, 16)
    no_rs = StreamingAudioDataset(idx, "train", mel=MEL, clip_seconds=0.2, resample=False)
    refused = no_rs[[idx.relpath(int(p)) for p in ds.positions].index("low/sub/deep.wav")]
    assert refused.log_mel is None and "8000 Hz" in refused.failure and "16000 Hz" in refused.failure
    # a broken file becomes a failure naming its relative path, never an exception or an absolute path
    batch = collate_stream([ds[i] for i in range(len(ds))])
    assert batch.log_mel.shape == (8, ds.n_frames, 16) and batch.labels.shape == (8,)
    assert len(batch.failures) == 1 and batch.failures[0].startswith("high/broken.wav: ")
    assert str(corpus) not in batch.failures[0]


def test_workers_decode_the_same_batches_as_the_main_process(corpus):
    idx = scan_corpus(corpus, split_fractions=(1.0, 0.0, 0.0))
    ds = StreamingAudioDataset(idx, "train", mel=MEL, clip_seconds=0.2)
    main = list(DataLoader(ds, batch_size=4, collate_fn=collate_stream))
    two = list(DataLoader(ds, batch_size=4, collate_fn=collate_stream, num_workers=2))
    assert [b.indices.tolist() for b in main] == [b.indices.tolist() for b in two]
    for a, b in zip(main, two, strict=True):
        torch.testing.assert_close(a.log_mel, b.log_mel, rtol=0, atol=0)
    assert sum(len(b.failures) for b in two) == 1


def test_feature_cache_is_keyed_by_content_and_settings(corpus, tmp_path):
    idx = scan_corpus(corpus, split_fractions=(1.0, 0.0, 0.0))
    cache = tmp_path / "cache"
    ds = StreamingAudioDataset(idx, "train", mel=MEL, clip_seconds=0.2, cache_dir=cache)
    first = [ds[i] for i in range(len(ds))]
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == 8  # one per readable clip, none for the broken file
    # a cached entry is what is served: overwrite one and read it back
    k = next(i for i, it in enumerate(first) if it.log_mel is not None)
    key = ds.cache._file  # type: ignore[union-attr]
    import hashlib

    h = hashlib.blake2b(idx.path(int(ds.positions[k])).read_bytes(), digest_size=16).hexdigest()
    np.save(key(h), np.full((ds.n_frames, 16), 7.0, np.float32))
    assert float(ds[k].log_mel.mean()) == 7.0
    # other settings use another folder: nothing is shared between mel configurations
    other = StreamingAudioDataset(idx, "train", mel=MelConfig(n_mels=8), clip_seconds=0.2, cache_dir=cache)
    assert other.cache.folder != ds.cache.folder and other[k].log_mel.shape == (ds.n_frames, 8)
    assert FeatureCache(cache, {"a": 1}).settings_key == FeatureCache(cache, {"a": 1}).settings_key


def test_summary_holds_no_path(corpus):
    summary = scan_corpus(corpus).summary()
    assert summary["n_clips"] == 9 and summary["n_per_class"] == {"high": 5, "low": 4}
    assert str(corpus.parent) not in json.dumps(summary)
    assert not re.search(r'"/', json.dumps(summary))


def test_empty_or_single_class_corpus_is_refused(tmp_path):
    (tmp_path / "only").mkdir()
    save_wav(tmp_path / "only" / "a.wav", _tone(440.0, 800), 16000)
    with pytest.raises(DatasetError, match="at least 2 classes"):
        scan_corpus(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        scan_corpus(tmp_path / "missing")
