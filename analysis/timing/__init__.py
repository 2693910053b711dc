"""Time: where each phase's and step's wall time goes, GPU and host; communication, profiler overhead, repeats."""
