"""Any text: no exception, and every span points at what it says it matched."""

import random

PIECES = [
    "Augmentin",
    "625mg",
    "ፓራሲታሞል",
    "ኦ.አር.ኤስ",
    "የቫይታሚን ሲ",
    "İstanbul",
    "ß",
    "120",
    "1,250.50",
    "birr",
    "ብር",
    "ETB",
    "$",
    "k",
    "ሺ",
    "million",
    "-",
    "—",
    "~~",
    "was",
    "now",
    "በፊት",
    "አሁን",
    "\n",
    " ",
    ".",
    ",",
    "(",
    ")",
    "/",
    "0911 23 45 67",
    "24/7",
    "box of",
    "14 tabs",
    "Accu-Chek",
    "strips",
    "Omron",
    "nebulizer",
    "delivery",
    "free",
    "Price:",
    "ዋጋ",
    "💰",
    "✅",
    "Zinnatex",
    "ሴቲሪዚን",
    "ኲኒን",
    "repair",
    "",
    "ﬁ",
    "Ⅻ",
]


def test_random_texts_never_fail_and_spans_hold(extract):
    rng = random.Random(22)
    for _ in range(3000):
        text = "".join(
            rng.choice(PIECES) + rng.choice(["", " "]) for _ in range(rng.randint(0, 25))
        )
        r = extract(text)
        for m in r.mentions:
            assert text[m.start : m.end] == m.as_written, (text, m)
        for p in r.prices:
            assert text[p.start : p.end] == p.as_written, (text, p)
            assert p.high is None or p.high > p.amount, (text, p)
            assert p.unit_price is None or p.pack_count > 1, (text, p)
        for c in r.candidates:
            assert 0 <= c.start < c.end <= len(text), (text, c)


def test_empty_and_whitespace(extract):
    for text in ("", " ", "\n\n", "💊"):
        r = extract(text)
        assert (r.mentions, r.prices, r.services, r.candidates) == ((), (), (), ())
