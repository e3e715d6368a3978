"""No photo detected twice: the same bytes in another post or channel reuse the record of
the photo the model ran on, until the model changes."""

import hashlib
import json

from tgmed_common.lake import Lake, read_detections
from tgmed_sample.photos import PhotoPool
from tgmed_yolo.detect import run_detection
from tgmed_yolo.photos import Shard
from tgmed_yolo.settings import DetectSettings


def records(lake):
    return {
        (r.channel_username, r.message_id): r
        for path in lake.detection_files()
        for r in read_detections(path)
    }


def settings(model_path):
    return DetectSettings(model=str(model_path), batch_size=4, commit_every=2)


def put(lake: Lake, channel: str, message_id: int, data: bytes) -> None:
    path = lake.media_file(channel, message_id, "jpg")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def retrained(model_path, tmp_path):
    import onnx

    other = onnx.load(str(model_path))
    other.doc_string = "retrained"  # the same network, another file: another model hash
    path = tmp_path / "yolov8n_retrained.onnx"
    onnx.save(other, str(path))
    return path


def test_a_repost_across_two_channels_is_detected_once_and_a_second_model_detects_it_again(
    tmp_path, model_path, detector
):
    pool = PhotoPool(seed=3)
    coffee, hopper = pool.jpeg("coffee", 0)[0], pool.jpeg("grace_hopper", 0)[0]
    lake = Lake(tmp_path / "lake")
    put(lake, "chemed123", 10, coffee)
    put(lake, "lobelia4cosmetics", 77, coffee)  # the same photo, reposted by another channel
    put(lake, "lobelia4cosmetics", 78, hopper)

    first = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    assert (first.images, first.detected, first.reused) == (3, 2, 1)
    got = records(lake)
    original, repost = got[("chemed123", 10)], got[("lobelia4cosmetics", 77)]
    assert original.reused_from is None
    assert repost.reused_from == original.media_path != repost.media_path
    assert repost.content_hash == original.content_hash == hashlib.sha256(coffee).hexdigest()
    assert repost.detections == original.detections
    assert "cup" in {d.class_name for d in repost.detections}
    assert (repost.image_width, repost.image_height) == (
        original.image_width,
        original.image_height,
    )
    assert repost.model_hash == original.model_hash == detector.hash

    # a later forward into a third channel reuses the record already in the lake
    put(lake, "tikvahpharma", 5, coffee)
    later = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    assert (later.images, later.detected, later.reused, later.already_done) == (1, 0, 1, 3)
    assert records(lake)[("tikvahpharma", 5)].reused_from == original.media_path

    # a changed model detects every distinct photo again (the reposts once, not thrice)
    second = run_detection(lake, settings(retrained(model_path, tmp_path)), Shard(0, 1))
    assert second.model_hash != detector.hash
    assert (second.images, second.detected, second.reused) == (4, 2, 2)
    by_model = {}
    for path in lake.detection_files():
        for record in read_detections(path):
            by_model.setdefault(record.model_hash, []).append(record)
    assert sorted(len(v) for v in by_model.values()) == [4, 4]
    assert sum(not r.reused_from for r in by_model[second.model_hash]) == 2


def test_shards_split_by_content_so_reposts_are_detected_once_across_shards(
    tmp_path, model_path, detector
):
    pool = PhotoPool(seed=4)
    photos = [pool.jpeg(name, 0)[0] for name in ("coffee", "chelsea", "astronaut", "rocket")]
    lake = Lake(tmp_path / "lake")
    for index, data in enumerate(photos):  # each photo in three channels
        for channel in ("chemed123", "lobelia4cosmetics", "tikvahpharma"):
            put(lake, channel, 100 + index, data)
    zero = run_detection(lake, settings(model_path), Shard(0, 2), detector)
    one = run_detection(lake, settings(model_path), Shard(1, 2), detector)
    assert zero.images + one.images == 12 and zero.detected + one.detected == 4
    assert zero.reused + one.reused == 8
    got = records(lake)
    assert len(got) == 12
    sources = {r.content_hash: r.media_path for r in got.values() if not r.reused_from}
    assert len(sources) == 4
    for record in got.values():
        assert (record.reused_from or record.media_path) == sources[record.content_hash]


def test_version_1_records_count_as_done_and_are_not_reused(tmp_path, model_path, detector):
    """Lakes from before content hashes: their records keep their photos done; a new
    photo with the same bytes is detected (an old record has no hash to match)."""
    coffee = PhotoPool(seed=3).jpeg("coffee", 0)[0]
    lake = Lake(tmp_path / "lake")
    put(lake, "chemed123", 10, coffee)
    run_detection(lake, settings(model_path), Shard(0, 1), detector)
    (path,) = lake.detection_files()
    line = json.loads(path.read_text())
    for key in ("content_hash", "reused_from"):
        del line[key]
    line["schema_version"] = 1
    path.write_text(json.dumps(line) + "\n")
    put(lake, "tikvahpharma", 11, coffee)
    again = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    assert (again.already_done, again.detected, again.reused) == (1, 1, 0)
