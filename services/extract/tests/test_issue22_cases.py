"""Every hard case issue 22 names, each on its own, with the issue's own strings."""

from extract_helpers import pairs, products


def test_several_products_on_one_line_each_take_their_own_price(extract):
    r = extract(
        "Cefalexin 500mg caps 120.50 birr. Ibuprofen syrup 100ml 70 birr. "
        "Paracetamol syrup 60ml 45 birr."
    )
    assert pairs(r) == [
        ("cefalexin", 120.5, "ETB"),
        ("ibuprofen", 70.0, "ETB"),
        ("paracetamol", 45.0, "ETB"),
    ]
    assert [p.strength for p in r.prices] == ["500 mg", None, None]
    assert [p.size for p in r.prices] == [None, "100 ml", "60 ml"]


def test_service_fee_is_a_service_not_the_product_price(extract):
    r = extract("BP monitor repair & calibration from 300 birr")
    assert products(r) == ["bp monitor"]
    assert r.prices == ()
    assert [(s.service, s.product, s.amount) for s in r.services] == [
        ("repair", "bp monitor", 300.0)
    ]


def test_pack_count_after_price_marker_is_not_the_price(extract):
    r = extract("ፓራሲታሞል ዋጋ 1 ፓኬት 120 ብር")
    assert pairs(r) == [("paracetamol", 120.0, "ETB")]
    assert r.prices[0].pack_count == 1


def test_million(extract):
    r = extract("Oxygen concentrator\nPrice 3.5 million birr")
    assert pairs(r) == [("oxygen concentrator", 3_500_000.0, "ETB")]


def test_paid_then_selling_for_gives_the_selling_price(extract):
    r = extract("Glucometer, paid 1,800 birr, selling for 1,300")
    assert pairs(r) == [("glucometer", 1300.0, "ETB")]
    assert r.prices[0].old_price == 1800.0


def test_other_currency_kept_with_its_currency(extract):
    r = extract("Omron nebulizer $45 or 6,000 birr")
    assert pairs(r) == [("omron nebulizer", 45.0, "USD"), ("omron nebulizer", 6000.0, "ETB")]


def test_was_now(extract):
    r = extract("Nivea body lotion was 500 now 450 birr")
    assert pairs(r) == [("nivea body lotion", 450.0, "ETB")]
    assert r.prices[0].old_price == 500.0


def test_was_now_amharic(extract):
    r = extract("ሴሬላክ በፊት 400 ብር አሁን 350 ብር")
    assert pairs(r) == [("cerelac", 350.0, "ETB")]
    assert r.prices[0].old_price == 400.0


def test_amharic_glued_prefix(extract):
    r = extract("የቫይታሚን ሲ ዋጋ 150 ብር")
    assert pairs(r) == [("vitamin c", 150.0, "ETB")]
    assert r.mentions[0].matched_by == "amharic"


def test_amharic_spelling_variants_meet(extract):
    for spelling in ("ሴቲሪዚን", "ሴትሪዚን"):
        r = extract(f"{spelling} 40 ብር")
        assert pairs(r) == [("cetirizine", 40.0, "ETB")], spelling


def test_amharic_abbreviation_with_dots(extract):
    r = extract("ኦ.አር.ኤስ 15 ብር")
    assert products(r) == ["oral rehydration salts"]
    assert r.mentions[0].as_written == "ኦ.አር.ኤስ"
    assert pairs(r) == [("oral rehydration salts", 15.0, "ETB")]


def test_english_plural(extract):
    assert products(extract("New BP monitors in stock")) == ["bp monitor"]


def test_omron_nebulizer_is_not_a_bp_monitor(extract):
    r = extract("Omron nebulizer 4,500 birr")
    assert [(m.product, m.category, m.brand) for m in r.mentions] == [
        ("omron nebulizer", "device", "omron")
    ]


def test_garnier_vitamin_c_serum_is_a_cosmetic(extract):
    r = extract("Garnier vitamin C serum 1,200 birr")
    assert [(m.product, m.category) for m in r.mentions] == [
        ("garnier vitamin c serum", "cosmetic")
    ]


def test_cantu_conditioner_is_not_shea_butter(extract):
    r = extract("Cantu shea-butter conditioner 950 birr")
    assert products(r) == ["cantu shea butter leave-in conditioner"]
    assert pairs(r) == [("cantu shea butter leave-in conditioner", 950.0, "ETB")]


def test_dose_glued_to_the_name(extract):
    r = extract("Augmentin625 450 birr")
    assert products(r) == ["amoxicillin + clavulanic acid"]
    assert r.mentions[0].brand == "augmentin"
    assert r.prices[0].strength == "625"
    assert pairs(r) == [("amoxicillin + clavulanic acid", 450.0, "ETB")]


def test_br_glued_to_the_figure(extract):
    assert pairs(extract("Panadol 60br")) == [("paracetamol", 60.0, "ETB")]
    assert pairs(extract("Panadol 60 Br")) == [("paracetamol", 60.0, "ETB")]


def test_strips_and_lancets_are_not_the_glucometer(extract):
    r = extract(
        "Accu-Chek Active glucometer 2,500 birr\n"
        "Accu-Chek test strips 50 pcs 1,400 birr\n"
        "Accu-Chek Softclix lancets 600 birr\n"
        "Glucometer strips 900 birr"
    )
    assert [(m.product, m.category) for m in r.mentions] == [
        ("accu-chek glucometer", "device"),
        ("accu-chek test strips", "consumable"),
        ("accu-chek softclix lancets", "consumable"),
        ("test strips", "consumable"),
    ]
    assert pairs(r) == [
        ("accu-chek glucometer", 2500.0, "ETB"),
        ("accu-chek test strips", 1400.0, "ETB"),
        ("accu-chek softclix lancets", 600.0, "ETB"),
        ("test strips", 900.0, "ETB"),
    ]
    assert r.prices[1].unit_price == 28.0


def test_bare_figures_in_a_list_whose_note_names_the_currency(extract):
    r = extract("Today's list (All prices in ETB)\nAmoxil 500mg - 120\nFlagyl 250mg - 80")
    assert pairs(r) == [("amoxicillin", 120.0, "ETB"), ("metronidazole", 80.0, "ETB")]


def test_never_a_price(extract):
    r = extract(
        "Paracetamol 500mg 100 tablets available. Call 0911 23 45 67 or +251911234567. "
        "Open 24/7, 8:30am-10pm. Expiry 12/05/2027. License No. 12345"
    )
    assert products(r) == ["paracetamol"]
    assert r.prices == ()
