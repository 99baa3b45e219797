"""Claim one pool's slot N times in a row, as one of several processes; print the overlaps seen.

python -m optimizely_assets_tests.claim_slots <dagster_home> <run_id> <claims> <start_at>

While it holds the slot, the process creates a marker file exclusively: if another process holds
the slot too, the marker exists already and that is an overlap.
"""

from __future__ import annotations

import os
import sys
import time

from dagster import DagsterInstance

from optimizely_assets.instance import atomic_slot_claims

POOL = "optimizely_canonical_events"

if __name__ == "__main__":
    home, run_id, claims, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    storage = atomic_slot_claims(DagsterInstance.from_config(home)).event_log_storage
    marker = os.path.join(home, "held")
    overlaps = 0
    while time.time() < start_at:  # every process claims from the same instant
        time.sleep(0.001)
    for i in range(claims):
        step = f"canonical_{i}"
        while not storage.claim_concurrency_slot(POOL, run_id, step).is_claimed:
            time.sleep(0.001)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            time.sleep(0.002)
            os.unlink(marker)
        except FileExistsError:
            overlaps += 1
        storage.free_concurrency_slot_for_step(run_id, step)
    print(overlaps)
