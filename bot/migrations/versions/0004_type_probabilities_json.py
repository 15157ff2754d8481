"""The typer's class probabilities in one JSON column instead of one column per class.

Revision ID: 0004
Revises: 0003

`p_glioma`, `p_meningioma`, `p_notumor`, `p_pituitary` become `type_probabilities` (label -> probability),
so a typer with other labels needs no new migration. Rows are copied through the connection, not with
json_object()/json_build_object(), which differ per backend; Python floats survive JSON exactly.
On SQLite the batch recreates the table: run it through bot.db.migrate, which turns foreign keys off
(dropping the old table would otherwise cascade-delete every feedback row).
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

LABELS = ("glioma", "meningioma", "notumor", "pituitary")
COLUMNS = {label: f"p_{label}" for label in LABELS}
CHUNK = 1000

predictions = sa.table(
    "predictions",
    sa.column("id", sa.Integer),
    *(sa.column(name, sa.Float) for name in COLUMNS.values()),
    sa.column("type_probabilities", sa.JSON),
)


def _rewrite(read: list[str], write) -> None:
    """Update every row from its own `read` columns, a chunk at a time (keyset by id: memory stays flat)."""
    conn = op.get_bind()
    update = predictions.update().where(predictions.c.id == sa.bindparam("row_id"))
    last = None
    while True:
        query = sa.select(predictions.c.id, *(predictions.c[c] for c in read)).order_by(predictions.c.id).limit(CHUNK)
        if last is not None:
            query = query.where(predictions.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        conn.execute(update, [{"row_id": row[0], **write(row._mapping)} for row in rows])
        last = rows[-1][0]


def upgrade() -> None:
    op.add_column("predictions", sa.Column("type_probabilities", sa.JSON))
    _rewrite(list(COLUMNS.values()),
             lambda row: {"type_probabilities": {label: row[name] for label, name in COLUMNS.items()}})
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column("type_probabilities", existing_type=sa.JSON, nullable=False)
        for name in COLUMNS.values():
            batch.drop_column(name)


def downgrade() -> None:
    """A label the four columns have no place for is lost; a missing one becomes 0.0 (what the old writer stored)."""
    for name in COLUMNS.values():
        op.add_column("predictions", sa.Column(name, sa.Float))
    _rewrite(["type_probabilities"],
             lambda row: {name: float((row["type_probabilities"] or {}).get(label, 0.0)) for label, name in COLUMNS.items()})
    with op.batch_alter_table("predictions") as batch:
        for name in COLUMNS.values():
            batch.alter_column(name, existing_type=sa.Float, nullable=False)
        batch.drop_column("type_probabilities")
