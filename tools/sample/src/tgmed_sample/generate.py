"""Write Telegram Desktop exports (one folder per channel: result.json + photos/) that
look like the real channels: English and Amharic posts naming real products with prices
written the ways sellers write them, contact lines, hashtags, albums, forwards, edits
and service messages. Seeded: the same arguments give byte-identical output.

Beside the exports, truth.json records what was generated (per channel counts, product
mentions, prices, photo sources) so tests can check the pipeline against it.
"""

from __future__ import annotations

import json
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
    # product key -> the prices written for it, in birr, in text order (several: sizes or
    # packs; a range gives its low figure, "was X now Y" gives Y; empty: no price)
    products: dict[str, list[float]]
    forms: list[str] = field(default_factory=list)  # the price forms written (truth)
    services: list[str] = field(default_factory=list)  # fees for a service, not a product


# How a price is written. Each form is a template over the figure `{n}`; the name is what
# truth.json counts. English forms, then Amharic ones; `_figure` decides the digits.
EN_FORMS: tuple[tuple[str, str], ...] = (
    ("price_birr", "Price {n} birr"),
    ("price_colon_Birr", "Price: {n} Birr"),
    ("etb_before", "ETB {n}"),
    ("etb_before_glued", "ETB{n}"),
    ("etb_after", "{n} ETB"),
    ("br_after", "{n} br"),
    ("br_glued", "{n}br"),
    ("Br_after", "{n} Br"),
    ("Br_before", "Br {n}"),
    ("birr_glued", "{n}birr"),
    ("money_bag", "💰 {n} birr"),
    ("equals", "= {n} birr"),
    ("dash", "— {n} Br"),
    ("only", "only {n} birr"),
)
AM_FORMS: tuple[tuple[str, str], ...] = (
    ("waga", "ዋጋ {n} ብር"),
    ("waga_colon", "ዋጋ፦ {n} ብር"),
    ("waga_glued", "ዋጋ {n}ብር"),
    ("birr_only_am", "{n} ብር ብቻ"),
    ("birr_before_am", "ብር {n}"),
    ("money_bag_am", "💰 {n} ብር"),
    ("etb_am", "ዋጋ ETB {n}"),
)
SERVICES_EN = (
    ("repair", "🔧 BP monitor repair & calibration from {n} birr"),
    ("delivery", "🚚 Delivery {n} birr inside Addis"),
    ("delivery", "Delivery fee: {n} br (free above 2,000 birr)"),
    ("consultation", "Pharmacist consultation {n} birr"),
)
SERVICES_AM = (
    ("delivery", "🚚 ማድረሻ {n} ብር በአዲስ አበባ ውስጥ"),
    ("repair", "🔧 የደም ግፊት መለኪያ ጥገና ከ{n} ብር ጀምሮ"),
)
DISTRACTORS_EN = (
    "⏰ Open 8:30 - 20:30, Monday to Saturday",
    "Offer valid until {day}/{month}/2026",
    "Open 24/7 🌙",
    "Licence No. 0{lic}/2015",
    "Since 2012 🏥",
    "Order before 14:00 for same-day delivery",
)
DISTRACTORS_AM = (
    "ከሰኞ እስከ ቅዳሜ ከ2:30 - 12:30 ክፍት ነን",
    "ቅናሹ እስከ {day}/{month}/2026 ብቻ",
    "24/7 ክፍት ነን",
)


def _figure(rng: random.Random, amount: float, *, allow_k: bool = True) -> str:
    """The figure as sellers write it: 1250, 1,250, 120.50, 1.2k."""
    if amount != int(amount):
        return f"{amount:.2f}"
    amount = int(amount)
    if amount >= 1000:
        roll = rng.random()
        if allow_k and amount % 100 == 0 and roll < 0.12:
            return f"{amount / 1000:g}k"
        if roll < 0.75:
            return f"{amount:,}"
    elif amount >= 50 and rng.random() < 0.05:
        return f"{amount}.00"
    return str(amount)


