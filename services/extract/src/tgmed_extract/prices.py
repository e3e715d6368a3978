"""The price grammar: one compiled regular expression finds, in one pass, every figure of
a post with the word written right after it, and the figures that are never prices
(phone numbers, dates, times) so that their digits are consumed before a price could be
read in them. The word after a figure is classified by a dictionary look-up (currency,
multiplier, strength, size, pack, time unit), and what a figure needs from the text
before it (a currency written first, "License No.", "box of", "size") by one anchored
match of a reversed pattern on the few characters before it.

Why not one regular expression with every unit and prefix in it: the engine then tries
~100 alternatives at every digit and every letter (prefixes start with letters), which
made this stage 5x slower than this way (measured on the bench posts).

`scan` turns matches into `Figure` tuples; deciding which bare figures are prices and
which product each belongs to is the extractor's job (it needs the mentions).
"""

from __future__ import annotations

import re
from typing import NamedTuple

NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# a word glued or one space after a figure: letters (Latin or Ge'ez, dots inside: ሚ.ግ,
# br.), or one of % $ € °
WORD = r"[A-Za-zµμ\u1200-\u135a][A-Za-zµμ\u1200-\u135a.]*|[%$€°]"

_PARTS = [
    # Ethiopian mobiles (09/07, +251 9/7) and landlines (011...), spaced or dashed
    r"(?P<phone>(?:\+?251[\s-]?|0)[179]\d{2}(?:[\s-]?\d{2,4}){2,3}(?!\d)|\+?251\d{9}(?!\d))",
    r"(?P<date>\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d))",
    r"(?P<time>\d{1,2}[:፡]\d{2}(?:\s?[ap]\.?m\b\.?)?|24\s?/\s?7)",
    rf"(?P<num>{NUM})(?!\d)(?:[ \t]?(?P<w1>{WORD}))?(?:[ \t]?(?P<w2>{WORD}))?",
]
TOKEN_RE = re.compile("|".join(_PARTS))

CURRENCIES = {
    **dict.fromkeys(("birr", "br", "ብር", "etb", "birr.", "br."), "ETB"),
    **dict.fromkeys(("usd", "us$", "dollar", "dollars", "$", "ዶላር"), "USD"),
    **dict.fromkeys(("eur", "euro", "euros", "€", "ዩሮ"), "EUR"),
}
MULTIPLIERS = {
    "k": 1e3,
    "thousand": 1e3,
    "ሺ": 1e3,
    "ሺህ": 1e3,
    "million": 1e6,
    "mil": 1e6,
    "m": 1e6,
    "ሚሊዮን": 1e6,
}
STRENGTHS = frozenset(["mg", "mcg", "µg", "μg", "iu", "%", "ሚ.ግ", "ሚግ", "ሚሊግራም"])
SIZES = frozenset(
    [
        "ml",
        "l",
        "ltr",
        "litre",
        "litres",
        "liter",
        "liters",
        "g",
        "gm",
        "gms",
        "gr",
        "grams",
        "gram",
        "kg",
        "oz",
        "cc",
        "cm",
        "mm",
        "inch",
        "inches",
        "ft",
        "ሚሊ",
        "ሚ.ሊ",
        "ሊትር",
        "ግራም",
        "ግ",
        "ኪሎ",
        "ኪ.ግ",
        "አውንስ",
    ]
)
PACKS = frozenset(
    [
        "tab",
        "tabs",
        "tablet",
        "tablets",
        "cap",
        "caps",
        "capsule",
        "capsules",
        "pcs",
        "pc",
        "piece",
        "pieces",
        "sachet",
        "sachets",
        "strip",
        "strips",
        "ampoule",
        "ampoules",
        "amp",
        "amps",
        "vial",
        "vials",
        "bottle",
        "bottles",
        "packet",
        "packets",
        "pack",
        "packs",
        "box",
        "boxes",
        "pair",
        "pairs",
        "unit",
        "units",
        "tin",
        "tins",
        "roll",
        "rolls",
        "pads",
        "diapers",
        "pill",
        "pills",
        "carton",
        "cartons",
        "wipes",
        "doses",
        "dots",
        "patches",
        "sheets",
        "tube",
        "tubes",
        "jar",
        "jars",
        "bag",
        "bags",
        "dozen",
        "dozens",
        "set",
        "sets",
        "ፍሬ",
        "ፍሬዎች",
        "ፓኬት",
        "ካርቶን",
        "ጥቅል",
        "ብልቃጥ",
        "ሳጥን",
        "ቁራጭ",
        "ኪኒን",
        "ካፕሱል",
        "ጣሳ",
        "ደርዘን",
        "ጥንድ",
        "ሳሼ",
    ]
)
# a figure with one of these after it is a duration or a temperature, never a price
NOT_MONEY = frozenset(
    [
        "hour",
        "hours",
        "hr",
        "hrs",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "minute",
        "minutes",
        "min",
        "mins",
        "am",
        "pm",
        "a.m.",
        "p.m.",
        "°",
        "ሰዓት",
        "ቀን",
        "ሳምንት",
        "ወር",
        "አመት",
        "ዓመት",
        "ደቂቃ",
    ]
)


