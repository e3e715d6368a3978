"""The price grammar: one compiled regular expression that finds, in one pass, every
figure of a post together with what makes it one thing or another (a currency before or
after it, a multiplier, a unit), and the figures that are never prices (phone numbers,
dates, times, licence and reference numbers) so that their digits are consumed before a
price could be read in them.

`scan` turns the matches into `Figure` tuples; deciding which bare figures are prices
and which product each belongs to is the extractor's job (it needs the mentions).
"""

from __future__ import annotations

import re
from typing import NamedTuple

NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
MULT = r"[ \t]?(?:k|thousand|million|mil|ሺ(?:ህ)?|ሚሊዮን)(?![a-z])"
CUR_AFTER = r"birr|br\.?|ብር|etb|usd|dollars?|euros?|eur|€"
CUR_BEFORE = r"etb|birr|br\.?|ብር|usd|us\$|\$|€|eur|euro"
STRENGTH = r"mg|mcg|µg|μg|iu|%|ሚ\.?ግ|ሚሊግራም"
SIZE = (
    r"ml|ltr|litres?|liters?|l|gms?|grams?|g|kg|oz|cc|cm|mm|inch(?:es)?|ft"
    r"|ሚሊ(?:\s?ሊትር)?|ሊትር|ግራም|ኪሎ(?:\s?ግራም)?|አውንስ"
)
PACK = (
    r"tabs?|tablets?|caps(?:ules?)?|pcs|pieces?|sachets?|strips?|ampoules?|amps?|vials?"
    r"|bottles?|packets?|packs?|boxes|box|pairs?|units?|tins?|rolls?|pads|diapers|pills?"
    r"|cartons?|wipes|doses|dots|patches|sheets|tubes?|jars?|bags?|dozens?|sets?"
    r"|ፍሬዎች|ፍሬ|ፓኬት|ካርቶን|ጥቅል|ብልቃጥ|ሳጥን|ቁራጭ|ኪኒን|ካፕሱል|ጣሳ|ደርዘን|ጥንድ|ሳሼ"
)
TIME_UNITS = r"hours?|hrs?|days?|weeks?|months?|years?|minutes?|mins?|ሰዓት|ቀን|ሳምንት|ወር|አመት|ዓመት"

# Every alternative starts with a digit or "+", so the engine jumps from digit to digit
# (a pattern whose alternatives start with words or lookbehinds is tried at every
# position: 5x slower). What a figure needs from the text before it (a currency written
# first, "License No.", "box of") is read by PREFIX_RE on a short window.
_PARTS = [
    # Ethiopian mobiles (09/07, +251 9/7) and landlines (011...), spaced or dashed
    r"(?P<phone>(?:\+?251[\s-]?|0)[179]\d{2}(?:[\s-]?\d{2,4}){2,3}(?!\d)|\+?251\d{9}(?!\d))",
    r"(?P<date>\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d))",
    r"(?P<time>\d{1,2}[:፡]\d{2}(?:\s?[ap]\.?m\b\.?)?|24\s?/\s?7|\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)(?![a-z])"
    rf"|\d{{1,3}}(?:\s?-\s?\d{{1,3}})?\s?(?:{TIME_UNITS})(?![a-z]))",
    rf"(?P<num>{NUM})(?!\d)(?P<mult>{MULT})?"
    rf"(?:[ \t]?(?P<cur>{CUR_AFTER})(?![a-z\d])|[ \t]?(?P<strength>{STRENGTH})(?![a-z])"
    rf"|[ \t]?(?P<size>{SIZE})(?![a-z])|[ \t]?(?P<pack>{PACK})(?![a-z]))?",
]
TOKEN_RE = re.compile("|".join(_PARTS), re.IGNORECASE)
PREFIX_RE = re.compile(
    rf"(?:(?<![a-z])(?P<cpre>{CUR_BEFORE})"
    r"|(?<![a-z])(?P<ref>licen[cs]e|lic|reg(?:istration)?|tin|ref|code|id|ቁጥር|ፈቃድ|ቁ\.|"
    r"spf|size|stage|step|ኤስፒኤፍ|ሳይዝ|ደረጃ)"
    r"[ \t]*(?:no|number|num|#)?[ \t]*[.:#]?[ \t]*[a-z]{0,4}[/-]?|(?P<hash>#|no\.[ \t]?)"
    r"|(?P<packof>(?:box|pack|carton|bottle|strip|tin|case|packet|sachet|tube|jar|bag|set|roll)"
    r"(?:es|s)?[ \t]+of))[ \t]?$",
    re.IGNORECASE,
)
DIGIT_RE = re.compile(r"\d")
CURRENCY_WORD_RE = re.compile(r"(?<![a-z])(?:etb|birr|br\.?|ብር|usd|\$|eur|€)(?![a-z])", re.I)
# a bare figure right after one of these is a price
MARKER_RE = re.compile(
    r"(?:price|prices|ዋጋ\w*|💰|=|—|–|@|for|only|now|አሁን|at|cost|costs|selling|sale|"
    r"ብቻ|offer|just|ዋጋው|በ)\s*[:：=\-፦👉]*\s*$",
    re.IGNORECASE,
)
# a figure right after one of these is an old price ("was X now Y", "paid X, selling Y")
OLD_RE = re.compile(
    r"(?:was|before|old price|regular price|previously|paid|bought(?: it)? (?:for|at)|"
    r"በፊት|የነበረው)\s*[:=\-]*\s*(?:etb|birr|br\.?|ብር|\$)?\s*$",
    re.IGNORECASE,
)
RANGE_GAP_RE = re.compile(r"[ \t]*(?:-|–|~|to|እስከ)[ \t]*$", re.IGNORECASE)
PER_RE = re.compile(r"\s*(?:/|per|a|each|for(?: a| one)?|ለ)\s*", re.IGNORECASE)
DISCOUNT_RE = re.compile(r"\s*(?:off|discount|ቅናሽ)", re.IGNORECASE)

