"""TensorBoard event writing without TensorFlow."""

import json

from ganno_jax.trainer import runlog


def test_crc32c_known_vector():
    assert runlog.crc32c(b"123456789") == 0xE3069283


def test_events_roundtrip_and_jsonl_truncation(tmp_path):
    log = runlog.RunLogger(str(tmp_path))
    for u in (1, 2, 3):
        log.write({"update": u, "reward": 0.5 * u, "final_val_accuracy": None})
    log.close()
    events = list((tmp_path / "tensorboard").iterdir())
    payloads = runlog.read_tfrecords(str(events[0]))  # checks every CRC
    assert payloads[0].endswith(b"brain.Event:2") and len(payloads) == 4
    assert b"reward" in payloads[3]
    log = runlog.RunLogger(str(tmp_path))
    log.truncate_after(2)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2]
