"""One parser for the channels file, and a default list that exists in every mode."""

from pathlib import Path

import pytest

from tgmed_common.channels import default_channels_text, parse_channels, read_channels_file
from tgmed_common.settings import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_comments_blank_lines_case_and_duplicates():
    text = (
        "# channels\nCheMed123   # inline comment\n\n@lobelia4cosmetics\nchemed123\n"
        "  tikvahpharma#x\n"
    )
    assert parse_channels(text) == ["chemed123", "lobelia4cosmetics", "tikvahpharma"]


def test_a_bad_name_is_a_configuration_error_naming_the_line(tmp_path):
    path = tmp_path / "channels.txt"
    path.write_text("good_one\nnot a name\n")
    with pytest.raises(ConfigError, match=r"channels.txt, line 2"):
        read_channels_file(path)


def test_missing_or_empty_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="TGMED_CHANNELS_FILE"):
        read_channels_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="names no channel"):
        read_channels_file(tmp_path / "empty.txt")


def test_the_shipped_default_is_the_repository_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing relative to the working directory
    assert default_channels_text() == (ROOT / "config" / "channels.txt").read_text()
    assert read_channels_file(None) == ["chemed123", "lobelia4cosmetics", "tikvahpharma"]
