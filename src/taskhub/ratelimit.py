"""Rate limits with the `limits` library: moving windows in Redis (shared by every instance) when
REDIS_URL is set, in process memory otherwise.

If Redis stops answering, the per-user API limit fails open (logged, and /ready reports Redis)
while login and registration limits fall back to the in-process counter rather than vanish.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from taskhub.config import Settings
from taskhub.errors import TaskHubError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5


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


class _MemoryStorage(MemoryStorage):
    """limits' MemoryStorage.clear() pops the key while its own expiry task may be about to read
    it, which crashes that task with a KeyError; emptying the window in place is equivalent and
    leaves the key for the expiry task to drop."""

    async def clear(self, key: str) -> None:
        if key in self.events:
            self.events[key] = []
        self.storage.pop(key, None)
        self.expirations.pop(key, None)


class RateLimiter:
    """Every limit of the contract, by name. Identifiers never include secrets."""

    def __init__(self, settings: Settings) -> None:
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
        self._local = MovingWindowRateLimiter(_MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        self._redis_pool: ConnectionPool | None = None
        if settings.REDIS_URL is not None:
            url = settings.REDIS_URL.get_secret_value()
            # Our own pool, so that aclose() can close its connections.
            self._redis_pool = ConnectionPool.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            options: dict[str, Any] = {"connection_pool": self._redis_pool}
            storage = RedisStorage(
                "async+" + url,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="taskhub-limits",
                **options,
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._shared_failing = False

    async def aclose(self) -> None:
        """Close the connections to the shared store (when the app shuts down)."""
        if self._redis_pool is not None:
            await self._redis_pool.aclose()

    async def begin_login_attempt(self, *, username: str, ip: str) -> None:
        """429 once a login limit is used up, whatever the password; otherwise count the attempt.

        A refused attempt counts towards nothing, so guessing from one address cannot lock an
        account out for anyone else. A checked attempt counts, *before* the password is checked
        (a burst of concurrent guesses gets no more tries than the limit), towards: the
        (username, address) pair; every attempt of the address (successes too, so valid
        accounts cannot crowd the hashing threads); and the username's ceiling, to which each
        address adds at most the pair limit's amount within the ceiling's window. A success
        clears the pair and the ceiling (NIST SP 800-63B counts consecutive failures); the
        per-address failure limit counts failures only (`login_failed`).
        Retry-After is the longest wait of the limits used up: retrying sooner is refused again.
        """
        name, address = _normalised(username), address_key(ip)
        limits = [
            (self.login_pair, ("login-pair", name, address)),
            (self.login_username, ("login-user", name)),
            (self.login_ip, ("login-ip", address)),
            (self.login_attempts_ip, ("login-attempts", address)),
        ]
        refused = await self._refused(limits)
        if refused:
            longest = max(refused, key=lambda state: state.reset_after)
            raise TooManyRequests(longest, "Too many failed logins; retry later")
        await self._hit(self.login_pair, ("login-pair", name, address))
        await self._hit(self.login_attempts_ip, ("login-attempts", address))
        share = ("login-user-share", name, address)
        if await self._hit(self.login_username_share, share):
            await self._hit(self.login_username, ("login-user", name))

    async def _refused(
        self, limits: list[tuple[RateLimitItem, tuple[str, ...]]]
    ) -> list[LimitState]:
        """The states of the limits that one more hit would exceed (nothing is counted)."""
        refused: list[LimitState] = []
        for item, identifiers in limits:
            outcome = await self._apply(item, identifiers, hit=False, fallback_local=True)
            if outcome is not None and not outcome[0]:
                refused.append(outcome[1])
        return refused

    async def _hit(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> bool:
        """Count one hit; False when the limit was already used up (then nothing is counted)."""
        outcome = await self._apply(item, identifiers, hit=True, fallback_local=True)
        return outcome is None or outcome[0]

    async def login_failed(self, *, ip: str) -> None:
        await self._hit(self.login_ip, ("login-ip", address_key(ip)))

    async def login_succeeded(self, *, username: str, ip: str) -> None:
        if not self.enabled:
            return
        name, address = _normalised(username), address_key(ip)
        for item, identifiers in (
            (self.login_pair, ("login-pair", name, address)),
            (self.login_username, ("login-user", name)),
            (self.login_username_share, ("login-user-share", name, address)),
        ):
            for limiter in self._limiters(fallback_local=True):
                try:
                    await limiter.clear(item, *identifiers)
                except StorageError as exc:
                    self._note_failure(exc)

    async def hit_register(self, *, ip: str) -> None:
        outcome = await self._apply(
            self.register, ("register", address_key(ip)), hit=True, fallback_local=True
        )
        if outcome is not None and not outcome[0]:
            raise TooManyRequests(
                outcome[1], "Too many registrations from this address; retry later"
            )

    async def hit_api(self, *, user_id: str) -> LimitState | None:
        """Count one request of a user; None when limits are off or the shared store is down."""
        outcome = await self._apply(self.api, ("api", user_id), hit=True, fallback_local=False)
        if outcome is None:
            return None
        allowed, state = outcome
        if not allowed:
            raise TooManyRequests(state)
        return state

    async def _apply(
        self, item: RateLimitItem, identifiers: tuple[str, ...], *, hit: bool, fallback_local: bool
    ) -> tuple[bool, LimitState] | None:
        """Hit (or only test) a limit: (allowed, state), or None when limits are off or no store answers."""
        if not self.enabled:
            return None
        for limiter in self._limiters(fallback_local):
            try:
                if hit:
                    allowed = await limiter.hit(item, *identifiers)
                else:
                    allowed = await limiter.test(item, *identifiers)
                stats = await limiter.get_window_stats(item, *identifiers)
            except StorageError as exc:
                self._note_failure(exc)
                continue
            if limiter is self._shared:
                self._note_recovery()
            return allowed, _state_of(item, stats.remaining, stats.reset_time)
        return None

    def _limiters(self, fallback_local: bool) -> list[MovingWindowRateLimiter]:
        if self._shared is None:
            return [self._local]
        return [self._shared, self._local] if fallback_local else [self._shared]

    def _note_failure(self, exc: Exception) -> None:
        if not self._shared_failing:
            logger.warning(
                "rate-limit store unreachable (%s): API limit open, login limits in-process",
                type(exc).__name__,
            )
            self._shared_failing = True

    def _note_recovery(self) -> None:
        if self._shared_failing:
            logger.info("rate-limit store reachable again")
            self._shared_failing = False


def _normalised(username: str) -> str:
    return username.strip().lower()[:64]


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


def _state_of(item: RateLimitItem, remaining: int, reset_time: float) -> LimitState:
    return LimitState(
        limit=item.amount,
        remaining=max(0, remaining),
        reset_after=max(0, math.ceil(reset_time - time.time())),
    )
