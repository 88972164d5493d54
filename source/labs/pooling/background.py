"""Running a pool experiment in the background of a learner's sandbox, one at a time.

A page script must not wait for an experiment: any click (a toggle, another page) would
stop the script and, with it, the wait. So the experiment runs as a task on the app's
event loop, and the sandbox keeps an :class:`ExperimentRunner` (in ``sandbox.services``)
that knows the running experiment and the last result. Pages start it, read its progress,
stop it, and find its result again when the learner comes back. A reset or a release of
the sandbox stops it first (``sandbox.on_stop``). The mechanics are the platform's
:class:`~source.platform.background.JobRunner`; this module says what an experiment is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from source.labs.pooling.config import ExperimentConfig
from source.labs.pooling.experiment import run_experiment
from source.labs.pooling.requests import Progress
from source.labs.pooling.results import LabRun
from source.platform.background import Job, JobRunner, runner_in

if TYPE_CHECKING:
    from source.platform.sandbox import Sandbox

SERVICE = "pooling.experiments"


class ExperimentRunner(JobRunner[Progress, LabRun]):
    """A sandbox's experiments: at most one running, and the outcome of the last one."""

    busy_text = "An experiment is already running in your sandbox: wait for it, or press Stop."
    stopping_text = "Stopping: giving every connection back…"

    def start(self, config: ExperimentConfig, *, compare_nullpool: bool) -> Job[Progress, LabRun]:
        """Start an experiment unless one is running in this sandbox already."""
        progress = Progress()
        return self.launch(
            progress, lambda: run_experiment(config, compare_nullpool=compare_nullpool, progress=progress)
        )

    def stopped_note(self, job: Job[Progress, LabRun]) -> str:
        return "Your experiment was stopped before it finished; the last result is kept."


def runner(sandbox: Sandbox) -> ExperimentRunner:
    """The sandbox's runner, made on first use; a reset or a release stops its experiment."""
    return runner_in(sandbox, SERVICE, ExperimentRunner)
