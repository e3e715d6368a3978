"""Matching: the knowledge base, normalisation, fuzzy spelling, candidates."""

from extract_helpers import products

from tgmed_extract import EXTRACTOR_VERSION, knowledge_version
from tgmed_extract.knowledge import canonical_medicine, knowledge
from tgmed_extract.normalize import normalise, phonetic, transliterate


def test_dictionary_brands_resolve_to_their_generics(extract):
    r = extract("Flagyl, Cipro, Zyrtec and Glucophage in stock")
    assert products(r) == ["metronidazole", "ciprofloxacin", "cetirizine", "metformin"]
    assert [m.brand for m in r.mentions] == ["flagyl", "cipro", "zyrtec", "glucophage"]


def test_inn_and_combination_names():
    assert canonical_medicine("acetaminophen") == "paracetamol"
    assert canonical_medicine("amoxicillin and clavulanic acid") == "amoxicillin + clavulanic acid"
    assert canonical_medicine("abacavir, lamivudine, and zidovudine") == (
        "abacavir + lamivudine + zidovudine"
    )


def test_our_medicine_additions(extract):
    assert products(extract("Coartem and Augmentin")) == [
        "artemether + lumefantrine",
        "amoxicillin + clavulanic acid",
    ]


def test_common_words_of_the_dictionary_are_not_medicines(extract):
    assert extract("Free delivery today, the best care, gold plus offer").mentions == ()


def test_hyphen_space_and_glued_spellings_meet(extract):
    for spelling in ("Accu-Chek", "Accu Chek", "AccuChek", "ACCU-CHEK"):
        assert products(extract(f"{spelling} available")) == ["accu-chek glucometer"], spelling


def test_misspellings_next_to_a_price_or_dose(extract):
    for word, product in (
        ("Amoxcillin", "amoxicillin"),
        ("Parcetamol", "paracetamol"),
        ("Metformn", "metformin"),
    ):
        r = extract(f"{word} 500mg 60 birr")
        assert [(m.product, m.matched_by) for m in r.mentions] == [(product, "fuzzy")], word


def test_misspelling_far_from_any_figure_is_left_alone(extract):
    assert extract("I like amoxcillin").mentions == ()


def test_amharic_spelling_meets_the_dictionary_through_transliteration(extract):
    r = extract("ፓራሲታሞል አለ")
    assert products(r) == ["paracetamol"]
    # a spelling not in our catalog, met through the transliteration and sound key
    r = extract("ሜትሮኒዳዞል ታብሌት")
    assert products(r) == ["metronidazole"]
    r = extract("ኦሜፕራዞሌ 20mg")
    assert [(m.product, m.matched_by) for m in r.mentions] == [("omeprazole", "fuzzy")]


def test_amharic_homophone_letters_fold():
    assert normalise("ሐኪም")[0] == normalise("ሀኪም")[0] == normalise("ኀኪም")[0]
    assert normalise("ሠላም")[0] == normalise("ሰላም")[0]
    assert normalise("ዐይን")[0] == normalise("አይን")[0]
    assert normalise("ፀሐይ")[0] == normalise("ጸሀይ")[0]
    assert normalise("ቸ")[0] != normalise("ሸ")[0]


def test_transliteration_and_sound_key():
    assert transliterate("ፓራሲታሞል") == "parasitamol"
    assert phonetic(transliterate("ሴቲሪዚን")) == phonetic("cetirizine")


def test_brand_before_a_product_type_without_its_own_row(extract):
    r = extract("Nivea sunscreen SPF 50")
    assert [(m.product, m.brand) for m in r.mentions] == [("sunscreen", "nivea")]


def test_amharic_product_names(extract):
    r = extract("የደም ግፊት መለኪያ እና የስኳር መለኪያ አለን")
    assert products(r) == ["bp monitor", "glucometer"]


def test_candidates_are_unknown_names_before_a_price_or_dose(extract):
    r = extract("Zinnatex 500mg 300 birr\nPanadol 40 birr")
    assert [c.name for c in r.candidates] == ["zinnatex"]
    assert r.candidates[0].context == "Zinnatex 500mg 300 birr"
    assert [p.product for p in r.prices] == [None, "paracetamol"]


def test_amharic_candidate(extract):
    r = extract("ሮያል ሀኒ 250 ብር")
    assert [c.name for c in r.candidates] == ["ሮያል ሀኒ"]
    assert [(p.product, p.amount) for p in r.prices] == [(None, 250.0)]


def test_amharic_trade_words_are_not_drugs(extract):
    # ኪኒን (tablets) sounds like quinine, ሽሮፕ is syrup: never matched tolerantly
    r = extract("ሜትፎርሚን 500 ሚ.ግ (100 ኪኒን) - 350 ብር")
    assert [m.product for m in r.mentions] == ["metformin"]
    assert [(p.product, p.amount, p.pack_count) for p in r.prices] == [("metformin", 350.0, 100)]


def test_no_digits_and_no_names_is_empty(extract):
    r = extract("Good morning, we are open")
    assert (r.mentions, r.prices, r.services, r.candidates) == ((), (), (), ())


def test_versions():
    assert EXTRACTOR_VERSION
    assert len(knowledge_version()) == 16
    assert knowledge_version() == knowledge_version()


def test_knowledge_base_size():
    kb = knowledge()
    assert kb.alias_count > 90_000
    assert len(kb.products) > 15_000


