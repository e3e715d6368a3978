"""Products, prices, services and candidate products named in post text."""

from tgmed_extract.extract import (
    EXTRACTOR_VERSION,
    Candidate,
    Extraction,
    Mention,
    Price,
    Service,
    extract,
)
from tgmed_extract.knowledge import knowledge_version

__all__ = [
    "EXTRACTOR_VERSION",
    "Candidate",
    "Extraction",
    "Mention",
    "Price",
    "Service",
    "extract",
    "knowledge_version",
]
