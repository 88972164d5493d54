"""Lab 2's demos for the instructor: a pool under pressure, and a pool whose requests time out."""

from __future__ import annotations

from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.jobs import ExperimentRunner
from source.learning.presets import Preset
from source.platform.context import current_sandbox


async def _pool(config: ExperimentConfig) -> str:
    """The experiment run as Lab 2's own job, so Lab 2's page shows its result as the last one."""
    runner = ExperimentRunner.of(current_sandbox())
    run = await runner.outcome_of(runner.start(config, compare_nullpool=True))
    pooled, nullpool = run.pooled, run.nullpool
    text = f"Pooled: {pooled.wall_s * 1000:.0f} ms against a bound of {pooled.bound_s * 1000:.0f} ms"
    text += f", {pooled.timeouts} timeout(s)" if pooled.timeouts else ""
    return text + (f"; a new connection per request: {nullpool.wall_s * 1000:.0f} ms." if nullpool else ".")


async def pressure() -> str:
    return await _pool(ExperimentConfig(requests=200, delay_ms=20, pool_size=5, max_overflow=0, pool_timeout_s=5.0))


async def timeouts() -> str:
    return await _pool(ExperimentConfig(requests=100, delay_ms=100, pool_size=2, max_overflow=0, pool_timeout_s=0.5))


PRESETS = (
    Preset(
        "lab2_pressure",
        "lab2",
        "Lab 2 · A pool under pressure",
        "K = 200 requests, pool_size 5, D = 20 ms, and the same with a new connection per request.",
        pressure,
    ),
    Preset(
        "lab2_timeouts",
        "lab2",
        "Lab 2 · Pool timeouts",
        "K = 100, pool_size 2, D = 100 ms, pool_timeout 0.5 s: most requests give up.",
        timeouts,
    ),
)
