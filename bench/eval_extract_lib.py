"""Precision and recall of `tgmed_extract.extract` against hand-labelled posts.

Input: JSON lines with `text`, `language`, `mentions` [{product, as_written, category}],
`prices` [{product, amount, currency}] (the issue 22 development set's format).
Labelled product names need not be ours ("nan 1 infant formula" vs "nan formula"): a
predicted mention is right when its span overlaps a place where a labelled mention's
`as_written` occurs; a (product, price) pair is right when its amount and currency are
the labelled ones and its product is, through those overlaps, the labelled product.

    uv run python bench/eval_extract_lib.py FILE.jsonl [FILE.jsonl ...] [--misses N]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from tgmed_extract import extract


def spans_of(text: str, needle: str) -> list[tuple[int, int]]:
    if not needle:
        return []
    return [(m.start(), m.end()) for m in re.finditer(re.escape(needle), text, re.IGNORECASE)]


def evaluate(rows: list[dict], misses: int) -> dict[str, dict[str, float]]:
    """Prints and returns, per language and for "all": mentions_p, mentions_r, pairs_p,
    pairs_r."""
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    shown = 0
    for row in rows:
        text = row["text"]
        result = extract(text)
        gold_spans = []  # (start, end, gold product)
        for g in row.get("mentions", []):
            for s, e in spans_of(text, g.get("as_written") or ""):
                gold_spans.append((s, e, g["product"]))
        gold_products = {g["product"] for g in row.get("mentions", [])}
        # each predicted mention -> the labelled product whose words it covers
        gold_of: list[str | None] = []
        for m in result.mentions:
            hit = None
            for s, e, gp in gold_spans:
                if m.start < e and s < m.end:
                    hit = gp
                    break
            gold_of.append(hit)
        pred_all = {m.product for m in result.mentions}
        pred_ok = {m.product for m, g in zip(result.mentions, gold_of, strict=True) if g}
        found_gold = {g for g in gold_of if g}

        # fallback: another mention of the same product that did cover labelled words
        by_product = {m.product: g for m, g in zip(result.mentions, gold_of, strict=True) if g}

        def gold_product(price, mentions=result.mentions, gold_of=gold_of, by=by_product):
            before = after = None  # the last mention of its product before it, else the first
            for m, g in zip(mentions, gold_of, strict=True):
                if m.product != price.product:
                    continue
                if m.start <= price.start:
                    before = (g,)
                elif after is None:
                    after = (g,)
            owner = (before or after or (None,))[0]
            return owner or by.get(price.product) or "?" + str(price.product)

        gold_pairs = {
            (p["product"], round(float(p["amount"]), 2))
            for p in row.get("prices", [])
            if (p.get("currency") or "ETB") == "ETB"
            and p.get("amount") is not None
            and p.get("kind", "price") == "price"
        }
        pred_pairs = {
            (gold_product(p), round(p.amount, 2))
            for p in result.prices
            if p.currency == "ETB" and p.product is not None
        }
        for key in ("all", row.get("language", "?")):
            s = stats[key]
            s[0] += len(pred_ok)
            s[1] += len(pred_all)
            s[2] += len(found_gold & gold_products)  # several labelled per mention possible
            s[3] += len(gold_products)
            s[4] += len(pred_pairs & gold_pairs)
            s[5] += len(pred_pairs)
            stats[key + ":gold_pairs"] = stats.get(key + ":gold_pairs", [0])
            stats[key + ":gold_pairs"][0] += len(gold_pairs)
        if shown < misses and (gold_products - found_gold or pred_pairs ^ gold_pairs):
            shown += 1
            print(f"--- {row.get('id')}\n{text}")
            print("  missed products:", sorted(gold_products - found_gold))
            print("  wrong products:", sorted(pred_all - pred_ok))
            print("  missed pairs:", sorted(gold_pairs - pred_pairs))
            print("  wrong pairs:", sorted(pred_pairs - gold_pairs))
    figures = {}
    for key, s in stats.items():
        if ":" in key:
            continue
        gold_pairs = stats[key + ":gold_pairs"][0]
        figures[key] = {
            "mentions_p": s[0] / max(s[1], 1),
            "mentions_r": s[2] / max(s[3], 1),
            "pairs_p": s[4] / max(s[5], 1),
            "pairs_r": s[4] / max(gold_pairs, 1),
        }
        print(
            f"{key:4} mentions P {s[0] / max(s[1], 1):.2f} R {s[2] / max(s[3], 1):.2f}"
            f" (pred {s[1]}, gold {s[3]}) | pairs P {s[4] / max(s[5], 1):.2f}"
            f" R {s[4] / max(gold_pairs, 1):.2f} (pred {s[5]}, gold {gold_pairs})"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--misses", type=int, default=0, help="print the first N misses")
    args = parser.parse_args()
    rows = []
    for name in args.files:
        with Path(name).open(encoding="utf-8") as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    evaluate(rows, args.misses)


if __name__ == "__main__":
    main()
