"""Memory and roofline: peaks, bytes past the L2 to DRAM, precision, each kernel's roof and bound, ncu checks."""
