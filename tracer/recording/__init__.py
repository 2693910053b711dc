"""Recording: workloads run under a profiler (torch, nsys, ncu) into traces and sidecars; sweeps; calibration."""
