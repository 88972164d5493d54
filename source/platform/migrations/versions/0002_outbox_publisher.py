"""outbox publisher: ordering, retries with backoff, dead letter, claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_COLUMNS = ("sequence", "attempts", "last_error", "next_attempt_at", "claimed_by", "lease_until")


def _schema() -> str | None:
    # ALTER TABLE names its table as text, so schema_translate_map cannot redirect it: a
    # learner's PostgreSQL schema is passed explicitly (env.py hands it to Alembic).
    return op.get_context().version_table_schema


def upgrade() -> None:
    schema = _schema()
    # The course's columns stay as they are; the publisher's state is added beside them.
    op.add_column("domain_events", sa.Column("sequence", sa.BigInteger(), server_default="0", nullable=False), schema=schema)
    op.add_column("domain_events", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False), schema=schema)
    op.add_column("domain_events", sa.Column("last_error", sa.String(length=500), nullable=True), schema=schema)
    op.add_column("domain_events", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True), schema=schema)
    op.add_column("domain_events", sa.Column("claimed_by", sa.String(length=64), nullable=True), schema=schema)
    op.add_column("domain_events", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True), schema=schema)
    op.create_index("ix_events_status_sequence", "domain_events", ["status", "sequence"], unique=False, schema=schema)
    op.create_index("ix_events_aggregate_pending", "domain_events", ["aggregate_id", "status", "sequence"], unique=False, schema=schema)

    # Events written before this revision get a sequence from their creation time (in
    # nanoseconds, like new rows), so they keep their order.
    events = sa.table("domain_events", sa.column("sequence", sa.BigInteger()), sa.column("created_at", sa.DateTime()), schema=schema)
    if op.get_bind().dialect.name == "postgresql":
        nanos = sa.cast(sa.func.extract("epoch", events.c.created_at) * 1_000_000, sa.BigInteger) * 1000
    else:
        nanos = sa.cast((sa.func.julianday(events.c.created_at) - 2440587.5) * 86_400_000_000, sa.BigInteger) * 1000
    op.execute(events.update().values(sequence=nanos))


def downgrade() -> None:
    schema = _schema()
    op.drop_index("ix_events_aggregate_pending", table_name="domain_events", schema=schema)
    op.drop_index("ix_events_status_sequence", table_name="domain_events", schema=schema)
    with op.batch_alter_table("domain_events", schema=schema) as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
