"""Lab 5's knowledge check (Create: event tables for pub/sub; the outbox), with your publisher's own run."""

from __future__ import annotations

from source.learning.measurements import Measurement, latest_run
from source.learning.questions import Locked, MultipleChoice, Numeric, Option

LAB = "lab5"
OBJECTIVE = "Create"
NEEDS = ("published", "publish_ms")


def build(found: list[Measurement]) -> list[MultipleChoice | Numeric | Locked]:
    run = latest_run(found, LAB, NEEDS)
    measured: Numeric | Locked
    if run is None or run["published"].value <= 0 or run["publish_ms"].value <= 0:
        measured = Locked(
            id="lab5_rate",
            lab=LAB,
            objective=OBJECTIVE,
            prompt="Your publisher's rate",
            unlock_by="let the publisher drain the outbox: when it runs dry it records how many events it sent and "
            "how long its batches took.",
        )
    else:
        n, ms = int(run["published"].value), run["publish_ms"].value
        measured = Numeric(
            id="lab5_rate",
            lab=LAB,
            objective=OBJECTIVE,
            prompt=f"Your publisher published {n:,} events, and its batches took {ms:,.0f} ms in all (waits between "
            "batches not counted). At how many events per second did it publish?",
            answer=n / (ms / 1000),
            unit="events/s",
            tolerance_rel=0.03,
            working=f"{n:,} / {ms / 1000:.3f} s = {n / (ms / 1000):,.0f} events/s.",
            measured_from=f"your publisher's run at {run['published'].at:%H:%M:%S} UTC",
        )
    return [measured, *CHOICES]


CHOICES = [
    MultipleChoice(
        id="lab5_same_transaction",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="Why is the event row written in the same transaction as the score it announces?",
        options=[
            Option(
                id="atomic",
                text="So that both are kept or neither is: no score without its event, no event without its score",
                correct=True,
                why="The database's atomicity does the work; the broker can be down at that moment, the event "
                "waits in the table.",
            ),
            Option(
                id="faster",
                text="Because one transaction is faster than two",
                why="It often is, but that is not the point: publishing straight after commit could lose the event.",
            ),
            Option(
                id="order",
                text="So that events are published in order",
                why="Order comes from the claim (oldest first, per aggregate), not from sharing the transaction.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab5_crash",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="The publisher sends an event, then crashes before marking it published. What happens next?",
        options=[
            Option(
                id="resend",
                text="It is sent again after the restart; consumers drop the duplicate by its event id",
                correct=True,
                why="The row still says pending, so it is claimed again: delivery is at least once, and the unique "
                "event id is what makes it effectively once for a consumer.",
            ),
            Option(id="lost", text="The event is lost", why="It is still in the table as pending: nothing is lost."),
            Option(
                id="rollback",
                text="The score is rolled back",
                why="The score committed long before; publishing is a separate, later step.",
            ),
        ],
    ),
    MultipleChoice(
        id="lab5_skip_locked",
        lab=LAB,
        objective=OBJECTIVE,
        prompt="What does `FOR UPDATE SKIP LOCKED` give two publishers claiming at the same time?",
        options=[
            Option(
                id="disjoint",
                text="Each gets different events, without waiting for the other",
                correct=True,
                why="Rows the first publisher locked are skipped by the second, which takes the next ones.",
            ),
            Option(id="same", text="Both get the same events", why="That is what happens without FOR UPDATE."),
            Option(
                id="wait",
                text="The second waits until the first commits",
                why="That is plain FOR UPDATE; SKIP LOCKED is what removes the wait.",
            ),
        ],
    ),
]
