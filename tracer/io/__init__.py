"""Files in and out, shared by recording, parsing and analysis: bounded reads of input files (inputs), atomic
writes with unique temporary names (atomic), output folders checked before work and replaced whole (outputs),
the metadata sidecar (sidecar) and the content-keyed user cache (cache). Nothing here imports the layers above."""
