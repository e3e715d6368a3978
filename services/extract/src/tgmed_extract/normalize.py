"""Text normalisation shared by the knowledge base and the matcher.

Both sides go through the same functions, so an alias and a post meet when they differ
only in case, hyphens/dots/slashes, Ethiopic punctuation, or Amharic letters that sound
alike. The fold is one `str.translate` and keeps the length of the text, so a match in
the normalised text is a span in the original one; only the rare dotted Ge'ez
abbreviation (ኦ.አር.ኤስ) takes a slower path with an index map.
"""

from __future__ import annotations

import re

# Amharic homophones: letters whose sounds merged in modern Amharic, with all their vowel
# orders (each Ethiopic consonant is a row of 8 code points: 7 vowel orders + one -wa
# form). ሐ and ኀ fold to ሀ, ሠ to ሰ, ዐ to አ, ፀ to ጸ. The 4th order of ሀ/አ (ሃ, ኣ) is
# written interchangeably with the 1st, so it folds too. ቸ/ሸ and the like are distinct
# sounds and are left alone.
_FOLD: dict[int, int | str | None] = {}
for _src, _dst, _n in (
    (0x1210, 0x1200, 8),
    (0x1280, 0x1200, 8),
    (0x1220, 0x1230, 8),
    (0x12D0, 0x12A0, 7),
    (0x1340, 0x1338, 8),
):
    for _i in range(_n):
        _FOLD[_src + _i] = _dst + _i
_FOLD[0x1203] = 0x1200  # ሃ -> ሀ
_FOLD[0x12A3] = 0x12A0  # ኣ -> አ
# the Ethiopic word space separates words (other Ethiopic punctuation is no letter, so
# word boundaries hold without rewriting it)
_FOLD[0x1361] = " "
GEEZ_TABLE = dict(_FOLD)
# separators inside a name ("johnson's", "s.26"): the text keeps them (a translate of
# every post costs 10 us; hyphens alone are replaced, which is cheap); each alias is
# stored with them, as spaces and without them instead
SEPARATORS = "-_/.'’`\u2010\u2011\u2012\u2013"
for _ch in SEPARATORS:
    _FOLD[ord(_ch)] = " "
FOLD_TABLE = _FOLD
_GEEZ = re.compile(r"[\u1200-\u137f]")
SEPARATOR_RE = re.compile(f"[{re.escape(SEPARATORS)}]")

# the characters GEEZ_TABLE changes (a search for them is cheaper than a translate)
_TO_FOLD = re.compile("[" + "".join(chr(c) for c in GEEZ_TABLE) + "]")
_GEEZ_DOT = re.compile(r"(?<=[\u1200-\u137f])\.(?=[\u1200-\u137f])")


def is_geez(ch: str) -> bool:
    return "\u1200" <= ch <= "\u137f"


def normalise(text: str) -> tuple[str, list[int] | None]:
    """Return the folded text and, only when its length changed, a map from each of its
    positions to the position in `text` (else None: positions are the same)."""
    low = text.lower()
    if len(low) != len(text):
        return _normalise_slow(text)
    if "-" in low:
        low = low.replace("-", " ")  # "shea-butter", "leave-in": str.replace is ~free
    if _GEEZ.search(low) is None:
        return low, None
    if "." in low and _GEEZ_DOT.search(text):
        return _normalise_slow(text)
    if _TO_FOLD.search(low) is None:
        return low, None  # no homophone letter, no Ethiopic word space: nothing to fold
    return low.translate(GEEZ_TABLE), None


def _normalise_slow(text: str) -> tuple[str, list[int]]:
    low = text.lower()
    if len(low) == len(text) and "\u03a3" not in text:
        # dotted Ge'ez (ኦ.አር.ኤስ, ሚ.ግ, 4% of the bench's posts): every character lowercases
        # to one (no İ; Σ lowercases by its context), so whole-string operations give the
        # per-character loop's text, the dots cut out (45 us a post -> 9 us)
        low = low.replace("-", " ")
        if _TO_FOLD.search(low) is not None:
            low = low.translate(GEEZ_TABLE)
        parts: list[str] = []
        index: list[int] = []
        at = 0
        for dot in _GEEZ_DOT.finditer(text):
            parts.append(low[at : dot.start()])
            index.extend(range(at, dot.start()))
            at = dot.end()
        parts.append(low[at:])
        index.extend(range(at, len(text) + 1))
        return "".join(parts), index
    out: list[str] = []
    index: list[int] = []
    drop = {m.start() for m in _GEEZ_DOT.finditer(text)}
    for i, ch in enumerate(text):
        if i in drop:
            continue
        low = ch.lower()
        if len(low) != 1:
            low = ch
        out.append(" " if low == "-" else low.translate(GEEZ_TABLE))
        index.append(i)
    index.append(len(text))
    return "".join(out), index


