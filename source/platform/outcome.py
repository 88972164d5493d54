"""What an action tells the learner: one sentence, what kind of news it is, and an optional detail line.

A lab's action returns one of these when the sentence depends on what happened (a rollback
is news of another kind than a commit); the page only shows it, coloured by its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["success", "info", "warning", "error"]


@dataclass(frozen=True)
class Outcome:
    text: str
    kind: Kind = "success"
    #: A second, smaller line: the figures behind the sentence.
    detail: str | None = None
