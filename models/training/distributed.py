"""One training process or many: the device, the process group and the few collectives used.

Under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables in
the environment) :func:`init_distributed` joins the process group, with the ``nccl`` backend on
CUDA and ``gloo`` on the CPU, on one or many machines alike. Started plainly it returns a
single-process context whose collectives do nothing, so the training loop reads the same
either way. ``python -m app evaluate`` uses it too, with ``gloo`` everywhere (see
:func:`init_distributed`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedContext", "init_distributed", "resolve_device"]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The training device for ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    ``"auto"`` is CUDA when available, else the CPU. A bare ``"cuda"`` becomes
    ``cuda:<local_rank>``, one GPU per process.

    Raises:
        ValueError: For an unknown name, or CUDA asked for where none is available.
    """
    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available here")
        if name == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the run.

    Attributes:
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: Number of processes.
        local_rank: Rank on this machine (selects the GPU).
        device: The device this process trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process (a process group exists)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that prints and writes files."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes; returns a new tensor on the tensor's device."""
        if not self.enabled:
            return tensor.clone()
        work = tensor.detach().to(self.device, copy=True)
        dist.all_reduce(work, op=dist.ReduceOp.SUM)
        return work.to(tensor.device)

    def all_reduce_min(self, value: int) -> int:
        """The smallest ``value`` over all processes."""
        if not self.enabled:
            return value
        work = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.all_reduce(work, op=dist.ReduceOp.MIN)
        return int(work.item())

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable) on every process; ``obj`` itself for a single process."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj`` (picklable), in rank order, on rank 0; None on the others."""
        if not self.enabled:
            return [obj]
        gathered: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, gathered, dst=0)
        return gathered

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            dist.barrier()

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every process.

        DDP keeps parameters equal, but each process updates its BatchNorm statistics on its
        own batches; after this, all processes hold the model rank 0 saves.
        """
        if not self.enabled:
            return
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` wrapped in DistributedDataParallel when there are several processes."""
        if not self.enabled:
            return model
        if self.device.type == "cuda":
            return DistributedDataParallel(model, device_ids=[self.device.index])
        return DistributedDataParallel(model)

    def shutdown(self) -> None:
        """Leave the process group (a no-op for a single process)."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(
    device: str = "auto", backend: str | None = None, timeout: timedelta | None = None
) -> DistributedContext:
    """Set up this process: join torchrun's process group if launched by it, pick the device.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :func:`resolve_device`).
        backend: the process group's backend; None: ``nccl`` on CUDA, ``gloo`` on the CPU.
            ``gloo`` on CUDA suits collectives of small Python objects and lets several
            processes share one GPU, which ``nccl`` refuses.
        timeout: how long a collective waits for the slowest process; None: torch's default.

    Returns:
        The context; call :meth:`DistributedContext.shutdown` when done.

    Raises:
        ValueError: For a bad ``device``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size > 1:
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        backend = backend or ("nccl" if resolved.type == "cuda" else "gloo")
        if not dist.is_initialized():
            # device_id binds NCCL to this process's GPU up front (no guessing, no hangs).
            options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            dist.init_process_group(
                backend=backend,
                device_id=resolved if backend == "nccl" and resolved.type == "cuda" else None,
                **options,
            )
    return DistributedContext(rank, world_size, local_rank, resolved)
