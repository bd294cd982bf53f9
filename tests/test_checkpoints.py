"""Checkpoints: safe loading refuses everything that is not ours; shipped checkpoints hold up."""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from diffres import CheckpointError, load_checkpoint, save_checkpoint
from diffres.checkpoints import CARD_FIELDS, FORMAT, VERSION
from diffres.datasets import DATASET_INFO
from diffres.models import AudioClassifier, ModelConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints"
#: Test-split accuracy each shipped built-in model must reach (DiffRes at rate 0.75).
#: rhythms: the DiffRes model reaches 0.69 where fixed 4:1 pooling reaches 0.49 and full
#: resolution 0.85 (docs/RESULTS.md); the floor keeps that gap honest.
TARGETS = {"events": 0.95, "digits": 0.95, "drums": 0.90, "instruments": 0.70, "rhythms": 0.65}
#: Datasets whose shipped model is known to miss its target (say why in docs/RESULTS.md);
#: none today.  Strict: a model that meets the target turns the xfail into a failure, so a
#: stale entry goes.
SHORTFALLS: set[str] = set()


#: Tiny models run fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(**kw) -> AudioClassifier:
    torch.manual_seed(0)
    cfg = dict(classes=("a", "b", "c"), n_mels=16, width=8, clip_seconds=0.5)
    cfg.update(kw)
    return AudioClassifier(ModelConfig.from_dict(cfg)).eval()


class _Boom:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_round_trip_and_card(tmp_path):
    m = small_model()
    card = save_checkpoint(tmp_path / "m.pt", m, card={"dataset": "toy", "metrics": {"val_accuracy": 0.5}})
    assert json.loads((tmp_path / "m.json").read_text()) == card
    loaded = load_checkpoint(tmp_path / "m.pt")
    x = torch.randn(2, 51, 16) - 5
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), m(x), rtol=0, atol=0)
    assert loaded.card["dataset"] == "toy" and loaded.training_state is None
    assert all(f in loaded.card for f in CARD_FIELDS)
    # bytes and file objects too
    data = (tmp_path / "m.pt").read_bytes()
    assert load_checkpoint(data).card == loaded.card
    assert load_checkpoint(io.BytesIO(data)).card == loaded.card


def test_booby_trapped_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "card": "{}", "state_dict": {}, "x": _Boom(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()
    # the same trap in a raw pickle (not a zip archive) is refused too
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()


def test_garbage_empty_truncated_and_foreign_files(tmp_path):
    rnd = tmp_path / "random.pt"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a DiffRes Explorer checkpoint"):
        load_checkpoint(rnd)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    good = tmp_path / "good.pt"
    save_checkpoint(good, small_model())
    data = good.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(trunc)
    foreign = tmp_path / "foreign.pt"
    torch.save(small_model().state_dict(), foreign)
    with pytest.raises(CheckpointError, match="not a DiffRes Explorer checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_that_do_not_match_the_card(tmp_path):
    m = small_model()
    path = tmp_path / "m.pt"
    save_checkpoint(path, m)
    payload = torch.load(path, weights_only=True)
    card = json.loads(payload["card"])
    card["width"] = 16  # the card now describes a bigger network than the weights
    payload["card"] = json.dumps(card)
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "mismatch.pt")
    payload["card"] = json.dumps({**card, "width": 8, "frontend": "nonsense"})
    torch.save(payload, tmp_path / "badcard.pt")
    with pytest.raises(CheckpointError, match="field .frontend. must be one of"):
        load_checkpoint(tmp_path / "badcard.pt")
    payload = torch.load(path, weights_only=True)
    payload["version"] = VERSION + 1
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "newer.pt")
    payload = torch.load(path, weights_only=True)
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], float("nan"))
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(tmp_path / "nan.pt")


def test_training_state_travels_as_plain_containers(tmp_path):
    m = small_model()
    opt = torch.optim.AdamW(m.parameters())
    m.train()
    m(torch.randn(4, 51, 16) - 5).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "s.pt", m, training_state={"optimizer": opt.state_dict(), "history": "[]", "global_step": 1})
    loaded = load_checkpoint(tmp_path / "s.pt")
    assert loaded.training_state["global_step"] == 1
    opt2 = torch.optim.AdamW(loaded.model.parameters())
    opt2.load_state_dict(loaded.training_state["optimizer"])
    assert len(opt2.state) == len(opt.state)