def _reverse(words: str) -> str:
    return "|".join(re.escape(w[::-1]) for w in sorted(words.split(), key=len, reverse=True))


_PACK_NOUNS = _reverse("box pack carton bottle strip tin case packet sachet tube jar bag set roll")
# What may come right before a figure, matched backwards from the figure on the reversed
# window (an anchored match tries one position; a forward search tries all 24).
PREFIX_REV_RE = re.compile(
    rf"[ \t]?(?:(?P<cpre>{_reverse('etb birr br br. ብር usd us$ $ € eur euro')})(?![a-z])"
    rf"|(?:[/-]?[a-z]{{0,4}})?[ \t]*[.:#]?[ \t]*(?:{_reverse('no number num #')})?[ \t]*"
    rf"(?P<ref>{_reverse('license licence lic reg registration ref code id ቁጥር ፈቃድ ቁ. spf size stage step ኤስፒኤፍ ሳይዝ ደረጃ')})(?![a-z])"  # noqa: E501
    rf"|(?P<hash>#|[ \t]?\.on(?![a-z]))"
    rf"|fo[ \t]+(?:se|s)?(?P<packof>{_PACK_NOUNS})(?![a-z])"
    rf"|(?:se|s)?(?P<packnoun>{_PACK_NOUNS})(?![a-z]))",
    re.IGNORECASE,
)
# the last character of every prefix PREFIX_REV_RE knows: it runs only after one of these
PREFIX_LAST_CHARS = frozenset("bdroecgnfpmxktls.:#$€/-ርድዝጃፍ")
DIGIT_RE = re.compile(r"\d")
DIGIT_RUN_RE = re.compile(r"\d+")
CURRENCY_WORD_RE = re.compile(r"(?<![a-z])(?:etb|birr|br\.?|ብር|usd|\$|eur|€)(?![a-z])", re.I)
# a bare figure right after one of these is a price
MARKER_RE = re.compile(
    r"(?:price|prices|ዋጋ\w*|💰|=|—|–|@|for|only|now|አሁን|at|cost|costs|selling|sale|"
    r"ብቻ|offer|just|ዋጋው|በ)\s*[:：=\-፦👉]*\s*$",
    re.IGNORECASE,
)
# a figure right after one of these is an old price ("was X now Y", "paid X, selling Y")
OLD_ANY_RE = re.compile(r"was|before|old|regular|previous|paid|bought|በፊት|የነበረው|~~", re.I)
OLD_RE = re.compile(
    r"(?:was|before|old price|regular price|previously|paid|bought(?: it)? (?:for|at)|"
    r"በፊት|የነበረው)\s*[:=\-]*\s*(?:etb|birr|br\.?|ብር|\$)?\s*$",
    re.IGNORECASE,
)
RANGE_GAP_RE = re.compile(r"[ \t]*(?:-|–|~|to|እስከ)[ \t]*$", re.IGNORECASE)
PER_RE = re.compile(r"\s*(?:/|per|a|each|for(?: a| one)?|ለ)\s*", re.IGNORECASE)
DISCOUNT_RE = re.compile(r"\s*(?:off|discount|ቅናሽ)", re.IGNORECASE)


def currency_code(word: str) -> str:
    """ETB, USD or EUR for a currency word as written ("Br.", "$", "ብር")."""
    word = word.strip().lower()
    return CURRENCIES.get(word) or CURRENCIES.get(word.rstrip("."), "ETB")


