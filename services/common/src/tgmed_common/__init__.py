"""Shared lake contract and conventions for every stage of the platform."""
