"""Deterministic generator of realistic Telegram Desktop channel exports."""
