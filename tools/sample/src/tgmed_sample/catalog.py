"""What the sample sellers sell: real medicines, devices, consumables, cosmetics, baby
formula and supplements sold in Ethiopian pharmacies and shops, with the names they are
written by (English generic and brand, Amharic in Ge'ez) and typical prices (birr).

This list is the generator's own. It is written without looking at any catalog the
platform matches against (dbt seeds, services/extract): a sample drawn from the
matcher's own catalog only measures the catalog against itself (issue 22). So it names
products no catalog may know (Strepsils, Tiger Balm, Haliborange, ...) and one local
brand that exists nowhere else (`Hiwot Glow`, a shea body butter made in Addis Ababa):
an analyst should see those as candidates for the catalog.

The first 22 keys are the platform's first product list (paracetamol ... dove_soap);
they keep their keys and lead each category, so the most mentioned product is still
paracetamol.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    key: str
    display: str
    english: tuple[str, ...]
    amharic: tuple[str, ...]
    category: str  # medicine | device | consumable | cosmetic | baby | supplement
    base_price: int
    # sizes or packs sold at their own price: (as written, price factor)
    sizes: tuple[tuple[str, float], ...] = ()
    # strength, pack count or volume written after the name: never a price
    detail: tuple[str, ...] = ()
    local: bool = False  # a local brand that no public catalog or dictionary lists
    popularity: float = 1.0  # against the others of its rank (the best sellers: more)


def _p(key, display, english, amharic, category, price, sizes=(), detail=(), **extra):
    return Product(
        key,
        display,
        tuple(english),
        tuple(amharic),
        category,
        price,
        tuple(sizes),
        tuple(detail),
        **extra,
    )


PRODUCTS: tuple[Product, ...] = (
    # --- medicines -------------------------------------------------------------------
    _p(
        "paracetamol",
        "Paracetamol 500mg",
        ("Paracetamol", "Panadol"),
        ("ፓራሲታሞል", "ፓናዶል"),
        "medicine",
        60,
        detail=("500mg", "20 tablets", "10x10 tabs"),
        sizes=(("strip of 10", 0.5), ("box of 100", 4.5)),
        popularity=1.8,  # the best seller of every pharmacy
    ),
    _p(
        "amoxicillin",
        "Amoxicillin 500mg",
        ("Amoxicillin", "Amoxil"),
        ("አሞክሲሲሊን",),
        "medicine",
        180,
        detail=("500mg caps", "250mg/5ml syrup"),
    ),
    _p(
        "ibuprofen",
        "Ibuprofen 400mg",
        ("Ibuprofen", "Brufen"),
        ("ኢቡፕሮፌን", "አይቡፕሮፌን"),
        "medicine",
        90,
        detail=("400mg", "100ml syrup"),
    ),
    _p(
        "vitamin_c",
        "Vitamin C 1000mg",
        ("Vitamin C",),
        ("ቫይታሚን ሲ",),
        "medicine",
        350,
        detail=("1000mg", "30 tabs"),
    ),
    _p(
        "augmentin",
        "Augmentin 625mg",
        ("Augmentin", "Amoxiclav"),
        ("ኦግመንቲን",),
        "medicine",
        650,
        detail=("625mg", "14 tablets"),
        sizes=(("625mg x14", 1.0), ("1g x14", 1.45)),
    ),
    _p(
        "omeprazole",
        "Omeprazole 20mg",
        ("Omeprazole",),
        ("ኦሜፕራዞል",),
        "medicine",
        150,
        detail=("20mg", "28 caps"),
    ),
    _p(
        "coartem",
        "Coartem 20/120",
        ("Coartem",),
        ("ኮአርተም",),
        "medicine",
        240,
        detail=("24 tablets",),
    ),
    _p(
        "metformin",
        "Metformin 500mg",
        ("Metformin", "Glucophage"),
        ("ሜትፎርሚን",),
        "medicine",
        220,
        detail=("500mg", "850mg"),
    ),
    _p(
        "strepsils",
        "Strepsils lozenges",
        ("Strepsils",),
        ("ስትሬፕሲልስ",),
        "medicine",
        160,
        detail=("24 lozenges",),
        sizes=(("16 lozenges", 0.75), ("24 lozenges", 1.0)),
    ),
    _p(
        "azithromycin",
        "Azithromycin 500mg",
        ("Azithromycin", "Zithromax"),
        ("አዚትሮማይሲን",),
        "medicine",
        280,
        detail=("500mg", "3 tabs"),
    ),
    _p(
        "ciprofloxacin",
        "Ciprofloxacin 500mg",
        ("Ciprofloxacin", "Cipro"),
        ("ሲፕሮፍሎክሳሲን", "ሲፕሮ"),
        "medicine",
        130,
        detail=("500mg", "10 tabs"),
    ),
    _p(
        "cetirizine",
        "Cetirizine 10mg",
        ("Cetirizine", "Zyrtec"),
        ("ሴትሪዚን",),
        "medicine",
        70,
        detail=("10mg",),
    ),
    _p(
        "tiger_balm",
        "Tiger Balm",
        ("Tiger Balm",),
        ("ታይገር ባልም",),
        "medicine",
        180,
        sizes=(("19g", 1.0), ("30g", 1.5)),
    ),
    _p(
        "metronidazole",
        "Metronidazole 250mg",
        ("Metronidazole", "Flagyl"),
        ("ሜትሮኒዳዞል", "ፍላጅል"),
        "medicine",
        85,
        detail=("250mg", "500mg"),
    ),
    _p(
        "ors",
        "ORS sachets",
        ("ORS",),
        ("ኦአርኤስ", "ኦ.አር.ኤስ"),
        "medicine",
        25,
        detail=("1 sachet",),
        sizes=(("1 sachet", 1.0), ("box of 50", 40.0)),
    ),
    _p(
        "salbutamol",
        "Ventolin inhaler",
        ("Ventolin", "Salbutamol inhaler"),
        ("ቬንቶሊን",),
        "medicine",
        450,
        detail=("100mcg",),
    ),
    _p(
        "deep_heat",
        "Deep Heat rub",
        ("Deep Heat",),
        ("ዲፕ ሂት",),
        "medicine",
        320,
        detail=("35g", "67g"),
    ),
    _p(
        "diclofenac",
        "Diclofenac gel",
        ("Diclofenac", "Voltaren"),
        ("ዳይክሎፌናክ",),
        "medicine",
        210,
        detail=("50mg", "1% gel"),
    ),
    _p(
        "mebendazole",
        "Vermox 100mg",
        ("Mebendazole", "Vermox"),
        ("ሜቤንዳዞል",),
        "medicine",
        45,
        detail=("100mg", "6 tabs"),
    ),
    _p("eno", "Eno fruit salt", ("Eno",), ("ኢኖ",), "medicine", 25, detail=("5g sachet",)),
    _p(
        "amlodipine",
        "Amlodipine 5mg",
        ("Amlodipine", "Norvasc"),
        ("አምሎዲፒን",),
        "medicine",
        140,
        detail=("5mg", "10mg"),
    ),
    _p(
        "loratadine",
        "Clarityne 10mg",
        ("Loratadine", "Clarityne"),
        ("ሎራታዲን",),
        "medicine",
        110,
        detail=("10mg",),
    ),
    # --- devices ---------------------------------------------------------------------
    _p(
        "glucometer",
        "Accu-Chek glucometer",
        ("Glucometer", "Accu-Chek"),
        ("የስኳር መለኪያ", "ግሉኮሜትር"),
        "device",
        2500,
        detail=("Active",),
    ),
    _p(
        "bp_monitor",
        "Omron blood pressure monitor",
        ("BP monitor", "Omron"),
        ("የደም ግፊት መለኪያ",),
        "device",
        4200,
        detail=("M2", "upper arm"),
    ),
    _p("thermometer", "Digital thermometer", ("Thermometer",), ("ቴርሞሜትር",), "device", 450),
    _p(
        "nebulizer",
        "Omron nebulizer",
        ("Nebulizer", "Omron nebulizer"),
        ("ኔቡላይዘር",),
        "device",
        6500,
        detail=("C28P",),
    ),
    _p(
        "pulse_oximeter",
        "Pulse oximeter",
        ("Pulse oximeter", "Oximeter"),
        ("ኦክሲሜትር",),
        "device",
        1200,
    ),
    _p(
        "stethoscope",
        "Littmann stethoscope",
        ("Stethoscope", "Littmann"),
        ("ስቴቶስኮፕ",),
        "device",
        9500,
        detail=("Classic III",),
    ),
    _p(
        "oxygen_concentrator",
        "Oxygen concentrator 5L",
        ("Oxygen concentrator",),
        ("የኦክስጅን ማሽን",),
        "device",
        85000,
        detail=("5L",),
    ),
    _p("wheelchair", "Wheelchair (foldable)", ("Wheelchair",), ("ዊልቸር",), "device", 12000),
    # --- consumables -----------------------------------------------------------------
    _p(
        "face_mask",
        "Face masks (50 pcs)",
        ("Face mask", "Face masks"),
        ("የፊት ጭምብል",),
        "consumable",
        300,
        sizes=(("box of 50", 1.0), ("10 pcs", 0.25)),
    ),
    _p(
        "sanitizer",
        "Hand sanitizer 500ml",
        ("Sanitizer", "Hand sanitizer"),
        ("ሳኒታይዘር",),
        "consumable",
        250,
        sizes=(("100ml", 0.35), ("500ml", 1.0), ("5 litre", 7.0)),
    ),
    _p(
        "test_strips",
        "Accu-Chek test strips (50)",
        ("Glucose test strips", "Test strips"),
        ("የስኳር መለኪያ ስትሪፕ",),
        "consumable",
        1400,
        detail=("50 strips",),
    ),
    _p(
        "lancets",
        "Lancets (100)",
        ("Lancets",),
        ("ላንሴት",),
        "consumable",
        350,
        detail=("box of 100",),
    ),
    _p(
        "gloves",
        "Surgical gloves (box of 100)",
        ("Surgical gloves", "Examination gloves"),
        ("ጓንት",),
        "consumable",
        650,
        detail=("box of 100", "size M"),
    ),
    _p(
        "syringe",
        "Syringes 5ml",
        ("Syringes",),
        ("መርፌ",),
        "consumable",
        8,
        detail=("5ml",),
        sizes=(("1 pc", 1.0), ("box of 100", 80.0)),
    ),
    _p(
        "cotton_wool",
        "Cotton wool 100g",
        ("Cotton wool",),
        ("ጥጥ",),
        "consumable",
        90,
        detail=("100g",),
    ),
    _p(
        "dettol",
        "Dettol antiseptic",
        ("Dettol",),
        ("ዴቶል",),
        "consumable",
        260,
        sizes=(("250ml", 0.55), ("500ml", 1.0), ("1 litre", 1.8)),
    ),
    # --- cosmetics -------------------------------------------------------------------
    _p(
        "nivea",
        "Nivea Soft cream 200ml",
        ("Nivea",),
        ("ኒቪያ",),
        "cosmetic",
        650,
        sizes=(("100ml", 0.55), ("200ml", 1.0), ("300ml", 1.4)),
    ),
    _p(
        "vaseline",
        "Vaseline petroleum jelly",
        ("Vaseline",),
        ("ቫዝሊን",),
        "cosmetic",
        280,
        sizes=(("100ml", 1.0), ("250ml", 2.0)),
    ),
    _p(
        "hiwot_glow",
        "Hiwot Glow",
        ("Hiwot Glow",),
        ("ሕይወት ግሎው",),
        "cosmetic",
        420,
        sizes=(("250ml", 1.0), ("500ml", 1.8)),
        local=True,
    ),
    _p(
        "cerave",
        "CeraVe moisturizing cream",
        ("CeraVe",),
        ("ሴራቬ",),
        "cosmetic",
        2800,
        detail=("454g",),
    ),
    _p(
        "niacinamide",
        "The Ordinary Niacinamide 10% serum",
        ("Niacinamide",),
        ("ኒያሲናማይድ",),
        "cosmetic",
        1900,
        detail=("30ml",),
    ),
    _p(
        "sunscreen",
        "Neutrogena sunscreen SPF 50",
        ("Sunscreen",),
        ("የፀሐይ መከላከያ ክሬም",),
        "cosmetic",
        1500,
        detail=("SPF 50", "88ml"),
    ),
    _p("sebamed", "Sebamed lotion", ("Sebamed",), ("ሴባሜድ",), "cosmetic", 1250, detail=("200ml",)),
    _p("shea_butter", "Shea butter", ("Shea butter",), ("የሺአ ቅቤ",), "cosmetic", 400),
    _p(
        "garnier_serum",
        "Garnier vitamin C serum",
        ("Garnier vitamin C serum", "Garnier serum"),
        ("ጋርኒየር ሴረም",),
        "cosmetic",
        1350,
        detail=("30ml",),
    ),
    _p("baby_oil", "Johnson's baby oil", ("Baby oil",), ("የህፃናት ዘይት",), "cosmetic", 350),
    _p(
        "aveeno",
        "Aveeno daily moisturizing lotion",
        ("Aveeno",),
        ("አቪኖ",),
        "cosmetic",
        1650,
        detail=("354ml",),
    ),
    _p(
        "cantu",
        "Cantu shea butter leave-in conditioner",
        ("Cantu leave-in conditioner", "Cantu"),
        ("ካንቱ",),
        "cosmetic",
        1200,
        detail=("340g",),
    ),
    _p(
        "dove_soap",
        "Dove beauty bar",
        ("Dove soap",),
        ("ዶቭ ሳሙና",),
        "cosmetic",
        120,
        sizes=(("1 bar", 1.0), ("pack of 4", 3.6)),
    ),
    _p("nixoderm", "Nixoderm cream", ("Nixoderm",), ("ኒክሶደርም",), "cosmetic", 230, detail=("30g",)),
    _p(
        "effaclar",
        "La Roche-Posay Effaclar gel",
        ("Effaclar",),
        ("ኤፋክላር",),
        "cosmetic",
        2400,
        detail=("200ml",),
    ),
    # --- baby -------------------------------------------------------------------------
    _p(
        "nan",
        "NAN 1 infant formula 400g",
        ("NAN 1", "NAN 2", "NAN formula"),
        ("ናን ወተት",),
        "baby",
        1100,
        detail=("400g",),
        sizes=(("400g", 1.0), ("800g", 1.9)),
    ),
    _p("cerelac", "Cerelac wheat", ("Cerelac",), ("ሴሬላክ",), "baby", 380, detail=("400g",)),
    _p("mustela", "Mustela baby cream", ("Mustela",), ("ሙስቴላ",), "baby", 1600, detail=("100ml",)),
    _p(
        "molfix",
        "Molfix diapers",
        ("Molfix diapers", "Molfix"),
        ("ሞልፊክስ ዳይፐር",),
        "baby",
        1450,
        detail=("size 3", "56 pcs"),
    ),
    _p(
        "gripe_water",
        "Woodward's gripe water",
        ("Gripe water",),
        ("ግራይፕ ዋተር",),
        "baby",
        240,
        detail=("150ml",),
    ),
    _p(
        "aptamil",
        "Aptamil 2 follow-on milk",
        ("Aptamil",),
        ("አፕታሚል",),
        "baby",
        1750,
        detail=("800g",),
    ),
    # --- supplements ------------------------------------------------------------------
    _p(
        "haliborange",
        "Haliborange multivitamin",
        ("Haliborange",),
        ("ሃሊቦራንጅ",),
        "supplement",
        650,
        detail=("30 chewables",),
    ),
    _p(
        "omega3",
        "Seven Seas cod liver oil",
        ("Cod liver oil", "Seven Seas"),
        ("የአሳ ዘይት",),
        "supplement",
        950,
        detail=("60 caps",),
    ),
    _p(
        "berocca",
        "Berocca effervescent",
        ("Berocca",),
        ("ቤሮካ",),
        "supplement",
        480,
        detail=("15 tabs",),
    ),
    _p(
        "pregnacare",
        "Pregnacare original",
        ("Pregnacare",),
        ("ፕሬግናኬር",),
        "supplement",
        1800,
        detail=("30 tabs",),
    ),
    _p(
        "scotts_emulsion",
        "Scott's Emulsion",
        ("Scott's Emulsion",),
        ("ስኮትስ ኢሙልሽን",),
        "supplement",
        420,
        sizes=(("200ml", 1.0), ("400ml", 1.8)),
    ),
    _p(
        "ferrotone",
        "Ferrotone iron syrup",
        ("Ferrotone",),
        ("ፌሮቶን",),
        "supplement",
        310,
        detail=("200ml",),
    ),
)


@dataclass(frozen=True)
class ChannelSpec:
    username: str
    title: str
    categories: tuple[str, ...]
    amharic_share: float  # posts written in Amharic
    mixed_share: float  # posts with both languages
    price_markup: float  # the channel's prices against the base price
    photo_share: float
    photo_mix: tuple[tuple[str, float], ...]  # source photo -> weight
    phone: str
    place: str
    hashtags: tuple[str, ...]


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        "CheMed123",
        "CheMed Pharmacy",
        ("medicine", "device", "consumable", "supplement"),
        0.3,
        0.2,
        1.0,
        0.45,
        (("coffee", 4), ("grace_hopper", 2.5), ("astronaut", 1.5), ("chelsea", 1), ("camera", 1)),
        "0911 23 45 67",
        "Bole, Addis Ababa",
        ("#pharmacy", "#CheMed", "#health"),
    ),
    ChannelSpec(
        "lobelia4cosmetics",
        "Lobelia Cosmetics",
        ("cosmetic", "baby"),
        0.1,
        0.2,
        1.15,
        0.6,
        (("astronaut", 3.5), ("grace_hopper", 2.5), ("coffee", 3), ("chelsea", 1)),
        "0922 11 22 33",
        "Piassa, Addis Ababa",
        ("#cosmetics", "#skincare", "#lobelia"),
    ),
    ChannelSpec(
        "tikvahpharma",
        "Tikvah Pharma",
        ("medicine", "device", "consumable", "cosmetic", "baby", "supplement"),
        0.6,
        0.15,
        0.9,
        0.35,
        (("coffee", 5), ("camera", 2), ("rocket", 1.5), ("motorcycle_left", 1.5)),
        "0933 44 55 66",
        "Mexico square, Addis Ababa",
        ("#tikvah", "#pharma", "#መድሃኒት"),
    ),
)

FORWARD_SOURCES = ("Ethiopian Food and Drug Authority", "Addis Pharma Wholesale", "Health Tips ET")
