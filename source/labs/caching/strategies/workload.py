"""The strategy lab's workload: a seeded sequence of reads and writes over a few keys, skewed
the way real traffic is (a Zipf law: the k-th most popular key is asked for ∝ 1/k^s).

The sizes are bounded, so no learner can keep the shared host busy for long; the same
seed gives the same sequence, so every strategy faces exactly the same operations.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from source.domain.errors import InvalidInput

MAX_OPERATIONS = 3000
MAX_KEYS = 200
LABELS = {
    "operations": "Operations",
    "keys": "Keys",
    "read_share": "Share of reads",
    "skew": "Zipf skew s",
    "ttl_ms": "TTL (ms)",
    "seed": "Seed",
}


class WorkloadConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    operations: int = Field(600, ge=10, le=MAX_OPERATIONS)
    keys: int = Field(20, ge=1, le=MAX_KEYS)
    read_share: float = Field(0.9, ge=0, le=1)
    skew: float = Field(1.0, ge=0, le=3)
    ttl_ms: int = Field(300, ge=10, le=60_000)
    seed: int = Field(7, ge=0, le=2**31 - 1)


@dataclass(frozen=True)
class Op:
    kind: Literal["read", "write"]
    key: int


def parse_workload(**values: object) -> WorkloadConfig:
    """The page's numbers as a workload, or one message naming every value out of range."""
    try:
        return WorkloadConfig.model_validate(values)
    except ValidationError as exc:
        problems = [f"{LABELS.get(str(e['loc'][0]), str(e['loc'][0]))}: {e['msg'].lower()}" for e in exc.errors()]
        raise InvalidInput("Please fix: " + "; ".join(problems) + ".") from None


def zipf_weights(keys: int, skew: float) -> list[float]:
    """P(key k) ∝ 1/(k+1)^s; s = 0 is uniform, larger s piles the traffic onto a few keys."""
    return [1 / (rank + 1) ** skew for rank in range(keys)]


def generate(config: WorkloadConfig) -> list[Op]:
    rng = random.Random(config.seed)  # noqa: S311 - a reproducible workload, not a secret
    keys = rng.choices(range(config.keys), weights=zipf_weights(config.keys, config.skew), k=config.operations)
    return [Op("read" if rng.random() < config.read_share else "write", key) for key in keys]


def key_popularity(ops: list[Op]) -> list[tuple[int, int]]:
    """(key, how many operations touched it), most popular first: the skew, as counted."""
    return Counter(op.key for op in ops).most_common()
