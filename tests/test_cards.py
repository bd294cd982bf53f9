"""Untrusted checkpoints: the card schema (diffres.cards) refuses crafted cards and training
states with a CheckpointError naming the field, before a model is built, quickly and in
little memory; atomic saves keep the last good checkpoint through a full disk."""

from __future__ import annotations

import errno
import io
import json
import time
import tracemalloc

import pytest
import torch

from diffres import CheckpointError, load_checkpoint, save_checkpoint
from diffres.cards import MAX_CARD_BYTES, MAX_CLASSES, parse_card
from diffres.checkpoints import FORMAT, VERSION
from diffres.models import AudioClassifier, ModelConfig
from diffres.names import check_name, shown, unsafe_character

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def good() -> dict:
    """A valid checkpoint payload (plain containers) of a tiny DiffRes model."""
    torch.manual_seed(0)
    model = AudioClassifier(ModelConfig.from_dict({"classes": ["a", "b", "c"], "n_mels": 16, "width": 4}))
    buf = io.BytesIO()
    save_checkpoint(buf, model, card={"dataset": "toy", "metrics": {"val_accuracy": 0.5}})
    return torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


def crafted(payload: dict, **changes) -> bytes:
    buf = io.BytesIO()
    torch.save({**payload, **changes}, buf)
    return buf.getvalue()


def with_card(payload: dict, **fields) -> bytes:
    card = {**json.loads(payload["card"]), **fields}
    return crafted(payload, card=json.dumps(card))


def test_the_good_payload_loads(good):
    loaded = load_checkpoint(crafted(good))
    assert loaded.config.classes == ("a", "b", "c") and loaded.config.frontend == "diffres"
    assert loaded.card["diffres_channels"] == ["avg", "max", "encoding"] and loaded.card["importance"] == "learned"


@pytest.mark.parametrize(
    ("card_text", "needle"),
    [
        ("null", "must be a JSON object, got NoneType"),
        ("[1, 2, 3]", "must be a JSON object, got list"),
        ('"text"', "must be a JSON object, got str"),
        ("[" * 200_000 + "]" * 200_000, "longer than 256 kB are refused"),
        ("[" * 60_000 + "]" * 60_000, "nested more than 8 levels deep"),
        ('{"classes": ["a", "b"], "m": ' + "[" * 20 + "]" * 20 + "}", "nested more than 8 levels deep"),
        ("{not json", "not valid JSON"),
        ('{"frontend": "diffres"}', "field 'classes' must be a list of class names"),
    ],
)
def test_malformed_card_text(good, card_text, needle):
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(crafted(good, card=card_text))


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("hop_ms", "ten", r"field 'hop_ms' must be a number in \[0.5, 100\] \(milliseconds\), got 'ten'"),
        ("hop_ms", 0.0, r"field 'hop_ms' must be a number in \[0.5, 100\]"),
        ("hop_ms", float("nan"), r"field 'hop_ms'"),
        ("win_ms", None, r"field 'win_ms'"),
        ("reduction_rate", 1.0, r"field 'reduction_rate' must be a number in \[0, 1\)"),
        ("reduction_rate", True, r"field 'reduction_rate'"),
        ("sample_rate", 16000.5, r"field 'sample_rate' must be a whole number in \[1000, 768000\] \(Hz\)"),
        ("n_mels", 10_000, r"field 'n_mels' must be a whole number in \[1, 512\]"),
        ("width", "16", r"field 'width' must be a whole number"),
        ("clip_seconds", -1, r"field 'clip_seconds'"),
        ("frontend", ["diffres"], r"field 'frontend' must be one of diffres, avgpool"),
        ("frontend", "wavelets", r"field 'frontend' must be one of"),
        ("importance", "random", r"field 'importance' must be one of learned, uniform"),
        ("diffres_channels", ["avg", "avg"], r"field 'diffres_channels' must be a list of distinct names"),
        ("diffres_channels", "avg", r"field 'diffres_channels'"),
        ("classes", ["a"], r"field 'classes' must list 2 to 1000 class names, got 1"),
        ("classes", ["a", "a", "b"], r"field 'classes' must not repeat a name"),
        ("classes", [1, 2, 3], r"field 'classes' must be a list of class names"),
        ("classes", ["cat", "go\u202etac", "x"], r"field 'classes' is unusable: .*U\+202E RIGHT-TO-LEFT OVERRIDE"),
        ("classes", ["a", "b", "x" * 101], r"field 'classes' is unusable: .*101 characters long \(at most 100\)"),
        ("metrics", [0.5], r"field 'metrics' must be an object"),
        ("metrics", {"val_accuracy": {"deep": 1}}, r"field 'metrics.val_accuracy' must be a number"),
        ("dataset", 7, r"field 'dataset' must be text"),
        ("params", -5, r"field 'params'"),
        ("train_seconds", "long", r"field 'train_seconds'"),
    ],
)
def test_card_fields_are_checked_by_name(good, field, value, needle):
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(with_card(good, **{field: value}))


