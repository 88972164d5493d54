"""Where a class lives in Redis: every key under ``plab:class:``, none in any learner's sandbox namespace.

A learner's sandbox keys start ``plab:<12 hex digits>:``; a class's start ``plab:class:<CODE>:`` (a code
is upper-case, so it never reads as a sandbox id, nor as ``index`` or ``sandbox``). Besides the classes:

* ``plab:class:index``: the running classes (sorted set, code scored by its expiry);
* ``plab:class:sandbox:<sandbox id>``: the class a sandbox joined (a string, expiring with the class).

Inside one class:

* ``meta`` (hash: name, created, expires, cap, seq), ``members`` (hash: sandbox id -> "n|joined|name"),
  ``ver`` (a counter every write moves on: the dashboard rereads only when it moved);
* ``m:<n>`` (hash: learner n's page, last activity, last progress, labs visited, checks passed per lab,
  the Create exercise) and ``d:<n>`` (hash: which questions n answered, passed, was shown, and with which
  wrong answers, so that each counts once);
* ``q`` (hash: per question, learners who answered, got it right, were shown it; the most common wrong
  answer and its count) and ``w:<question>`` (sorted set: wrong answer -> learners);
* ``labs`` (set: labs with runs), ``runs:<lab>`` (list: the newest runs, JSON) and ``last:<lab>``
  (hash: n -> that learner's newest run).

Every key expires when the class does (``EXPIREAT``), so an expired class leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "plab:class:"
INDEX = NAMESPACE + "index"


def seat(sandbox_id: str) -> str:
    """The key naming the class a sandbox joined."""
    return f"{NAMESPACE}sandbox:{sandbox_id}"


@dataclass(frozen=True)
class ClassKeys:
    """Every key of the class ``code``."""

    code: str

    @property
    def prefix(self) -> str:
        return f"{NAMESPACE}{self.code}:"

    @property
    def meta(self) -> str:
        return self.prefix + "meta"

    @property
    def members(self) -> str:
        return self.prefix + "members"

    @property
    def version(self) -> str:
        return self.prefix + "ver"

    @property
    def questions(self) -> str:
        return self.prefix + "q"

    @property
    def labs(self) -> str:
        return self.prefix + "labs"

    def learner(self, n: int) -> str:
        return f"{self.prefix}m:{n}"

    def marks(self, n: int) -> str:
        return f"{self.prefix}d:{n}"

    def wrong(self, question_id: str) -> str:
        return f"{self.prefix}w:{question_id}"

    def runs(self, lab: str) -> str:
        return f"{self.prefix}runs:{lab}"

    def latest(self, lab: str) -> str:
        return f"{self.prefix}last:{lab}"

    @property
    def pattern(self) -> str:
        """Every key of this class, for ``SCAN MATCH`` (a code has no glob characters)."""
        return self.prefix + "*"
