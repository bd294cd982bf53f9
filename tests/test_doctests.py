"""The ``>>>`` examples in the library's docstrings run, and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import diffres

MODULES = sorted(m.name for m in pkgutil.walk_packages(diffres.__path__, "diffres.") if m.name != "diffres.__main__")
#: Modules whose public functions carry examples (a module losing all of them fails here).
WITH_EXAMPLES = {
    "diffres.analysis", "diffres.audio", "diffres.cards", "diffres.core", "diffres.explain", "diffres.familiarity",
    "diffres.features", "diffres.frontends", "diffres.functional", "diffres.names", "diffres.resolution",
    "diffres.inverse", "diffres.models", "diffres.planning", "diffres.training.augment", "diffres.training.evaluation",
    "diffres.training.schedule", "diffres.datasets.streaming", "diffres.training.distributed", "diffres.training.corpus",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, one_thread):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its examples"


def test_the_example_list_names_real_modules():
    assert WITH_EXAMPLES <= set(MODULES)
