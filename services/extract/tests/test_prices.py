"""The price grammar and price-to-product association beyond the issue's own strings."""

import pytest
from extract_helpers import pairs

from tgmed_extract.prices import scan


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("Amoxil 120 birr", 120.0, "ETB"),
        ("Amoxil 120birr", 120.0, "ETB"),
        ("Amoxil 120 BIRR", 120.0, "ETB"),
        ("Amoxil ETB 120", 120.0, "ETB"),
        ("Amoxil 120 ETB", 120.0, "ETB"),
        ("Amoxil Br. 120", 120.0, "ETB"),
        ("Amoxil 120 br.", 120.0, "ETB"),
        ("Amoxil 120 ብር", 120.0, "ETB"),
        ("Amoxil 120ብር", 120.0, "ETB"),
        ("Amoxil ዋጋ 120", 120.0, "ETB"),
        ("Amoxil 💰120", 120.0, "ETB"),
        ("Amoxil = 120", 120.0, "ETB"),
        ("Amoxil @ 120", 120.0, "ETB"),
        ("Amoxil — 120 birr", 120.0, "ETB"),
        ("Amoxil Price: 1,250.50 birr", 1250.5, "ETB"),
        ("Amoxil 2.5k birr", 2500.0, "ETB"),
        ("Amoxil 5 ሺ ብር", 5000.0, "ETB"),
        ("Amoxil 2 ሚሊዮን ብር", 2_000_000.0, "ETB"),
        ("Amoxil USD 12", 12.0, "USD"),
        ("Amoxil €10", 10.0, "EUR"),
    ],
)
def test_price_forms(extract, text, amount, currency):
    assert pairs(extract(text)) == [("amoxicillin", amount, currency)]


def test_range_keeps_low_and_high(extract):
    r = extract("Wheelchair 8,000-12,000 birr")
    assert [(p.product, p.amount, p.high) for p in r.prices] == [("wheelchair", 8000.0, 12000.0)]


def test_range_with_multiplier_on_the_high_end_only(extract):
    r = extract("Hospital bed 20-35k birr")
    assert [(p.amount, p.high) for p in r.prices] == [(20000.0, 35000.0)]


def test_several_prices_for_one_product_each_with_its_pack(extract):
    r = extract("Augmentin 625mg: 14 tabs 450 birr, box of 100 2,800 birr")
    assert [(p.amount, p.strength, p.pack_count, p.unit_price) for p in r.prices] == [
        (450.0, "625 mg", 14, 32.14),
        (2800.0, "625 mg", 100, 28.0),
    ]


def test_per_pack_after_the_price(extract):
    r = extract("Surgical gloves 350 birr per box of 100")
    assert [(p.product, p.amount, p.pack_count, p.unit_price) for p in r.prices] == [
        ("surgical gloves", 350.0, 100, 3.5)
    ]


def test_sizes_of_one_product(extract):
    r = extract("NAN 1 400g 1,150 birr / 800g 2,100 birr")
    assert [(p.product, p.amount, p.size) for p in r.prices] == [
        ("nan formula", 1150.0, "400 g"),
        ("nan formula", 2100.0, "800 g"),
    ]


def test_header_line_then_price_line(extract):
    r = extract("🔥 Omron M3 BP monitor 🔥\nOriginal, 2 years warranty\nPrice: 4,800 birr")
    assert pairs(r) == [("omron bp monitor", 4800.0, "ETB")]


def test_price_never_given_to_every_product_of_a_line(extract):
    r = extract("Panadol, Brufen and Amoxil available. Amoxil 120 birr")
    assert pairs(r) == [("amoxicillin", 120.0, "ETB")]


def test_delivery_fee_is_a_service(extract):
    r = extract("Pampers size 4 1,900 birr. Delivery 100 birr")
    assert pairs(r) == [("pampers diapers", 1900.0, "ETB")]
    assert [(s.service, s.amount) for s in r.services] == [("delivery", 100.0)]


def test_amharic_delivery_fee_is_a_service(extract):
    r = extract("ዳይፐር 1500 ብር\nማድረሻ 80 ብር")
    assert pairs(r) == [("diapers", 1500.0, "ETB")]
    assert [(s.service, s.amount) for s in r.services] == [("ማድረሻ", 80.0)]


def test_doses_percentages_and_years_are_not_prices(extract):
    r = extract("Vitamin D3 1000 IU, niacinamide 10% serum, since 2015")
    assert r.prices == ()


