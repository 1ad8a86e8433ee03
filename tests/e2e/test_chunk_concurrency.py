"""ChunkConcurrency: how many GLOBE batches of one file go through their steps at once. The map
reads it from the timing Ingest passes on, so the template parameter is what the run obeys."""
from __future__ import annotations

import json
import shutil
import threading

from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file


class _Overlap:
    """A function interceptor that remembers the most invocations that were running at once."""

    def __init__(self) -> None:
        self.busy, self.most, self._lock = 0, 0, threading.Lock()

    def __call__(self, function, handler, event, context):
        with self._lock:
            self.busy += 1
            self.most = max(self.most, self.busy)
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self.busy -= 1


def test_given_chunk_concurrency_1_when_a_file_of_four_chunks_runs_then_no_two_chunks_render_at_once(tmp_path, make_batch, bsn):
    # Given a local bbconnect whose template parameter ChunkConcurrency is 1, and chunks of 2 letters
    shutil.copytree(REPO_ROOT / "config", tmp_path / "config")
    simulator = simulator_config_from_file(REPO_ROOT / "events" / "simulator" / "demo.json")
    batch = make_batch("four-chunks.jsonl", [(f"CC-2027-{n:04d}", bsn(7700 + n)) for n in range(8)])
    overlap = _Overlap()
    with LocalEnvironment(config_dir=tmp_path / "config" / "tenants", simulator=simulator, chunk_size=2,
                          workdir=tmp_path / "local", parameter_overrides={"ChunkConcurrency": 1}) as env:
        for name in ("CheckSubscriptionsFunction", "RenderFunction", "FallbackFunction"):
            env.deployment.function(name).interceptor = overlap
        # When the file is dropped
        run = env.wait_for_execution(env.drop(batch, "gemeente-lv"), timeout=300)
        report = json.loads(env.outbox_object(run.output["report"]))

    # Then every letter is accounted for, and the chunks' steps never overlapped
    assert run.status == "SUCCEEDED"
    assert report["counts"]["received"] == 8
    assert report["counts"]["delivered"] + report["counts"]["paper"] + report["counts"]["failed"] == 8
    assert overlap.most == 1


def test_given_the_default_chunk_concurrency_then_chunks_do_run_side_by_side(local_env, make_batch, bsn):
    # Given the shared local bbconnect (ChunkConcurrency 10, chunks of 50) and a file of three chunks
    batch = make_batch("three-chunks.jsonl", [(f"CC-2027-{n:04d}", bsn(7800 + n)) for n in range(150)])
    overlap = _Overlap()
    render = local_env.deployment.function("RenderFunction")
    render.interceptor = overlap
    try:
        # When it runs
        run = local_env.wait_for_execution(local_env.drop(batch, "gemeente-lv"), timeout=600)
    finally:
        render.interceptor = None
    # Then more than one chunk rendered at a time (the limit above is what made them wait)
    assert run.status == "SUCCEEDED"
    assert overlap.most > 1
