"""A trial's share of the machine: CPU threads, and on CUDA its device, memory cap and cuDNN.

Ray decides where a trial runs and how much of the machine it gets (`cpus`, `gpus` of its
config); this module makes torch keep to that share. It imports no Ray, so the benchmarks (and
a GPU machine without Ray) claim resources with exactly the code that trials use.
"""

from __future__ import annotations

import math

import torch

from trainables.config import TrialConfig


def claim_resources(config: TrialConfig) -> torch.device:
    """Threads = the CPU share; on CUDA, memory capped to the GPU share, cuDNN autotuning on.

    `set_per_process_memory_fraction` makes the caching allocator refuse (out-of-memory error)
    past `gpus` x the device's memory, so a trial that outgrows its share fails alone instead of
    starving the trials packed beside it. The CUDA context itself (~0.5 GB) is outside the cap.
    """
    torch.set_num_threads(max(1, math.floor(config.cpus)))
    if config.gpus > 0 and torch.cuda.is_available():
        device = torch.device("cuda")
        if config.gpus < 1:
            torch.cuda.set_per_process_memory_fraction(config.gpus, device)
        torch.backends.cudnn.benchmark = True  # input shapes are fixed per trial: autotune once
        return device
    return torch.device("cpu")


def peak_memory(device: torch.device) -> dict[str, int]:
    """Peak memory of this process in bytes: on CUDA what torch's allocator handed out and held
    (the held part is what the memory cap limits) and the device's total; else the peak RSS."""
    if device.type != "cuda":
        import resource

        return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    total = torch.cuda.get_device_properties(device).total_memory
    return {
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
        "device_total_bytes": total,
    }