def alias_keys(alias: str) -> list[str]:
    """The forms of an alias a post may write, as the automaton holds them (lowercase,
    Ge'ez folded): as written, separators as spaces, separators dropped."""
    norm, _ = normalise(alias.strip())  # hyphens are spaces already, as in posts
    norm = " ".join(norm.split())
    keys = [norm]
    if 2 <= len(norm) <= 4 and norm.isascii() and norm.isalpha():
        keys += [".".join(norm), ".".join(norm) + "."]  # abbreviations: o.r.s, o.r.s.
    if SEPARATOR_RE.search(norm):
        spaced = " ".join(SEPARATOR_RE.sub(" ", norm).split())
        keys += [spaced, SEPARATOR_RE.sub("", norm)]
        if "'" in norm:
            keys.append(norm.replace("'", "’"))
    return keys


def normalise_alias(alias: str) -> str:
    """An alias as it is stored in the automaton: folded, dots of abbreviations
    dropped, single spaces."""
    norm, _ = normalise(alias.strip())
    return " ".join(norm.split())


# --- Ge'ez to Latin ----------------------------------------------------------------
# Consonant of each row (row = (code - 0x1200) // 8); vowel orders ä u i a e ə o.
_ROWS = {
    0x1200: "h",
    0x1208: "l",
    0x1210: "h",
    0x1218: "m",
    0x1220: "s",
    0x1228: "r",
    0x1230: "s",
    0x1238: "sh",
    0x1240: "k",
    0x1250: "k",
    0x1260: "b",
    0x1268: "v",
    0x1270: "t",
    0x1278: "ch",
    0x1280: "h",
    0x1290: "n",
    0x1298: "ny",
    0x12A0: "",
    0x12A8: "k",
    0x12B8: "h",
    0x12C8: "w",
    0x12D0: "",
    0x12D8: "z",
    0x12E0: "zh",
    0x12E8: "y",
    0x12F0: "d",
    0x12F8: "d",
    0x1300: "j",
    0x1308: "g",
    0x1318: "g",
    0x1320: "t",
    0x1328: "ch",
    0x1330: "p",
    0x1338: "ts",
    0x1340: "ts",
    0x1348: "f",
    0x1350: "p",
}
_VOWELS = ("e", "u", "i", "a", "e", "", "o", "wa")
_TRANSLIT: dict[int, str] = {}
for _row, _cons in _ROWS.items():
    for _order, _vowel in enumerate(_VOWELS):
        if _cons == "" and _order in (0, 5):
            _vowel = "a" if _order == 0 else "i"  # አ, እ
        _TRANSLIT[_row + _order] = _cons + _vowel
# labiovelars (ቈ ኰ ጐ ኈ ...): the consonant, w, the vowel
for _row, _cons in (
    (0x1248, "k"),
    (0x1258, "k"),
    (0x1288, "h"),
    (0x12B0, "k"),
    (0x12C0, "h"),
    (0x1310, "g"),
):
    for _order, _vowel in ((0, "we"), (2, "wi"), (3, "wa"), (4, "we"), (5, "w")):
        _TRANSLIT[_row + _order] = _cons + _vowel
for _ch in "\u1361\u1362\u1363\u1364\u1365\u1366":
    _TRANSLIT[ord(_ch)] = " "


def transliterate(text: str) -> str:
    """Ge'ez to a plain Latin spelling (ፓራሲታሞል -> parasitamol); other characters as
    they are, lowercased."""
    return text.lower().translate(_TRANSLIT)


_NON_LETTERS = re.compile(r"[^a-z]")
_SOFT_C = re.compile(r"c(?=[eiy])")
_DOUBLE = re.compile(r"(.)\1+")


def phonetic(latin: str) -> str:
    """A sound key on which an English drug name and a transliterated Amharic spelling
    of it meet: paracetamol and ፓራሲታሞል give 'parasetamol' and 'parasitamol'.
    (str.replace where a plain replacement does: this runs over every name once.)"""
    key = _NON_LETTERS.sub("", latin.lower())
    for old, new in (("ph", "f"), ("th", "t"), ("ck", "k"), ("qu", "kw"), ("x", "ks")):
        if old in key:
            key = key.replace(old, new)
    key = _SOFT_C.sub("s", key)
    key = key.replace("c", "k").replace("q", "k").replace("y", "i")
    key = key.replace("ai", "i").replace("ei", "i").replace("ee", "i").replace("ou", "u")
    key = _DOUBLE.sub(r"\1", key)
    return key[:-1] if key.endswith("e") else key
