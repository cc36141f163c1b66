"""Process-group setup for ``torchrun`` and BatchNorm synchronised across processes, on CPU too.

Nothing happens at import time: :func:`init_distributed` reads torchrun's environment (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) when training starts and opens a process
group only when ``WORLD_SIZE > 1`` (NCCL on CUDA, gloo on CPU).

BatchNorm and data parallelism: with per-process batch statistics, N processes of B images do not
compute what one process of N*B images computes. :class:`SynchronizedBatchNorm` normalises with the
statistics of the *global* batch. PyTorch's ``nn.SyncBatchNorm`` does this on GPUs only (this torch
raises "SyncBatchNorm expected input tensor to be on GPU" for CPU tensors, and DDP refuses CPU
modules holding it), so :func:`synchronize_batch_norm` uses ``nn.SyncBatchNorm`` on CUDA and
:class:`SynchronizedBatchNorm` on CPU: it computes the global mean and variance itself with
autograd-aware all-reduces (:class:`_DifferentiableAllReduce`: a sum forward, and a sum of the
gradients of the statistics across processes on the way back). Parameter and buffer names are those of the
plain BatchNorm layers, so checkpoints load into unconverted models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from ..errors import PartialFaceError

__all__ = [
    "DistributedContext",
    "SynchronizedBatchNorm",
    "init_distributed",
    "resolve_device",
    "shutdown_distributed",
    "synchronize_batch_norm",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` processes and its device."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints, logs and evaluates (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (no-op without distribution)."""
        if self.is_distributed:
            dist.barrier()


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (this process's local GPU) when available, else CPU; ``cuda`` without a GPU is an error."""
    if preference not in ("auto", "cpu", "cuda"):
        raise PartialFaceError(f"DEVICE must be auto, cpu or cuda, got {preference!r}")
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise PartialFaceError("DEVICE: cuda was requested but torch sees no CUDA device")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise PartialFaceError(f"environment variable {name}={text!r} is not an integer") from None


def init_distributed(device: str = "auto", backend: str = "auto") -> DistributedContext:
    """Open the process group described by torchrun's environment (if ``WORLD_SIZE > 1``).

    ``backend`` ``auto`` picks NCCL for CUDA and gloo for CPU; NCCL on a CPU device falls back to gloo.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise PartialFaceError(f"inconsistent torchrun environment: WORLD_SIZE={world_size}, RANK={rank}")
    torch_device = resolve_device(device, local_rank)
    if world_size == 1:
        return DistributedContext(1, 0, 0, torch_device, None)
    chosen = backend
    if chosen == "auto" or (chosen == "nccl" and torch_device.type != "cuda"):
        chosen = "nccl" if torch_device.type == "cuda" else "gloo"
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if not dist.is_initialized():
        dist.init_process_group(backend=chosen, init_method="env://", world_size=world_size, rank=rank)
    return DistributedContext(world_size, rank, local_rank, torch_device, chosen)


def shutdown_distributed(context: DistributedContext) -> None:
    """Close the process group opened by :func:`init_distributed`."""
    if context.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


class _DifferentiableAllReduce(torch.autograd.Function):
    """Sum a tensor over the process group; the gradient is the sum of every process's gradient.

    Each process's output feeds its own loss, and the losses are summed (DDP averages them with the
    same factor for every parameter), so the gradient of a summed input is the all-reduced gradient.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group: object) -> torch.Tensor:  # type: ignore[override]
        ctx.group = group
        result = tensor.clone()
        dist.all_reduce(result, op=dist.ReduceOp.SUM, group=group)
        return result

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        summed = grad.clone()
        dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=ctx.group)
        return summed, None


class SynchronizedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all processes, for CPU tensors (see the module docstring).

    Behaves as a plain BatchNorm (any input ``(B, C, ...)``) in evaluation mode and without a
    process group of more than one process.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: object | None = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002
        if input.dim() < 2:
            raise PartialFaceError(f"SynchronizedBatchNorm expects input of shape (B, C, ...), got {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (torch's argument name)
        if not self._needs_cpu_sync(input):
            return super().forward(input)
        self._check_input_dim(input)
        group = self.process_group or dist.group.WORLD
        reduce_dims = [0, *range(2, input.dim())]
        shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
        local_count = input.numel() // input.shape[1]
        packed = torch.cat([input.sum(reduce_dims), input.new_tensor([float(local_count)])])
        packed = _DifferentiableAllReduce.apply(packed, group)
        count = packed[-1]
        mean = packed[:-1] / count
        centred = input - mean.view(shape)
        variance = _DifferentiableAllReduce.apply((centred * centred).sum(reduce_dims), group) / count
        output = centred * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach(), float(count.detach()))
        return output

    def _needs_cpu_sync(self, input: torch.Tensor) -> bool:
        if not (self.training and input.device.type == "cpu"):
            return False
        if not (dist.is_available() and dist.is_initialized()):
            return False
        return dist.get_world_size(self.process_group or dist.group.WORLD) > 1

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, variance: torch.Tensor, count: float) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = variance * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)


def synchronize_batch_norm(module: nn.Module, device: torch.device, process_group: object | None = None) -> nn.Module:
    """Make every BatchNorm layer of ``module`` use global-batch statistics (same parameters).

    CUDA: ``nn.SyncBatchNorm``; CPU: :class:`SynchronizedBatchNorm`. Returns the converted module
    (``module`` itself unless it is a BatchNorm layer).
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    return _convert_cpu(module, process_group)


def _convert_cpu(module: nn.Module, process_group: object | None) -> nn.Module:
    converted = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SynchronizedBatchNorm):
        converted = SynchronizedBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats, process_group
        )
        if module.affine:
            with torch.no_grad():
                converted.weight = module.weight
                converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
    for name, child in module.named_children():
        converted.add_module(name, _convert_cpu(child, process_group))
    return converted
