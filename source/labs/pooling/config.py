"""What a learner may choose for a pool experiment, checked by Pydantic ``Field`` bounds.

Every value is bounded, so that no input can exhaust a host shared by everybody, and a
value out of bounds is refused with one sentence that names the control and its range.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from source.domain.errors import InvalidInput

# -- limits: what one learner may ask of a host shared by everybody ----------------------
MAX_REQUESTS = 500
MAX_DELAY_MS = 200
MAX_POOL_SIZE = 20
MAX_OVERFLOW = 20
MIN_POOL_TIMEOUT_S = 0.1
MAX_POOL_TIMEOUT_S = 10.0
#: "A new connection per request" never opens more than this many connections at once.
MAX_NULLPOOL_CONCURRENCY = 40
#: Experiments running at the same moment, across every learner of this process.
MAX_EXPERIMENTS_AT_ONCE = 2
#: The connections all running experiments may hold together come from the sandbox's host
#: (``Sandbox.experiment_connections``): on PostgreSQL the ``PLAB_EXPERIMENT_CONNECTIONS`` setting,
#: since the server refuses clients past ``max_connections``, which every app process shares.

#: Each field's label on the page and its unit, for the messages below.
_LABELS = {
    "requests": ("Concurrent requests (K)", ""),
    "delay_ms": ("Hold time per request (D)", " ms"),
    "pool_size": ("pool_size", ""),
    "max_overflow": ("max_overflow", ""),
    "pool_timeout_s": ("pool_timeout", " s"),
}


class ExperimentConfig(BaseModel):
    """What the learner chose. Every field is bounded, so nobody can exhaust the host."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    requests: int = Field(ge=1, le=MAX_REQUESTS)
    delay_ms: float = Field(ge=1, le=MAX_DELAY_MS)
    pool_size: int = Field(ge=1, le=MAX_POOL_SIZE)
    max_overflow: int = Field(ge=0, le=MAX_OVERFLOW)
    pool_timeout_s: float = Field(ge=MIN_POOL_TIMEOUT_S, le=MAX_POOL_TIMEOUT_S)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any) -> Any:
        """A number typed into a box, not ``True`` or the text "20" (Pydantic would convert both)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("not a number")  # replaced by the learner's message in parse()
        return value

    @classmethod
    def parse(cls, **values: Any) -> ExperimentConfig:
        """Validate ``values`` or raise :class:`InvalidInput` naming the control and its range."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InvalidInput(" ".join(_sentence(err["loc"][0], err["input"]) for err in exc.errors())) from None

    @property
    def connections_at_once(self) -> int:
        """How many requests can hold a connection at the same moment."""
        return self.pool_size + self.max_overflow

    @property
    def nullpool_concurrency(self) -> int:
        """The cap for "a new connection per request": same as the pool, never above the limit."""
        return min(self.connections_at_once, MAX_NULLPOOL_CONCURRENCY)

    @property
    def bound_s(self) -> float:
        """The best possible wall time: ``ceil(K / connections_at_once) · D``.

        Each request holds a connection for D, and only ``pool_size + max_overflow`` can be
        held at once, so the K requests need at least ``ceil(K / that)`` rounds of D each.
        """
        return math.ceil(self.requests / self.connections_at_once) * self.delay_ms / 1000


def _sentence(name: object, given: object) -> str:
    field = ExperimentConfig.model_fields[str(name)]
    low = next(m.ge for m in field.metadata if hasattr(m, "ge"))
    high = next(m.le for m in field.metadata if hasattr(m, "le"))
    label, unit = _LABELS[str(name)]
    kind = "a whole number" if field.annotation in (int, "int") else "a number"
    return f"{label} must be {kind} between {low:g} and {high:g}{unit} (got {given!r})."
