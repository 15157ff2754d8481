"""State shared by every worker: processed updates, rate-limit events, pending confirmations.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_processed_updates_created_at", "processed_updates", ["created_at"])
    op.create_table(
        "rate_buckets",
        sa.Column("telegram_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rate_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("telegram_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_events_user_kind_time", "rate_events", ["telegram_id", "kind", "created_at"])
    op.create_table(
        "pending_confirmations",
        sa.Column("telegram_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(16), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pending_confirmations")
    op.drop_index("ix_rate_events_user_kind_time", table_name="rate_events")
    op.drop_table("rate_events")
    op.drop_table("rate_buckets")
    op.drop_index("ix_processed_updates_created_at", table_name="processed_updates")
    op.drop_table("processed_updates")
