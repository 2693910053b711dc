"""The work model: FLOPs and bytes of each kernel, from its op's shapes or the model's architecture and tiles."""
