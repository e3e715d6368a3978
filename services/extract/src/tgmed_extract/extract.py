"""`extract(text)`: the products, prices, services and unknown product names of one post.

Per message: one Aho-Corasick pass over the folded text (every alias of the knowledge
base at once), one pass of the price grammar when the text has a digit, and a tolerant
(rapidfuzz) look-up only for the few words that look like a product but match nothing:
Ge'ez words (transliterated, against sound keys) and Latin words right before a price or
a dose. Look-ups are cached per word, so a word costs its fuzzy search once per process.

Why an automaton and not a regex of aliases: 100k aliases in one pass at C speed, and
overlapping matches come back together, so the longest one can win ("accu-chek test
strips" over "accu-chek") after word-boundary checks done in Python on the few hits.

Where this departs from the first design, and why (measured on bench_extract_lib.py):
- plurals, glued doses and glued Amharic prefixes are word-boundary rules on the hits,
  not extra aliases or a stripping pass: the automaton stays ~100k keys (build ~1 s);
- posts are not translated to fold separators (10 us a post); aliases are stored in
  their separator variants instead (normalize.py);
- Ge'ez words are tried tolerantly anywhere (not only next to a price): Amharic posts
  often name a drug with no price, and a per-word cache keeps it cheap; Latin words only
  next to a price or dose, where a misspelling is worth the risk;
- a price with no product it can surely belong to stays unattributed (product None)
  rather than going to the post's first product.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise

import ahocorasick
from rapidfuzz import fuzz, process

from tgmed_extract.knowledge import Entry, Knowledge, knowledge
from tgmed_extract.normalize import normalise, phonetic, transliterate
from tgmed_extract.prices import (
    CURRENCY_WORD_RE,
    DIGIT_RE,
    MARKER_RE,
    OLD_RE,
    PER_RE,
    RANGE_GAP_RE,
    Figure,
    currency_code,
    multiplier,
    scan,
)

EXTRACTOR_VERSION = "1.1.0"  # bump with every change of what extract() returns


# Result records are plain slotted dataclasses, read-only by convention: a frozen one
# costs 2 us to create against 0.3 us (measured), and a post makes about six.
@dataclass(slots=True)
class Mention:
    product: str
    category: str
    brand: str | None
    parent: str | None
    start: int
    end: int
    as_written: str
    matched_by: str  # exact | amharic | fuzzy


@dataclass(slots=True)
class Price:
    product: str | None
    category: str | None
    amount: float
    high: float | None
    currency: str
    old_price: float | None
    strength: str | None
    size: str | None
    pack: str | None
    pack_count: int | None
    unit_price: float | None
    start: int
    end: int
    as_written: str
    kind: str = "price"


@dataclass(slots=True)
class Service:
    service: str
    product: str | None
    amount: float
    high: float | None
    currency: str
    start: int
    end: int
    as_written: str


@dataclass(slots=True)
class Candidate:
    name: str
    start: int
    end: int
    context: str


@dataclass(slots=True)
class Extraction:
    mentions: tuple[Mention, ...] = ()
    prices: tuple[Price, ...] = ()
    services: tuple[Service, ...] = ()
    candidates: tuple[Candidate, ...] = ()


EMPTY = Extraction()

AMHARIC_PREFIXES = ("እና", "የ", "በ", "ለ", "ከ", "ና", "ስለ", "እንደ")
AMHARIC_SUFFIXES = ("ዎች", "ኦች", "ን", "ው", "ዉ", "ም", "ና", "ስ", "ችን")
GEEZ_RE = re.compile(r"[\u1200-\u137f]")
GEEZ_WORD_RE = re.compile(r"[\u1200-\u135a]{4,}")
# A segment starts after a newline, a list mark, or the spaces after a sentence's end (not
# before a figure: "1. 500"). Written so that every branch starts with a known character
# (the engine then skips to them: 6 -> 5 us a post); the sentence end is consumed, not
# looked behind at, and a newline right after it ends the match as `\n` alone did.
SEGMENT_RE = re.compile(r"[\n;•▪|🔹🔸✅🔺🔻]|➡️|✔️|▫️|[.!?።](?:\n|\s+(?=[^\d\s]))")
NAME_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9'+&-]*|[\u1200-\u135a]+")
SERVICE_RE = re.compile(
    r"(?<![a-z])(repair|calibration|calibrate|servicing|service|maintenance|installation|"
    r"install|delivery|deliver|shipping|transport|consultation|consult|check-?up|fee|"
    r"replacement|battery change|setup|rent|rental|refill|ማድረሻ|ማድረስ|ጥገና|ማስተካከያ|"
    r"ትራንስፖርት|ምክክር|ኪራይ|"
    r"ካሊብሬሽን|ሰርቪስ|ተከላ)",
    re.IGNORECASE,
)
# substrings a post must contain for the (slower) patterns to be tried at all
CURRENCY_WORDS = ("birr", "br", "ብር", "etb", "usd", "$", "eur", "€")
OLD_WORDS = ("was", "before", "old", "regular", "previous", "paid", "bought", "በፊት", "የነበረው", "~~")
SERVICE_WORDS = (
    "repair",
    "calibrat",
    "servic",
    "maintenance",
    "install",
    "deliver",
    "shipping",
    "transport",
    "consult",
    "check",
    "fee",
    "replacement",
    "setup",
    "rent",
    "refill",
    "ኪራይ",
    "ማድረ",
    "ጥገና",
    "ማስተካከያ",
    "ትራንስፖርት",
    "ምክክር",
    "ካሊብሬሽን",
    "ሰርቪስ",
    "ተከላ",
)
# One pass of a small automaton tells which words a post contains: the old-price words
# and the service words (34 substring tests cost 4.5 us a post, the pass 1.8 us).
OLD, SERVICE = 1, 2
_TRIGGER_AUTOMATON = ahocorasick.Automaton()
for _kind, _words in ((OLD, OLD_WORDS), (SERVICE, SERVICE_WORDS)):
    for _word in _words:
        _TRIGGER_AUTOMATON.add_word(_word, _kind)
_TRIGGER_AUTOMATON.make_automaton()
FREE_RE = re.compile(r"(?:free|በነፃ|ነፃ)\W{0,2}$", re.IGNORECASE)
SERVICE_AFTER_RE = re.compile(
    r"[ \t:-]{0,3}(?:for |per |ለ)?(repair|calibration|servicing|service|maintenance|installation|"
    r"delivery|shipping|consultation|fee|ማድረሻ|ጥገና)",
    re.IGNORECASE,
)
FILLER_WORDS = frozenset(
    # words around prices that name no product: English, Amharic function words, places
    # and days (a candidate is a product name, not "Addis" or "ወይም")
    [
        "price",
        "prices",
        "birr",
        "br",
        "etb",
        "usd",
        "only",
        "now",
        "new",
        "was",
        "just",
        "at",
        "for",
        "per",
        "each",
        "the",
        "a",
        "an",
        "and",
        "or",
        "with",
        "of",
        "in",
        "on",
        "is",
        "are",
        "our",
        "all",
        "call",
        "order",
        "available",
        "sale",
        "offer",
        "discount",
        "total",
        "cost",
        "full",
        "half",
        "deposit",
        "rent",
        "rental",
        "monthly",
        "daily",
        "each",
        "xl",
        "xxl",
        "size",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "addis",
        "ababa",
        "bole",
        "piassa",
        "merkato",
        "megenagna",
        "sarbet",
        "adama",
        "hawassa",
        "bahir",
        "dar",
        "mekelle",
        "gondar",
        "dire",
        "dawa",
        "jimma",
        "dessie",
        "harar",
        "ghana",
        "china",
        "india",
        "usa",
        "germany",
        "turkey",
        "ዋጋ",
        "ዋጋው",
        "ብር",
        "ብቻ",
        "አሁን",
        "በፊት",
        "ያለው",
        "ነው",
        "አለ",
        "አለን",
        "ወይም",
        "ከ",
        "በ",
        "ለ",
        "የ",
        "እና",
        "እስከ",
        "ውስጥ",
        "ሙሉ",
        "ለብቻው",
        "ለጅምላ",
        "በወር",
        "በቀን",
        "በሳምንት",
        "ኪራይ",
        "አዲስ",
        "አበባ",
    ]
)


def extract(text: str) -> Extraction:
    """Products, prices, services and candidate products named in `text`."""
    kb = knowledge()
    if not text:
        return EMPTY
    mentions = _mentions(text, kb)
    has_geez = GEEZ_RE.search(text) is not None
    if has_geez:
        mentions = _geez_fuzzy(text, kb, mentions)
    if len(mentions) > 1:
        mentions = _combinations(text, kb, mentions)
    if DIGIT_RE.search(text) is None:
        if not mentions:
            return EMPTY
        return Extraction(tuple(_without_bare_parents(mentions, [])))
    return _with_figures(text, kb, mentions)


# --- mentions ------------------------------------------------------------------------


def _mentions(text: str, kb: Knowledge) -> list[Mention]:
    norm, index = normalise(text)
    size = len(norm)
    hits: list[tuple[int, int, Entry, str]] = []
    for last, (entry, geez, length) in kb.automaton.iter(norm):
        end = last + 1
        start = end - length
        by = "amharic" if geez else "exact"
        if start > 0:
            prev = norm[start - 1]
            if norm[start].isdigit():
                if prev.isdigit():
                    continue
            elif prev.isalpha():
                if not geez and not ("\u1200" <= prev <= "\u137f"):
                    continue  # an Amharic prefix may be glued to a Latin name: የVitamin C
                for prefix in AMHARIC_PREFIXES:
                    p = start - len(prefix)
                    if (
                        p >= 0
                        and norm.startswith(prefix, p)
                        and (p == 0 or not norm[p - 1].isalpha())
                    ):
                        break
                else:
                    continue
        if end < size:
            nxt = norm[end]
            if norm[end - 1].isdigit():
                if nxt.isdigit():
                    continue
            elif nxt.isalpha():
                if geez:
                    for suffix in AMHARIC_SUFFIXES:
                        e = end + len(suffix)
                        if norm.startswith(suffix, end) and (e >= size or not norm[e].isalpha()):
                            end = e
                            break
                    else:
                        continue
                elif nxt == "s" and (end + 1 >= size or not norm[end + 1].isalpha()):
                    end += 1
                elif norm.startswith("es", end) and (
                    end + 2 >= size or not norm[end + 2].isalpha()
                ):
                    end += 2
                else:
                    continue
        hits.append((start, end, entry, by))
    if not hits:
        return []
    if len(hits) > 1:
        hits.sort(key=lambda h: (h[0] - h[1], h[0]))
        chosen: list[tuple[int, int, Entry, str]] = []
        for hit in hits:
            if all(hit[1] <= c[0] or hit[0] >= c[1] for c in chosen):
                chosen.append(hit)
        chosen.sort(key=lambda h: h[0])
        hits = _merge_heads(norm, chosen, kb)
    if index is not None:
        hits = [(index[s], index[e], entry, by) for s, e, entry, by in hits]
    return [
        Mention(entry.product, entry.category, entry.brand, entry.parent, s, e, text[s:e], by)
        for s, e, entry, by in hits
    ]


_HEAD_GAP = re.compile(r"[\s&+-]{0,3}")
_BRAND_GAP = re.compile(r"[a-z0-9 &+'()-]{0,30}")
# a medicine's form or dose between it and a product-type word: "chlorhexidine 4% scrub"
_FORM_GAP = re.compile(r"[\s\d.,%()+/]*(?:(?:mg|mcg|g|ml|iu)[\s\d.,%()+/]*)?")


def _merge_heads(
    norm: str, hits: list[tuple[int, int, Entry, str]], kb: Knowledge
) -> list[tuple[int, int, Entry, str]]:
    """A brand or a modifier directly before a product type belongs to that type:
    "omron nebulizer", "garnier vitamin c serum", "cantu shea butter conditioner"."""
    out: list[tuple[int, int, Entry, str]] = []
    i = 0
    while i < len(hits):
        start, end, entry, by = hits[i]
        while i + 1 < len(hits):
            nstart, nend, nentry, nby = hits[i + 1]
            gap = norm[end:nstart]
            if nentry.is_brand or nentry.category == "medicine":
                break
            brandish = entry.is_brand or (
                entry.brand is not None
                and norm[start:end].replace("-", " ") == entry.brand.replace("-", " ")
            )
            if entry.category == "medicine" and not entry.is_brand:
                if _FORM_GAP.fullmatch(gap) and nentry.brand is None and nentry.parent is None:
                    i += 1  # the medicine's form, not a product of its own
                    continue
                break
            if brandish:
                if "\n" in gap or not _BRAND_GAP.fullmatch(gap):
                    break
            elif not _HEAD_GAP.fullmatch(gap):
                break
            brand = entry.brand or nentry.brand
            own = kb.products.get(f"{brand} {nentry.product}") if brand else None
            if own is None and nentry.brand is None and brand:
                own = Entry(nentry.product, nentry.category, brand, nentry.parent)
            start, end, entry, by = start, nend, own or nentry, nby
            i += 1
        if entry.is_brand:
            # the brand's row for a product type the post names ("BP monitors ... Yuwell
            # wrist type"), else the brand's main product (device and baby brands)
            in_post = [
                kb.products.get(f"{entry.product} {h[2].product}")
                for h in hits
                if not h[2].is_brand
            ]
            entry = next((e for e in in_post if e is not None), None) or kb.brand_default.get(
                entry.product
            )
            if entry is None:  # a cosmetics brand alone names no product
                i += 1
                continue
        out.append((start, end, entry, by))
        i += 1
    return out


# how many lines a header's product reaches down a list under it
HEADER_REACH = 8
_COMBO_GAP = re.compile(r"\s*(?:[+/&-]|and|with|እና|ና)?\s*", re.IGNORECASE)


def _combinations(text: str, kb: Knowledge, mentions: list[Mention]) -> list[Mention]:
    """Two medicines written together that are a known combination are that combination:
    "artemether lumefantrine", "አርቴሜተር ሉሜፋንትሪን", "amoxicillin/clavulanic acid"."""
    out: list[Mention] = []
    i = 0
    while i < len(mentions):
        a = mentions[i]
        if i + 1 < len(mentions) and a.category == "medicine":
            b = mentions[i + 1]
            if b.category == "medicine" and _COMBO_GAP.fullmatch(text, a.end, b.start):
                combo = kb.products.get(f"{a.product} + {b.product}") or kb.products.get(
                    f"{b.product} + {a.product}"
                )
                if combo is not None:
                    by = "fuzzy" if "fuzzy" in (a.matched_by, b.matched_by) else a.matched_by
                    out.append(
                        Mention(
                            combo.product,
                            combo.category,
                            a.brand or b.brand,
                            None,
                            a.start,
                            b.end,
                            text[a.start : b.end],
                            by,
                        )
                    )
                    i += 2
                    continue
        out.append(a)
        i += 1
    return out


def _mention(entry, start: int, end: int, written: str, how: str) -> Mention:
    """A mention of a knowledge-base entry at [start, end), found `how`."""
    return Mention(
        entry.product, entry.category, entry.brand, entry.parent, start, end, written, how
    )


def _fuzzy(word: str, kb: Knowledge, geez: bool) -> tuple[Entry, str] | None:
    cache = kb.fuzzy_cache
    if word in cache:
        return cache[word]
    if len(cache) > 200_000:
        cache.clear()
    latin, phon = kb.fuzzy_indexes()
    result = None
    if geez:
        key = phonetic(transliterate(word))
        if 4 <= len(key) < 6 and word not in kb.stopwords:
            # too short to be tolerant about: only the exact sound of a name (ሲፕሮ: cipro)
            exact = kb.short_sounds().get(key)
            result = (exact, key) if exact is not None else None
            cache[word] = result
            return result
        index = phon if len(key) >= 6 and word not in kb.stopwords else None
        # short keys meet unrelated names at 88 (ይቆያል ~ icodial): stricter below 8
        cutoff = 88 if len(key) >= 8 else 92
    else:
        key = word.lower()
        index = latin if len(key) >= 6 and key not in kb.stopwords else None
        cutoff = 90
    if index is not None:
        result = _nearest(key, index, cutoff)
        if result is None and not geez:
            # a misspelling by sound ("Zyrtek", "Glucofage"): its sound key exactly
            exact = kb.sounds().get(phonetic(key))
            if exact is not None:
                result = (exact, key)
    cache[word] = result
    return result


def _nearest(key: str, index, cutoff: float) -> tuple[Entry, str] | None:
    """The best name of `index` at fuzz.ratio >= cutoff, reading only the lengths that can
    reach it (the shorter must be at least cutoff/(200-cutoff) of the longer)."""
    share = cutoff / (200 - cutoff)
    size = len(key)
    best_score = 0.0
    result = None
    for length in range(int(size * share + 0.999), int(size / share) + 1):
        bucket = index.get((key[0], length))
        if bucket is None:
            continue
        near = bucket.candidates(key, cutoff)
        if near is None:
            names, entries = bucket.names, bucket.entries
        elif not near:
            continue
        else:
            names = [bucket.names[i] for i in near]
            entries = [bucket.entries[i] for i in near]
        best = process.extractOne(key, names, scorer=fuzz.ratio, score_cutoff=cutoff)
        if best is not None and best[1] > best_score:
            best_score = best[1]
            result = (entries[best[2]], best[0])
    return result


def _covered(mentions: list[Mention], start: int, end: int) -> bool:
    return any(m.start < end and start < m.end for m in mentions)


def _geez_fuzzy(text: str, kb: Knowledge, mentions: list[Mention]) -> list[Mention]:
    added = False
    unmatched: list[re.Match] = []
    for m in GEEZ_WORD_RE.finditer(text):
        start, end = m.span()
        if _covered(mentions, start, end):
            continue
        word = m.group()
        found = _fuzzy(word, kb, geez=True)
        if found is None and word.startswith(AMHARIC_PREFIXES[1:6]) and len(word) > 4:
            found = _fuzzy(word[1:], kb, geez=True)
        if found is not None:
            entry = found[0]
            mentions.append(_mention(entry, start, end, word, "fuzzy"))
            added = True
        else:
            unmatched.append(m)
    # two unmatched words in a row may be one two-word name
    # (only on a line with a figure: a product next to a price or a dose; pairs of words
    # are many more than words, and each new pair costs a fuzzy search)
    for a, b in pairwise(unmatched):
        if b.start() != a.end() + 1 or text[a.end()] != " ":
            continue
        line_end = text.find("\n", b.end())
        line_start = text.rfind("\n", 0, a.start()) + 1
        if DIGIT_RE.search(text, line_start, line_end if line_end >= 0 else len(text)) is None:
            continue
        if _covered(mentions, a.start(), b.end()):
            continue
        found = _fuzzy(a.group() + b.group(), kb, geez=True)
        if found is not None:
            entry = found[0]
            mentions.append(_mention(entry, a.start(), b.end(), text[a.start() : b.end()], "fuzzy"))
            added = True
    if added:
        mentions.sort(key=lambda x: x.start)
    return mentions


# --- figures -------------------------------------------------------------------------


def _with_figures(text: str, kb: Knowledge, mentions: list[Mention]) -> Extraction:
    figures = scan(text)
    if not figures:
        return Extraction(tuple(_without_bare_parents(mentions, []))) if mentions else EMPTY
    newlines: list[int] = []
    i = text.find("\n")
    while i >= 0:  # str.find: a third of the cost of re.finditer for a few lines
        newlines.append(i)
        i = text.find("\n", i + 1)
    seg_starts = [0] + [m.end() for m in SEGMENT_RE.finditer(text)]

    def line_of(pos: int) -> int:
        return bisect_right(newlines, pos)

    def seg_of(pos: int) -> int:
        return bisect_right(seg_starts, pos) - 1

    # the currency the post names: its first written amount's, else a currency word
    message_currency = next((f.currency for f in figures if f.kind == "amount"), None)
    lowered = text.lower()
    if message_currency is None and _contains(lowered, CURRENCY_WORDS):
        cur = CURRENCY_WORD_RE.search(text)
        if cur is not None:
            message_currency = currency_code(cur.group())
    triggers = _triggers(lowered)

    # 1. ranges: a bare figure joined to the amount after it ("300-500 birr")
    merged: list[tuple[Figure, float | None]] = []  # (figure, low of a range)
    i = 0
    while i < len(figures):
        f = figures[i]
        if (
            f.kind in ("bare", "amount")
            and i + 1 < len(figures)
            and figures[i + 1].kind == "amount"
            and f.value < figures[i + 1].value
            and RANGE_GAP_RE.match(text[f.end : figures[i + 1].start])
            and "\n" not in text[f.end : figures[i + 1].start]
        ):
            high = figures[i + 1]
            low = f.value
            if f.kind == "bare" and f.unit is None:
                low *= multiplier(high.unit)
            merged.append(
                (Figure("amount", f.start, high.end, high.value, high.currency, None), low)
            )
            i += 2
            continue
        merged.append((f, None))
        i += 1

    # 2. which figures are money
    money: list[tuple[Figure, float | None, bool]] = []  # (figure, low, is_old)
    units: list[Figure] = []
    strengths_glued: list[Figure] = []
    old_possible = OLD in triggers
    amount_lines = {line_of(f.start) for f, _ in merged if f.kind == "amount"}
    for f, low in merged:
        if f.kind in ("strength", "size", "pack"):
            units.append(f)
            continue
        if f.kind == "amount" and not old_possible:
            money.append((f, low, False))
            continue
        line = line_of(f.start)
        line_start = newlines[line - 1] + 1 if line else 0
        before = text[max(line_start, f.start - 24) : f.start]
        is_old = old_possible and (
            OLD_RE.search(before) is not None
            or (text.startswith("~~", f.start - 2) and text.startswith("~~", f.end))  # struck
        )
        if f.kind == "amount":
            money.append((f, low, is_old))
            continue
        # a bare figure
        if _covered(mentions, f.start, f.end):
            continue  # part of a name: "NAN 2", "Omron M2", "Omega 3"
        if is_old or f.unit or MARKER_RE.search(before):  # f.unit: "1.2k", "3 ሺ"
            money.append(
                (f._replace(kind="amount", currency=message_currency or "ETB"), None, is_old)
            )
            continue
        glued = any(
            m.end == f.start or (m.end + 1 == f.start and text[m.end] == " ") for m in mentions
        )
        if (
            message_currency is not None
            and line not in amount_lines
            and not (glued and f.value < 10)
            and _nothing_after_on_line(text, f, newlines, line)
            and not (1900 <= f.value <= 2100 and "," not in text[f.start : f.end])  # a year
            # a product named before it: on its line, or a header's for a list under it
            and any(
                line - HEADER_REACH <= line_of(m.start) <= line and m.end <= f.start
                for m in mentions
            )
        ):
            money.append((f._replace(kind="amount", currency=message_currency), None, False))
            continue
        if glued:
            strengths_glued.append(f)

    if not money and not units:
        return Extraction(tuple(_without_bare_parents(mentions, []))) if mentions else EMPTY

    # 3. Latin words right before a price or a dose: a misspelt product, or a candidate
    anchors = [f.start for f, _, old in money if not old] + [
        u.start for u in units if u.kind in ("strength", "size")
    ]
    candidates: list[Candidate] = []
    named: set[int] = set()  # segments with an unknown product name before a figure
    if anchors:
        spans = [(f.start, f.end) for f in figures]
        mentions, candidates = _names_before(
            text, kb, mentions, sorted(set(anchors)), seg_starts, seg_of, spans, named
        )

    # 4. each price to its product
    prices: list[Price] = []
    services: list[Service] = []
    pending_old: dict[int, float] = {}
    prev_end_by_line: dict[int, int] = {}
    distinct = {m.product for m in mentions}
    m_lines = [line_of(m.start) for m in mentions]
    m_segs = [seg_of(m.start) for m in mentions]
    any_service = SERVICE in triggers
    any_pack = any(u.kind == "pack" for u in units)
    for f, low, is_old in money:
        line = line_of(f.start)
        if is_old:
            pending_old[line] = f.value
            continue
        seg = seg_of(f.start)
        owner_i = _owner(f, mentions, m_lines, m_segs, seg, line, distinct, named, money, line_of)
        owner = mentions[owner_i] if owner_i is not None else None
        owner_on_line = owner is not None and m_lines[owner_i] == line
        line_start = newlines[line - 1] + 1 if line else 0
        seg_start = seg_starts[seg]
        service = None
        if any_service:
            service = None
            for found in SERVICE_RE.finditer(text, seg_start, f.start):
                if _covered(mentions, found.start(), found.end()):
                    continue  # a product's own name: "eye repair cream"
                if FREE_RE.search(text, max(0, found.start() - 8), found.start()):
                    continue  # "free delivery" is no fee
                service = found
                break
            if service is None:
                service = SERVICE_AFTER_RE.match(text, f.end)
        high = None
        amount = f.value
        if low is not None:
            amount, high = low, f.value
        if service is not None:
            services.append(
                Service(
                    service.group(1).lower(),
                    owner.product if owner is not None else None,
                    amount,
                    high,
                    f.currency or "ETB",
                    f.start,
                    f.end,
                    text[f.start : f.end],
                )
            )
            continue
        var_lo = max(
            prev_end_by_line.get(line, line_start),
            owner.start if owner_on_line else line_start,
        )
        strength = size = pack = None
        pack_count = None
        for u in units:
            if var_lo <= u.start < f.start:
                if u.kind == "strength":
                    strength = _fmt(u)
                elif u.kind == "size":
                    size = _fmt(u)
                else:
                    pack, pack_count = _fmt(u), int(u.value)
        after = PER_RE.match(text, f.end) if any_pack else None
        if after is not None:
            for u in units:
                if u.start == after.end() and u.kind == "pack":
                    pack, pack_count = _fmt(u), int(u.value)
        if strength is None and owner is not None:
            for u in units:
                if u.kind == "strength" and owner.start <= u.start < f.start:
                    strength = _fmt(u)
            if strength is None and owner.category == "medicine":
                for g in strengths_glued:
                    if owner.end <= g.start < f.start:
                        strength = f"{g.value:g}"
        unit_price = round(amount / pack_count, 2) if pack_count and pack_count > 1 else None
        prices.append(
            Price(
                owner.product if owner is not None else None,
                owner.category if owner is not None else None,
                amount,
                high,
                f.currency or "ETB",
                pending_old.pop(line, None),
                strength,
                size,
                pack,
                pack_count,
                unit_price,
                f.start,
                f.end,
                text[f.start : f.end],
            )
        )
        prev_end_by_line[line] = f.end
    return Extraction(
        tuple(_without_bare_parents(mentions, prices)),
        tuple(prices),
        tuple(services),
        tuple(candidates),
    )


def _without_bare_parents(mentions: list[Mention], prices: list[Price]) -> list[Mention]:
    """A product type named beside a product of that type ("BP monitors ..." over "Omron
    M3 ...") is the post's heading, not one more product: dropped unless it has a price
    of its own (so top-product counts are not inflated by headings)."""
    parents = {m.parent for m in mentions if m.parent is not None}
    if not parents:
        return mentions
    priced = {p.product for p in prices}
    return [m for m in mentions if m.product not in parents or m.product in priced]


def _triggers(lowered: str) -> set[int]:
    """Which of OLD and SERVICE words `lowered` contains (as substrings)."""
    return {kind for _, kind in _TRIGGER_AUTOMATON.iter(lowered)}


def _contains(lowered: str, words: tuple[str, ...]) -> bool:
    for word in words:  # noqa: SIM110 - a plain loop: no generator created per call
        if word in lowered:
            return True
    return False


def _fmt(u: Figure) -> str:
    return f"{u.value:g} {u.unit}"


def _nothing_after_on_line(text: str, f: Figure, newlines: list[int], line: int) -> bool:
    """No other figure and no word after `f` on its line (emoji and punctuation may be)."""
    end = newlines[line] if line < len(newlines) else len(text)
    return not any(ch.isalnum() for ch in text[f.end : end])


def _owner(f, mentions, m_lines, m_segs, seg, line, distinct, named, money, line_of):
    """Index of the mention a price belongs to: the nearest before it in its segment (a
    sentence or list item), else the first after it in its segment ("Etb 1,449 NAN 1 |
    ..."), else the nearest before it on its line, else a header line's above it."""
    if not mentions:
        return None
    start = f.start
    best = None
    for i, m in enumerate(mentions):
        if m.end <= start and m_segs[i] == seg:
            best = i
    if best is not None:
        return best
    if seg in named:
        return None  # an unknown product is named right before it in its segment
    for i, m in enumerate(mentions):
        if m.start >= f.end and m_segs[i] == seg:
            return i
    for i, m in enumerate(mentions):
        if m.end <= start and m_lines[i] == line:
            best = i
    if best is not None:
        return best
    money_lines = {line_of(g.start) for g, _, old in money if not old}
    # a header: the nearest line above naming a product and no price of its own
    # ("Augmentin 625mg" then "Price 450 birr"); else the post's only product
    for back in range(line - 1, max(line - HEADER_REACH - 1, -1), -1):
        on_line = [i for i in range(len(mentions)) if m_lines[i] == back]
        if on_line:
            if back not in money_lines:
                return on_line[-1]
            break  # that line's product has its own price: this one is not surely its
    if len(distinct) == 1 and mentions[0].end <= start:
        return 0
    return None


def _names_before(text, kb, mentions, anchors, seg_starts, seg_of, spans, named):
    """The words right before each anchor (a price or a dose) that no mention covers:
    a misspelt known product (fuzzy) or a candidate for the catalog."""
    candidates: list[Candidate] = []
    added = False
    span_starts = [start for start, _ in spans]  # figures are in text order
    # mentions are in text order and do not overlap: their ends are sorted too
    ends = [m.end for m in mentions]
    for anchor in anchors:
        seg_start = seg_starts[seg_of(anchor)]
        k = bisect_right(ends, anchor) - 1
        if k >= 0 and mentions[k].start >= seg_start and anchor - ends[k] < 40:
            continue  # a product is named right before it
        words = [w for w in NAME_WORD_RE.finditer(text, seg_start, anchor)][-4:]
        name: list[re.Match] = []
        for w in reversed(words):
            lower = w.group().lower()
            k = bisect_right(span_starts, w.end() - 1) - 1  # the last figure starting in w
            if k >= 0 and spans[k][1] > w.start():
                break  # a unit word of a figure ("ፓኬት" of "1 ፓኬት")
            if lower in FILLER_WORDS or lower in kb.stopwords:
                if name:
                    break
                continue
            if text[w.end() : anchor if not name else name[0].start()].strip(" :-–—=💰()") and any(
                ch.isalnum() for ch in text[w.end() : anchor if not name else name[0].start()]
            ):
                if not name:
                    continue
                break
            name.insert(0, w)
            if len(name) == 3:
                break
        if not name:
            continue
        fuzzy = None
        for w in name:
            word = w.group()
            geez = GEEZ_RE.match(word) is not None
            if (geez or len(word) >= 6) and not _covered(mentions, w.start(), w.end()):
                fuzzy = _fuzzy(word, kb, geez)
                if fuzzy is not None:
                    entry = fuzzy[0]
                    mentions.append(_mention(entry, w.start(), w.end(), word, "fuzzy"))
                    added = True
                    break
        if fuzzy is not None:
            continue
        first = name[0].group()
        if not (first[0].isupper() or GEEZ_RE.match(first)):
            continue
        start, end = name[0].start(), name[-1].end()
        if _covered(mentions, start, end) or SERVICE_RE.search(text, start, end):
            continue  # a service ("calibration check", "የማድረሻ ክፍያ") is no product
        if kb.automaton.exists(" ".join(w.group().lower() for w in name)):
            continue  # a known name (a cosmetics brand alone, "Nivea: 800 ETB"): not new
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        context = text[line_start : line_end if line_end >= 0 else len(text)].strip()
        named.add(seg_of(anchor))
        candidates.append(
            Candidate(" ".join(w.group().lower() for w in name), start, end, context[:200])
        )
    if added:
        mentions.sort(key=lambda x: x.start)
    return mentions, candidates
