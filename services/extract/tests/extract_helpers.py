"""Helpers shared by the extract tests (conftest puts this folder on sys.path)."""


def pairs(result):
    """(product, amount, currency) of each price, in order."""
    return [(p.product, p.amount, p.currency) for p in result.prices]


def products(result):
    return [m.product for m in result.mentions]