def test_a_flavour_word_is_not_a_product(extract):
    assert products(extract("Cerelac wheat & honey 400g 690 birr")) == ["cerelac"]


def test_amharic_prefix_glued_to_a_latin_name(extract):
    assert products(extract("የVitamin C 1000mg 280 ብር")) == ["vitamin c"]


def test_dotted_latin_abbreviation(extract):
    assert products(extract("O.R.S sachet 15 birr")) == ["oral rehydration salts"]


def test_short_amharic_spelling_meets_a_brand_by_its_exact_sound(extract):
    r = extract("ሲፕሮ 500 ሚ.ግ ዋጋ 260 ብር")
    assert [(m.product, m.matched_by) for m in r.mentions] == [("ciprofloxacin", "fuzzy")]


def test_labiovelar_letters_transliterate(extract):
    assert transliterate("ኲ") == "kwi"
    assert products(extract("ኲኒን 300 ሚ.ግ 120 ብር")) == ["quinine"]


def test_the_dictionary_is_read_without_its_finder_or_network_code():
    import sys

    knowledge()
    loaded = {name for name in sys.modules if name.startswith("drug_named_entity_recognition")}
    # find_spec alone: neither the package (whose import unpickles the dictionary and
    # pulls in the OMOP and structure download code) nor its modules are imported
    assert loaded == set()


def test_a_catalog_change_changes_the_knowledge_version(tmp_path, monkeypatch):
    import shutil

    from tgmed_extract import knowledge as knowledge_module

    before = knowledge_version()
    catalog = tmp_path / "catalog"
    shutil.copytree(knowledge_module.CATALOG_DIR, catalog)
    monkeypatch.setattr(knowledge_module, "CATALOG_DIR", catalog)
    assert knowledge_version() == before
    with (catalog / "products.csv").open("a", encoding="utf-8") as handle:
        handle.write("zz new serum,cosmetic,,,,\n")
    assert knowledge_version() != before


def test_function_words_places_and_services_are_no_candidates(extract):
    r = extract(
        "Wheelchair 9,500 ወይም ከ 12,000 ብር\nAddis 200 birr\nCalibration check 250 birr\n"
        "የማድረሻ ክፍያ 100 ብር"
    )
    assert r.candidates == ()


def test_two_medicines_written_together_are_their_combination(extract):
    for text in ("Sulfamethoxazole + Trimethoprim 480mg 50 birr", "ሰልፋሜቶክሳዞል ትሪሜቶፕሪም 50 ብር"):
        assert products(extract(text)) == ["sulfamethoxazole + trimethoprim"], text
    assert products(extract("Paracetamol, Ibuprofen")) == ["paracetamol", "ibuprofen"]


def test_a_brand_alone_takes_the_product_type_the_post_names(extract):
    r = extract("BP monitors for home & clinic\nYuwell wrist type 2,900 birr")
    assert products(r) == ["yuwell bp monitor"]  # the heading is dropped: see below
    assert [(p.product, p.amount) for p in r.prices] == [("yuwell bp monitor", 2900.0)]
    # with no type named, a device brand means its first row
    assert products(extract("Yuwell 5L 78,000 birr")) == ["yuwell oxygen concentrator"]


def test_a_figure_inside_a_name_is_no_price(extract):
    r = extract("All prices in birr\nላክቶጅን 1 እና ላክቶጅን 2")
    assert r.prices == ()


def test_amharic_spelling_of_a_catalog_name_meets_it_by_sound(extract):
    # ሱዶክሬም is no spelling in the catalog: its sound meets the Latin alias "sudocrem"
    r = extract("ሱዶክሬም 600 ብር")
    assert [(m.product, m.matched_by) for m in r.mentions] == [("diaper rash cream", "fuzzy")]


def test_a_two_word_amharic_spelling_meets_a_two_word_name(extract):
    # ኦክሲጅን (not the catalog's ኦክስጅን) ኮንሰንትሬተር: the two words joined meet the
    # sound of "oxygen concentrator"
    r = extract("ኦክሲጅን ኮንሰንትሬተር 55 ሺ ብር")
    assert [(m.product, m.matched_by) for m in r.mentions] == [("oxygen concentrator", "fuzzy")]
    assert [(p.product, p.amount) for p in r.prices] == [("oxygen concentrator", 55000.0)]


def test_a_heading_type_beside_its_own_products_is_no_extra_mention(extract):
    r = extract("Cheap glucometers 🩸\nAccu-Chek Active 2,500 birr\nOn Call Plus 1,350 birr")
    assert products(r) == ["accu-chek glucometer", "on call plus glucometer"]
    # with a price of its own, the type stays a product
    r = extract("Glucometer 900 birr\nAccu-Chek Active 2,500 birr")
    assert products(r) == ["glucometer", "accu-chek glucometer"]


def test_a_heading_type_is_dropped_in_a_post_without_prices_too(extract):
    r = extract("Glucometers: Accu-Chek Active and On Call Plus available")
    assert products(r) == ["accu-chek glucometer", "on call plus glucometer"]


def test_latin_misspelling_by_sound(extract):
    for word, product in (("Zyrtek", "cetirizine"), ("Glucofage", "metformin")):
        r = extract(f"{word} 10mg 30 tabs 230 birr")
        assert [(m.product, m.matched_by) for m in r.mentions] == [(product, "fuzzy")], word
