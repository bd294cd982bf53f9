"""The README's library example runs and says what it claims."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_library_example_runs(monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out, mel, log_mel = namespace["out"], namespace["mel"], namespace["log_mel"]
    n_frames = log_mel.shape[1]
    assert out.features.shape == (1, 3, n_frames // 4, 64)
    assert abs(float(out.importance.detach().sum()) - n_frames // 4) < 1e-2
    seconds = out.bin_edges * mel.hop_seconds
    assert float(seconds[0, 0]) == 0.0 and abs(float(seconds[0, -1]) - n_frames * mel.hop_seconds) < 1e-6


def test_readme_quickstart_has_exactly_two_commands_and_ci_runs_the_test_one():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["bash scripts/start.sh", "bash scripts/test.sh"]
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