def _price_text(rng: random.Random, amount: float, amharic: bool) -> tuple[str, str]:
    """(text, form) for one price."""
    name, template = rng.choice(AM_FORMS if amharic else EN_FORMS)
    figure = _figure(rng, amount)
    if figure.endswith("k"):
        name, template = ("k_birr", "{n} birr") if not amharic else ("k_am", "{n} ብር")
    elif "," in figure:
        name += "+thousands"
    elif "." in figure:
        name += "+decimal"
    return template.format(n=figure), name


def _name(rng: random.Random, product: Product, language: str) -> str:
    if language == "am":
        return rng.choice(product.amharic)
    if language == "mixed":
        return f"{rng.choice((product.display, *product.english))} / {product.amharic[0]}"
    if product.local:
        return product.display
    return rng.choice((product.display, product.display, *product.english))


def draw_post(
    rng: random.Random, spec: ChannelSpec, catalog: list, popularity: list
) -> tuple[str, list]:
    """A post's language (the channel's shares of Amharic and mixed posts) and the 1 to 4
    distinct products it names, drawn by popularity."""
    roll = rng.random()
    language = (
        "am"
        if roll < spec.amharic_share
        else ("mixed" if roll < spec.amharic_share + spec.mixed_share else "en")
    )
    count = 1 if rng.random() < 0.75 else rng.randint(2, 4)
    products: list = []
    while len(products) < count:
        product = rng.choices(catalog, weights=popularity)[0]
        if product not in products:
            products.append(product)
    return language, products


def channel_catalog(spec: ChannelSpec) -> tuple[list[Product], list[float]]:
    """The products a channel sells and how often it names each: within a category the
    first listed is the most popular (Zipf-like), and categories weigh differently."""
    catalog = [p for p in PRODUCTS if p.category in spec.categories]
    rank: Counter[str] = Counter()
    weights = []
    for product in catalog:
        # the channel's main trade (its first category) weighs most
        share = 1.0 if product.category == spec.categories[0] else CATEGORY_WEIGHT[product.category]
        weights.append(share * product.popularity / (rank[product.category] + 1) ** 0.9)
        rank[product.category] += 1
    return catalog, weights


CATEGORY_WEIGHT = {
    "medicine": 1.0,
    "cosmetic": 0.45,
    "device": 0.45,
    "consumable": 0.35,
    "baby": 0.5,
    "supplement": 0.35,
}


