"""One process or many: the device, torchrun's process group, sharding and reductions.

Under ``torchrun`` every rank runs the same program on its own device. A pass over sentences
cuts them into the batches one process would use (``length_batches``) and gives rank ``r``
every ``world``-th of them, so each batch is computed exactly as one process computes it;
additive results (activation sums, word counts) are summed across ranks in one all-reduce,
the rest (predictions, probe vectors, top-k candidates) gathered and put back in the order
one process would have produced. Training is ``DistributedDataParallel`` over the same global
batches (``lens_relearn.tagger.training``). Only rank 0 writes files; every write is followed
by a barrier, so no rank reads a file before it is whole. Without ``torchrun`` (or with one
process) nothing here communicates: world 1, rank 0.

The backend is ``gloo`` on the CPU and ``nccl`` on CUDA devices.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.distributed as dist

from lens_relearn.errors import LensRelearnError

T = TypeVar("T")
TIMEOUT = datetime.timedelta(minutes=30)  # how long a rank waits for the others at a collective


def resolve_device(spec: str | None = None) -> torch.device:
    """The device a command runs on: ``cpu``, ``cuda`` or ``cuda:N``; none given: CUDA when there is one.

    Under ``torchrun`` a CUDA rank takes the GPU of its ``LOCAL_RANK``.

    Raises:
        LensRelearnError: A CUDA device is asked for where there is none, or the spec is unknown.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if spec in (None, "auto"):
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match is None:
        raise LensRelearnError(f"Unknown device {spec!r}; use cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise LensRelearnError(
            f"--device {spec}: this machine has no CUDA device (or this torch is a CPU build, "
            f"{torch.__version__}). Use --device cpu, or install a CUDA build of torch: "
            "make setup TORCH='torch --index-url https://download.pytorch.org/whl/cu124'."
        )
    index = int(match.group(1) if match.group(1) is not None else os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise LensRelearnError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return torch.device("cuda", index)


def mixed_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA device (training and statistics run faster there); nothing on the CPU.

    Example:
        >>> with mixed_precision(torch.device("cpu")):
        ...     (torch.ones(2) @ torch.ones(2)).dtype
        torch.float32
    """
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def start(device: torch.device) -> None:
    """Join torchrun's process group if this process is one of several ranks (else do nothing)."""
    if world_size_from_environment() > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=TIMEOUT)


def stop() -> None:
    """Leave the process group (after which every process is on its own: world 1, rank 0)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size_from_environment() -> int:
    """The number of ranks torchrun started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def world() -> int:
    """Ranks in the process group (1 when there is none)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when there is no process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank is here."""
    if world() > 1:
        dist.barrier()


def shard(batches: Sequence[T]) -> list[T]:
    """This rank's share of some batches: every ``world``-th one, from its rank on.

    Example:
        >>> shard([[0, 1], [2], [3, 4]])  # one process: all of them
        [[0, 1], [2], [3, 4]]
    """
    return list(batches[rank() :: world()])


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over the ranks, in place (every rank gets the sum); returns it."""
    if world() > 1:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        moved = tensor.to(device)
        dist.all_reduce(moved)
        tensor.copy_(moved)
    return tensor


def gather(value: T) -> list[T]:
    """Every rank's value (any picklable object), in rank order, on every rank."""
    if world() == 1:
        return [value]
    values: list = [None] * world()
    dist.all_gather_object(values, value)
    return values


def in_batch_order(per_batch: Sequence[T]) -> list[T]:
    """Every rank's per-batch results (this rank's from ``shard``), gathered in the order one process makes them.

    Example:
        >>> in_batch_order(["a", "b", "c"])  # one process: as they are
        ['a', 'b', 'c']
    """
    per_rank = gather(list(per_batch))
    return [
        per_rank[r][j] for j in range(max(map(len, per_rank))) for r in range(len(per_rank)) if j < len(per_rank[r])
    ]
