"""tune_gc: a larger young generation, and the startup heap frozen once per process."""

import subprocess
import sys

_PROBE = """
import gc
from app.gc_tuning import GEN0_THRESHOLD, tune_gc

startup_objects = [[n] for n in range(1000)]  # stand-ins for what imports leave behind
tune_gc()
frozen = gc.get_freeze_count()
tune_gc()  # a second app started in the same process freezes nothing more
print(gc.get_threshold()[0] == GEN0_THRESHOLD, frozen >= 1000, gc.get_freeze_count() == frozen)

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after startup is still collected
del a, b
print(gc.collect() >= 2)
"""


def test_tune_gc_freezes_the_startup_heap_once_and_still_collects_new_cycles() -> None:
    # A separate interpreter: freezing is process-wide and must not touch the test runner.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True", "True", "True"]
