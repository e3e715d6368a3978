import subprocess
import sys
import textwrap
from datetime import date

import pytest

from tgmed_common.atomic import temp_path_for
from tgmed_common.channel_lock import ChannelBusy, hold_channel
from tgmed_common.lake import DETECTIONS, Lake


def orphan(path):
    """A temporary file as a writer that died leaves it."""
    temp = temp_path_for(path)
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half")
    return temp


def test_taking_the_lock_sweeps_only_that_channels_orphans(tmp_path):
    lake = Lake(tmp_path)
    day = date(2026, 11, 1)
    mine = [
        orphan(lake.message_file(day, "chemed123", "r1")),
        orphan(lake.observation_file(day, "chemed123", "r1")),
        orphan(lake.snapshot_file(day, "chemed123", "r1")),
        orphan(lake.media_file("chemed123", 9, "jpg")),
        orphan(lake.state_file("telegram_messages", "chemed123")),
    ]
    others = [
        orphan(lake.message_file(day, "chemed1234", "r1")),  # a channel whose name extends it
        orphan(lake.media_file("lobelia4cosmetics", 3, "jpg")),
        orphan(lake.detection_file(day, "chemed123", "r1")),  # the yolo stage's, no lock
    ]
    whole = lake.message_file(day, "chemed123", "r0")
    whole.write_bytes(b"{}\n")
    assert sorted(lake.channel_temp_files("chemed123")) == sorted(mine)
    with hold_channel(lake, "CheMed123") as hold:
        assert hold.swept == 5
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in others) and whole.exists()
    assert DETECTIONS in str(others[2])


def test_a_channel_held_by_another_process_is_busy_and_its_files_untouched(tmp_path):
    lake = Lake(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from tgmed_common.channel_lock import hold_channel
                from tgmed_common.lake import Lake
                lake = Lake(Path({str(tmp_path)!r}))
                with hold_channel(lake, "chemed123"):
                    print("held", flush=True)
                    sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        in_progress = orphan(lake.media_file("chemed123", 9, "jpg"))  # the holder's write
        with (
            pytest.raises(ChannelBusy, match="another process is writing"),
            hold_channel(lake, "chemed123"),
        ):
            pass
        assert in_progress.exists()
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock
        holder.wait()
    with hold_channel(lake, "chemed123") as hold:
        assert hold.swept == 1
    assert not in_progress.exists()
