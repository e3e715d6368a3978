"""Products, prices and services named in post text."""
