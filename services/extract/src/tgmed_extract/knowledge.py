"""The product knowledge base: our catalog, our medicine additions and the drug dictionary,
compiled once per process into one Aho-Corasick automaton plus small fuzzy indexes.

Sources, in order of precedence (an alias claimed by an earlier source is never taken by a
later one, so our catalog decides what a word means):

1. ``catalog/products.csv``: devices, consumables, cosmetics, baby supplies, supplements
   (and any medicine an analyst wants to pin); the one file analysts edit.
2. ``catalog/medicines.csv``: medicines the dictionary lacks or names in a way this market
   does not (Augmentin, Coartem, ORS), brand -> generic.
3. the ``drug-named-entity-recognition`` dictionary (about 107k name variants of 20k
   generics): read straight from its bz2 pickle, never through its finder (which loads
   the pickle at import, fuzzy-matches word by word and can call OMOP / download
   structures). Kept only: ASCII names of 4+ characters (shorter ones only when
   whitelisted), not a common word (``catalog/stopwords.txt``), not an alias of ours.
   US adopted names become INN (acetaminophen -> paracetamol), combinations are joined
   with " + " ("amoxicillin and clavulanic acid" -> "amoxicillin + clavulanic acid").

Brands are the values of the ``brand`` column; a brand on its own is not a product, but a
brand before a product type names that type's brand ("nivea body lotion" with no row of
its own is "body lotion", brand nivea).
"""

from __future__ import annotations

import bz2
import csv
import functools
import hashlib
import importlib.metadata
import importlib.util
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick

from tgmed_extract.normalize import (
    SEPARATOR_RE,
    alias_keys,
    normalise_alias,
    phonetic,
    transliterate,
)

CATALOG_DIR = Path(__file__).parent / "catalog"
CATEGORIES = ("medicine", "device", "consumable", "cosmetic", "baby", "supplement")
DICTIONARY_PACKAGE = "drug-named-entity-recognition"

# US adopted names and dictionary spellings -> the INN (or the name this market uses)
INN = {
    "acetaminophen": "paracetamol",
    "albuterol": "salbutamol",
    "cephalexin": "cefalexin",
    "glyburide": "glibenclamide",
    "rifampin": "rifampicin",
    "meperidine": "pethidine",
    "cyclosporine": "ciclosporin",
    "ascorbic acid": "vitamin c",
    "vitamin b 12": "vitamin b12",
    "co-amoxiclav": "amoxicillin + clavulanic acid",
    "clavulanic acids": "clavulanic acid",
    "co-trimoxazole": "sulfamethoxazole + trimethoprim",
    "lumefantrine co-artemether": "artemether + lumefantrine",
    "chlorpheniramine": "chlorphenamine",
    "petrolatum": "petroleum jelly",
}
SHORT_WHITELIST = {"ors", "asa", "inh"}
_COMBO_SPLIT = re.compile(r",\s*and\s+|,\s*|\s+and\s+|\s*/\s*")
_ASCII_NAME = re.compile(r"[a-z0-9][a-z0-9 ,.'()+/-]*")


@dataclass(frozen=True, slots=True)
class Entry:
    """What an alias means: a product (with its category, brand and parent) or a brand."""

    product: str
    category: str
    brand: str | None = None
    parent: str | None = None
    is_brand: bool = False
    source: str = "catalog"


_GEEZ = re.compile(r"[\u1200-\u137f]")


