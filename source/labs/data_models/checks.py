"""Lab 1's knowledge check (Remember: SQLAlchemy relationship types), plus one question on your own delete."""

from __future__ import annotations

from source.learning.measurements import Measurement, latest_run
from source.learning.questions import Locked, MultipleChoice, Numeric, Option

LAB = "lab1"
OBJECTIVE = "Remember"


def build(found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    return [*CHOICES, _cascade_rows(found)]


CHOICES = [
    MultipleChoice(
        id="lab1_rel_type",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="`User.assessments` and `Assessment.user` are the two ends of which relationship type?",
        options=[
            Option(
                id="one_to_many",
                text="One-to-many",
                correct=True,
                why="One user row is pointed at by many assessment rows through `assessments.user_id`; "
                "`User.assessments` is the list end, `Assessment.user` the single end.",
            ),
            Option(
                id="one_to_one",
                text="One-to-one",
                why="One-to-one would make `User.assessments` a single object (`uselist=False`), but it is "
                "typed `Mapped[list[Assessment]]`: a user has many.",
            ),
            Option(
                id="many_to_many",
                text="Many-to-many",
                why="Many-to-many needs an association table holding two foreign keys; here each assessment "
                "row belongs to exactly one user through its own `user_id` column.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab1_fk_side",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="Where does the foreign key of the users–AI-R scores relationship live?",
        options=[
            Option(
                id="child",
                text="`air_scores.user_id`, on the many side",
                correct=True,
                why="A row can hold one value per column, so the many side stores the id of its one parent: "
                "`ForeignKey('users.id')` on `AIRScore.user_id` (see the arrows in the ER diagram).",
            ),
            Option(
                id="parent",
                text="`users.score_id`, on the one side",
                why="A single `score_id` column on users could point at one score only, not at many.",
            ),
            Option(
                id="association",
                text="In an association table between the two",
                why="That is the many-to-many shape; a one-to-many needs no extra table.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab1_many_to_many",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="A user may hold many occupations and an occupation has many users. "
        "What would that relationship need that ours do not have?",
        options=[
            Option(
                id="secondary",
                text="An association table with two foreign keys, named in `relationship(secondary=...)`",
                correct=True,
                why="Each row of the association table links one user to one occupation; `secondary=` tells "
                "SQLAlchemy to join through it in both directions.",
            ),
            Option(
                id="json",
                text="A JSON column listing the occupation codes",
                why="A JSON list is not a relationship: no foreign key, no join, nothing keeps the codes valid.",
            ),
            Option(
                id="uselist",
                text="`uselist=False` on both sides",
                why="`uselist=False` makes an end a single object: that is how one-to-one is written, the opposite.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab1_cascade",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="`User.scores` has `cascade='all, delete-orphan'`. Deleting a user through the session does what "
        "to their scores?",
        options=[
            Option(
                id="orm_deletes",
                text="The ORM loads them and deletes them before the user, in the same transaction",
                correct=True,
                why="The cascade lives in SQLAlchemy, not in the database: section 3's delete shows the SELECTs "
                "for the children, then their DELETE, then the user's.",
            ),
            Option(
                id="db_cascade",
                text="The database deletes them through `ON DELETE CASCADE`",
                why="Our foreign keys declare no `ondelete`; a raw DELETE of the user would be refused by the "
                "foreign key instead (PostgreSQL, or SQLite with foreign_keys on).",
            ),
            Option(
                id="null",
                text="Their `user_id` is set to NULL and they stay",
                why="That is what happens *without* the delete cascade (the default `save-update, merge`), and "
                "`user_id` is NOT NULL here, so it would fail.",
            ),
        ],
    ),
]


def _cascade_rows(found: list[Measurement]) -> Numeric | Locked:
    run = latest_run(found, LAB, ("assessments_removed", "scores_removed", "statements"))
    if run is None:
        return Locked(
            id="lab1_cascade_rows",
            lab=LAB,
            objective=OBJECTIVE,
            prompt="How many rows did your delete remove in all?",
            unlock_by="delete a user in section 3 (give them some assessments and scores first).",
        )
    a, s = int(run["assessments_removed"].value), int(run["scores_removed"].value)
    return Numeric(
        id="lab1_cascade_rows",
        lab=LAB,
        objective=OBJECTIVE,
        prompt=f"Your last delete removed a user who had {a} assessment(s) and {s} score(s). "
        "How many rows did it delete in all, across the three tables?",
        answer=a + s + 1,
        unit="rows",
        working=f"{a} assessments + {s} scores + the user's own row = {a + s + 1}.",
        measured_from=f"your delete at {run['statements'].at:%H:%M:%S} UTC",
    )
