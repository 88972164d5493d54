"""outbox: partial indexes on the rows still to publish, so the claim's cost follows the work, not the history

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"
UNPUBLISHED = "status IN ('pending', 'failed')"


def _schema() -> str | None:
    # As in 0002: a learner's PostgreSQL schema is passed explicitly (env.py hands it to Alembic).
    return op.get_context().version_table_schema


def upgrade() -> None:
    schema = _schema()
    # The full indexes held an entry for every published row, and the entries of each row's
    # pending version until vacuum: a claim on a table with history walked them all.
    op.drop_index("ix_events_status_sequence", table_name="domain_events", schema=schema)
    op.drop_index("ix_events_aggregate_pending", table_name="domain_events", schema=schema)
    op.create_index(
        "ix_events_pending_sequence",
        "domain_events",
        ["sequence"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )
    op.create_index(
        "ix_events_unpublished_aggregate",
        "domain_events",
        ["aggregate_id", "sequence"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text(UNPUBLISHED),
        sqlite_where=sa.text(UNPUBLISHED),
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_index("ix_events_unpublished_aggregate", table_name="domain_events", schema=schema)
    op.drop_index("ix_events_pending_sequence", table_name="domain_events", schema=schema)
    op.create_index("ix_events_status_sequence", "domain_events", ["status", "sequence"], unique=False, schema=schema)
    op.create_index(
        "ix_events_aggregate_pending", "domain_events", ["aggregate_id", "status", "sequence"], unique=False, schema=schema
    )
