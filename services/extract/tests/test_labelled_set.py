"""The hand-labelled development set of issue 22 (tests/labelled: 250 English posts, 100
Amharic, 100 mixed; four kinds of channel; written by hand, not from any catalog) keeps
its measured quality: a change that loses products or prices fails here.

The floors sit a little under the figures measured when the set was added (all: mentions
P 0.96 R 0.92, pairs P 0.97 R 0.91; Amharic pairs R 0.88). The catalog was extended after
reading this set's misses, so these figures flatter a held-out set (services/extract
README: 50 posts measured before they were read gave pairs P 0.89 R 0.82)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "labelled"
EVAL = Path(__file__).parents[3] / "bench" / "eval_extract_lib.py"
FLOORS = {"mentions_p": 0.94, "mentions_r": 0.88, "pairs_p": 0.94, "pairs_r": 0.85}


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("eval_extract_lib", EVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = []
    for path in sorted(DATA.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 400
    return module.evaluate(rows, misses=0)


@pytest.mark.parametrize("language", ["all", "en", "am", "mixed"])
def test_quality_on_the_labelled_set(figures, language):
    got = figures[language]
    low = {name: round(got[name], 3) for name, floor in FLOORS.items() if got[name] < floor}
    assert not low, f"{language}: below the floors {FLOORS}: {low}"