def test_a_huge_filter_bank_is_refused_before_it_is_built(good):
    with pytest.raises(CheckpointError, match="filter bank of 67 million values"):
        load_checkpoint(with_card(good, sample_rate=768000, win_ms=200.0, n_mels=512))


def test_two_million_class_names_cost_little(good):
    """The 5 MB checkpoint that listed 2M classes took 3.4 GB; now the card's size is checked
    first (and a card under the size limit is held to MAX_CLASSES before any model exists)."""
    names = [f"c{i}" for i in range(2_000_000)]
    data = with_card(good, classes=names)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="longer than 256 kB are refused"):
        load_checkpoint(data)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 5.0 and peak < 100e6
    few = [f"c{i}" for i in range(MAX_CLASSES + 1)]
    with pytest.raises(CheckpointError, match="must list 2 to 1000 class names, got 1001"):
        load_checkpoint(with_card(good, classes=few))


def test_weights_are_checked_against_the_card_before_building(good):
    with pytest.raises(CheckpointError, match="lists 4 classes but the classifier has 3 outputs"):
        load_checkpoint(with_card(good, classes=["a", "b", "c", "d"]))
    with pytest.raises(CheckpointError, match="holds no weights"):
        load_checkpoint(crafted(good, state_dict={}))
    with pytest.raises(CheckpointError, match="not a mapping of names to tensors"):
        load_checkpoint(crafted(good, state_dict={"x": [1, 2]}))
    with pytest.raises(CheckpointError, match="no classifier head"):
        load_checkpoint(crafted(good, state_dict={"x": torch.zeros(2)}))


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        ([1, 2], "training state is malformed \\(not a mapping\\)"),
        ({"config": 5}, "field 'config' must be JSON text"),
        ({"global_step": -1}, "field 'global_step' must be a whole number >= 0"),
        ({"elapsed_seconds": float("inf")}, "field 'elapsed_seconds' must be a finite number"),
        ({"history_probes": "x"}, "field 'history_probes' must be a list"),
        ({"optimizer": 3}, "field 'optimizer' must be a mapping"),
    ],
)
def test_training_state_is_checked(good, state, needle):
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(crafted(good, training_state=state))


def _views(**embedding) -> dict:
    """A two-view familiarity payload for the ``good`` model (3 classes, width 4: 256-d
    embeddings; 16 mel bands: a 38-d summary), with the embedding view's fields changed."""
    summary = {"means": torch.zeros(1, 38), "precision": torch.eye(38), "threshold": 1.0}
    view = {"means": torch.zeros(3, 256), "precision": torch.eye(256), "threshold": 1.0, **embedding}
    return {"embedding": view, "summary": summary}


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        ("x", "familiarity statistics must be a mapping, got str"),
        ({"embedding": 3}, r"familiarity statistics \(embedding\) must be a mapping, got int"),
        (_views(means=torch.zeros(3, 256, dtype=torch.long)), r"field embedding\.means must be a floating-point tensor"),
        (_views(threshold="1"), r"field embedding\.threshold must be a number"),
        (_views(threshold=-1.0), "invalid values"),
        (_views(means=torch.zeros(2, 256)), "shapes"),
        ({"embedding": _views()["embedding"], "summary": None}, r"\(summary\) must be a mapping, got NoneType"),
    ],
)
def test_familiarity_payload_is_checked(good, state, needle):
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(crafted(good, familiarity=state))


