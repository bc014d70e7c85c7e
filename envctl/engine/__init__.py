"""Observe, execute, lock: the engine that runs a plan against AWS."""

# Resources worked on at once (create, destroy, reap's --parallelism). Twice Terraform's 10:
# every call is paced by AWS's published rate limits (aws/ratelimit.py), so more workers do not
# turn into throttling, and a small environment's independent chains (its queues, security
# groups, subnets) then run side by side instead of waiting for a worker (benchmarks/README.md).
# Kept here, not in executor.py, so that the CLI's options import nothing heavy.
DEFAULT_PARALLELISM = 20
