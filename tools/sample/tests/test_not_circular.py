"""The bundled sample is not drawn from the matcher's catalog (issue 22): it names
products no catalog holds, and writes prices in every form the extractor must read.
Run on the sample `make sample` writes (the `tgmed-sample` command, its defaults)."""

import json
from collections import Counter, defaultdict

import pytest

from tgmed_extract import extract
from tgmed_sample.catalog import PRODUCTS
from tgmed_sample.cli import main

LOCAL = [p for p in PRODUCTS if p.local]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled") / "sample"
    assert main(["--out", str(out)]) == 0  # the defaults: what `make sample` writes
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    posts = []  # (channel, message id, text)
    for folder in sorted((out / "exports").iterdir()):
        for message in json.loads((folder / "result.json").read_text())["messages"]:
            text = "".join(e["text"] for e in message["text_entities"])
            if text:
                posts.append((folder.name.lower(), message["id"], text))
    return truth, posts


def test_a_local_product_no_catalog_holds_is_a_candidate_in_three_posts(bundled):
    truth, posts = bundled
    assert LOCAL, "the sample names at least one local brand"
    seen: dict[str, set] = defaultdict(set)
    for channel, message_id, text in posts:
        result = extract(text)
        for candidate in result.candidates:
            seen[candidate.name].add((channel, message_id))
    for product in LOCAL:
        name = product.display.lower()
        # no catalog or dictionary knows it: not a mention, on its own or in a post
        alone = extract(f"{product.display} 450 birr")
        assert not alone.mentions and [c.name for c in alone.candidates] == [name]
        # the extractor lists it as a candidate in >= 3 posts of the bundled sample
        assert len(seen[name]) >= 3, (name, len(seen[name]))
        written = sum(
            c["local_products"].get(product.display, 0) for c in truth["channels"].values()
        )
        assert written >= len(seen[name])


def test_products_outside_the_platforms_first_list(bundled):
    truth, _ = bundled
    first_list = {  # the 22 products of dbt/seeds/products.csv, the old matcher's catalog
        "paracetamol", "amoxicillin", "ibuprofen", "vitamin_c", "omeprazole", "metformin",
        "azithromycin", "cetirizine", "ors", "glucometer", "bp_monitor", "thermometer",
        "face_mask", "sanitizer", "nivea", "vaseline", "cerave", "niacinamide", "sunscreen",
        "shea_butter", "baby_oil", "dove_soap",
    }  # fmt: skip
    mentions = Counter()
    for channel in truth["channels"].values():
        mentions.update(channel["mentions"])
    outside = {key for key in mentions if key not in first_list}
    assert len(outside) >= 30
    assert sum(mentions[k] for k in outside) >= sum(mentions.values()) / 3
    assert {p.category for p in PRODUCTS} == {
        "medicine", "device", "consumable", "cosmetic", "baby", "supplement",
    }  # fmt: skip
    assert mentions.most_common(1)[0][0] == "paracetamol"


def test_every_price_form(bundled):
    truth, posts = bundled
    forms = Counter()
    for channel in truth["channels"].values():
        for form, n in channel["price_forms"].items():
            forms[form.split("+")[0]] += n
            if "+" in form:
                forms["+" + form.split("+")[1]] += n
    for form in (
        "price_birr", "price_colon_Birr", "etb_before", "etb_before_glued", "etb_after",
        "br_after", "br_glued", "Br_after", "Br_before", "birr_glued", "money_bag", "equals",
        "dash", "waga", "waga_colon", "waga_glued", "birr_only_am", "birr_before_am",
        "k_birr", "range", "was_now", "several_sizes", "bare_list", "+thousands", "+decimal",
    ):  # fmt: skip
        assert forms[form] >= 2, form
    services = Counter()
    for channel in truth["channels"].values():
        services.update(channel["services"])
    assert services["repair"] >= 2 and services["delivery"] >= 2
    joined = "\n".join(text for _, _, text in posts)
    for written in (
        "All prices in", "ዋጋዎቹ በብር ናቸው", "repair & calibration from 300 birr",
        "Delivery 50 birr", "በፊት ", "Was ", "0911 23 45 67", "24/7", "/2026",
    ):  # fmt: skip
        assert written in joined, written
