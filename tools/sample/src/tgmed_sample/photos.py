"""Real photographs for the sample, taken from files that installed packages ship
(scikit-image's data folder, matplotlib's sample data): people, a coffee cup, a cat, a
rocket, a motorcycle, so object detection later finds real objects in them."""

from __future__ import annotations

import importlib.util
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

# name -> (package, path inside it)
SOURCES: dict[str, tuple[str, str]] = {
    "coffee": ("skimage", "data/coffee.png"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "camera": ("skimage", "data/camera.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
# What a person sees in each (COCO names), for checking detections later.
CONTENTS: dict[str, tuple[str, ...]] = {
    "coffee": ("cup",),
    "astronaut": ("person",),
    "chelsea": ("cat",),
    "camera": ("person",),
    "rocket": (),
    "motorcycle_left": ("motorcycle",),
    "grace_hopper": ("person", "tie"),
}
# The image category fct_images gives each (a product seen: product_display; a person
# and no product: lifestyle; else other), for checking the marts and the API.
CATEGORY: dict[str, str] = {
    "coffee": "product_display",
    "astronaut": "lifestyle",
    "camera": "lifestyle",
    "grace_hopper": "lifestyle",
    "chelsea": "other",
    "rocket": "other",
    "motorcycle_left": "other",
}


def source_path(name: str) -> Path:
    package, inside = SOURCES[name]
    spec = importlib.util.find_spec(package)  # locate the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"photo {name!r} comes from the {package} package, which is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / inside
    if not path.is_file():
        raise FileNotFoundError(f"photo {name!r}: {path} is missing")
    return path


@dataclass
class PhotoPool:
    """A few JPEG variants (crop, flip, size) per source photo, made once and reused."""

    seed: int
    variants_per_source: int = 6
    _images: dict[str, Image.Image] = field(default_factory=dict)
    _cache: dict[tuple[str, int], tuple[bytes, int, int]] = field(default_factory=dict)

    def _image(self, name: str) -> Image.Image:
        if name not in self._images:
            with Image.open(source_path(name)) as image:
                self._images[name] = image.convert("RGB")
        return self._images[name]

    def jpeg(self, name: str, variant: int) -> tuple[bytes, int, int]:
        """(JPEG bytes, width, height) of one variant; deterministic for (seed, name, variant)."""
        key = (name, variant % self.variants_per_source)
        if key not in self._cache:
            rng = random.Random(f"{self.seed}:{key[0]}:{key[1]}")
            image = self._image(name)
            width, height = image.size
            scale = rng.uniform(0.85, 1.0)
            crop_w, crop_h = int(width * scale), int(height * scale)
            left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
            variant_image = image.crop((left, top, left + crop_w, top + crop_h))
            if rng.random() < 0.5:
                variant_image = ImageOps.mirror(variant_image)
            longest = rng.choice((512, 640, 800))
            variant_image.thumbnail((longest, longest))
            buffer = io.BytesIO()
            variant_image.save(buffer, "JPEG", quality=rng.choice((80, 85, 90)))
            self._cache[key] = (buffer.getvalue(), *variant_image.size)
        return self._cache[key]
