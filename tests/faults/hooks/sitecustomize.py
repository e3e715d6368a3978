"""Loaded by every Python process of the fault suite's platform (PYTHONPATH): inert,
except in a `tgmed-scraper` process when TGMED_CHAOS_TELEGRAM names a fake Telegram's
configuration, where the scraper gets the fake client (chaos/fake_telegram.py) instead
of a connection to Telegram's servers, which cannot be reached from here."""

import os
import sys

if os.environ.get("TGMED_CHAOS_TELEGRAM") and sys.argv and sys.argv[0].endswith("tgmed-scraper"):
    from chaos.fake_telegram import install

    install()
