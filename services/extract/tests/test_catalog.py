"""The catalog files analysts edit: what the README promises about them holds."""

from collections import defaultdict

from tgmed_extract.knowledge import (
    CATALOG_DIR,
    CATEGORIES,
    canonical_medicine,
    read_catalog,
)
from tgmed_extract.normalize import normalise_alias

PRODUCTS = read_catalog(CATALOG_DIR / "products.csv")
MEDICINES = read_catalog(CATALOG_DIR / "medicines.csv")


def _names(row, *columns):
    return [n.strip() for c in columns for n in (row.get(c) or "").split("|") if n.strip()]


def test_products_have_the_documented_columns():
    assert set(PRODUCTS[0]) >= {"product", "category", "aliases", "amharic", "brand", "parent"}
    assert len(PRODUCTS) >= 200


def test_product_ids_are_unique_lowercase_and_categorised():
    seen = set()
    for row in PRODUCTS:
        product = row["product"]
        assert product == product.lower().strip(), product
        assert product not in seen, f"products.csv: {product} twice"
        seen.add(product)
        assert row["category"] in CATEGORIES, f"products.csv: {product}: {row['category']}"


def test_every_parent_exists():
    names = {row["product"] for row in PRODUCTS}
    for row in PRODUCTS:
        assert not row["parent"] or row["parent"] in names, f"{row['product']}: {row['parent']}"


def test_no_alias_is_claimed_by_two_products():
    owners = defaultdict(set)
    for row in PRODUCTS:
        for name in _names(row, "product", "aliases", "amharic"):
            owners[normalise_alias(name)].add(row["product"])
    for row in MEDICINES:
        for name in _names(row, "product", "brands", "aliases", "amharic"):
            owners[normalise_alias(name)].add(canonical_medicine(row["product"]))
    clashes = {alias: products for alias, products in owners.items() if len(products) > 1}
    assert clashes == {}


def test_amharic_column_is_geez_and_aliases_are_not():
    for row in PRODUCTS + MEDICINES:
        for name in _names(row, "amharic"):
            assert any("\u1200" <= ch <= "\u137f" for ch in name), name
        for name in _names(row, "aliases", "brands"):
            assert not any("\u1200" <= ch <= "\u137f" for ch in name), name


def test_brand_specific_rows_name_their_brand():
    for row in PRODUCTS:
        if row["brand"] and row["parent"]:
            first_word = row["brand"].replace("-", " ").split()[0]
            assert first_word in row["product"].replace("-", " ") or (
                row["brand"] == "vitabiotics"
            ), row["product"]


def test_medicine_categories():
    for row in MEDICINES:
        assert (row.get("category") or "medicine") in CATEGORIES, row["product"]
