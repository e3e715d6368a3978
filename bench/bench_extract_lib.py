"""Throughput of the extraction library (`tgmed_extract.extract`) on generated posts.

The posts are written here, not from the catalog the extractor reads (that was the
circularity issue 22 names): English, Amharic and mixed posts of four kinds of shop, with
products in and out of any catalog (invented brand names), every price form of the
issue, phone numbers, doses, dates, and a share of posts with no figure at all. Words
vary per post (invented names, random figures), so the per-word fuzzy cache does not
make the run unrealistically warm.

Prints: knowledge-base build time, messages/s on one core (single process), and the
share of posts with a mention and with a price. The acceptance of issue 22 compares this
with the loader's rate on the same messages (about 100k rows/s on 2 workers, i.e. ~50k
rows/s per core).

    uv run python bench/bench_extract_lib.py [--messages 50000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import string
import time

MEDS = [
    "Paracetamol",
    "Panadol",
    "Amoxicillin",
    "Augmentin",
    "Amoxil",
    "Flagyl",
    "Ciprofloxacin",
    "Cipro",
    "Zyrtec",
    "Cetirizine",
    "Omeprazole",
    "Metformin",
    "Glucophage",
    "Coartem",
    "ORS",
    "Brufen",
    "Ibuprofen",
    "Azithromycin",
    "Doxycycline",
    "Ceftriaxone",
    "Diclofenac",
    "Salbutamol",
    "Ventolin",
    "Losartan",
    "Amlodipine",
    "Amoxcillin",
    "Paracetamole",
    "Vitamin C",
    "Folic acid",
    "Mebendazole",
]
THINGS = [
    "Omron M3 BP monitor",
    "Accu-Chek Active glucometer",
    "Accu-Chek test strips",
    "Accu-Chek Softclix lancets",
    "Pulse oximeter",
    "Omron nebulizer",
    "Digital thermometer",
    "Wheelchair",
    "Glucometer strips",
    "Surgical gloves",
    "Face mask",
    "Hand sanitizer",
    "CeraVe moisturizing cream",
    "Nivea body lotion",
    "Garnier vitamin C serum",
    "Cantu shea butter leave-in conditioner",
    "The Ordinary niacinamide",
    "Sunscreen SPF 50",
    "Dove soap",
    "Vaseline",
    "NAN 1",
    "Aptamil 2",
    "Similac Gold",
    "Cerelac wheat",
    "Pampers size 4",
    "Huggies",
    "Baby wipes",
    "Feeding bottle",
    "Wellman",
    "Omega 3",
    "Pregnacare",
]
AMHARIC = [
    "ፓራሲታሞል",
    "አሞክሲሲሊን",
    "ሴትሪዚን",
    "ሴቲሪዚን",
    "ኦ.አር.ኤስ",
    "የቫይታሚን ሲ",
    "የደም ግፊት መለኪያ",
    "የስኳር መለኪያ",
    "ዳይፐር",
    "ሴሬላክ",
    "ኢንሱሊን",
    "ሜትፎርሚን",
    "የህፃናት ወተት",
    "ቴርሞሜትር",
    "ሳሙና",
    "ሎሽን",
]
AM_WORDS = [
    "አዲስ",
    "እቃ",
    "ገብቷል",
    "ይደውሉ",
    "በቅናሽ",
    "ዋጋ",
    "አለን",
    "ለማዘዝ",
    "ቦሌ",
    "መገናኛ",
    "ፒያሳ",
    "ጥራት",
    "ያለው",
    "ኦሪጅናል",
    "በፍጥነት",
    "እናደርሳለን",
    "ውድ",
    "ደንበኞቻችን",
    "ሰላም",
    "ብዛት",
]
EN_WORDS = [
    "new",
    "stock",
    "available",
    "original",
    "quality",
    "call",
    "order",
    "now",
    "delivery",
    "free",
    "Bole",
    "Piassa",
    "Addis",
    "best",
    "price",
    "limited",
    "genuine",
    "imported",
    "wholesale",
    "retail",
    "dear",
    "customers",
]
DOSE = ["500mg", "250 mg", "625mg", "1g", "100ml", "60 ml", "10mg", "20 mg", "5%", "1000 IU"]
PACK = ["14 tabs", "box of 100", "30 ፍሬ", "strip of 10", "1 ፓኬት", "carton of 12", "50 pcs"]


def invented(rng: random.Random) -> str:
    return rng.choice(string.ascii_uppercase) + "".join(
        rng.choice("aeioulmnrstzkx") for _ in range(rng.randint(5, 9))
    )


def price(rng: random.Random) -> str:
    n = rng.choice([rng.randint(20, 999), rng.randint(1000, 25000)])
    figure = f"{n:,}" if n >= 1000 and rng.random() < 0.6 else str(n)
    return rng.choice(
        [
            f"{figure} birr",
            f"{figure} Birr",
            f"{figure}br",
            f"{figure} Br",
            f"{figure} ብር",
            f"ETB {figure}",
            f"Price: {figure} birr",
            f"ዋጋ {figure} ብር",
            f"💰{figure} birr",
            f"= {figure} ETB",
            f"was {n + 100} now {figure} birr",
            f"{figure}-{n + 200} birr",
            f"${rng.randint(5, 90)} or {figure} birr",
            f"{n / 1000:.1f}k birr",
        ]
    )


def post(rng: random.Random) -> str:
    kind = rng.random()
    phone = rng.choice(
        [
            "0911 23 45 67",
            "+251911234567",
            "0922-345-678",
            "09" + "".join(rng.choice(string.digits) for _ in range(8)),
        ]
    )
    if kind < 0.12:  # chatter, no figure
        return " ".join(rng.choices(EN_WORDS + AM_WORDS, k=rng.randint(5, 25)))
    lines = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.35:
            name = f"{rng.choice(MEDS)} {rng.choice(DOSE)}"
        elif r < 0.65:
            name = rng.choice(THINGS)
        elif r < 0.85:
            name = rng.choice(AMHARIC)
        else:
            name = f"{invented(rng)} {rng.choice(DOSE)}"
        extra = rng.choice(
            [
                "",
                "",
                f" {rng.choice(PACK)}",
                " " + " ".join(rng.choices(EN_WORDS + AM_WORDS, k=rng.randint(1, 4))),
            ]
        )
        lines.append(f"{rng.choice(['', '✅ ', '🔹 ', '- '])}{name}{extra} {price(rng)}")
    if rng.random() < 0.5:
        lines.append(" ".join(rng.choices(EN_WORDS + AM_WORDS, k=rng.randint(3, 12))))
    lines.append(f"📞 {phone} | Open 24/7 | {rng.randint(1, 28)}/{rng.randint(1, 12)}/2025")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    posts = [post(rng) for _ in range(args.messages)]
    chars = sum(map(len, posts))

    started = time.perf_counter()
    from tgmed_extract import extract
    from tgmed_extract.knowledge import knowledge

    knowledge()
    built = time.perf_counter() - started
    print(f"knowledge base: built in {built:.2f} s (import included)")

    started = time.perf_counter()
    with_mention = with_price = 0
    for text in posts:
        r = extract(text)
        with_mention += bool(r.mentions)
        with_price += bool(r.prices)
    elapsed = time.perf_counter() - started
    print(
        f"{args.messages} posts, {chars / args.messages:.0f} chars on average: "
        f"{elapsed:.2f} s, {args.messages / elapsed:,.0f} msgs/s on one core "
        f"(first pass, fuzzy cache cold)"
    )
    print(
        f"posts with a mention {with_mention / args.messages:.0%}, "
        f"with a price {with_price / args.messages:.0%}"
    )

    started = time.perf_counter()
    for text in posts:
        extract(text)
    elapsed = time.perf_counter() - started
    print(f"second pass (cache warm): {args.messages / elapsed:,.0f} msgs/s")


if __name__ == "__main__":
    main()
