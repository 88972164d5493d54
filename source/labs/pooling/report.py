"""Lab 2's sentences: what one experiment measured, said in words, with nothing the run did not measure."""

from __future__ import annotations

from source.labs.pooling.results import ExperimentResult, LabRun


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 request``, ``2 requests``: counts read as a learner would write them."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def opened_sentence(result: ExperimentResult) -> str:
    text = f"It opened **{plural(result.connections_opened, 'connection')}**"
    if result.median_connect_ms is not None:
        text += (
            f"; opening one took a median of {result.median_connect_ms:.1f} ms, timed from asking the driver "
            "until the pool's `connect` event"
        )
    return text + "."


def pooled_title(result: ExperimentResult) -> str:
    """The settings the pooled run was made with, and where it ran."""
    cfg = result.config
    return (
        f"Pooled: K = {cfg.requests}, D = {cfg.delay_ms:g} ms, pool_size = {cfg.pool_size}, "
        f"max_overflow = {cfg.max_overflow}, pool_timeout = {cfg.pool_timeout_s:g} s ({result.backend})"
    )


def pooled_summary(result: ExperimentResult) -> str:
    """The pooled run against its bound ⌈K/C⌉·D, or why the bound does not apply."""
    cfg = result.config
    if result.bound_ratio is not None:
        return (
            f"At most **C = {result.concurrency}** requests can hold a connection at once (peak seen: "
            f"{result.peak_in_use}), so no schedule beats ⌈{cfg.requests}/{result.concurrency}⌉ rounds of "
            f"{cfg.delay_ms:g} ms. This run took **{result.bound_ratio:.2f}×** that bound. "
            f"{opened_sentence(result)} Every other request reused one of those. The page does not split the gap "
            "further: besides opening connections it holds the event loop's own work per request and whatever "
            "else the shared host is doing, so run it twice to see how much it varies. "
            f"The longest wait for a connection was {ms(result.max_wait_ms)}."
        )
    served = (
        f"The longest wait of a request that was served was {ms(result.max_wait_ms)}."
        if result.completed
        else "No request was served."
    )
    return (
        f"The bound ⌈K/C⌉·D assumes every request is served; **{result.timeouts}** gave up after pool_timeout "
        f"and {result.errors} failed, so this wall time is not compared with it. {opened_sentence(result)} {served}"
    )


def lent_while_queued_note(result: ExperimentResult) -> str | None:
    """Why the pool lent fewer than C connections while requests queued, when it did."""
    lent = result.lent_while_queued
    if not result.closed_while_queued or lent is None:
        return None
    return (
        f"While requests queued, the pool lent out **{lent:.1f}** connections on average, not C = "
        f"{result.concurrency}: it closed {plural(result.closed_while_queued, 'connection')} while requests were "
        "waiting. A QueuePool keeps at most pool_size idle connections, so an overflow connection returned "
        "when it already holds that many is closed, and requests already waiting take a returned connection "
        "instead of opening a new one. The chart below shows when."
    )


def timeouts_note(result: ExperimentResult) -> str | None:
    if not result.timeouts:
        return None
    return (
        f"{plural(result.timeouts, 'request')} waited longer than pool_timeout = {result.config.pool_timeout_s:g} s "
        'and got `sqlalchemy.exc.TimeoutError`: the pool\'s way of saying "no connection became free in time". '
        "In a web app that request fails fast instead of piling up."
    )


def nullpool_note(result: ExperimentResult) -> str:
    """How the run without a pool was made comparable, and what it really cost."""
    return (
        "`NullPool` has no limit and no timeout of its own, so two stand-ins play the pool's part: an "
        f"`asyncio.Semaphore` lets at most {plural(result.concurrency, 'request')} hold a connection at once, and "
        f"`asyncio.wait_for` gives up on waiting for it after pool_timeout = {result.config.pool_timeout_s:g} s. "
        "Same requests, same cap, same timeout: the difference is that nothing is reused, so every request "
        f"opens its own connection ({result.total_connect_ms:,.0f} ms of opening in total, measured)."
    )


def failures(run: LabRun) -> list[str]:
    """One sentence per run in which requests failed (not timed out: failed), with the first reason."""
    return [
        f"{plural(result.errors, 'request')} failed ({result.strategy}): {result.first_error}"
        for result in run.results
        if result.errors
    ]


def versus_pooled(nullpool: ExperimentResult, pooled: ExperimentResult) -> str:
    """The run without a pool, against the pooled one: how much slower (or faster), and what the pool opened."""
    slower_ms = (nullpool.wall_s - pooled.wall_s) * 1000
    return (
        f"{abs(slower_ms):,.0f} ms {'slower' if slower_ms >= 0 else 'faster'} than the pooled run, which opened "
        f"{plural(pooled.connections_opened, 'connection')}."
    )
