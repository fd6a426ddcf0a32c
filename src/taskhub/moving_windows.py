"""Several moving windows decided and counted in one step: in Redis by one Lua script, in process
memory by one call that never yields to the event loop. Between a test and a later hit, every
request of a burst would pass the test before any hit was counted (ADR 0008).

A window is a list of the stamps (Unix times) counted in it, newest first, at most its amount
long (the layout of `limits`' moving windows): it is full while its oldest stamp is still inside
its seconds. An attempt's hits carry its stamp, so they can be given back exactly.

The per-user API limit's requests that a process admitted on its own, far below the limit, are
counted into the same lists later, in one round trip for all its users (`RedisWindows.settle`),
or with that user's next request decided in Redis (`RedisWindows.hit`); ADR 0008.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

# How often process memory drops the windows that have emptied, in seconds.
SWEEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Window:
    key: str
    amount: int
    seconds: int
    # A full window refuses the attempt; one that does not (a share of the next window) is
    # only left uncounted.
    refuses: bool = True
    # Counted only when the window before it was: the username's ceiling, after the address's
    # share of it.
    follows_previous: bool = False


@dataclass(frozen=True, slots=True)
class FullWindow:
    window: Window
    reset_after: int  # seconds until the window has room again


class WindowsFull(Exception):
    """At least one refusing window is full: nothing was counted."""

    def __init__(self, full: list[FullWindow]) -> None:
        super().__init__(", ".join(item.window.key for item in full))
        self.full = full


@dataclass(frozen=True, slots=True)
class Hits:
    """The windows an admitted attempt was counted in, and its stamp in them."""

    stamp: str
    keys: tuple[str, ...]


NO_HITS = Hits("", ())


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one window stands after a request: whether it was counted, how many requests the
    window holds now, and in how many seconds its oldest one leaves it."""

    admitted: bool
    inside: int
    reset_after: int


@dataclass(frozen=True, slots=True)
class Reading:
    """Where a shared window stood when Redis ran a script: how many stamps were inside it, the
    oldest of them, and Redis's clock then (microseconds), which orders the readings a process
    gets back, as they may arrive out of order."""

    inside: int
    oldest: float | None
    taken: int

    def standing(self, window: Window, admitted: bool, now: float) -> Standing:
        return _standing(window, admitted, self.inside, self.oldest, now)


def _standing(
    window: Window, admitted: bool, inside: int, oldest: float | None, now: float
) -> Standing:
    reset_after = window.seconds if oldest is None else _reset_after(window, oldest, now)
    return Standing(admitted, inside, reset_after)


def _counted(windows: list[Window], room: list[bool]) -> list[int]:
    """Which windows an admitted attempt is counted in: those with room, and a follower only
    if the window before it was counted."""
    counted: list[int] = []
    for index, window in enumerate(windows):
        if room[index] and (not window.follows_previous or index - 1 in counted):
            counted.append(index)
    return counted


def _has_room(window: Window, stamps: list[float], now: float) -> bool:
    """A window of `amount` stamps at most is full while its oldest is still inside it."""
    return len(stamps) < window.amount or stamps[window.amount - 1] < now - window.seconds


def _reset_after(window: Window, oldest: float, now: float) -> int:
    return max(0, math.ceil(oldest + window.seconds - now))


