"""Lab 5 keeps each aggregate's order in every path, and its inputs refuse NUL and control characters.

Order: behind a dead letter, on requeue, on skip, with several publishers and across crashes.
Inputs: the occupation code, a user's or an assessment's id, an event id to requeue or skip.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from sqlalchemy import select

from source import DomainEvent, InvalidInput, Sandbox, calculate_and_store_airscore, get_session
from source.labs.outbox import actions, dead_letter
from source.labs.outbox.faults import Faults
from source.labs.outbox.metrics import list_events, outbox_metrics
from source.labs.outbox.options import publisher_options
from source.labs.outbox.publisher import OutboxPublisher
from source.labs.outbox.writes import complete_assessment
from tests.lab5_support import a_user, backlog, first_order_by_aggregate, run_until_drained, statuses, stream_events


async def _drain(publishers: list[OutboxPublisher], crashes: list[int]) -> None:
    """Every publisher at once, each restarted after a crash, until nothing publishable is left."""

    await asyncio.gather(*(run_until_drained(p, crashes) for p in publishers))


def test_a_dead_letter_holds_its_aggregate_back_until_it_is_skipped(box: Sandbox) -> None:
    async def scenario() -> None:
        ids = await backlog(12, aggregates=3)  # agg-0: ids 0, 3, 6, 9
        publisher = OutboxPublisher(box, publisher_options(max_attempts=1), faults=Faults(refused={ids[0]}))
        await _drain([publisher], [])
        assert await statuses() == {"failed": 1, "pending": 3, "published": 8}
        assert (await outbox_metrics()).behind_dead_letter == 3
        waiting = {row.id: row.waiting for row in await list_events("pending")}
        assert waiting == dict.fromkeys((ids[3], ids[6], ids[9]), "waiting behind a dead letter")
        assert await publisher.publishable() == 0, "nothing goes out by itself: someone must decide"
        assert await dead_letter.skip(ids[0]) == ids[0]
        await _drain([publisher], [])
        assert await statuses() == {"skipped": 1, "published": 11}
        messages = await stream_events(box.redis)
        assert ids[0] not in {m["id"] for m in messages}, "a skipped event is never published"
        assert first_order_by_aggregate(messages)["agg-0"] == sorted(first_order_by_aggregate(messages)["agg-0"])
        with pytest.raises(InvalidInput, match="skipped, not failed: only dead-lettered events can be skipped"):
            await dead_letter.skip(ids[0])

    box.run(scenario())


def test_requeued_dead_letters_go_out_in_order_with_several_publishers_and_crashes(box: Sandbox) -> None:
    async def scenario() -> None:
        ids = await backlog(1200, aggregates=120)
        poisoned = set(ids[:30]) | set(ids[630:640])  # the first event of 30 aggregates, the 6th of 10 more
        options = publisher_options(max_events=40, max_attempts=2, backoff_base=0.002, backoff_cap=0.01)
        faults = Faults(refused=set(poisoned), crash_rate=0.1, rng=random.Random(7))  # noqa: S311 - reproducible
        publishers = [OutboxPublisher(box, options, faults=faults, name=f"p{i}") for i in range(3)]
        crashes: list[int] = []
        await _drain(publishers, crashes)
        assert (await statuses())["failed"] == len(poisoned)
        assert (await outbox_metrics()).behind_dead_letter == 30 * 9 + 10 * 4
        faults.refused.clear()  # what the broker refused was fixed
        assert await dead_letter.requeue_all_failed() == len(poisoned)
        await _drain(publishers, crashes)
        assert await statuses() == {"published": 1200}
        assert crashes, "some batches crashed between publish and mark, and went again"
        messages = await stream_events(box.redis)
        assert set(Counter(m["id"] for m in messages)) == set(ids)
        for aggregate, sequences in first_order_by_aggregate(messages).items():
            assert sequences == sorted(sequences), f"{aggregate} arrived out of order"
        async with get_session() as session:
            attempts = (await session.execute(select(DomainEvent.attempts).where(DomainEvent.id.in_(poisoned)))).all()
        assert all(a == 0 for (a,) in attempts), "a requeue gives fresh tries"

    box.run(scenario(), timeout=240)


# -- inputs: NUL and control characters -----------------------------------------------------------
CONTROL = ["\x00", "\t", "\x1b", "\u200b"]


@pytest.mark.parametrize("bad", CONTROL, ids=["NUL", "tab", "escape", "zero-width space"])
def test_an_occupation_code_with_a_control_character_is_refused_with_a_sentence(box: Sandbox, bad: str) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        with pytest.raises(InvalidInput, match="The occupation code holds a control character") as refused:
            await calculate_and_store_airscore(user_id, f"SW{bad}ENG")
        if bad == "\x00":
            assert "NUL (U+0000)" in str(refused.value)
        with pytest.raises(InvalidInput, match="occupation code holds a control character"):
            await actions.record_score(user_id, f"SW{bad}ENG")
        assert await statuses() == {}, "nothing was written"

    box.run(scenario())


def test_a_user_or_assessment_id_with_a_nul_is_refused_with_a_sentence(box: Sandbox) -> None:
    async def scenario() -> None:
        user_id = await a_user()
        with pytest.raises(InvalidInput, match=r"The user id holds a control character, NUL \(U\+0000\)"):
            await calculate_and_store_airscore(user_id + "\x00", "SW_ENG")
        with pytest.raises(InvalidInput, match="The user id holds a control character"):
            await actions.calculate_many(user_id + "\x00", 3)
        with pytest.raises(InvalidInput, match="The assessment id holds a control character"):
            await complete_assessment("a\x00b")
        with pytest.raises(InvalidInput, match="The user id holds a control character"):
            await actions.poison_event("\x00")
        assert await statuses() == {}

    box.run(scenario())


@pytest.mark.parametrize("bad", CONTROL, ids=["NUL", "tab", "escape", "zero-width space"])
def test_an_event_id_with_a_control_character_is_refused_for_requeue_and_skip(box: Sandbox, bad: str) -> None:
    async def scenario() -> None:
        [event_id] = await backlog(1, aggregates=1)
        for action in (actions.requeue, actions.skip, dead_letter.requeue, dead_letter.skip):
            for forged in (event_id + bad, bad + event_id, event_id[:8] + bad + event_id[9:]):
                with pytest.raises(InvalidInput, match="The event id holds a control character"):
                    await action(forged)
        assert await statuses() == {"pending": 1}, "untouched"

    box.run(scenario())
