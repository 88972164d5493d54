"""What Lab 2 records for the knowledge check and the class view: an experiment's settings and results."""

from __future__ import annotations

from source.labs.pooling.results import ExperimentResult
from source.learning.measurements import record_run
from source.platform.context import current_sandbox


async def pool_run(pooled: ExperimentResult, nullpool: ExperimentResult | None) -> None:
    """Lab 2: the pooled run's settings and results (and the new-connection run's, when made)."""
    cfg = pooled.config
    values: dict[str, tuple[float, str]] = {
        "requests": (cfg.requests, "requests"),
        "connections": (cfg.connections_at_once, "connections"),
        "hold_ms": (cfg.delay_ms, "ms"),
        "wall_ms": (pooled.wall_s * 1000, "ms"),
        "bound_ms": (pooled.bound_s * 1000, "ms"),
        "completed": (pooled.completed, "requests"),
        "timeouts": (pooled.timeouts, "requests"),
        "throughput_rps": (pooled.throughput_rps, "req/s"),
        "connections_opened": (pooled.connections_opened, "connections"),
    }
    if nullpool is not None:
        values["nullpool_wall_ms"] = (nullpool.wall_s * 1000, "ms")
        values["nullpool_connections_opened"] = (nullpool.connections_opened, "connections")
    await record_run(current_sandbox(), "lab2", values)
