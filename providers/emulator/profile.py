"""How realistic the emulator is. Every behaviour is a field, so a test can switch one on alone.

``Profile.ideal()`` is Graph's documented contract with none of the timing or random realism
(no throttling, replication lag, faults or latency; teams provision at once). The documented
validation errors (more than 20 binds, duplicate member, last owner, ``$expand`` cap, unknown
properties) stay on in both presets because they are what Graph answers every time; each can
still be switched off. ``Profile.realistic(seed)`` switches everything on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from providers.emulator.faults import FaultRule, Outage

__all__ = ["Profile"]


@dataclass(frozen=True)
class Profile:
    seed: int = 0
    # --- authentication
    require_bearer: bool = True
    accepted_tokens: frozenset[str] | None = None  # None: any non-empty bearer token
    # --- throttling (identity-and-access limits, graph-facts §5)
    throttle: bool = False
    ru_per_10s: int | None = None  # None: by tenant size (3,500 / 5,000 / 8,000)
    writes_per_150s: int = 3000
    tenant_writes_per_300s: int = 18000
    random_429_rate: float = 0.0  # 429s can occur even below the limits
    # --- replication lag
    replication_lag: float = 0.0  # seconds a new object is invisible to list, filter and delta
    new_group_member_lag: float = 0.0  # seconds after creation during which member adds give 400
    team_min_group_age: float = 0.0  # PUT/POST team on a younger group gives 404
    team_provision_delay: float = 0.0  # seconds until a teamsAsyncOperation succeeds
    # --- documented errors
    max_binds: int | None = 20
    reject_duplicate_member: bool = True
    reject_missing_member_removal: bool = True
    protect_last_owner: bool = True
    expand_cap: int | None = 20
    reject_unknown_properties: bool = True
    delete_member_without_ref_deletes_object: bool = True
    delta_token_ttl: float | None = 7 * 86400.0
    # --- education (graph-facts "Class Teams need an education class")
    #: Teams' ``educationClass`` template refused on a group that is not a class, as Graph always does
    #: (on in strict; tests still build plain groups with class Teams: an issue is filed to turn it on)
    education_rules: bool = False
    class_welcome_emails: bool = False  # whether a class's group mails welcome messages (undocumented)
    # --- batches
    shuffle_batch_responses: bool = False
    # --- faults and latency
    faults: tuple[FaultRule, ...] = ()
    outages: tuple[Outage, ...] = ()  # windows of persistent 503s (or 5xx storms) on the clock
    latency: tuple[float, float] = (0.0, 0.0)  # uniform seconds added to the clock per request
    # --- paging
    delta_page_size: int = 200

    @classmethod
    def ideal(cls) -> Profile:
        return cls()

    #: seconds after its creation during which a group refuses member binds (400), as Graph does
    NEW_GROUP_LAG: ClassVar[float] = 3.0

    @classmethod
    def quota(cls, seed: int = 0) -> Profile:
        """:meth:`ideal` with Graph's documented quotas enforced (throttling on, nothing random):
        what pacing and request counts are measured against. A group a few seconds old refuses
        member binds, as Graph's does every time (nothing random in that either)."""
        return cls(seed=seed, throttle=True, new_group_member_lag=cls.NEW_GROUP_LAG)

    @classmethod
    def realistic(cls, seed: int = 0) -> Profile:
        return cls(
            seed=seed,
            throttle=True,
            random_429_rate=0.002,
            replication_lag=5.0,
            new_group_member_lag=cls.NEW_GROUP_LAG,
            team_min_group_age=900.0,
            team_provision_delay=60.0,
            shuffle_batch_responses=True,
            faults=(
                FaultRule(status=503, rate=0.004),
                FaultRule(status=504, rate=0.002),
                FaultRule(drop_rate=0.002, lost_response_rate=0.002),
            ),
            latency=(0.05, 0.4),
        )

    @classmethod
    def strict(cls, seed: int = 0) -> Profile:
        """:meth:`realistic` plus 2 % of writes answered 429 although applied, and a 20 s read lag
        (issue 11's reproduction)."""
        base = cls.realistic(seed)
        return replace(
            base,
            education_rules=True,
            replication_lag=20.0,
            faults=(*base.faults, FaultRule(method="*", applied_error_rate=0.02, applied_status=429)),
        )

    def with_(self, **changes: Any) -> Profile:
        """A copy with some fields changed: ``Profile.ideal().with_(throttle=True)``."""
        return replace(self, **changes)
