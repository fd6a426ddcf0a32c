"""What the app does once at start-up, for the whole life of the process."""

from __future__ import annotations

import gc

from taskhub.config import Settings
from taskhub.main import create_app


async def test_start_up_freezes_what_it_built_out_of_the_collectors_sight(
    settings: Settings,
) -> None:
    """Full collections no longer walk the start-up heap (routes, schemas, the password list):
    their pauses were most of the served p99 (docs/benchmarks.md, run 9)."""
    application = create_app(settings)
    gc.unfreeze()
    try:
        async with application.router.lifespan_context(application):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the rest of the suite collects as usual
        await application.state.database.dispose()
