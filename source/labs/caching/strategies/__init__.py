"""Lab 4's strategy lab: one seeded workload, run through the real repository and cache five ways.

``workload`` makes the operations, ``run`` replays them under each strategy (``write_behind``
is the one that writes the database later), ``results`` is what each strategy measured.
"""

from source.labs.caching.strategies.results import StrategyResult, StrategyRun
from source.labs.caching.strategies.run import EMAIL_DOMAIN, STRATEGIES, check_strategies, run_strategy_lab
from source.labs.caching.strategies.workload import MAX_KEYS, MAX_OPERATIONS, WorkloadConfig, generate, parse_workload

__all__ = [
    "EMAIL_DOMAIN",
    "MAX_KEYS",
    "MAX_OPERATIONS",
    "STRATEGIES",
    "StrategyResult",
    "StrategyRun",
    "WorkloadConfig",
    "check_strategies",
    "generate",
    "parse_workload",
    "run_strategy_lab",
]
