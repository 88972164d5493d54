"""Lab 1's join: users ⋈ assessments as a SQLAlchemy Core select, and the SQL the database received."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from source.domain.dtos import QueryResult
from source.domain.models import Assessment, User
from source.instruments.query_log import capture_queries
from source.platform.context import current_sandbox
from source.platform.session import get_session

#: Rows of the join shown per page: a page, not 25,000 rows sent to the browser at once.
JOIN_PAGE_ROWS = 50


def users_join_assessments_statement() -> Select[str, str, str, str, float]:
    """users ⋈ assessments on users.id = assessments.user_id, as a SQLAlchemy Core select."""
    return (
        select(User.name, User.email, Assessment.component, Assessment.status, Assessment.current_ability)
        .join(Assessment, Assessment.user_id == User.id)
        .order_by(User.email, Assessment.component)
    )


async def run_users_join_assessments(limit: int | None = None, offset: int = 0) -> QueryResult:
    """Run the join and return the SQL the database received together with the rows.

    With ``limit``, one page of rows (``LIMIT``/``OFFSET`` in the SQL) and the join's total.
    """
    sandbox = current_sandbox()
    stmt = users_join_assessments_statement()
    total = None
    async with get_session() as session:
        if limit is not None:
            total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
            stmt = stmt.limit(limit).offset(offset)
        async with capture_queries(sandbox.engine) as log:
            result = await session.execute(stmt)
            rows = [list(r) for r in result.all()]
    return QueryResult(
        sql=log.statements[-1] if log.statements else str(stmt),
        columns=list(stmt.selected_columns.keys()),
        rows=rows,
        total=len(rows) if total is None else total,
        offset=offset,
    )
