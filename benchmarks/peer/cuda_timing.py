"""CUDA-event timing shared by the PyTorch peers (torch_peer.py, torch_bsr_peer.py)."""
import torch


def median_ms(fn, warmup=3, reps=21):
    """Median milliseconds of fn() over `reps` runs after `warmup` runs, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        ts.append(start.elapsed_time(end))
    ts.sort()
    return ts[len(ts) // 2]