def test_resume_of_a_crafted_training_state_is_a_checkpoint_error(good, tmp_path):
    from diffres.training import Trainer

    path = tmp_path / "x.pt"
    for config, history in (("[1]", "[]"), ('{"epochs": "many"}', "[]"), ("{}", "[" * 5000 + "]" * 5000),
                            ("{}", '[{"epoch": {}}]')):
        path.write_bytes(crafted(good, training_state={"config": config, "history": history}))
        with pytest.raises(CheckpointError, match="training state is malformed"):
            Trainer.resume(path)


def test_payload_format_and_version(good):
    with pytest.raises(CheckpointError, match="not a DiffRes Explorer checkpoint"):
        load_checkpoint(crafted(good, format="other"))
    with pytest.raises(CheckpointError, match="newer than this program understands"):
        load_checkpoint(crafted(good, version=VERSION + 1))
    assert FORMAT == "diffres-explorer-checkpoint"


# ------------------------------------------------------------------------- names


def test_unsafe_characters_are_named():
    assert unsafe_character("cat\u202egod") == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert unsafe_character("a\u200bb") == "U+200B ZERO WIDTH SPACE"
    assert unsafe_character("a\nb") is not None
    for fine in ("café", "犬", "dog 2", "snare-drum", "👩\u200d🚀"):
        assert unsafe_character(fine) is None, fine
    assert shown("a\u202eb") == "'a\\u202eb'" and shown("ab") == "'ab'"
    assert "is empty" in check_name("  ", "a class name")


# ------------------------------------------------------------------------- atomic saves


def _full_disk_after(monkeypatch, n_files: int):
    """Make the (n_files + 1)-th ``open(..., 'wb')`` of a checkpoint temp file fail with ENOSPC."""
    import builtins

    real_open = builtins.open
    count = {"n": 0}

    def fake_open(file, mode="r", *args, **kwargs):
        if "w" in mode and ".tmp-" in str(file):
            count["n"] += 1
            if count["n"] > n_files:
                fh = real_open(file, mode, *args, **kwargs)
                fh.close()

                class Full:
                    def __enter__(self):
                        return self

                    def __exit__(self, *exc):
                        return False

                    def write(self, data):
                        raise OSError(errno.ENOSPC, "No space left on device")

                return Full()
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


@pytest.mark.parametrize("fail_at", [0, 1])  # the weights, or the card after the weights
def test_a_full_disk_keeps_the_last_good_checkpoint_and_leaves_no_temp_files(tmp_path, monkeypatch, fail_at):
    torch.manual_seed(0)
    model = AudioClassifier(ModelConfig.from_dict({"classes": ["a", "b"], "n_mels": 16, "width": 4}))
    path = tmp_path / "run.pt"
    save_checkpoint(path, model, card={"epochs": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    _full_disk_after(monkeypatch, fail_at)
    with pytest.raises(OSError, match=r"could not write run.pt: No space left on device; the previous checkpoint"):
        save_checkpoint(path, model, card={"epochs": 2})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp files, nothing changed
    assert load_checkpoint(path).card["epochs"] == 1
    assert json.loads(path.with_suffix(".json").read_text())["epochs"] == 1


def test_card_limit_is_documented():
    assert MAX_CARD_BYTES == 256 * 1024
    assert parse_card('{"classes": ["a", "b"]}')["classes"] == ["a", "b"]
