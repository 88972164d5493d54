"""Lab 2: async connectivity and connection pooling, measured on a real pool.

A web request that needs the database first needs a *connection*. Opening one costs a
network round trip or several (TCP, authentication, a new server process on PostgreSQL),
so an application keeps a pool of open connections and lends them out. The pool is also a
limit: with ``pool_size`` connections plus ``max_overflow`` extra ones, at most that many
requests can talk to the database at once; the rest queue, and a request that queues
longer than ``pool_timeout`` gets ``sqlalchemy.exc.TimeoutError``.

An experiment builds a *dedicated* engine with the pool settings the learner chose (the
composition root builds it), fires K concurrent simulated requests at it, and records what
each one waited.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from source.domain.errors import LabError
from source.instruments.admission import AdmissionGate, gate_on_running_loop
from source.labs.pooling import record
from source.labs.pooling.config import MAX_EXPERIMENTS_AT_ONCE, ExperimentConfig
from source.labs.pooling.requests import Tally, Traffic, attach_probe, new_connection_request, pooled_request
from source.labs.pooling.results import NEW_CONNECTION, POOL, ExperimentResult, LabRun
from source.platform.context import current_sandbox

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

#: How long an experiment waits for its turn before giving up with a clear message.
ADMISSION_TIMEOUT_S = 30.0
#: A hard stop for one experiment (both runs); the pool timeout normally ends it far sooner.
EXPERIMENT_TIME_LIMIT_S = 60.0
#: How often the experiment's pool counters are read while it runs.
SAMPLE_EVERY_S = 0.01


def connection_budget(sandbox: Sandbox) -> int:
    """Connections all experiments of this process may hold together (a setting on PostgreSQL)."""
    return sandbox.experiment_connections


def experiment_gate(budget: int | None = None) -> AdmissionGate:
    """The gate every experiment of this process passes (one per event loop, built with the first budget).

    Without ``budget`` it is the current sandbox's host's (``Sandbox.experiment_connections``).
    """

    def build() -> AdmissionGate:
        return AdmissionGate(MAX_EXPERIMENTS_AT_ONCE, budget or current_sandbox().experiment_connections)

    return gate_on_running_loop("pool experiments", build)


def backend_name(sandbox: Sandbox) -> str:
    """Which database the sandbox lives in: "PostgreSQL" or "SQLite"."""
    return sandbox.backend


async def measure(sandbox: Sandbox, config: ExperimentConfig, traffic: Traffic, *, nullpool: bool) -> ExperimentResult:
    """One run: K requests through a pool of the learner's size, or each with a new connection."""
    engine = sandbox.experiment_engine(
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=config.pool_timeout_s,
        nullpool=nullpool,
    )
    tally = Tally()
    probe = attach_probe(engine, traffic)
    delay_s = config.delay_ms / 1000
    sampler: asyncio.Task[None] | None = None
    try:
        if nullpool:
            slots = asyncio.Semaphore(config.nullpool_concurrency)
            requests = [
                new_connection_request(engine, delay_s, slots, config.pool_timeout_s, tally, traffic)
                for _ in range(config.requests)
            ]
        else:
            requests = [pooled_request(engine, delay_s, tally, traffic) for _ in range(config.requests)]
        started = probe.started = time.perf_counter()
        sampler = asyncio.create_task(probe.sample(engine, SAMPLE_EVERY_S))
        # A TaskGroup, not gather(): if the experiment is cancelled, it waits until every
        # request has given its connection back, so the engine below is disposed last.
        async with asyncio.TaskGroup() as group:
            for request in requests:
                group.create_task(request)
        wall_s = time.perf_counter() - started
        probe.timeline.append(probe.read(engine))
    finally:
        if sampler is not None:
            sampler.cancel()
        # Shielded: even if this experiment is being cancelled, its connections get closed.
        await asyncio.shield(engine.dispose())
    return ExperimentResult(
        strategy=NEW_CONNECTION if nullpool else POOL,
        backend=backend_name(sandbox),
        config=config,
        wall_s=wall_s,
        completed=len(tally.waits_ms),
        timeouts=len(tally.timeout_waits_ms),
        errors=len(tally.errors),
        first_error=tally.errors[0] if tally.errors else None,
        waits_ms=tally.waits_ms,
        timeout_waits_ms=tally.timeout_waits_ms,
        connect_ms=probe.connect_ms,
        connections_opened=probe.opened,
        peak_in_use=tally.peak,
        timeline=probe.timeline,
        closed_while_queued=probe.closed_while_queued,
    )


async def run_experiment(
    config: ExperimentConfig, *, compare_nullpool: bool = False, traffic: Traffic | None = None
) -> LabRun:
    """Run K concurrent requests through a pool, and optionally without one.

    It first waits for a free experiment slot (a few experiments at most run at once in the
    whole process, holding a bounded number of connections together), so one learner's
    experiment cannot starve the database of connections.
    """
    sandbox = current_sandbox()
    traffic = traffic or Traffic()
    traffic.runs = 2 if compare_nullpool else 1
    needs = max(config.connections_at_once, config.nullpool_concurrency if compare_nullpool else 0)
    budget = connection_budget(sandbox)
    if needs > budget:
        raise LabError(
            f"This experiment would hold {needs} connections at once, but this server lends all experiments "
            f"together at most {budget} (PLAB_EXPERIMENT_CONNECTIONS). Make pool_size + max_overflow {budget} or less."
        )
    try:
        async with experiment_gate(budget).admit(needs, timeout=ADMISSION_TIMEOUT_S):
            async with asyncio.timeout(EXPERIMENT_TIME_LIMIT_S):
                traffic.begin("pooled", 1, config.requests)
                pooled = await measure(sandbox, config, traffic, nullpool=False)
                nullpool = None
                if compare_nullpool:
                    traffic.begin("a new connection per request", 2, config.requests)
                    nullpool = await measure(sandbox, config, traffic, nullpool=True)
            traffic.progress.phase = "Done"
    except asyncio.CancelledError:
        traffic.progress.phase = "Stopped"
        raise
    except TimeoutError:
        raise LabError(
            f"The experiment hit the lab's {EXPERIMENT_TIME_LIMIT_S:g} s limit and was stopped. "
            "Try fewer requests, a shorter hold or a shorter pool_timeout."
        ) from None
    await record.pool_run(pooled, nullpool)  # for the knowledge check and the class view
    return LabRun(pooled=pooled, nullpool=nullpool)
