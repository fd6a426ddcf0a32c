"""Dependencies shared by every domain's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from taskhub.config import Settings
from taskhub.db import get_session


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the session commits when the route returns, before the response is sent,
# so a failed commit becomes an error response instead of a lost write behind a 2xx.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
