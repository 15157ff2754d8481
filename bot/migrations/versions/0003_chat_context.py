"""Conversation context per user: last topic, last image result, the language chosen with /lang.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "chat_context",
        sa.Column("telegram_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.String(32)),
        sa.Column("topic_source", sa.String(8), nullable=False),
        sa.Column("topic_at", sa.DateTime(timezone=True)),
        sa.Column("question", sa.String(32)),
        sa.Column("image_verdict", sa.String(16)),
        sa.Column("image_tumor_type", sa.String(16)),
        sa.Column("image_sequence", sa.String(16)),
        sa.Column("image_at", sa.DateTime(timezone=True)),
        sa.Column("chosen_language", sa.String(8)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chat_context")
