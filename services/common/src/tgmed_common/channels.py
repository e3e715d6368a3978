"""The channels file, parsed one way everywhere (the scraper's --channels-file, the
orchestrator's planning): one username per line, `#` starts a comment (whole-line or
inline), blank lines ignored, names lower-cased (Telegram usernames are
case-insensitive: see tgmed_common.records.canonical_channel), duplicates dropped.

The default list ships inside this package (`default_channels.txt`, the same names as
the repository's config/channels.txt), so it exists in every mode: a laptop, a run
container, a pod."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tgmed_common.records import canonical_channel
from tgmed_common.settings import ConfigError


def parse_channels(text: str, source: str = "channels file") -> list[str]:
    names = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        try:
            names.append(canonical_channel(name))
        except ValueError as error:
            raise ConfigError(f"{source}, line {number}: {error}") from None
    return list(dict.fromkeys(names))


def default_channels_text() -> str:
    return resources.files("tgmed_common").joinpath("default_channels.txt").read_text("utf-8")


def read_channels_file(path: Path | str | None) -> list[str]:
    """The channels of `path`, or of the packaged default when `path` is None. A missing
    or empty file is a configuration error naming it."""
    if path is None:
        return parse_channels(default_channels_text())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"channels file {path}: {error.strerror or error}; set TGMED_CHANNELS_FILE to an "
            "existing file (one username per line), or unset it for the default list"
        ) from None
    names = parse_channels(text, str(path))
    if not names:
        raise ConfigError(f"channels file {path} names no channel (one username per line)")
    return names
