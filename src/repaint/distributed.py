"""Running under `torchrun`: one process per device, each with a disjoint share of the inputs.

`torchrun --nproc_per_node N -m repaint inpaint ...` sets RANK, WORLD_SIZE and LOCAL_RANK;
`Context.from_env()` then joins the process group (NCCL on GPUs, Gloo on CPU) and the command
takes every WORLD_SIZE-th input from RANK on. Results do not depend on the split, because
every image's noise comes from its own generator, seeded from the run seed and the image's
name (`repaint.device.derive_seed`); the run seed itself is broadcast from rank 0.
Without torchrun it is a single process and nothing is initialised.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Context:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> str:
        """Each rank on its own GPU; CPU ranks share the CPU."""
        if self.world > 1 and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def share(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world])

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, on every rank."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        if self.world == 1:
            return [value]
        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
