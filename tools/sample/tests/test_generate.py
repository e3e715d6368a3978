import filecmp
import json
import re
from datetime import date

from PIL import Image

from tgmed_sample.generate import generate


def test_same_seed_same_bytes(tmp_path):
    generate(tmp_path / "a", posts_per_channel=40, days=30)
    generate(tmp_path / "b", posts_per_channel=40, days=30)
    compared = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not compared.diff_files and not compared.left_only and not compared.right_only
    for channel in ("CheMed123", "lobelia4cosmetics", "tikvahpharma"):
        left = (tmp_path / "a" / "exports" / channel / "result.json").read_bytes()
        assert left == (tmp_path / "b" / "exports" / channel / "result.json").read_bytes()
    other = generate(tmp_path / "c", seed=7, posts_per_channel=40, days=30)
    assert other != json.loads((tmp_path / "a" / "truth.json").read_text())


def test_default_sample_looks_like_the_real_channels(tmp_path):
    truth = generate(tmp_path)
    channels = truth["channels"]
    assert set(channels) == {"chemed123", "lobelia4cosmetics", "tikvahpharma"}
    assert sum(c["posts"] for c in channels.values()) >= 300
    first = min(date.fromisoformat(c["first_date"]) for c in channels.values())
    last = max(date.fromisoformat(c["last_date"]) for c in channels.values())
    assert (last - first).days >= 60
    for name, chan in channels.items():
        assert chan["albums"] > 0 and chan["forwards"] > 0 and chan["photos"] > 10, name
    texts = []
    for folder in (tmp_path / "exports").iterdir():
        document = json.loads((folder / "result.json").read_text())
        assert document["type"] == "public_channel"
        for message in document["messages"]:
            texts.append("".join(e["text"] for e in message["text_entities"]))
            if "photo" in message:
                with Image.open(folder / message["photo"]) as image:
                    assert image.format == "JPEG"
                    assert image.size == (message["width"], message["height"])
    joined = "\n".join(texts)
    assert re.search(r"Price:? [\d,]+ [Bb]irr", joined)
    assert re.search(r"ዋጋ፦? 1,\d{3} ብር", joined)  # Amharic with a thousands separator
    assert re.search(r"ETB \d+", joined)
    assert "ፓራሲታሞል" in joined and "Paracetamol" in joined
    assert "#pharmacy" in joined and "0911 23 45 67" in joined


def test_large_samples_add_channels(tmp_path):
    truth = generate(tmp_path, posts_per_channel=20, days=10, extra=3, photo_share=0.0)
    assert len(truth["channels"]) == 6
    assert all(c["photos"] == 0 for c in truth["channels"].values())
