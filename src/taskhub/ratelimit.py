"""Rate limits as moving windows, in Redis (shared by every instance) when REDIS_URL is set, in
process memory otherwise, each decided and counted in one atomic step (taskhub.moving_windows):
the limits in front of a password hash (login, registration) across all their windows, so that a
burst gets no more than the limit; the per-user API limit in one round trip near the limit, and
far below it by the process alone, settled with Redis in one round trip for all users every
SETTLE_SECONDS: across N instances a window admits at most its amount + N x amount // 100
(ADR 0008).

Redis is reached through a circuit breaker (taskhub.redis_health): while it is open every limit
counts in process memory instead (per process, so looser by the number of processes, never
gone), and no request waits for Redis until the breaker's probe sees it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from limits import RateLimitItem, parse

from taskhub.config import Settings
from taskhub.errors import TaskHubError
from taskhub.moving_windows import (
    NO_HITS,
    SWEEP_SECONDS,
    Hits,
    MemoryWindows,
    Reading,
    RedisWindows,
    Standing,
    Window,
    WindowsFull,
)
from taskhub.redis_health import RedisBreaker, RedisUnavailable

R = TypeVar("R")
logger = logging.getLogger(__name__)

# How often a process settles the per-user API limit's hits with Redis: one round trip for all
# the users it admitted on its own since the last time (ADR 0008).
SETTLE_SECONDS = 0.25
# A process admits a user's request on its own (no round trip) only while it holds fewer than
# B = amount // LOCAL_SHARE of that user's hits not yet settled, and the user's last known shared
# count plus those stays below amount - amount // MARGIN_SHARE; otherwise Redis decides. So
# across N processes a window admits at most amount + N x B, and a limit under LOCAL_SHARE
# (B = 0) is always decided in Redis.
LOCAL_SHARE = 100
MARGIN_SHARE = 10


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: int
    remaining: int
    reset_after: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after),
        }


class TooManyRequests(TaskHubError):
    status = 429
    detail = "Too many requests; retry later"

    def __init__(self, state: LimitState, detail: str | None = None) -> None:
        retry_after = max(1, state.reset_after)
        super().__init__(detail, headers={"Retry-After": str(retry_after), **state.headers()})


@dataclass(frozen=True, slots=True)
class Counted:
    """The hits an admitted request made, and whether Redis or process memory holds them: given
    back if the request turns out not to count (refused by the full hash queue, ADR 0008)."""

    hits: Hits
    shared: bool


NOT_COUNTED = Counted(NO_HITS, shared=False)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """An admitted login attempt: counted as a failure until it succeeds."""

    counted: Counted
    # The address's failure window: a success takes its hit back.
    failure: str
    # Consecutive failures (the pair, the username's ceiling, the address's share of it): a
    # success clears them.
    consecutive: tuple[str, ...]


# With limits off every attempt is admitted and nothing is counted.
NOT_ADMITTED = LoginAttempt(counted=NOT_COUNTED, failure="", consecutive=())


class _View:
    """What this process knows of one user's shared window: the newest reading it got back from
    Redis, and the hits it admitted on its own since, not yet sent (`unsettled`) or on their way
    (`sending`). Neither kind is in the reading."""

    __slots__ = ("inside", "oldest", "read_at", "sending", "taken", "unsettled")

    def __init__(self, reading: Reading, now: float) -> None:
        self.inside = reading.inside
        self.oldest = reading.oldest
        self.taken = reading.taken
        self.read_at = now
        self.unsettled: list[float] = []
        self.sending = 0

    def read(self, reading: Reading, now: float) -> None:
        """A reading taken after the one held replaces it; an earlier one tells nothing new (the
        hits it counted are in the one held)."""
        if reading.taken >= self.taken:
            self.inside, self.oldest, self.taken = reading.inside, reading.oldest, reading.taken
            self.read_at = now


class RateLimiter:
    """Every limit of the contract, by name. Identifiers never include secrets."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self.login_pair = parse(settings.RATE_LIMIT_LOGIN)
        self.login_ip = parse(settings.RATE_LIMIT_LOGIN_IP)
        self.login_username = parse(settings.RATE_LIMIT_LOGIN_USERNAME)
        # What one address may add to a username's ceiling within the ceiling's window: the pair
        # limit's amount, so it takes many addresses to lock an account out from everywhere.
        self.login_username_share = type(self.login_username)(
            self.login_pair.amount, self.login_username.multiples
        )
        self.login_attempts_ip = parse(settings.RATE_LIMIT_LOGIN_ATTEMPTS_IP)
        self.register = parse(settings.RATE_LIMIT_REGISTER)
        self.api = parse(settings.RATE_LIMIT_API)
        self._api_seconds = self.api.get_expiry()
        self._api_budget = self.api.amount // LOCAL_SHARE
        self._api_ceiling = self.api.amount - self.api.amount // MARGIN_SHARE
        # The per-user API limit's readings and unsettled hits, by window key; those with
        # unsettled hits are in `_unsettled` too.
        self._views: dict[str, _View] = {}
        self._unsettled: dict[str, _View] = {}
        self._next_sweep = 0.0
        self._clock = clock
        self._local_windows = MemoryWindows()
        self._shared_windows: RedisWindows | None = None
        # The process's one way to Redis: /ready and the reminder timer ask it too.
        self.redis: RedisBreaker | None = None
        if settings.REDIS_URL is not None:
            url = settings.REDIS_URL.get_secret_value()
            self.redis = RedisBreaker(url, timeout=settings.REDIS_TIMEOUT)
            self._shared_windows = RedisWindows(
                self.redis.client, prefix=settings.RATE_LIMIT_KEY_PREFIX
            )

    @contextlib.asynccontextmanager
    async def settling(self) -> AsyncIterator[None]:
        """Settle the per-user API limit's hits every SETTLE_SECONDS while the app serves (its
        lifespan); nothing runs with limits off or without Redis."""
        if not self.enabled or self._shared_windows is None:
            yield
            return
        stop = asyncio.Event()
        loop = asyncio.create_task(self._settle_until(stop), name="rate-limit-settle")
        try:
            yield
        finally:
            stop.set()
            await loop

    async def _settle_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_SECONDS):
                    await stop.wait()
            try:
                await self.settle()
            except Exception:  # a bug must not end the loop: what it held waits for Redis
                logger.exception("settling the API limit's hits failed")

    async def aclose(self) -> None:
        """Settle the hits still unsettled, stop the breaker's probe and close the connections
        to Redis (at shutdown)."""
        await self.settle()
        if self.redis is not None:
            await self.redis.aclose()

    async def admit_login(self, *, username: str, ip: str) -> LoginAttempt:
        """429 once a login limit is used up, whatever the password; otherwise the attempt is
        counted, in the same atomic step that decided it (before the hash queue and before the
        password is checked), so a burst of concurrent guesses gets no more tries than the limit.

        A refused attempt counts towards nothing, so guessing from one address cannot lock an
        account out for anyone else. An admitted attempt counts towards: the (username, address)
        pair; every attempt of the address (successes too, so valid accounts cannot crowd the
        hashing threads); the address's failures (a success takes its hit back); and the
        username's ceiling, to which each address adds at most the pair limit's amount within
        the ceiling's window. A success clears the pair and the ceiling (NIST SP 800-63B counts
        consecutive failures). An attempt that is not checked after all gives every hit back
        (`give_back`). Retry-After is the longest wait of the limits used up: retrying sooner
        is refused again.
        """
        if not self.enabled:
            return NOT_ADMITTED
        name, address = _normalised(username), address_key(ip)
        pair = _window(self.login_pair, "login-pair", name, address)
        failure = _window(self.login_ip, "login-ip", address)
        share = _window(self.login_username_share, "login-user-share", name, address)
        ceiling = _window(self.login_username, "login-user", name)
        windows = [
            pair,
            _window(self.login_attempts_ip, "login-attempts", address),
            failure,
            Window(share.key, share.amount, share.seconds, refuses=False),
            Window(ceiling.key, ceiling.amount, ceiling.seconds, follows_previous=True),
        ]
        counted = await self._admit(windows, "Too many failed logins; retry later")
        return LoginAttempt(
            counted=counted, failure=failure.key, consecutive=(pair.key, ceiling.key, share.key)
        )

    async def login_succeeded(self, attempt: LoginAttempt) -> None:
        """The attempt was no failure, and the consecutive failures before it are forgotten."""
        if not self.enabled:
            return
        counted = attempt.counted
        if attempt.failure in counted.hits.keys:
            failure = Hits(counted.hits.stamp, (attempt.failure,))
            await self.give_back(Counted(failure, shared=counted.shared))
        # Both stores: counts made in process memory while Redis was away are cleared too.
        self._local_windows.clear(attempt.consecutive)
        if self._shared_windows is not None and self.redis is not None:
            with contextlib.suppress(RedisUnavailable):
                await self.redis.call(self._shared_windows.clear, attempt.consecutive)

    async def admit_registration(self, *, ip: str) -> Counted:
        """429 once the address's registrations are used up; otherwise counted, atomically."""
        window = _window(self.register, "register", address_key(ip))
        return await self._admit([window], "Too many registrations from this address; retry later")

    async def admit_token_revocation(self, *, ip: str) -> None:
        """429 once the address's reports of leaked tokens are used up (RATE_LIMIT_REGISTER's
        amount, counted apart from registrations); otherwise counted, atomically."""
        window = _window(self.register, "token-revoke", address_key(ip))
        await self._admit([window], "Too many token reports from this address; retry later")

    async def give_back(self, counted: Counted) -> None:
        """Take back the hits of a request that turned out not to count (answered 503 by the
        full hash queue: it was never checked), in the store that counted them. If Redis is away
        by now they stay: a count too many, never one too few."""
        if not counted.hits.keys:
            return
        if not counted.shared:
            self._local_windows.give_back(counted.hits)
            return
        if self._shared_windows is not None and self.redis is not None:
            with contextlib.suppress(RedisUnavailable):
                await self.redis.call(self._shared_windows.give_back, counted.hits)

    async def _admit(self, windows: list[Window], detail: str) -> Counted:
        """Decide every window and count the request in them, in one step: in Redis while the
        breaker lets calls through, in process memory otherwise."""
        if not self.enabled:
            return NOT_COUNTED
        try:
            hits, shared = await self._in_store(RedisWindows.admit, MemoryWindows.admit, windows)
            return Counted(hits, shared=shared)
        except WindowsFull as exc:
            longest = max(exc.full, key=lambda full: full.reset_after)
            state = LimitState(
                limit=longest.window.amount, remaining=0, reset_after=longest.reset_after
            )
            raise TooManyRequests(state, detail) from None

    async def _in_store(
        self,
        shared: Callable[..., Awaitable[R]],
        local: Callable[..., R],
        *args: object,
    ) -> tuple[R, bool]:
        """`shared` on the Redis windows while the breaker lets calls through (True), else
        `local` on this process's (False); either is given the request's stamp last."""
        stamp = f"{time.time():.6f}"
        if self._shared_windows is not None and self.redis is not None:
            with contextlib.suppress(RedisUnavailable):
                return await self.redis.call(shared, self._shared_windows, *args, stamp), True
        return local(self._local_windows, *args, stamp), False

    async def hit_api(self, *, user_id: str) -> LimitState | None:
        """Count one request of a user; None when limits are off. Far below the limit, counted
        by this process alone (no round trip) and settled with Redis within SETTLE_SECONDS; near
        it, or without a recent reading of the user's window, decided, counted and measured in
        Redis by one script (one round trip); in process memory while the breaker is open."""
        if not self.enabled:
            return None
        amount, seconds = self.api.amount, self._api_seconds
        key = f"api/{user_id}/{amount}/{seconds}"
        now = self._clock()
        view = self._views.get(key)
        if view is not None:
            held = len(view.unsettled) + view.sending
            known = view.inside + held
            if (
                held < self._api_budget
                and known < self._api_ceiling
                and now - view.read_at < seconds
                and self.redis is not None
                and not self.redis.is_open
            ):
                if not view.unsettled:
                    self._unsettled[key] = view
                view.unsettled.append(now)
                oldest = view.oldest
                if oldest is None or oldest <= now - seconds:
                    oldest = view.unsettled[0]
                return LimitState(amount, amount - known - 1, math.ceil(oldest + seconds - now))
        return await self._hit_api_exactly(Window(key, amount, seconds), now)

    async def _hit_api_exactly(self, window: Window, now: float) -> LimitState:
        """The request decided in Redis, together with the user's hits this process has not
        settled yet; in process memory while the breaker is open."""
        stamp = f"{now:.6f}"
        if self._shared_windows is not None and self.redis is not None and not self.redis.is_open:
            view = self._views.get(window.key)
            sent: list[float] = []
            if view is not None and view.unsettled:
                sent, view.unsettled = view.unsettled, []
                view.sending += len(sent)
                self._unsettled.pop(window.key, None)
            try:
                admitted, reading = await self.redis.call(
                    self._shared_windows.hit, window, stamp, sent
                )
            except RedisUnavailable:
                if view is not None:
                    view.sending -= len(sent)
                self._local_windows.add(window, sent)
            else:
                if view is not None:
                    view.sending -= len(sent)
                    view.read(reading, now)
                elif self._api_budget:
                    self._views.setdefault(window.key, _View(reading, now)).read(reading, now)
                return _api_state(window, reading.standing(window, admitted, now))
        self._fall_back()
        return _api_state(window, self._local_windows.hit(window, stamp))

    async def settle(self) -> None:
        """Count every user's unsettled hits in Redis and read back where each window stands:
        one round trip for all of them. If Redis does not answer, they count in process memory
        instead, as every limit does while the breaker is open; they are not sent again."""
        now = self._clock()
        self._sweep(now)
        if not self._unsettled:
            return
        batch = list(self._unsettled.items())
        self._unsettled = {}
        sent: list[tuple[Window, _View, list[float]]] = []
        for key, view in batch:
            sent.append((Window(key, self.api.amount, self._api_seconds), view, view.unsettled))
            view.sending += len(view.unsettled)
            view.unsettled = []
        windows = [(window, hits) for window, _, hits in sent]
        try:
            if self._shared_windows is None or self.redis is None:
                raise RedisUnavailable
            readings = await self.redis.call(self._shared_windows.settle, windows, f"{now:.6f}")
        except RedisUnavailable:
            for window, view, hits in sent:
                view.sending -= len(hits)
                self._local_windows.add(window, hits)
            self._fall_back()
            return
        for (_, view, hits), reading in zip(sent, readings, strict=True):
            view.sending -= len(hits)
            view.read(reading, now)

    def _fall_back(self) -> None:
        """Redis does not answer: the hits this process admitted on its own and had not settled
        count in its memory from now on, like every request while the breaker is open, and its
        readings are forgotten, so each user's first request once Redis is back is decided
        there."""
        if not self._views:
            return
        for key, view in self._unsettled.items():
            window = Window(key, self.api.amount, self._api_seconds)
            self._local_windows.add(window, view.unsettled)
        self._unsettled = {}
        self._views = {}

    def _sweep(self, now: float) -> None:
        """Forget the readings older than the window that hold no hit of this process: their
        users' next requests are decided in Redis."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        for key in [
            key
            for key, view in self._views.items()
            if view.read_at <= now - self._api_seconds and not view.unsettled and not view.sending
        ]:
            del self._views[key]


def _api_state(window: Window, standing: Standing) -> LimitState:
    state = LimitState(
        limit=window.amount,
        remaining=max(0, window.amount - standing.inside),
        reset_after=standing.reset_after,
    )
    if not standing.admitted:
        raise TooManyRequests(state)
    return state


def _window(item: RateLimitItem, *identifiers: str) -> Window:
    return Window("/".join(identifiers), item.amount, item.get_expiry())


def _normalised(username: str) -> str:
    return username.strip().lower()[:64]


@lru_cache(maxsize=4096)  # parsing an address costs more than the rest of a refused login
def address_key(ip: str) -> str:
    """Who a per-address limit counts: an IPv4 address, or an IPv6 client's /64 network (one
    subscriber's or host's prefix: counting single IPv6 addresses would give each 2^64 tries)."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
