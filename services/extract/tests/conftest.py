import sys
from pathlib import Path

import pytest

# pytest runs with --import-mode=importlib: the helpers module is found through sys.path
sys.path.insert(0, str(Path(__file__).parent))

from tgmed_extract import extract as extract_function


@pytest.fixture(scope="session")
def extract():
    return extract_function
