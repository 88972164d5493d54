"""Lab 2's job runner: the experiment as a background job of the learner's sandbox (see :mod:`source.platform.jobs`).

The experiment keeps its own admission gate and time limit (it holds connections, which the
gate budgets across every learner): this module only says what an experiment job is. The page
starts one through :func:`source.labs.pooling.actions.start_experiment`.
"""

from __future__ import annotations

from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.experiment import run_experiment
from source.labs.pooling.requests import Traffic
from source.labs.pooling.results import LabRun
from source.platform.jobs import Job, JobRunner


class ExperimentRunner(JobRunner[LabRun]):
    """A sandbox's experiments: at most one running, and the outcome of the last one."""

    service = "pooling.experiments"
    busy_text = "An experiment is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping: giving every connection back…"
    time_limit_s = None  # the experiment's own limit applies, once the gate has let it in
    heavy = True  # many concurrent requests and connections: started only if the memory budget has room
    #: The requests of the running experiment (in use, waiting, timed out), for the page and tests.
    traffic: Traffic | None = None

    def start(self, config: ExperimentConfig, *, compare_nullpool: bool) -> Job[LabRun]:
        """Start an experiment unless one is running in this sandbox already."""
        traffic = Traffic()
        job = self.launch(
            lambda _: run_experiment(config, compare_nullpool=compare_nullpool, traffic=traffic), traffic.progress
        )
        self.traffic = traffic
        return job

    def stopped_note(self, job: Job[LabRun]) -> str:
        return "Your experiment was stopped before it finished; the last result is kept."
