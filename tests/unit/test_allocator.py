"""Freed memory stays in the process: a tensor made again after it was freed does not fault its pages in anew.

The check runs in fresh processes (this one's allocator has served many threads and tests), which load
``lens_relearn/allocator.py`` alone: they import nothing of the package, whose import takes seconds.
"""

import os
import subprocess
import sys

import lens_relearn.allocator

CHECK = """
import importlib.util, resource, sys
import torch
torch.set_num_threads(1)  # the two checks run side by side
spec = importlib.util.spec_from_file_location("allocator", sys.argv[1])
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
allocator.keep_freed_memory()
weight = torch.zeros(3072, 3072)  # 36 MiB: above glibc's largest mmap threshold
for step in range(30):
    if step == 20:  # the heap's layout has settled
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    gradient = torch.ones_like(weight)
    weight -= gradient / (gradient.sqrt() + 1e-8)  # temporaries the weight's size, as in Adam's step
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) * resource.getpagesize() / weight.nbytes / 10)
"""


def faults_per_step() -> dict[str, float]:
    """Pages a training step faults in, in the weight's sizes, by ``LENS_RELEARN_KEEP_FREED_MEMORY`` ("1", "0").

    Both processes run side by side.
    """
    checks = {
        keep: subprocess.Popen(
            [sys.executable, "-c", CHECK, lens_relearn.allocator.__file__],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, LENS_RELEARN_KEEP_FREED_MEMORY=keep),
        )
        for keep in ("1", "0")
    }
    outputs = {keep: check.communicate()[0] for keep, check in checks.items()}
    assert all(check.returncode == 0 for check in checks.values())
    return {keep: float(output) for keep, output in outputs.items()}


def test_a_training_step_reuses_the_memory_the_steps_before_freed():
    faults = faults_per_step()
    # With glibc's defaults a step faults in each of its temporaries anew (four weights' worth here).
    assert faults["1"] < faults["0"] / 2, f"a step faulted in {faults} times the weight's size"


def test_the_environment_can_keep_glibcs_defaults(monkeypatch):
    monkeypatch.setenv("LENS_RELEARN_KEEP_FREED_MEMORY", "0")
    assert lens_relearn.allocator.keep_freed_memory.__wrapped__() is False
