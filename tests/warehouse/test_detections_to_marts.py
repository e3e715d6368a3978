"""Real detections (the yolo stage with the shared COCO model) through the loader into
fct_images / fct_image_detections: categories follow what is in the photos."""

from collections import Counter

import psycopg

from tgmed_common.lake import read_detections
from tgmed_sample.photos import CATEGORY as SAMPLE_CATEGORY

# every sample photo's category but the rocket's, as this test has always checked
CATEGORY = {name: category for name, category in SAMPLE_CATEGORY.items() if name != "rocket"}


def test_detections_load_and_categories_follow_the_photos(detected_warehouse):
    w = detected_warehouse
    s = w["summaries"]
    photos = sum(c["photos"] for c in w["truth"]["channels"].values())
    assert s["detect"]["images"] == photos and s["detect"]["failed"] == 0
    detections_loaded = next(x for x in s["load"]["streams"] if x["stream"] == "detections")
    assert detections_loaded["rows"] == photos and detections_loaded["quarantined"] == 0
    assert s["build"]["success"], s["build"]["failures"]

    with psycopg.connect(w["url"]) as conn:
        rows = conn.execute("""
            select i.channel_key, f.message_id, i.image_category, i.object_count
            from marts.fct_images i join marts.fct_messages f using (message_key)""").fetchall()
        objects = conn.execute("select count(*) from marts.fct_image_detections").fetchone()[0]
    assert len(rows) == photos
    # the sample posts the same photos again (reposts across channels): each is run
    # through the model once, and every post still has its image in the marts
    assert s["detect"]["reused"] > 0
    assert s["detect"]["detected"] + s["detect"]["reused"] == photos
    with psycopg.connect(w["url"]) as conn:
        reused = conn.execute("""
            select count(*), count(distinct i.message_key)
            from marts.fct_images i join staging.stg_yolo_detections d using (image_key)
            where d.is_reused_detection""").fetchone()
        reused_objects = conn.execute("""
            select count(*) from marts.fct_image_detections o
            join staging.stg_yolo_detections d using (image_key)
            where d.is_reused_detection""").fetchone()[0]
    assert reused == (s["detect"]["reused"], s["detect"]["reused"])
    assert reused_objects > 0
    # the marts' category is exactly what the detection records imply ...
    classes = {}
    for path in w["lake"].detection_files():
        for record in read_detections(path):
            classes[(record.channel_username, record.message_id)] = {
                d.class_name for d in record.detections
            }
    product = {
        "bottle",
        "wine glass",
        "cup",
        "bowl",
        "vase",
        "toothbrush",
        "hair drier",
        "scissors",
        "handbag",
        "book",
    }
    for channel, message_id, category, _ in rows:
        found = classes[(channel, message_id)]
        person, has_product = "person" in found, bool(found & product)
        implied = (
            "promotional"
            if person and has_product
            else "product_display"
            if has_product
            else "lifestyle"
            if person
            else "other"
        )
        assert category == implied, (channel, message_id, found)
    assert objects == sum(count for *_, count in rows)
    # ... and for most photos of each kind it is what a person sees in them
    right, total = Counter(), Counter()
    for channel, message_id, category, _ in rows:
        source = w["truth"]["channels"][channel]["photos_by_message"][str(message_id)]
        if source in CATEGORY:
            total[source] += 1
            right[source] += category == CATEGORY[source]
    for source, count in total.items():
        assert right[source] >= 0.75 * count, (source, right[source], count)