_MULTIPLIERS = {
    "k": 1e3,
    "thousand": 1e3,
    "ሺ": 1e3,
    "ሺህ": 1e3,
    "million": 1e6,
    "mil": 1e6,
    "ሚሊዮን": 1e6,
}


def currency_code(word: str) -> str:
    word = word.strip().lower().rstrip(".")
    if word in ("$", "usd", "us$", "dollar", "dollars"):
        return "USD"
    if word in ("€", "eur", "euro", "euros"):
        return "EUR"
    return "ETB"


class Figure(NamedTuple):
    """One figure: kind is 'amount' (a currency is written with it), 'bare', 'strength',
    'size' or 'pack'; unit is the unit, or for money the multiplier written (k, million)."""

    kind: str
    start: int
    end: int
    value: float
    currency: str | None
    unit: str | None


def _mult(mult: str | None) -> str | None:
    return mult.strip().lower() if mult else None


def multiplier(mult: str | None) -> float:
    return _MULTIPLIERS.get(mult, 1.0) if mult else 1.0


def _value(number: str, mult: str | None) -> float:
    value = float(number.replace(",", ""))
    if mult:
        value *= _MULTIPLIERS.get(mult.strip().lower(), 1.0)
    return value


def scan(text: str) -> list[Figure]:
    """Every figure of `text` that is not a phone number, date, time or reference."""
    figures: list[Figure] = []
    append = figures.append
    for m in TOKEN_RE.finditer(text):
        number = m.group("num")
        if number is None:
            continue
        start, end = m.span()
        if start and text[start - 1] in ".,":
            continue  # the tail of a figure the grammar did not read whole
        cur = m.group("cur")
        prefix = PREFIX_RE.search(text, max(0, start - 24), start) if start else None
        if prefix is not None:
            if prefix.group("ref") or prefix.group("hash"):
                continue
            elif prefix.group("packof"):
                append(
                    Figure(
                        "pack",
                        prefix.start(),
                        end,
                        float(number.replace(",", "")),
                        None,
                        prefix.group("packof").split()[0].lower(),
                    )
                )
                continue
            elif (
                prefix.group("cpre")
                and not cur
                and not (m.group("strength") or m.group("size") or m.group("pack"))
            ):
                append(
                    Figure(
                        "amount",
                        prefix.start(),
                        m.end("mult") if m.group("mult") else m.end("num"),
                        _value(number, m.group("mult")),
                        currency_code(prefix.group("cpre")),
                        _mult(m.group("mult")),
                    )
                )
                continue
        if cur:
            append(
                Figure(
                    "amount",
                    start,
                    end,
                    _value(number, m.group("mult")),
                    currency_code(cur),
                    _mult(m.group("mult")),
                )
            )
        elif m.group("strength"):
            unit = m.group("strength").lower()
            if unit == "%" and DISCOUNT_RE.match(text, end):
                continue
            append(Figure("strength", start, end, float(number.replace(",", "")), None, unit))
        elif m.group("size"):
            append(
                Figure(
                    "size",
                    start,
                    end,
                    float(number.replace(",", "")),
                    None,
                    m.group("size").lower(),
                )
            )
        elif m.group("pack"):
            append(
                Figure(
                    "pack",
                    start,
                    end,
                    float(number.replace(",", "")),
                    None,
                    m.group("pack").lower(),
                )
            )
        else:
            append(
                Figure(
                    "bare",
                    start,
                    end,
                    _value(number, m.group("mult")),
                    None,
                    _mult(m.group("mult")),
                )
            )
    return figures
