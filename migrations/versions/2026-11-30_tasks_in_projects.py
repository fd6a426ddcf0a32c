"""Tasks in projects: project, assignee, creator, labels and a version; comments.

A task is personal (an owner) or in a project (no owner): the `one_scope` check says so. Every
existing task is personal and its owner becomes its creator. Labels are a `text[]` with a GIN
index on PostgreSQL and JSON text on SQLite (ADR 0014).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from taskhub.db.schema import TextList

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_COLUMNS = ("created_at", "updated_at", "priority", "due_at")


def _empty_list() -> sa.TextClause:
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("'{}'::text[]")
    return sa.text("'[]'")


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.alter_column("owner_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("project_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("creator_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("labels", TextList(), nullable=False, server_default=_empty_list())
        )
        batch.add_column(
            sa.Column("label_keys", TextList(), nullable=False, server_default=_empty_list())
        )
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.create_foreign_key(
            op.f("fk_task_project_id_project"),
            "project",
            ["project_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            op.f("fk_task_assignee_id_user_account"),
            "user_account",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_task_creator_id_user_account"),
            "user_account",
            ["creator_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_check_constraint(
            op.f("ck_task_one_scope"), "(owner_id IS NULL) != (project_id IS NULL)"
        )
    op.execute("UPDATE task SET creator_id = owner_id")
    with op.batch_alter_table("task") as batch:
        # The defaults only filled existing rows; the app writes every column.
        batch.alter_column("labels", server_default=None)
        batch.alter_column("label_keys", server_default=None)
    for column in SORT_COLUMNS:
        op.create_index(
            op.f(f"ix_task_project_id_{column}_id"), "task", ["project_id", column, "id"]
        )
    op.create_index(op.f("ix_task_assignee_id"), "task", ["assignee_id"])
    op.create_index(op.f("ix_task_creator_id"), "task", ["creator_id"])
    op.create_index("ix_task_label_keys", "task", ["label_keys"], postgresql_using="gin")
    op.create_table(
        "comment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_comment_task_id_task"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["user_account.id"],
            name=op.f("fk_comment_author_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment")),
    )
    op.create_index(
        op.f("ix_comment_task_id_created_at_id"), "comment", ["task_id", "created_at", "id"]
    )
    op.create_index(op.f("ix_comment_author_id"), "comment", ["author_id"])


def downgrade() -> None:
    op.drop_table("comment")
    op.drop_index("ix_task_label_keys", table_name="task")
    op.drop_index(op.f("ix_task_creator_id"), table_name="task")
    op.drop_index(op.f("ix_task_assignee_id"), table_name="task")
    for column in SORT_COLUMNS:
        op.drop_index(op.f(f"ix_task_project_id_{column}_id"), table_name="task")
    # Project tasks have no owner: they cannot survive the return to owner-only tasks.
    op.execute("DELETE FROM task WHERE owner_id IS NULL")
    with op.batch_alter_table("task") as batch:
        batch.drop_constraint(op.f("ck_task_one_scope"), type_="check")
        batch.drop_constraint(op.f("fk_task_creator_id_user_account"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_task_assignee_id_user_account"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_task_project_id_project"), type_="foreignkey")
        batch.drop_column("version")
        batch.drop_column("label_keys")
        batch.drop_column("labels")
        batch.drop_column("creator_id")
        batch.drop_column("assignee_id")
        batch.drop_column("project_id")
        batch.alter_column("owner_id", existing_type=sa.Uuid(), nullable=False)
