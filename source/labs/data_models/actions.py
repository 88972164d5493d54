"""What Lab 1's buttons do, one coroutine each, on the learner's sandbox: the users' units of work, recorded.

The units of work themselves live in the service layer (``source/services/users.py``), which other
labs share; what is Lab 1's own is recorded here for its knowledge check and the class view.
"""

from __future__ import annotations

from source.domain.dtos import CascadeReport
from source.labs.data_models import record
from source.services import users


async def delete_user(user_id: str) -> CascadeReport:
    """Delete the user with the ORM's cascade, and record what went (for the knowledge check and class view)."""
    report = await users.delete_user(user_id)
    await record.cascade_delete(report)
    return report
