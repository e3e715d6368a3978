"""Write Telegram Desktop exports (one folder per channel: result.json + photos/) that
look like the real channels: English and Amharic posts naming real products with prices
written the ways sellers write them, contact lines, hashtags, albums, forwards, edits
and service messages. Seeded: the same arguments give byte-identical output.

Beside the exports, truth.json records what was generated (per channel counts, product
mentions, prices, photo sources) so tests can check the pipeline against it.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tgmed_sample.catalog import CHANNELS, FORWARD_SOURCES, PRODUCTS, ChannelSpec, Product
from tgmed_sample.photos import CONTENTS, PhotoPool

EAT = timezone(timedelta(hours=3))  # the sellers' clock, and the exporting machine's
DEFAULT_END = date(2026, 10, 31)
WEEKDAY_WEIGHTS = (1.1, 1.0, 1.0, 1.05, 1.2, 1.3, 0.5)  # Monday..Sunday


@dataclass
class Post:
    parts: list[tuple[str, str]]  # (entity type, text); "plain" for plain text
    products: dict[str, int | None]  # product key -> price written (None: no price)


def _price_text(rng: random.Random, price: int, amharic: bool) -> str:
    number = f"{price:,}" if price >= 1000 and rng.random() < 0.7 else str(price)
    if amharic:
        return rng.choice((f"ዋጋ {number} ብር", f"ዋጋ፦ {number} ብር", f"{number} ብር ብቻ"))
    return rng.choice(
        (
            f"Price {number} birr",
            f"Price: {number} Birr",
            f"ETB {number}",
            f"{number} ETB",
            f"💰 {number} birr",
        )
    )


def _name(rng: random.Random, product: Product, language: str) -> str:
    if language == "am":
        return rng.choice(product.amharic)
    if language == "mixed":
        return f"{rng.choice((product.display, *product.english))} / {product.amharic[0]}"
    return rng.choice((product.display, product.display, *product.english))


@dataclass
class ChannelWriter:
    spec: ChannelSpec
    rng: random.Random
    pool: PhotoPool
    folder: Path
    truth: dict[str, Any] = field(default_factory=dict)
    _written: dict[tuple[str, int], Path] = field(default_factory=dict)

    def price(self, product: Product) -> int:
        raw = product.base_price * self.spec.price_markup * self.rng.uniform(0.9, 1.1)
        step = 5 if raw < 500 else 50
        return max(step, int(round(raw / step) * step))

    def post(self, products: list[Product], language: str) -> Post:
        rng, spec = self.rng, self.spec
        amharic = language == "am"
        parts: list[tuple[str, str]] = []
        chosen: dict[str, int | None] = {}
        if len(products) == 1:
            product = products[0]
            opener = rng.choice(
                ("አዲስ ገቢ! ", "አሁን ይገኛል፦ ", "")
                if amharic
                else ("New stock! ", "Now available: ", "✅ ", "")
            )
            parts.append(("plain", opener))
            parts.append(("bold", _name(rng, product, language)))
            price = self.price(product) if rng.random() < 0.85 else None
            chosen[product.key] = price
            if price is not None:
                parts.append(("plain", "\n" + _price_text(rng, price, amharic)))
            else:
                parts.append(
                    ("plain", "\nበመደብራችን ይገኛል" if amharic else "\nIn stock, ask for price")
                )
        else:
            parts.append(("plain", "የዛሬ ቅናሾች፦\n" if amharic else "Today's offers:\n"))
            for product in products:
                price = self.price(product)
                chosen[product.key] = price
                parts.append(("plain", "- "))
                parts.append(("bold", _name(rng, product, language)))
                parts.append(("plain", f": {_price_text(rng, price, amharic)}\n"))
        contact = rng.random()
        if contact < 0.8:
            parts.append(("plain", "\nለበለጠ መረጃ ይደውሉ " if amharic else "\n📞 Call/WhatsApp "))
            parts.append(("phone", spec.phone))
        if contact < 0.5:
            parts.append(("plain", f"\n📍 {spec.place}"))
        tags = rng.sample(spec.hashtags, k=rng.randint(1, len(spec.hashtags)))
        parts.append(("plain", "\n"))
        for index, tag in enumerate(tags):
            parts.append(("hashtag", tag))
            if index < len(tags) - 1:
                parts.append(("plain", " "))
        return Post(parts, chosen)

    def photo(self, message_id: int, when: datetime) -> dict[str, Any]:
        names, weights = zip(*self.spec.photo_mix, strict=True)
        name = self.rng.choices(names, weights=weights)[0]
        variant = self.rng.randrange(self.pool.variants_per_source)
        data, width, height = self.pool.jpeg(name, variant)
        relative = f"photos/photo_{message_id}@{when.astimezone(EAT):%d-%m-%Y_%H-%M-%S}.jpg"
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        first = self._written.get((name, variant))
        if first is None:
            target.write_bytes(data)
            self._written[(name, variant)] = target
        else:
            try:  # same bytes: a hard link keeps large samples small on disk
                os.link(first, target)
            except OSError:
                target.write_bytes(data)
        self.truth["photo_sources"][name] += 1
        self.truth["photos_by_message"][str(message_id)] = name
        return {
            "photo": relative,
            "photo_file_size": len(data),
            "width": width,
            "height": height,
        }


def _text_fields(parts: list[tuple[str, str]]) -> dict[str, Any]:
    entities = [{"type": kind, "text": text} for kind, text in parts if text]
    if all(kind == "plain" for kind, _ in parts):
        return {"text": "".join(text for _, text in parts), "text_entities": entities}
    text = [
        text if kind == "plain" else {"type": kind, "text": text} for kind, text in parts if text
    ]
    return {"text": text, "text_entities": entities}


def _stamp(when: datetime) -> dict[str, str]:
    return {
        "date": when.astimezone(EAT).replace(tzinfo=None).isoformat(timespec="seconds"),
        "date_unixtime": str(int(when.timestamp())),
    }


def _post_times(rng: random.Random, count: int, days: int, end: date) -> list[datetime]:
    start = end - timedelta(days=days - 1)
    day_list = [start + timedelta(days=i) for i in range(days)]
    # busier towards the end (growing channels) and on Fridays/Saturdays
    weights = [
        WEEKDAY_WEIGHTS[d.weekday()] * (0.7 + 0.6 * i / days) for i, d in enumerate(day_list)
    ]
    times = []
    for day in rng.choices(day_list, weights=weights, k=count):
        local = datetime(day.year, day.month, day.day, tzinfo=EAT) + timedelta(
            hours=rng.randint(7, 20), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)
        )
        times.append(local.astimezone(UTC))
    return sorted(times)


def write_channel(
    spec: ChannelSpec,
    out: Path,
    *,
    seed: int,
    posts: int,
    days: int,
    end: date,
    pool: PhotoPool,
    channel_id: int,
) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{spec.username}")
    folder = out / spec.username
    folder.mkdir(parents=True, exist_ok=True)
    truth: dict[str, Any] = {
        "title": spec.title,
        "posts": 0,
        "messages": 0,
        "service_messages": 0,
        "photos": 0,
        "albums": 0,
        "forwards": 0,
        "edited": 0,
        "amharic_posts": 0,
        "photo_sources": Counter(),
        "photos_by_message": {},
        "mentions": Counter(),
        "prices": defaultdict(list),
        "first_date": None,
        "last_date": None,
    }
    writer = ChannelWriter(spec, rng, pool, folder, truth)
    catalog = [p for p in PRODUCTS if p.category in spec.categories]
    popularity = [1 / (rank + 1) ** 0.9 for rank in range(len(catalog))]
    times = _post_times(rng, posts, days, end)
    messages: list[dict[str, Any]] = []
    next_id = 1

    def service(when: datetime, action: str, **extra: Any) -> None:
        nonlocal next_id
        messages.append(
            {
                "id": next_id,
                "type": "service",
                **_stamp(when),
                "actor": spec.title,
                "actor_id": f"channel{channel_id}",
                "action": action,
                **extra,
                "text": "",
                "text_entities": [],
            }
        )
        truth["service_messages"] += 1
        next_id += 1

    service(times[0] - timedelta(hours=2), "create_channel", title=spec.title)
    for number, when in enumerate(times):
        roll = rng.random()
        language = (
            "am"
            if roll < spec.amharic_share
            else ("mixed" if roll < spec.amharic_share + spec.mixed_share else "en")
        )
        count = 1 if rng.random() < 0.75 else rng.randint(2, 4)
        products = []
        while len(products) < count:
            product = rng.choices(catalog, weights=popularity)[0]
            if product not in products:
                products.append(product)
        post = writer.post(products, language)
        message: dict[str, Any] = {
            "id": next_id,
            "type": "message",
            **_stamp(when),
            "from": spec.title,
            "from_id": f"channel{channel_id}",
        }
        if rng.random() < 0.05:
            message["forwarded_from"] = rng.choice(FORWARD_SOURCES)
            truth["forwards"] += 1
        if rng.random() < 0.1:
            edited = when + timedelta(minutes=rng.randint(1, 300))
            message["edited"] = (
                edited.astimezone(EAT).replace(tzinfo=None).isoformat(timespec="seconds")
            )
            message["edited_unixtime"] = str(int(edited.timestamp()))
            truth["edited"] += 1
        album = 0
        if rng.random() < spec.photo_share:
            message.update(writer.photo(next_id, when))
            truth["photos"] += 1
            if rng.random() < 0.12:
                album = rng.randint(1, 2)
                truth["albums"] += 1
        message.update(_text_fields(post.parts))
        messages.append(message)
        next_id += 1
        for _ in range(album):  # the rest of an album: photos without text, same moment
            extra = {
                "id": next_id,
                "type": "message",
                **_stamp(when),
                "from": spec.title,
                "from_id": f"channel{channel_id}",
                **writer.photo(next_id, when),
                "text": "",
                "text_entities": [],
            }
            messages.append(extra)
            truth["photos"] += 1
            next_id += 1
        truth["posts"] += 1
        truth["amharic_posts"] += language == "am"
        for key, price in post.products.items():
            truth["mentions"][key] += 1
            if price is not None:
                truth["prices"][key].append(price)
        if number and number % 97 == 0:
            service(when + timedelta(seconds=5), "pin_message", message_id=next_id - 1)
    truth["messages"] = sum(1 for m in messages if m["type"] == "message")
    truth["first_date"] = times[0].date().isoformat()
    truth["last_date"] = times[-1].date().isoformat()
    export = {"name": spec.title, "type": "public_channel", "id": channel_id, "messages": messages}
    (folder / "result.json").write_text(
        json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return truth


def extra_channels(count: int) -> list[ChannelSpec]:
    """More channels for large benchmark samples, shaped like the real three."""
    made = []
    for index in range(count):
        base = CHANNELS[index % len(CHANNELS)]
        made.append(
            ChannelSpec(
                f"{base.username.lower()}_{index + 1:03d}",
                f"{base.title} {index + 1}",
                base.categories,
                base.amharic_share,
                base.mixed_share,
                base.price_markup * (0.9 + 0.02 * (index % 10)),
                base.photo_share,
                base.photo_mix,
                base.phone,
                base.place,
                base.hashtags,
            )
        )
    return made


def generate(
    out: Path,
    *,
    seed: int = 42,
    posts_per_channel: int = 130,
    days: int = 75,
    end: date = DEFAULT_END,
    extra: int = 0,
    photo_share: float | None = None,
) -> dict[str, Any]:
    """Write the exports under `out` (one folder per channel) and `out/../truth.json`
    style summary at `out/truth.json`; returns the truth."""
    out.mkdir(parents=True, exist_ok=True)
    pool = PhotoPool(seed)
    specs = list(CHANNELS) + extra_channels(extra)
    if photo_share is not None:
        specs = [ChannelSpec(**{**s.__dict__, "photo_share": photo_share}) for s in specs]
    truth: dict[str, Any] = {"seed": seed, "photo_contents": CONTENTS, "channels": {}}
    for index, spec in enumerate(specs):
        channel_truth = write_channel(
            spec,
            out / "exports",
            seed=seed,
            posts=posts_per_channel,
            days=days,
            end=end,
            pool=pool,
            channel_id=1_500_000_000 + index,
        )
        truth["channels"][spec.username.lower()] = channel_truth
    (out / "truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8"
    )
    return truth
