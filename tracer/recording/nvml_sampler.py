"""GPU utilisation and memory sampled with NVML in a background thread while a workload runs."""
from __future__ import annotations

import threading
import time


class NvmlSampler:
    """Context manager: samples (perf_counter_ns, gpu_util_pct, mem_used_bytes) every `interval_s`.
    Without NVML (no GPU, no driver, no pynvml) it samples nothing and `samples` stays empty.
    `unix_offset_ns` turns a sample's perf_counter_ns into Unix time (traces of other processes, such as vLLM's
    engine core, are placed on the Unix clock through their baseTimeNanoseconds)."""

    def __init__(self, device_index: int = 0, interval_s: float = 0.01):
        self.device_index, self.interval_s = device_index, interval_s
        self.samples: list[tuple[int, float, int]] = []
        self._stop = threading.Event()
        self._thread = None
        self.unix_offset_ns = 0

    def __enter__(self):
        self.unix_offset_ns = time.time_ns() - time.perf_counter_ns()
        try:
            import pynvml
            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.device_index)
        except Exception:
            return self
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        nv, h = self._nvml, self._handle
        while not self._stop.is_set():
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h).gpu
                used = nv.nvmlDeviceGetMemoryInfo(h).used
            except Exception:
                return
            self.samples.append((time.perf_counter_ns(), float(util), int(used)))
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._nvml.nvmlShutdown()
        return False

    def summary(self) -> dict:
        if not self.samples:
            return {}
        utils = [s[1] for s in self.samples]
        return {"nvml_peak_memory_used_bytes": max(s[2] for s in self.samples),
                "gpu_util_pct_mean": sum(utils) / len(utils), "gpu_util_pct_max": max(utils),
                "nvml_samples": len(self.samples)}