class FuzzyBucket:
    """The names of one first letter and one length, and what each means, with an index
    that finds the few of them a query can be close to.

    Why: a misspelt word met no name, so a look-up used to compare it with every name of
    its buckets (~500, 87 us a word on the bench's invented names: 50 us of the 170 us a
    post costs while the cache is cold). fuzz.ratio >= cutoff allows at most
    `edits` = (100 - cutoff) % of both lengths insertions or deletions, so a name close
    enough keeps one of its `edits` + 1 pieces whole in the query, shifted by at most
    `edits` (pigeonhole). Reading the query's substrings at those places in the pieces'
    postings gives every name that can reach the cutoff; only those are compared, in
    bucket order, so the answer is the full scan's. The pieces of a bucket are cut on its
    first look-up (cutting all of them costs 0.35 s, most buckets are never read)."""

    __slots__ = ("edits", "entries", "min_cutoff", "names", "pieces", "postings")

    def __init__(self, min_cutoff: float) -> None:
        self.names: list[str] = []
        self.entries: list[Entry] = []
        self.min_cutoff = min_cutoff  # the lowest cutoff a look-up may ask for
        self.edits: int | None = None  # None: not cut yet; -1: compare every name
        self.pieces: list[tuple[int, int]] = []  # (start, length) of each piece
        self.postings: list[dict[str, list[int]]] = []  # per piece: text -> names

    def _cut(self) -> None:
        """Cut every name into pieces for look-ups at `min_cutoff` or above."""
        self.edits = -1
        if len(self.names) < SMALL_BUCKET:
            return
        size = len(self.names[0])
        share = self.min_cutoff / (200 - self.min_cutoff)
        longest_query = int(size / share) + 1  # the longest query that reads this bucket
        edits = _edits(self.min_cutoff, size + longest_query)
        if edits + 1 > size:
            return  # pieces would be empty: every name stays a candidate
        n = edits + 1
        self.pieces = [(size * j // n, size * (j + 1) // n - size * j // n) for j in range(n)]
        self.postings = [{} for _ in range(n)]
        for i, name in enumerate(self.names):
            for (start, length), postings in zip(self.pieces, self.postings, strict=True):
                postings.setdefault(name[start : start + length], []).append(i)
        self.edits = edits

    def candidates(self, key: str, cutoff: float) -> list[int] | None:
        """Positions of the names `key` may reach `cutoff` with, in order (None: all)."""
        if self.edits is None:
            self._cut()
        edits = _edits(cutoff, len(key) + len(self.names[0]))
        if edits > self.edits:  # type: ignore[operator]
            return None
        found: set[int] = set()
        last = len(key)
        for (start, length), postings in zip(self.pieces, self.postings, strict=True):
            for at in range(max(0, start - edits), min(last - length, start + edits) + 1):
                names = postings.get(key[at : at + length])
                if names is not None:
                    found.update(names)
        return sorted(found)


def _edits(cutoff: float, total_length: int) -> int:
    """The most insertions and deletions two strings of `total_length` characters
    together may differ by and still have fuzz.ratio >= cutoff."""
    return int((100 - cutoff) * total_length / 100 + 1e-9)


# buckets smaller than this are compared name by name (rapidfuzz: ~50 ns a name)
SMALL_BUCKET = 32
# (first letter, length) -> the names and what each means
FuzzyIndex = dict[tuple[str, int], FuzzyBucket]
# the lowest cutoff each index is read with (extract._fuzzy): latin 90, sound keys 88
LATIN_CUTOFF = 90
PHONETIC_CUTOFF = 88


@dataclass(slots=True)
class Knowledge:
    automaton: ahocorasick.Automaton
    products: dict[str, Entry]
    stopwords: frozenset[str]
    # (normalised alias, entry) pairs the tolerant pass may return; indexed on first use
    fuzzy_names: list[tuple[str, Entry]]
    short_names: list[tuple[str, Entry]]
    # what a brand named alone means: its first row, for brands of devices and baby goods
    brand_default: dict[str, Entry] = field(default_factory=dict)
    alias_count: int = 0
    fuzzy_cache: dict[str, tuple[Entry, str] | None] = field(default_factory=dict)
    _short: dict[str, Entry] | None = None
    _sounds: dict[str, Entry] | None = None
    _latin: FuzzyIndex | None = None
    _phonetic: FuzzyIndex | None = None

    def short_sounds(self) -> dict[str, Entry]:
        """Sound keys of 4-5 letters of medicine names (brands like cipro, zyrtec's
        shorter kin) for an exact look-up of short Amharic spellings."""
        if self._short is None:
            short: dict[str, Entry] = {}
            for alias, entry in self.short_names:
                key = phonetic(alias)
                if 4 <= len(key) < 6:
                    short.setdefault(key, entry)
            self._short = short
        return self._short

    def sounds(self) -> dict[str, Entry]:
        """Sound key -> name, for Latin names of 6+ letters: a Latin misspelling by sound
        ("zyrtek", "glucofage") is one dictionary look-up."""
        if self._sounds is None:
            self.fuzzy_indexes()  # builds the sound keys too
        return self._sounds  # type: ignore[return-value]

    def fuzzy_indexes(self) -> tuple[FuzzyIndex, FuzzyIndex]:
        """Names by (first letter, length): Latin spellings (misspellings in English
        posts) and sound keys (Amharic spellings transliterated). A ratio of 88+ needs
        lengths within about 20% of each other, so a query reads only a few buckets."""
        if self._latin is None or self._phonetic is None:
            latin: FuzzyIndex = {}
            phon: FuzzyIndex = {}
            sounds: dict[str, Entry] = {}
            for alias, entry in self.fuzzy_names:
                if _GEEZ.search(alias):
                    key = phonetic(transliterate(alias))
                    if len(key) >= 6:
                        _add(phon, key, entry, PHONETIC_CUTOFF)
                    continue
                _add(latin, alias, entry, LATIN_CUTOFF)
                # every Latin name, device or drug: an Amharic spelling meets its sound
                key = phonetic(alias)
                sounds.setdefault(key, entry)
                _add(phon, key, entry, PHONETIC_CUTOFF)
            self._latin, self._phonetic, self._sounds = latin, phon, sounds
        return self._latin, self._phonetic


def _add(index: FuzzyIndex, name: str, entry: Entry, min_cutoff: float) -> None:
    bucket = index.get((name[0], len(name)))
    if bucket is None:
        bucket = index[name[0], len(name)] = FuzzyBucket(min_cutoff)
    bucket.names.append(name)
    bucket.entries.append(entry)


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split("|") if part.strip()]


def read_catalog(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [
            {k: (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(line for line in handle if not line.startswith("#"))
        ]
    return rows


def dictionary_path() -> Path:
    spec = importlib.util.find_spec("drug_named_entity_recognition")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{DICTIONARY_PACKAGE} is not installed: uv sync")
    return Path(spec.origin).parent / "drug_ner_dictionary.pkl.bz2"


def load_dictionary() -> dict[str, list[str]]:
    with bz2.open(dictionary_path(), "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - the pickle ships inside a pinned package
    return data["drug_variant_to_canonical"], data["drug_variant_to_variant_data"]


def canonical_medicine(name: str) -> str:
    name = name.strip().lower()
    if name in INN:
        return INN[name]
    parts = [p for p in _COMBO_SPLIT.split(name) if p]
    if len(parts) > 1:
        return " + ".join(INN.get(p, p) for p in parts)
    return name


def knowledge_version() -> str:
    """Changes when a catalog file or the dictionary package changes: extraction output
    stamped with another value is stale."""
    digest = hashlib.sha256()
    for path in sorted(CATALOG_DIR.glob("*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(importlib.metadata.version(DICTIONARY_PACKAGE).encode())
    return digest.hexdigest()[:16]


def _glued(alias: str) -> str | None:
    joined = alias.replace(" ", "")
    return joined if joined != alias and len(joined) >= 6 else None


def build() -> Knowledge:
    automaton = ahocorasick.Automaton()
    products: dict[str, Entry] = {}
    fuzzy_names: list[tuple[str, Entry]] = []
    short_names: list[tuple[str, Entry]] = []
    stopwords = frozenset(
        w.strip().lower()
        for w in (CATALOG_DIR / "stopwords.txt").read_text(encoding="utf-8").splitlines()
        if w.strip() and not w.startswith("#")
    )

    def add(alias: str, entry: Entry, fuzzy: bool = True, ascii_name: bool = False) -> bool:
        # dictionary names are lowercase ASCII already
        plain_ascii = ascii_name and SEPARATOR_RE.search(alias) is None
        keys = [alias] if plain_ascii else alias_keys(alias)
        added = False
        for key in keys:
            if (
                ascii_name
                and len(key) < 8
                and sum(c.isalnum() for c in key) < 4
                and key not in SHORT_WHITELIST
            ):
                continue  # "b.a.l." gives "bal", which "bales" would match
            if key and key not in automaton:
                geez = not ascii_name and _GEEZ.search(key) is not None
                automaton.add_word(key, (entry, geez, len(key)))
                added = True
        plain = keys[1] if len(keys) > 1 else keys[0]
        if added and fuzzy and " " not in plain:
            if len(plain) >= 6 or _GEEZ.search(plain):
                fuzzy_names.append((plain, entry))
            elif len(plain) >= 4 and entry.category in ("medicine", "supplement"):
                short_names.append((plain, entry))
        elif added and fuzzy and plain.count(" ") == 1 and len(plain) >= 9:
            # two-word names, joined: an Amharic spelling in two words meets them
            # (ኦክሲጅን ኮንሰንትሬተር ~ oxygen concentrator)
            fuzzy_names.append((plain.replace(" ", ""), entry))
        return added

    rows = read_catalog(CATALOG_DIR / "products.csv")
    for row in rows:
        entry = Entry(
            row["product"], row["category"], row.get("brand") or None, row.get("parent") or None
        )
        products[entry.product] = entry
        names = [row["product"], *_split(row.get("aliases"))]
        for name in names:
            add(name, entry)
            glued = _glued(normalise_alias(name))
            if glued:
                add(glued, entry, fuzzy=False)
        for name in _split(row.get("amharic")):
            add(name, entry)
    brands = {row["brand"]: row["category"] for row in rows if row.get("brand")}
    brand_default: dict[str, Entry] = {}
    for row in rows:
        if row.get("brand") and row["category"] in ("device", "consumable", "baby"):
            brand_default.setdefault(row["brand"], products[row["product"]])
    for brand, category in brands.items():
        entry = Entry(brand, category, brand, is_brand=True)
        add(brand, entry, fuzzy=False)
        glued = _glued(normalise_alias(brand))
        if glued:
            add(glued, entry, fuzzy=False)

    for row in read_catalog(CATALOG_DIR / "medicines.csv"):
        product = canonical_medicine(row["product"])
        category = row.get("category") or "medicine"
        generic = Entry(product, category, source="medicines")
        products.setdefault(product, generic)
        add(product, generic)
        for name in _split(row.get("aliases")):
            add(name, generic)
        for name in _split(row.get("brands")):
            add(name, Entry(product, category, name.lower(), source="medicines"))
            glued = _glued(normalise_alias(name))
            if glued:
                add(glued, Entry(product, category, name.lower(), source="medicines"), False)
        for name in _split(row.get("amharic")):
            add(name, generic)

    variants, variant_data = load_dictionary()
    generics: dict[str, Entry] = {}
    canonical_of: dict[str, str] = {}
    for variant, canonicals in variants.items():
        if (len(variant) < 4 and variant not in SHORT_WHITELIST) or variant in stopwords:
            continue
        if not _ASCII_NAME.fullmatch(variant):
            continue
        product = canonical_of.get(canonicals[0])
        if product is None:
            product = canonical_of[canonicals[0]] = canonical_medicine(canonicals[0])
        data = variant_data.get(variant)
        is_brand = (
            variant != canonicals[0]
            and INN.get(variant) != product
            and (data is None or data.get("is_brand"))
        )
        known = generics.get(product) or products.get(product)
        category = known.category if known else "medicine"
        if is_brand and " " not in variant:
            entry = Entry(product, category, variant, source="dictionary")
        else:
            entry = known or Entry(product, category, source="dictionary")
            generics[product] = entry
        add(variant, entry, ascii_name=True)
    for product, entry in generics.items():
        products.setdefault(product, entry)

    alias_count = len(automaton)
    automaton.make_automaton()
    return Knowledge(
        automaton, products, stopwords, fuzzy_names, short_names, brand_default, alias_count
    )


@functools.cache
def knowledge() -> Knowledge:
    """The knowledge base of this process, built on first use (about 1.3 s, the fuzzy
    indexes included, so no post pays for them)."""
    kb = build()
    kb.fuzzy_indexes()
    kb.short_sounds()
    return kb
