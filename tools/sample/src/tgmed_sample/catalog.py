"""What the sample sellers sell: real medicines, devices and cosmetics with the names
(English, brand and Amharic) and typical prices (birr) seen on Ethiopian channels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    key: str
    display: str
    english: tuple[str, ...]
    amharic: tuple[str, ...]
    category: str  # medicine | device | cosmetic
    base_price: int


PRODUCTS: tuple[Product, ...] = (
    Product(
        "paracetamol", "Paracetamol 500mg", ("Paracetamol", "Panadol"), ("ፓራሲታሞል",), "medicine", 60
    ),
    Product(
        "amoxicillin", "Amoxicillin 500mg", ("Amoxicillin", "Amoxil"), ("አሞክሲሲሊን",), "medicine", 180
    ),
    Product("ibuprofen", "Ibuprofen 400mg", ("Ibuprofen", "Brufen"), ("ኢቡፕሮፌን",), "medicine", 90),
    Product("vitamin_c", "Vitamin C 1000mg", ("Vitamin C",), ("ቫይታሚን ሲ",), "medicine", 350),
    Product("omeprazole", "Omeprazole 20mg", ("Omeprazole",), ("ኦሜፕራዞል",), "medicine", 150),
    Product("metformin", "Metformin 500mg", ("Metformin",), ("ሜትፎርሚን",), "medicine", 220),
    Product(
        "azithromycin",
        "Azithromycin 500mg",
        ("Azithromycin", "Zithromax"),
        ("አዚትሮማይሲን",),
        "medicine",
        280,
    ),
    Product("cetirizine", "Cetirizine 10mg", ("Cetirizine",), ("ሴትሪዚን",), "medicine", 70),
    Product("ors", "ORS sachets", ("ORS",), ("ኦአርኤስ",), "medicine", 25),
    Product(
        "glucometer",
        "Accu-Chek glucometer",
        ("Glucometer", "Accu-Chek"),
        ("የስኳር መለኪያ",),
        "device",
        2500,
    ),
    Product(
        "bp_monitor",
        "Omron blood pressure monitor",
        ("BP monitor", "Omron"),
        ("የደም ግፊት መለኪያ",),
        "device",
        4200,
    ),
    Product("thermometer", "Digital thermometer", ("Thermometer",), ("ቴርሞሜትር",), "device", 450),
    Product("face_mask", "Face masks (50 pcs)", ("Face mask",), ("የፊት ጭምብል",), "device", 300),
    Product("sanitizer", "Hand sanitizer 500ml", ("Sanitizer",), ("ሳኒታይዘር",), "device", 250),
    Product("nivea", "Nivea Soft cream 200ml", ("Nivea",), ("ኒቪያ",), "cosmetic", 650),
    Product("vaseline", "Vaseline petroleum jelly", ("Vaseline",), ("ቫዝሊን",), "cosmetic", 280),
    Product("cerave", "CeraVe moisturizing cream", ("CeraVe",), ("ሴራቬ",), "cosmetic", 2800),
    Product(
        "niacinamide",
        "The Ordinary Niacinamide 10% serum",
        ("Niacinamide",),
        ("ኒያሲናማይድ",),
        "cosmetic",
        1900,
    ),
    Product(
        "sunscreen",
        "Neutrogena sunscreen SPF 50",
        ("Sunscreen",),
        ("የፀሐይ መከላከያ ክሬም",),
        "cosmetic",
        1500,
    ),
    Product("shea_butter", "Shea butter", ("Shea butter",), ("የሺአ ቅቤ",), "cosmetic", 400),
    Product("baby_oil", "Johnson's baby oil", ("Baby oil",), ("የህፃናት ዘይት",), "cosmetic", 350),
    Product("dove_soap", "Dove beauty bar", ("Dove soap",), ("ዶቭ ሳሙና",), "cosmetic", 120),
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
        ("medicine", "device"),
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
        ("cosmetic",),
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
        ("medicine", "device", "cosmetic"),
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
