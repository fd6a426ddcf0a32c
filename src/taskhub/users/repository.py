"""Every query about user accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.db import insert_unless_duplicate
from taskhub.users.models import User


async def get_by_username(db: AsyncSession, *, username: str) -> User | None:
    result = await db.execute(select(User).where(User.username == username))
    return result.scalar_one_or_none()


async def add(db: AsyncSession, *, user: User) -> bool:
    """Insert the user; False when the username is taken."""
    return await insert_unless_duplicate(db, user)


async def set_password_hash(db: AsyncSession, *, user_id: uuid.UUID, password_hash: str) -> None:
    await db.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


async def delete_user(db: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Tasks and sessions go with the user through ON DELETE CASCADE."""
    await db.execute(delete(User).where(User.id == user_id))
