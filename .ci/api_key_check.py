"""The API as the person at the terminal meets it after `make demo`: their key (the file
make demo wrote) reads /api/channels; no key, or a wrong one, gets 401.

    python .ci/api_key_check.py BASE_URL KEY_FILE
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path


def status(url: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:  # noqa: S310
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> int:
    base, key_file = sys.argv[1], Path(sys.argv[2])
    key = key_file.read_text().strip()
    url = f"{base}/api/channels"
    got = {"key": status(url, key), "none": status(url, None), "wrong": status(url, key[:-1] + "x")}
    print(
        f"API {url}: with the key in {key_file}: {got['key']}, without: {got['none']},"
        f" a wrong one: {got['wrong']}"
    )
    return 0 if got == {"key": 200, "none": 401, "wrong": 401} else 1


if __name__ == "__main__":
    sys.exit(main())
