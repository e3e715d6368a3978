"""`tgmed-sample`: write the bundled sample (or a large benchmark sample)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tgmed_sample.generate import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tgmed-sample",
        description="Write seeded Telegram Desktop exports (OUT/exports/<channel>/) and "
        "OUT/truth.json. Defaults give the bundled sample: 3 channels, 130 posts each, "
        "75 days.",
    )
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--posts-per-channel", type=int, default=130)
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument(
        "--extra-channels",
        type=int,
        default=0,
        help="more channels shaped like the real three (large samples)",
    )
    parser.add_argument(
        "--photo-share",
        type=float,
        default=None,
        help="share of posts with a photo (default: per channel)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    truth = generate(
        args.out,
        seed=args.seed,
        posts_per_channel=args.posts_per_channel,
        days=args.days,
        extra=args.extra_channels,
        photo_share=args.photo_share,
    )
    channels = truth["channels"].values()
    print(
        json.dumps(
            {
                "stage": "sample",
                "out": str(args.out),
                "channels": len(truth["channels"]),
                "messages": sum(c["messages"] for c in channels),
                "photos": sum(c["photos"] for c in channels),
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