def test_phone_variants_are_not_figures():
    for phone in (
        "0911234567",
        "0911 234 567",
        "0911-234-567",
        "+251 911 234 567",
        "+251911234567",
        "0116 123 456",
        "0703 456 789",
    ):
        assert scan(f"call {phone}") == [], phone


def test_a_price_with_no_product_is_kept_unattributed(extract):
    r = extract("Everything 50 birr today")
    assert [(p.product, p.amount) for p in r.prices] == [(None, 50.0)]


def test_service_named_before_the_product(extract):
    r = extract("Cool box delivery for insulin 150 birr")
    assert r.prices == ()
    assert [(s.service, s.product, s.amount) for s in r.services] == [
        ("delivery", "insulin", 150.0)
    ]


def test_free_delivery_is_no_fee(extract):
    r = extract("Panadol with free delivery 45 birr")
    assert pairs(r) == [("paracetamol", 45.0, "ETB")]
    assert r.services == ()


def test_strikethrough_old_price(extract):
    r = extract("Omron M3 BP monitor ~~8,900~~ 7,900 ETB")
    assert [(p.amount, p.old_price) for p in r.prices] == [(7900.0, 8900.0)]


def test_currency_glued_to_the_next_figure(extract):
    r = extract("Dove soap 100g x 4 ETB480")
    assert pairs(r) == [("dove soap", 480.0, "ETB")]


def test_a_service_word_inside_a_product_name_is_no_service(extract):
    r = extract("CeraVe eye repair cream 14ml 2,300 birr")
    assert pairs(r) == [("cerave eye repair cream", 2300.0, "ETB")]
    assert r.services == ()


def test_pack_noun_without_of_and_a_price_like_a_year(extract):
    r = extract("IV cannula G18/G20 (box 100) 1,900\nprices in birr")
    assert [(p.product, p.amount, p.pack_count, p.unit_price) for p in r.prices] == [
        ("cannula", 1900.0, 100, 19.0)
    ]


def test_tin_is_a_pack_not_a_tax_number(extract):
    assert pairs(extract("NAN 1 (400g) tin 1,450 br")) == [("nan formula", 1450.0, "ETB")]


def test_a_continuation_line_without_product_goes_to_the_only_product(extract):
    r = extract(
        "Full container Molfix diapers — 3.2 million birr\nHalf container — 1.7 million birr"
    )
    assert pairs(r) == [
        ("molfix diapers", 3_200_000.0, "ETB"),
        ("molfix diapers", 1_700_000.0, "ETB"),
    ]


def test_a_list_under_a_header_line_reads_its_bare_figures(extract):
    r = extract("Cerelac 400g\nWheat - 480\nRice - 520\n(prices in birr)")
    assert [(p.amount, p.currency) for p in r.prices] == [(480.0, "ETB"), (520.0, "ETB")]


def test_a_price_written_before_its_product_in_a_list_item(extract):
    r = extract("Etb 1,449.99 NAN 1 400g | Etb 2,099.99 Aptamil 1 400g | Etb 1,699.99 Similac 1")
    assert pairs(r) == [
        ("nan formula", 1449.99, "ETB"),
        ("aptamil formula", 2099.99, "ETB"),
        ("similac formula", 1699.99, "ETB"),
    ]


def test_list_items_of_unknown_products_do_not_take_the_lines_first_product(extract):
    r = extract("Nasal cannula adult ETB120 | Oxygen regulator ETB3,800 | Humidifier bottle ETB450")
    assert pairs(r) == [
        ("nasal cannula", 120.0, "ETB"),
        (None, 3800.0, "ETB"),
        (None, 450.0, "ETB"),
    ]


def test_us_dollar_prefix_and_rental_fee(extract):
    r = extract("Ozempic 1mg pen US$180 or 26,000 birr\nOxygen concentrator rent 700 birr/day")
    assert [(p.product, p.amount, p.currency) for p in r.prices] == [
        ("semaglutide", 180.0, "USD"),
        ("semaglutide", 26000.0, "ETB"),
    ]
    assert [(s.service, s.product, s.amount) for s in r.services] == [
        ("rent", "oxygen concentrator", 700.0)
    ]


def test_a_header_reaches_a_long_list_under_it(extract):
    sizes = "\n".join(f"Size {n} ({40 + n}) {1300 + n * 10}" for n in range(1, 8))
    r = extract(f"MOLFIX PRICE LIST (All prices in ETB)\n{sizes}")
    assert [p.product for p in r.prices] == ["molfix diapers"] * 7