@dataclass
class ChannelWriter:
    spec: ChannelSpec
    rng: random.Random
    pool: PhotoPool
    folder: Path
    truth: dict[str, Any] = field(default_factory=dict)

    def price(self, product: Product, factor: float = 1.0) -> float:
        raw = product.base_price * factor * self.spec.price_markup * self.rng.uniform(0.9, 1.1)
        if raw < 20:
            return float(max(1, round(raw)))
        if raw < 300 and self.rng.random() < 0.1:
            return round(raw) + 0.5  # 120.50
        step = 5 if raw < 500 else (50 if raw < 20000 else 500)
        return float(max(step, int(round(raw / step) * step)))

    # -- the parts of a post ------------------------------------------------------------

    def _prices_for(self, post: Post, product: Product, language: str) -> list[str]:
        """The price part(s) for one product (a line each, or one line), recorded in
        `post`. Several prices (sizes, packs), a range, "was X now Y", or one price."""
        rng = self.rng
        amharic = language == "am"
        roll = rng.random()
        prices: list[float] = []
        if product.sizes and rng.random() < 0.35:
            sizes = rng.sample(product.sizes, k=min(len(product.sizes), rng.randint(2, 3)))
            lines = []
            for size, factor in sorted(sizes, key=lambda s: s[1]):
                amount = self.price(product, factor)
                text, form = _price_text(rng, amount, amharic)
                prices.append(amount)
                post.forms.append(form)
                lines.append(f"{size} {rng.choice(('—', '-', ':', ''))} {text}".replace("  ", " "))
            post.forms.append("several_sizes")
            post.products[product.key] = prices
            return lines if rng.random() < 0.6 else [" | ".join(lines)]
        amount = self.price(product)
        if roll < 0.1 and amount >= 20 and amount == int(amount):  # a range
            high = amount + max(5, int(amount * rng.choice((0.1, 0.15, 0.2)) / 5) * 5)
            low_text, high_text = (
                (f"{amount:,.0f}", f"{high:,.0f}")
                if amount >= 1000 and rng.random() < 0.7
                else (f"{amount:.0f}", f"{high:.0f}")
            )
            unit = rng.choice(("ብር",) if amharic else ("birr", "Birr", "br", "ETB"))
            post.forms.append("range")
            post.products[product.key] = [amount]
            return [f"{low_text}-{high_text} {unit}"]
        if roll < 0.2:  # was X now Y
            old = amount + max(10, int(amount * rng.choice((0.1, 0.15, 0.2)) / 10) * 10)
            post.forms.append("was_now")
            post.products[product.key] = [amount]
            if amharic:
                return [f"በፊት {_figure(rng, old)} ብር አሁን {_figure(rng, amount)} ብር"]
            return [
                rng.choice(
                    (
                        f"Was {_figure(rng, old)} birr, now {_figure(rng, amount)} birr 🔥",
                        f"was {_figure(rng, old)} br now {_figure(rng, amount)} br",
                    )
                )
            ]
        text, form = _price_text(rng, amount, amharic)
        post.forms.append(form)
        post.products[product.key] = [amount]
        return [text]

    def _detail(self, product: Product, written: str, post: Post) -> str:
        """A strength, pack count or volume after the name (never a price); none where
        the name has it already or each size has its own price."""
        if product.detail and self.rng.random() < 0.5:
            detail = self.rng.choice(product.detail)
            if detail not in written and len(post.products.get(product.key, ())) < 2:
                return " " + detail
        return ""

    def _single(self, parts: list, post: Post, product: Product, language: str) -> None:
        rng = self.rng
        amharic = language == "am"
        opener = rng.choice(
            ("አዲስ ገቢ! ", "አሁን ይገኛል፦ ", "")
            if amharic
            else ("New stock! ", "Now available: ", "✅ ", "")
        )
        parts.append(("plain", opener))
        written = _name(rng, product, language)
        parts.append(("bold", written))
        if rng.random() < 0.85 or product.local:
            lines = self._prices_for(post, product, language)
            # the price on the name's line, or below it (a local brand's post: on it)
            below = len(lines) > 1 or (not product.local and rng.random() < 0.6)
            glue = "\n" if below else " "
            parts.append(("plain", self._detail(product, written, post) + glue + "\n".join(lines)))
        else:
            post.products[product.key] = []
            parts.append(
                (
                    "plain",
                    self._detail(product, written, post)
                    + ("\nበመደብራችን ይገኛል" if amharic else "\nIn stock, ask for price"),
                )
            )

    def _offers(self, parts: list, post: Post, products: list[Product], language: str) -> None:
        rng = self.rng
        amharic = language == "am"
        one_line = not amharic and rng.random() < 0.25
        parts.append(("plain", "የዛሬ ቅናሾች፦\n" if amharic else "Today's offers:\n"))
        for index, product in enumerate(products):
            prices = self._prices_for(post, product, language)
            written = _name(rng, product, language)
            detail = self._detail(product, written, post)
            if one_line:  # "Cefalexin 500mg caps 120.50 birr. Ibuprofen syrup 70 birr."
                parts.append(("bold", written))
                parts.append(("plain", f"{detail} {', '.join(prices)}. "))
                continue
            parts.append(("plain", rng.choice(("- ", "• ", f"{index + 1}. ", "🔹 "))))
            parts.append(("bold", written))
            separator = rng.choice((": ", " ", " - ")) if len(prices) == 1 else "\n   "
            parts.append(("plain", f"{detail}{separator}{'; '.join(prices)}\n"))
        if one_line:
            parts.append(("plain", "\n"))

    def _price_list(self, parts: list, post: Post, products: list[Product], language: str) -> None:
        """Bare figures, one product a line; the footer names the currency."""
        rng = self.rng
        amharic = language == "am"
        parts.append(("plain", "የዋጋ ዝርዝር 📋\n" if amharic else "📋 Price list\n"))
        for product in products:
            amount = self.price(product)
            post.products[product.key] = [amount]
            written = _name(rng, product, language)
            parts.append(("bold", written))
            leader = rng.choice((" ..... ", " - ", " ", " ... "))
            detail = self._detail(product, written, post)
            parts.append(("plain", f"{detail}{leader}{_figure(rng, amount)}\n"))
        post.forms.append("bare_list")
        parts.append(
            (
                "plain",
                rng.choice(("ዋጋዎቹ በብር ናቸው", "ሁሉም ዋጋ በብር ነው"))
                if amharic
                else rng.choice(("All prices in ETB", "All prices in birr", "*Prices in ETB")),
            )
        )
        parts.append(("plain", "\n"))

    def post(self, products: list[Product], language: str) -> Post:
        rng, spec = self.rng, self.spec
        amharic = language == "am"
        parts: list[tuple[str, str]] = []
        post = Post(parts, {})
        if len(products) == 1:
            self._single(parts, post, products[0], language)
        elif rng.random() < 0.3:
            self._price_list(parts, post, products, language)
        else:
            self._offers(parts, post, products, language)
        if "device" in spec.categories and rng.random() < 0.12:
            service, template = rng.choice(SERVICES_AM if amharic else SERVICES_EN)
            fee = {"repair": 300, "delivery": 50, "consultation": 100}[service]
            parts.append(("plain", "\n" + template.format(n=fee)))
            post.services.append(service)
        if rng.random() < 0.15:
            line = rng.choice(DISTRACTORS_AM if amharic else DISTRACTORS_EN)
            parts.append(
                (
                    "plain",
                    "\n"
                    + line.format(
                        day=rng.randint(1, 28), month=rng.randint(9, 12), lic=rng.randint(100, 999)
                    ),
                )
            )
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
        return post

    def photo(self, message_id: int, when: datetime) -> dict[str, Any]:
        names, weights = zip(*self.spec.photo_mix, strict=True)
        name = self.rng.choices(names, weights=weights)[0]
        variant = self.rng.randrange(self.pool.variants_per_source)
        data, width, height = self.pool.jpeg(name, variant)
        relative = f"photos/photo_{message_id}@{when.astimezone(EAT):%d-%m-%Y_%H-%M-%S}.jpg"
        target = self.folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        # a file of its own even for the same bytes, as Telegram Desktop writes them (the
        # importer refuses hard links: one may be a host file)
        target.write_bytes(data)
        self.truth["photo_sources"][name] += 1
        self.truth["photos_by_message"][str(message_id)] = name
        return {
            "photo": relative,
            "photo_file_size": len(data),
            "width": width,
            "height": height,
        }


def _number(amount: float) -> int | float:
    return int(amount) if amount == int(amount) else amount


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
        "mentions": Counter(),  # product key -> posts naming it
        "prices": defaultdict(list),  # product key -> every price written for it, in order
        "price_forms": Counter(),  # how the prices were written (see EN_FORMS, AM_FORMS)
        "services": Counter(),  # fees for a service (repair, delivery): never a product's
        "local_products": Counter(),  # local brands no catalog lists: posts naming them
        "products_by_message": {},  # message id -> {product key: [prices]}
        "first_date": None,
        "last_date": None,
    }
    writer = ChannelWriter(spec, rng, pool, folder, truth)
    catalog, popularity = channel_catalog(spec)
    local = {p.key: p.display for p in catalog if p.local}
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
        language, products = draw_post(rng, spec, catalog, popularity)
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
        for key, prices in post.products.items():
            truth["mentions"][key] += 1
            truth["prices"][key].extend(_number(p) for p in prices)
            if key in local:
                truth["local_products"][local[key]] += 1
        truth["price_forms"].update(post.forms)
        truth["services"].update(post.services)
        truth["products_by_message"][str(message["id"])] = {
            key: [_number(p) for p in prices] for key, prices in post.products.items()
        }
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
