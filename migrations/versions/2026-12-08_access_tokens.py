"""Personal access tokens, and the projects a restricted one reaches (issue 21, ADR 0016).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from taskhub.db.schema import TextList, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", TextList(), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_access_token_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_token_token_hash")),
    )
    op.create_index(
        op.f("ix_access_token_user_id_created_at_id"),
        "access_token",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "access_token_project",
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_access_token_project_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["access_token.id"],
            name=op.f("fk_access_token_project_token_id_access_token"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", "project_id", name=op.f("pk_access_token_project")),
    )
    op.create_index(
        op.f("ix_access_token_project_project_id"),
        "access_token_project",
        ["project_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_token_project_project_id"), table_name="access_token_project")
    op.drop_table("access_token_project")
    op.drop_index(op.f("ix_access_token_user_id_created_at_id"), table_name="access_token")
    op.drop_table("access_token")