# --------------------------------------------------------------------------------------
# shipped checkpoints
# --------------------------------------------------------------------------------------
SHIPPED_FILES = sorted(SHIPPED.glob("*.pt"))


def test_shipped_checkpoints_exist_with_cards_and_sizes():
    names = {p.stem for p in SHIPPED_FILES}
    for ds in TARGETS:
        assert f"{ds}_diffres_r75" in names, f"missing checkpoints/{ds}_diffres_r75.pt"
    for ds in ("events", "digits", "rhythms"):
        for fe in ("full", "avgpool", "changehop"):
            assert f"{ds}_{fe}_r75" in names, f"missing checkpoints/{ds}_{fe}_r75.pt"
    assert "rhythms_diffres_fine" in names
    total = 0
    for p in SHIPPED_FILES:
        size = p.stat().st_size
        total += size + p.with_suffix(".json").stat().st_size
        assert size <= 5 * 1024 * 1024, f"{p.name} is {size} bytes"
        card = json.loads(p.with_suffix(".json").read_text())
        for f in CARD_FIELDS:
            assert f in card, f"{p.name}: card lacks {f}"
        assert card["dataset"] in TARGETS
        assert set(card["metrics"]) >= {"val_accuracy", "test_accuracy"}
        assert card.get("data_source"), f"{p.name}: card does not say where the data came from"
        assert card.get("dataset_version") == DATASET_INFO[card["dataset"]]["version"], (
            f"{p.name} was trained on another version of the '{card['dataset']}' generator: retrain it")
        loaded = load_checkpoint(p)
        assert list(loaded.model.classes) == card["classes"]
        assert loaded.card == card
    assert total <= 40 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("dataset", [
    pytest.param(d, marks=pytest.mark.xfail(reason="known shortfall: see docs/RESULTS.md", strict=True))
    if d in SHORTFALLS else d for d in TARGETS])
def test_shipped_diffres_checkpoint_meets_its_target_on_the_test_split(dataset):
    from diffres.training import evaluate_checkpoint

    p = SHIPPED / f"{dataset}_diffres_r75.pt"
    card = json.loads(p.with_suffix(".json").read_text())
    res = evaluate_checkpoint(p, dataset)  # builds the dataset into the cache if missing
    # the card's number is what re-evaluation gives
    assert res.n == card["metrics"]["n_test"]
    assert res.accuracy == pytest.approx(card["metrics"]["test_accuracy"], abs=0.006), p.name
    assert res.accuracy >= TARGETS[dataset], f"{p.name}: {res.accuracy:.3f} < {TARGETS[dataset]}"


def test_default_sound_and_model_keep_the_strokes_apart_and_merge_the_quiet():
    """The pair the app opens on: the shipped rhythms DiffRes model on the triple strokes.
    Over the strokes the finest output frame is at most 1.5x the input hop, every 25 ms gap
    inside a figure survives the merge, the quiet stretches are merged coarser than 4:1, and
    the model names the pattern."""
    from diffres import analysis
    from diffres.examples import DEFAULT_EXAMPLE, DEFAULT_EXAMPLE_DATASET, KNOWN_ONSETS, load_example

    model = load_checkpoint(SHIPPED / f"{DEFAULT_EXAMPLE_DATASET}_diffres_r75.pt").model.eval()
    x = torch.as_tensor(load_example(DEFAULT_EXAMPLE)).reshape(1, -1)
    onsets = KNOWN_ONSETS[DEFAULT_EXAMPLE]
    figures = [onsets[i : i + 3] for i in range(0, len(onsets), 3)]
    hop_s = model.mel.hop_seconds
    with torch.no_grad():
        log_mel = model.mel(x)
        out = model.frontend(log_mel)
        probs = model(log_mel).softmax(-1)[0]
    spans = [(f[0], f[-1] + 0.03) for f in figures]
    mask = analysis.event_mask([spans], log_mel.shape[1], hop_s)
    finest, _ = analysis.event_hops_ms(out.bin_edges, mask, hop_s * 1000)
    assert float(finest[0]) <= 1.5 * hop_s * 1000, float(finest[0])
    for figure in figures:
        assert analysis.onsets_separated(out.bin_edges, [figure], hop_s) == [[True, True]], figure
    spread = analysis.hop_spread(out.bin_edges, hop_s * 1000)
    assert not spread.uniform and spread.coarse_ms > 4 * hop_s * 1000, spread
    assert analysis.concentration(out.importance, mask)[0] > 2.0
    assert model.classes[int(probs.argmax())] == "triple"