class Figure(NamedTuple):
    """One figure: kind is 'amount' (a currency is written with it), 'bare', 'strength',
    'size' or 'pack'; unit is the unit, or for money the multiplier written (k, million)."""

    kind: str
    start: int
    end: int
    value: float
    currency: str | None
    unit: str | None


def multiplier(mult: str | None) -> float:
    return MULTIPLIERS.get(mult, 1.0) if mult else 1.0


# group numbers of TOKEN_RE: a number is faster to read a group by than a name
_NUM, _W1, _W2 = (TOKEN_RE.groupindex[name] for name in ("num", "w1", "w2"))


def scan(text: str) -> list[Figure]:
    """Every figure of `text` that is not a phone number, date, time or reference."""
    figures: list[Figure] = []
    append = figures.append
    match = TOKEN_RE.match
    consumed = 0
    for run in DIGIT_RUN_RE.finditer(text):
        # the grammar is tried only where a run of digits starts (a search would try every
        # position of the text: 6x slower)
        start = run.start()
        if start < consumed:
            continue
        if start and text[start - 1] == "+":
            start -= 1
        m = match(text, start)
        if m is None:
            continue
        consumed = m.end()
        start, num_end = m.span(_NUM)
        if start < 0:
            continue  # a phone number, a date or a time
        if start and text[start - 1] in ".,":
            continue  # the tail of a figure the grammar did not read whole
        number = text[start:num_end]
        value = float(number.replace(",", "")) if "," in number else float(number)
        end = num_end
        kind = "bare"
        currency = unit = None
        w1 = m.group(_W1)
        if w1 is not None:
            word = w1.lower()
            if word not in CURRENCIES and word.endswith("."):
                word = word.rstrip(".")
            if word in MULTIPLIERS and (word != "m" or (m.group(_W2) or "").lower() in CURRENCIES):
                value *= MULTIPLIERS[word]
                unit = word
                end = m.end(_W1)
                w2 = m.group(_W2)
                if w2 is not None and w2.lower().rstrip(".") in CURRENCIES:
                    kind, currency, end = "amount", CURRENCIES[w2.lower().rstrip(".")], m.end()
            elif word in CURRENCIES and w1 != "$":  # "$" is written before its figure
                kind, currency, end = "amount", CURRENCIES[word], m.end(_W1)
            elif word in STRENGTHS:
                if word == "%" and DISCOUNT_RE.match(text, m.end(_W1)):
                    continue
                kind, unit, end = "strength", word, m.end(_W1)
            elif word in SIZES:
                kind, unit, end = "size", word, m.end(_W1)
            elif word in PACKS:
                kind, unit, end = "pack", word, m.end(_W1)
            elif word in NOT_MONEY:
                continue
            if end > num_end and text[end - 1] == ".":
                end -= 1  # "birr." ends a sentence; the dot is not the figure's
        if kind == "amount":
            if end < len(text) and text[end].isdigit():
                kind, currency, end = "bare", None, num_end  # "4 ETB480": ETB is 480's
            else:
                # a figure with its currency after it needs nothing from before it
                append(Figure(kind, start, end, value, currency, unit))
                continue
        before = text[start - 1] if start else ""
        if before and before in " \t" and start > 1:
            before = text[start - 2]
        if before and before.lower() in PREFIX_LAST_CHARS:
            prefix = PREFIX_REV_RE.match(text[max(0, start - 24) : start][::-1])
            if prefix is not None:
                if prefix.group("ref") is not None or prefix.group("hash") is not None:
                    continue
                if prefix.group("packof") is not None or (
                    prefix.group("packnoun") is not None and kind == "bare"  # "(box 100) 1,900"
                ):
                    append(
                        Figure(
                            "pack",
                            start - prefix.end(),
                            num_end,
                            value,
                            None,
                            (prefix.group("packof") or prefix.group("packnoun"))[::-1].lower(),
                        )
                    )
                    continue
                if kind == "bare":
                    append(
                        Figure(
                            "amount",
                            start - prefix.end(),
                            end,
                            value,
                            currency_code(prefix.group("cpre")[::-1]),
                            unit,
                        )
                    )
                    continue
        append(Figure(kind, start, end, value, currency, unit))
    return figures
