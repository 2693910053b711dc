"""The load generator (`tracer load`): seeded requests to a /v1/completions server; latencies and goodput."""