class MemoryWindows:
    """The windows of this process. Every method runs to its end without awaiting, so no other
    request is served between a window's test and its hit."""

    def __init__(self) -> None:
        self._stamps: dict[str, list[float]] = {}
        # When each window's newest stamp leaves it: the window is empty from then on.
        self._empty_at: dict[str, float] = {}
        self._next_sweep = 0.0

    def __len__(self) -> int:
        """How many windows are held."""
        return len(self._stamps)

    def admit(self, windows: list[Window], stamp: str) -> Hits:
        now = float(stamp)
        self._sweep(now)
        room: list[bool] = []
        full: list[FullWindow] = []
        for window in windows:
            stamps = self._stamps.get(window.key, [])
            room.append(_has_room(window, stamps, now))
            if not room[-1] and window.refuses:
                full.append(
                    FullWindow(window, _reset_after(window, stamps[window.amount - 1], now))
                )
        if full:
            raise WindowsFull(full)
        keys: list[str] = []
        for index in _counted(windows, room):
            self._count(windows[index], now)
            keys.append(windows[index].key)
        return Hits(stamp, tuple(keys))

    def hit(self, window: Window, stamp: str) -> Standing:
        """Count the request in one window if it has room, and say where the window stands."""
        now = float(stamp)
        self._sweep(now)
        admitted = _has_room(window, self._stamps.get(window.key, []), now)
        if admitted:
            self._count(window, now)
        stamps = self._stamps.get(window.key, [])
        # Newest first: the stamps inside the window are a prefix of the list.
        inside = bisect_left(stamps, window.seconds - now, key=lambda stamp: -stamp)
        oldest = stamps[inside - 1] if inside else None
        return _standing(window, admitted, inside, oldest, now)

    def _count(self, window: Window, now: float) -> None:
        stamps = self._stamps.setdefault(window.key, [])
        stamps.insert(0, now)
        del stamps[window.amount :]
        self._empty_at[window.key] = now + window.seconds

    def add(self, window: Window, stamps: Sequence[float]) -> None:
        """Count hits admitted before, without deciding them again: a process's unsettled hits
        of the shared window, when Redis stopped answering before they were settled."""
        if not stamps:
            return
        held = self._stamps.setdefault(window.key, [])
        held.extend(stamps)
        held.sort(reverse=True)
        del held[window.amount :]
        empty_at = held[0] + window.seconds
        self._empty_at[window.key] = max(self._empty_at.get(window.key, empty_at), empty_at)

    def give_back(self, hits: Hits) -> None:
        for key in hits.keys:
            stamps = self._stamps.get(key, [])
            if float(hits.stamp) in stamps:
                stamps.remove(float(hits.stamp))

    def clear(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._stamps.pop(key, None)
            self._empty_at.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Forget the windows that have emptied: one per username an attacker tried, else."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        for key in [key for key, empty_at in self._empty_at.items() if empty_at <= now]:
            self.clear((key,))


# Decides every window, then counts the attempt in each that takes it, or in none: a script runs
# atomically, so no other attempt is decided in between. KEYS: the windows. ARGV[1]: the stamp;
# then per window its amount, its seconds and its kind ('limit': refuses when full; 'share':
# never refuses, counted while it has room; 'after': refuses when full, counted only when the
# window before it was). Returns {1, counted indices...} or {0, index, oldest stamp, ...} for
# the full windows that refuse.
_ADMIT = """
local now = tonumber(ARGV[1])
local room, refused = {}, {0}
for i, key in ipairs(KEYS) do
  local amount, seconds, kind = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), ARGV[3*i+1]
  local oldest = redis.call('lindex', key, amount - 1)
  room[i] = (not oldest) or tonumber(oldest) < now - seconds
  if not room[i] and kind ~= 'share' then
    refused[#refused+1] = i
    refused[#refused+1] = oldest
  end
end
if #refused > 1 then return refused end
local counted, previous = {1}, false
for i, key in ipairs(KEYS) do
  local amount, seconds, kind = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), ARGV[3*i+1]
  local count = room[i] and (kind ~= 'after' or previous)
  if count then
    redis.call('lpush', key, ARGV[1])
    redis.call('ltrim', key, 0, amount - 1)
    redis.call('expire', key, seconds)
    counted[#counted+1] = i
  end
  previous = count
end
return counted
"""

# Lua functions the two scripts below share. `split` reads stamps sent as one string (one
# argument per stamp would cost the client more than the rest of a request). `push` counts
# stamps, oldest first, without deciding them (they were admitted: the request itself, or the
# hits a process admitted on its own since it last settled, ADR 0008); only the newest `amount`
# can stay in the list. A stamp older than the list's newest (another instance's, pushed
# meanwhile, or from a clock behind) is counted as that one, a little later than it was, so the
# list stays newest first. `measure` is how many stamps are inside the window (a binary search
# of the newest-first list) and the oldest of them.
_FUNCTIONS = """
local function split(joined)
  local stamps = {}
  for stamp in string.gmatch(joined, '%S+') do stamps[#stamps + 1] = stamp end
  return stamps
end
local function push(key, amount, seconds, stamps)
  if #stamps == 0 then return end
  local head = redis.call('lindex', key, 0)
  local newest = head and tonumber(head) or -math.huge
  local counted = {}
  for i = math.max(1, #stamps - amount + 1), #stamps do
    local stamp = tonumber(stamps[i])
    if stamp >= newest then head, newest = stamps[i], stamp end
    counted[#counted + 1] = head
  end
  for i = 1, #counted, 1000 do
    redis.call('lpush', key, unpack(counted, i, math.min(i + 999, #counted)))
  end
  redis.call('ltrim', key, 0, amount - 1)
  redis.call('expire', key, seconds)
end
local function measure(key, now, seconds)
  local low, high = 0, redis.call('llen', key)
  while low < high do
    local middle = math.floor((low + high) / 2)
    if tonumber(redis.call('lindex', key, middle)) > now - seconds then
      low = middle + 1
    else
      high = middle
    end
  end
  local last = false
  if low > 0 then last = redis.call('lindex', key, low - 1) end
  return low, last
end
"""

# One window, decided, counted and measured in one step (a user's requests): first the hits this
# process admitted on its own and has not settled yet, then the request, counted if the window
# has room; then where the window stands, and Redis's clock (which orders the readings a process
# gets back: they may arrive out of order). KEYS[1]: the window. ARGV: the stamp, the amount, the
# seconds, the unsettled stamps (oldest first, separated by spaces). Returns {admitted (1 or 0),
# stamps inside, oldest stamp inside or false, seconds, microseconds}.
_HIT = (
    _FUNCTIONS
    + """
local now, amount, seconds = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
push(KEYS[1], amount, seconds, split(ARGV[4]))
local oldest = redis.call('lindex', KEYS[1], amount - 1)
local admitted = (not oldest) or tonumber(oldest) < now - seconds
if admitted then push(KEYS[1], amount, seconds, {ARGV[1]}) end
local inside, last = measure(KEYS[1], now, seconds)
local time = redis.call('time')
return {admitted and 1 or 0, inside, last, time[1], time[2]}
"""
)

# Every window's unsettled hits counted, and where each stands then: one round trip for all the
# users a process served since it last settled. KEYS: the windows. ARGV[1]: the stamp; then per
# window its amount, its seconds and its stamps (oldest first, separated by spaces). Returns
# {stamps inside, oldest stamp inside or false} per window, then Redis's seconds and
# microseconds.
_SETTLE = (
    _FUNCTIONS
    + """
local now, reply = tonumber(ARGV[1]), {}
for i, key in ipairs(KEYS) do
  local amount, seconds = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  push(key, amount, seconds, split(ARGV[3*i+1]))
  local inside, last = measure(key, now, seconds)
  reply[#reply + 1] = inside
  reply[#reply + 1] = last
end
local time = redis.call('time')
reply[#reply + 1] = time[1]
reply[#reply + 1] = time[2]
return reply
"""
)

_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  redis.call('lrem', key, 1, ARGV[1])
end
return 0
"""


def _kind(window: Window) -> str:
    if not window.refuses:
        return "share"
    return "after" if window.follows_previous else "limit"


class RedisWindows:
    """The windows every instance shares, under `prefix` in Redis."""

    def __init__(self, client: Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._give_back = client.register_script(_GIVE_BACK)
        self._hit = client.register_script(_HIT)
        self._settle = client.register_script(_SETTLE)

    async def admit(self, windows: list[Window], stamp: str) -> Hits:
        args: list[Any] = [stamp]
        for window in windows:
            args += [window.amount, window.seconds, _kind(window)]
        reply = await self._admit(keys=[self._key(window) for window in windows], args=args)
        if int(reply[0]) == 1:
            return Hits(stamp, tuple(windows[int(i) - 1].key for i in reply[1:]))
        now = float(stamp)
        full = []
        for index, oldest in zip(reply[1::2], reply[2::2], strict=True):
            window = windows[int(index) - 1]
            full.append(FullWindow(window, _reset_after(window, float(oldest), now)))
        raise WindowsFull(full)

    async def hit(
        self, window: Window, stamp: str, unsettled: Sequence[float] = ()
    ) -> tuple[bool, Reading]:
        """Count `unsettled` (this process's hits admitted since it last settled, oldest first),
        then the request if the window has room; whether it was counted, and where the window
        stands: one round trip."""
        admitted, inside, oldest, seconds, micros = await self._hit(
            keys=[self._key(window)],
            args=[stamp, window.amount, window.seconds, _joined(unsettled)],
        )
        return bool(int(admitted)), _reading(inside, oldest, seconds, micros)

    async def settle(
        self, batches: Sequence[tuple[Window, Sequence[float]]], stamp: str
    ) -> list[Reading]:
        """Count each window's unsettled hits (oldest first) and say where each stands then: one
        round trip for them all."""
        args: list[Any] = [stamp]
        for window, stamps in batches:
            args += [window.amount, window.seconds, _joined(stamps)]
        reply = await self._settle(keys=[self._key(window) for window, _ in batches], args=args)
        seconds, micros = reply[-2:]
        return [
            _reading(inside, oldest, seconds, micros)
            for inside, oldest in zip(reply[:-2:2], reply[1:-2:2], strict=True)
        ]

    async def give_back(self, hits: Hits) -> None:
        if hits.keys:
            await self._give_back(
                keys=[self._full_key(key) for key in hits.keys], args=[hits.stamp]
            )

    async def clear(self, keys: tuple[str, ...]) -> None:
        await self._client.delete(*(self._full_key(key) for key in keys))

    def _key(self, window: Window) -> str:
        return self._full_key(window.key)

    def _full_key(self, key: str) -> str:
        return f"{self._prefix}:{key}"


def _joined(stamps: Sequence[float]) -> str:
    """Stamps as the scripts read them: one argument, in the format of every other stamp."""
    return ("%.6f " * len(stamps)) % tuple(stamps)


def _reading(inside: Any, oldest: Any, seconds: Any, micros: Any) -> Reading:
    return Reading(
        int(inside), float(oldest) if oldest else None, int(seconds) * 1_000_000 + int(micros)
    )
