"""The shared job line reads raw rows (JSON text columns) and decoded ones alike."""

import json

from curation.job_text import describe


def test_raw_row_and_decoded_row_read_the_same():
    progress = {"step": 5, "total": 40, "loss": 1.23456, "tokens_per_s": 80.2, "eta_s": 120.9}
    raw = {"id": 3, "kind": "train", "status": "running", "progress": json.dumps(progress),
           "result": None, "error": None}
    assert describe(raw) == "#3 train running step 5/40 loss 1.235 80 tok/s ETA 120s"
    assert describe({**raw, "progress": progress}) == describe(raw)


def test_done_eval_lists_each_system_and_failures_carry_the_reason():
    result = {"systems": {"base": {"token_f1": 0.1554}, "tuned": {"token_f1": 0.3}}}
    done = {"id": 4, "kind": "eval", "status": "done", "progress": "{}", "result": json.dumps(result)}
    assert describe(done) == "#4 eval done: token F1 base 0.155, tuned 0.300"
    failed = {"id": 5, "kind": "train", "status": "failed", "progress": "", "result": "",
              "error": "out of memory: lower per_device_batch_size"}
    assert describe(failed) == "#5 train failed: out of memory: lower per_device_batch_size"
