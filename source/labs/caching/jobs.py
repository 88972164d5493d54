"""Lab 4's long work as background jobs of the learner's sandbox: the strategy run and the stampede.

Each runs as a task on the app's event loop (:mod:`source.platform.jobs`), never in the page
script: a click elsewhere, or a visit to another page, does not cut it short, and a Redis
that refuses every call makes the run slower, never the click that starts it. Stop ends it.
"""

from __future__ import annotations

from collections.abc import Sequence

from source.labs.caching.stampede import StampedeResult, check_readers, run_stampede
from source.labs.caching.strategies import StrategyRun, check_strategies, parse_workload, run_strategy_lab
from source.platform.jobs import Job, JobRunner, Progress
from source.platform.sandbox import Sandbox

#: Strategy-lab runs at the same moment, across every learner of this process.
RUNS_AT_ONCE = 2
#: How long one strategy run may take (seconds).
STRATEGY_TIME_LIMIT_S = 120.0
#: How many stampede results the page charts side by side.
STAMPEDES_SHOWN = 6


class StrategyRunner(JobRunner[StrategyRun]):
    """A sandbox's strategy runs: at most one running, and the last run's results."""

    service = "caching.strategies"
    busy_text = "A strategy run is already going in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping after the operation in progress; the workload's users are removed…"
    time_limit_s = STRATEGY_TIME_LIMIT_S
    at_once = RUNS_AT_ONCE
    heavy = True  # a workload of users and operations: started only if the memory budget has room
    #: Stop lets the run end after its current operation (it watches ``progress.stopping``).
    grace_s = 5.0
    #: It writes (the workload's users, their updates): on SQLite it takes turns with a seed instead of
    #: failing after busy_timeout while the seed's one long transaction holds the file.
    writes_in_bulk = True

    def start(self, strategies: Sequence[str], **workload: object) -> Job[StrategyRun]:
        """Check the page's numbers and strategies, then start the run unless one is going already."""
        config = parse_workload(**workload)
        chosen = check_strategies(strategies)
        return self.launch(lambda progress: run_strategy_lab(config, progress, chosen))

    def full_text(self) -> str:
        return "Other learners are running the strategy lab right now; try again in a few seconds."

    def too_long_text(self) -> str:
        return (
            f"The strategy lab did not finish within {self.time_limit_s:g} s and was stopped; its users were "
            "removed. Try fewer operations or strategies."
        )

    def stopped_note(self, job: Job[StrategyRun]) -> str:
        done, total = job.progress.done, job.progress.total
        kept = " The previous result is kept." if self.last is not None else ""
        return f"The run was stopped after {done:,} of {total:,} operations; its users were removed.{kept}"


class StampedeRunner(JobRunner[StampedeResult]):
    """A sandbox's stampedes: one at a time, and the last few results for the chart."""

    service = "caching.stampede"
    busy_text = "A stampede is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping the readers…"
    time_limit_s = 60.0

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        #: The latest results, oldest first (at most :data:`STAMPEDES_SHOWN`).
        self.history: list[StampedeResult] = []

    def start(self, user_id: str, readers: int, protection: bool) -> Job[StampedeResult]:
        """Fire ``readers`` concurrent cold reads of ``user_id`` unless a stampede is running already."""
        check_readers(readers)

        async def fire(progress: Progress) -> StampedeResult:
            result = await run_stampede(user_id, readers, protection, progress)
            self.history = [*self.history, result][-STAMPEDES_SHOWN:]
            return result

        return self.launch(fire)

    def stopped_note(self, job: Job[StampedeResult]) -> str:
        return "The stampede was stopped before every reader was answered; the results before it are kept."
