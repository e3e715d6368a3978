import hashlib
import socket
from collections import Counter
from pathlib import Path

import pytest

from tgmed_common.lake import read_detections
from tgmed_yolo.detect import run_detection
from tgmed_yolo.photos import Shard
from tgmed_yolo.runtime import Loaded, photo_size
from tgmed_yolo.settings import DetectSettings


def records(lake):
    return [r for path in lake.detection_files() for r in read_detections(path)]


def settings(model_path, **extra):
    return DetectSettings(model=str(model_path), batch_size=8, commit_every=16, **extra)


def detect_one(detector, data: bytes) -> list:
    height, width = photo_size(data)
    item = Loaded("photo", data, height, width)
    batch = detector.prepare([item], detector.input_shape(height, width))
    assert not batch.failed, batch.failed
    (found,) = detector.detect(batch, confidence=0.25, iou=0.45)
    return found


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_finds_a_bus_and_people_in_ultralytics_bus_jpg(runtime, detector, torch_detector):
    import ultralytics

    chosen = {"onnxruntime": detector, "torch": torch_detector}[runtime]
    assert chosen.runtime == runtime and chosen.device == "cpu"
    found = detect_one(
        chosen, (Path(ultralytics.__file__).parent / "assets" / "bus.jpg").read_bytes()
    )
    classes = Counter(name for _, name, _, _ in found)
    assert classes["bus"] >= 1 and classes["person"] >= 3
    for _, _, confidence, (x1, y1, x2, y2) in found:
        assert 0 < confidence <= 1 and 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080


def test_sample_photos_get_records_whose_classes_match_what_is_in_them(
    sample_lake, detector, model_path
):
    lake, truth = sample_lake
    summary = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    photos = len(lake.media_files())
    distinct = len({hashlib.sha256(p.read_bytes()).digest() for p in lake.media_files()})
    assert summary.images == photos and summary.failed == 0
    # the sample repeats its photos across posts and channels: each is detected once
    assert summary.detected == distinct < photos and summary.reused == photos - distinct
    got = {(r.channel_username, r.message_id): r for r in records(lake)}
    assert len(got) == photos
    expected = {
        "coffee": "cup",
        "astronaut": "person",
        "grace_hopper": "person",
        "camera": "person",
        "chelsea": "cat",
        "motorcycle_left": "motorcycle",
    }
    hits, totals = Counter(), Counter()
    for (channel, message_id), record in got.items():
        assert record.status == "ok" and record.image_width and record.image_height
        assert record.model_hash == detector.hash and record.model_name == model_path.name
        source = truth["channels"][channel]["photos_by_message"][str(message_id)]
        if source in expected:
            totals[source] += 1
            hits[source] += expected[source] in {d.class_name for d in record.detections}
    for source, total in totals.items():
        assert hits[source] >= 0.8 * total, (source, hits[source], total)


def test_second_run_processes_nothing_and_a_new_model_processes_everything_again(
    sample_lake, detector, model_path, tmp_path
):
    import onnx

    lake, _ = sample_lake
    first = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    again = run_detection(lake, settings(model_path), Shard(0, 1), detector)
    assert first.images > 0 and again.images == 0 and again.already_done == first.images
    # the same network with other metadata: another weights file, another hash
    other = onnx.load(str(model_path))
    other.doc_string = "retrained"
    other_path = tmp_path / "yolov8n_retrained.onnx"
    onnx.save(other, str(other_path))
    second_model = run_detection(lake, settings(other_path), Shard(0, 1))
    assert second_model.images == first.images and second_model.model_hash != first.model_hash
    assert second_model.detected == first.detected and second_model.reused == first.reused
    by_model = Counter(r.model_hash for r in records(lake))
    assert by_model == {first.model_hash: first.images, second_model.model_hash: first.images}


def test_two_shards_cover_every_image_exactly_once(sample_lake, detector, model_path):
    lake, _ = sample_lake
    zero = run_detection(lake, settings(model_path), Shard(0, 2), detector)
    one = run_detection(lake, settings(model_path), Shard(1, 2), detector)
    paths = [r.media_path for r in records(lake)]
    assert len(paths) == len(set(paths)) == len(lake.media_files()) == zero.images + one.images
    assert zero.images > 0 and one.images > 0
    # shards split by content: the same bytes are never run by two shards
    detected = [r.content_hash for r in records(lake) if not r.reused_from]
    assert len(detected) == len(set(detected)) == zero.detected + one.detected
    with pytest.raises(ValueError, match="expected i/n"):
        Shard.parse("half")
    with pytest.raises(ValueError, match="0 <= i < n"):
        Shard.parse("2/2")


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_corrupt_and_fake_images_are_recorded_as_failed_and_the_rest_go_on(
    runtime, sample_lake, detector, torch_detector, model_path
):
    chosen = {"onnxruntime": detector, "torch": torch_detector}[runtime]
    lake, _ = sample_lake
    good = lake.media_files()
    jpeg = good[0].read_bytes()
    corrupt = lake.media_file("chemed123", 900001, "jpg")
    corrupt.write_bytes(jpeg[: len(jpeg) // 3])  # cut short
    lake.media_file("lobelia4cosmetics", 900003, "jpg").write_bytes(corrupt.read_bytes())
    fake = lake.media_file("chemed123", 900002, "jpg")
    fake.write_text("this is a text file, not a photo\n")
    summary = run_detection(lake, settings(model_path), Shard(0, 1), chosen)
    assert summary.failed == 3 and summary.images == len(good) + 3
    failed = {r.message_id: r for r in records(lake) if r.status == "failed"}
    assert set(failed) == {900001, 900002, 900003}
    assert "truncated" in failed[900001].error
    assert "cannot identify image file" in failed[900002].error
    # the same cut bytes, reposted: the same outcome, without decoding them again
    assert failed[900003].error == failed[900001].error
    assert failed[900003].reused_from == failed[900001].media_path
    assert all(not r.detections for r in failed.values())
    assert sum(1 for r in records(lake) if r.status == "ok") == len(good)
    # failed images have their record: a re-run does not retry them forever
    assert run_detection(lake, settings(model_path), Shard(0, 1), chosen).images == 0


def test_no_network_at_import_or_run_time(sample_lake, model_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    lake, _ = sample_lake
    from tgmed_yolo.cli import main

    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    monkeypatch.setenv("DETECT_MODEL", str(model_path))
    monkeypatch.chdir(lake.root.parent)
    assert main(["detect"]) == 0
    assert len(records(lake)) == len(lake.media_files())


def test_missing_model_is_a_clear_error(sample_lake, monkeypatch, capsys):
    from tgmed_yolo.cli import main

    lake, _ = sample_lake
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    monkeypatch.chdir(lake.root.parent)
    assert main(["detect", "--model", "/nowhere/weights.onnx"]) == 2
    assert "DETECT_MODEL" in capsys.readouterr().out


def test_shape_groups_fill_batches_hold_little_and_lose_nothing():
    from tgmed_yolo.detect import ShapeGroups

    groups = ShapeGroups(size=3, held=4)
    shapes = [(640, 640), (480, 640), (640, 480)]
    out, most_waiting = [], 0
    for index in range(20):
        out += groups.add(shapes[index % 7 % 3], index)
        most_waiting = max(most_waiting, groups.waiting)
    out += groups.drain()
    assert most_waiting <= 4 and groups.waiting == 0
    assert sorted(i for _, group in out for i in group) == list(range(20))
    for shape, group in out:
        assert 1 <= len(group) <= 3
        assert all(shapes[i % 7 % 3] == shape for i in group)
