"""Telegram channel posts and photos into the data lake: Telethon scraper and Telegram
Desktop export importer."""
