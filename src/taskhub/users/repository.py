"""Every query about user accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.users.models import User


async def get_by_username(db: AsyncSession, *, username: str) -> User | None:
    result = await db.execute(select(User).where(User.username == username))
    return result.scalar_one_or_none()


async def add(db: AsyncSession, *, user: User) -> bool:
    """Insert the user; False when the username is taken (the unique constraint decides, race-free)."""
    try:
        async with db.begin_nested():
            db.add(user)
            await db.flush()
    except IntegrityError:
        return False
    return True


async def set_password_hash(db: AsyncSession, *, user_id: uuid.UUID, password_hash: str) -> None:
    await db.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))


async def delete_user(db: AsyncSession, *, user_id: uuid.UUID) -> None:
    """Tasks and sessions go with the user through ON DELETE CASCADE."""
    await db.execute(delete(User).where(User.id == user_id))
