"""The one retry policy of the Graph client, ``$batch`` and the writer.

Three limits, all on the injected clock (a :class:`~reconciler.clock.VirtualClock` never waits):

- **per request** (:class:`RetryPolicy`): ``max_attempts`` tries for errors without
  ``Retry-After``, ``max_throttled_attempts`` for answers that say how long to wait, and
  ``max_total_seconds`` for one call, waits included;
- **per run** (:class:`RunHealth`, one per :class:`~providers.entra.client.GraphClient`): at most
  ``run_retry_budget`` re-sends over the whole run; when it is spent, the next retry raises
  :class:`~providers.entra.errors.RetryBudgetExhaustedError`;
- **the circuit breaker**: ``circuit_failures`` outage answers in a row (503, 500/502/504, no
  response at all) spanning at least ``circuit_seconds`` open the circuit; every later request
  raises :class:`~providers.entra.errors.CircuitOpenError` at once, without being sent. Any answer
  that is not an outage (a 2xx, a 404, even a 429: throttling is Graph working) closes the streak.

Both errors are :class:`~providers.entra.errors.GraphUnavailableError`: the run stops early and says
so, instead of each remaining change retrying for minutes.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import threading
from dataclasses import dataclass

from providers.entra.errors import CircuitOpenError, RetryBudgetExhaustedError

__all__ = [
    "IDEMPOTENT_METHODS",
    "LOST_STATUSES",
    "OUTAGE_STATUSES",
    "REFUSED_STATUSES",
    "RetryPolicy",
    "RunHealth",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
REFUSED_STATUSES = frozenset({429, 503})  # not processed (but a throttled write may have been applied)
LOST_STATUSES = frozenset({500, 502, 504})  # may have been processed
#: answers that count towards the circuit breaker (429 does not: throttling is Graph working)
OUTAGE_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. ``max_total_seconds`` bounds one call, waits included (virtual time in tests)."""

    max_attempts: int = 10
    max_throttled_attempts: int = 100
    max_total_seconds: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    timeout_seconds: float = 60.0
    #: re-sends allowed over a whole run (every retry of every request, batch rounds included)
    run_retry_budget: int = 2000
    #: outage answers in a row that open the circuit ...
    circuit_failures: int = 10
    #: ... once the streak has lasted at least this long
    circuit_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_throttled_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts and max_throttled_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")
        if self.run_retry_budget < 0 or self.circuit_failures < 1 or self.circuit_seconds < 0:
            raise ValueError(
                "RetryPolicy: run_retry_budget >= 0, circuit_failures >= 1 and circuit_seconds >= 0"
            )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential, capped, minus up to ``jitter``."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return float(delay * (1.0 - self.jitter * rng.random()))


class RunHealth:
    """The run-wide half of the policy: the retry budget and the circuit breaker. Thread-safe."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self.retries = 0
        self._streak = 0
        self._streak_start: float | None = None
        self._opened: str | None = None  # why the circuit opened

    @property
    def open(self) -> bool:
        return self._opened is not None

    def check(self) -> None:
        """Before sending: raise :class:`CircuitOpenError` once the circuit is open."""
        if self._opened is not None:
            raise CircuitOpenError(self._opened)

    def outage(self, now: float, what: str) -> None:
        """An outage answer (503, 5xx, no response). May open the circuit (and then raises)."""
        with self._lock:
            if self._opened is not None:
                raise CircuitOpenError(self._opened)
            if self._streak_start is None:
                self._streak_start = now
            self._streak += 1
            lasted = now - self._streak_start
            if self._streak >= self.policy.circuit_failures and lasted >= self.policy.circuit_seconds:
                self._opened = (
                    f"Graph looks unavailable: {self._streak} requests in a row over {lasted:.0f} s got "
                    f"no usable answer (last: {what}); stopping the run instead of retrying every change"
                )
                log.error("%s", self._opened)
                raise CircuitOpenError(self._opened)

    def healthy(self) -> None:
        """Any answer that is not an outage closes the streak."""
        if self._streak:
            with self._lock:
                self._streak = 0
                self._streak_start = None

    def spend(self, what: str) -> None:
        """Before a re-send: take one retry from the run's budget, or raise when it is spent."""
        with self._lock:
            if self.retries >= self.policy.run_retry_budget:
                raise RetryBudgetExhaustedError(
                    f"the run's retry budget ({self.policy.run_retry_budget} re-sends) is spent "
                    f"(last: {what}); Graph is failing too often to go on, run again later"
                )
            self.retries += 1


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: fractional seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, not local time
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds
