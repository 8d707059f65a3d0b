"""Freed memory stays in the process: a tensor made again after it was freed does not fault its pages in anew.

The check runs in a fresh process (this one's allocator has served many threads and tests), which loads
``lens_relearn/allocator.py`` alone: it imports nothing of the package, whose import takes seconds.
"""

import subprocess
import sys

import lens_relearn.allocator

CHECK = """
import importlib.util, resource, sys
import torch
spec = importlib.util.spec_from_file_location("allocator", sys.argv[1])
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
assert allocator.keep_freed_memory()
weight = torch.nn.Parameter(torch.zeros(3072, 3072))  # 36 MiB: above glibc's largest mmap threshold
optimizer = torch.optim.Adam([weight])
for step in range(5):  # Adam makes temporaries the weight's size at every step
    if step == 2:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    weight.grad = torch.ones_like(weight)
    optimizer.step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * resource.getpagesize() / weight.nbytes / 3)
"""


def test_a_step_of_adam_reuses_the_memory_the_step_before_freed():
    done = subprocess.run(
        [sys.executable, "-c", CHECK, lens_relearn.allocator.__file__], capture_output=True, text=True, check=True
    )
    # Without keep_freed_memory a step faults in three times the weight's size (Adam's temporaries), every step.
    assert float(done.stdout) < 1, f"a step faulted in {done.stdout.strip()} times the weight's size"


def test_the_environment_can_keep_glibcs_defaults(monkeypatch):
    monkeypatch.setenv("LENS_RELEARN_KEEP_FREED_MEMORY", "0")
    assert lens_relearn.allocator.keep_freed_memory.__wrapped__() is False
