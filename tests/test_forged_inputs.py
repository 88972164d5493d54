"""A forged infinity or NaN in a whole-number field never takes a page down.

A browser can send any float for a number input. Streamlit converts a whole-number input's
value with ``int()`` before the page runs, so infinity would raise there; every whole-number
field is therefore a float input shown without decimals (``whole_number_input``), which
Streamlit resets to its default instead.
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_exception, open_app

FIELDS = [
    ("views/lab3_repository.py", "lab3_n"),
    ("views/lab3_repository.py", "lab3_m"),
    ("views/lab3_repository.py", "lab3_threshold"),
    ("views/lab4_caching.py", "lab4_ops"),
    ("views/lab4_caching.py", "lab4_keys"),
    ("views/lab4_caching.py", "lab4_ttl_ms"),
    ("views/lab4_caching.py", "lab4_seed"),
    ("views/lab5_outbox.py", "lab5_max_events"),
    ("views/lab5_outbox.py", "lab5_max_attempts"),
    ("views/lab5_outbox.py", "lab5_publishers"),
    ("views/lab5_outbox.py", "lab5_retention"),
    ("views/instructor.py", "ins_users"),
    ("views/instructor.py", "ins_pending"),
]


@pytest.mark.parametrize(("page", "key"), FIELDS)
@pytest.mark.parametrize("forged", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_a_forged_value_cannot_take_the_page_down(page: str, key: str, forged: float) -> None:
    at = open_app(page)
    if page == "views/lab4_caching.py":
        at.button(key="lab4_samples").click().run()  # its controls act on a user: give it the sample users
    at.number_input(key=key).set_value(forged).run()
    assert_no_exception(at)
    assert at.number_input(key=key) is not None, "the page rendered the field again"
