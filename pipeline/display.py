"""Times for people: every time a person reads is shown in the ``[display] timezone`` with its
zone named (``2026-11-30 20:26 JST``); everything stored stays UTC.

Stage: every command's output (the terminal, its log lines, the review page, the alerts, the
history chart). Reads nothing and writes nothing. The JSON-lines log is for machines and
keeps UTC ISO 8601 with its offset (:mod:`pipeline.logs`); run ids keep their UTC start time.

A time without a zone (``timestamp`` rather than ``timestamptz``) is read as UTC, the zone
every stored time is in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Tokyo"  # the seller's zone unless [display] timezone says otherwise
NO_TIME = "–"  # what an unknown time is shown as
_RUN_ID_TIME = "%Y%m%dT%H%M%SZ"  # the start time a run id begins with (pipeline.runs)


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone this machine knows, or None when it is."""
    try:
        zone(name)
    except ValueError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Asia/Tokyo``, ``UTC``, ``Europe/Berlin``); a name the time
    zone database does not hold is a ``ValueError`` naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{name!r} is not an IANA time zone name such as 'Asia/Tokyo' or 'UTC'"
        ) from None


def in_zone(moment: datetime, timezone: str) -> datetime:
    """``moment`` as wall time in ``timezone`` (a naive ``moment`` is UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone(timezone))


def label(moment: datetime) -> str:
    """The zone's abbreviation at an aware ``moment`` (``JST``, ``UTC``, ``CEST``); a zone
    with no letters of its own (``+04``) is named by its offset (``UTC+04``)."""
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[0] in "+-" else name


def local(moment: datetime | None, timezone: str, *, seconds: bool = False) -> str:
    """Date and wall time in ``timezone`` with the zone named: ``2026-11-30 20:26 JST``
    (``2026-11-30 20:26:12 JST`` with ``seconds``); ``–`` for no time."""
    if moment is None:
        return NO_TIME
    wall = in_zone(moment, timezone)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{wall.strftime(pattern)} {label(wall)}"


def short(moment: datetime | None, timezone: str) -> str:
    """Month, day and wall time in ``timezone`` with the zone named: ``11-30 20:26 JST``."""
    if moment is None:
        return NO_TIME
    wall = in_zone(moment, timezone)
    return f"{wall:%m-%d %H:%M} {label(wall)}"


def clock(moment: datetime, timezone: str) -> str:
    """Wall time of day in ``timezone`` with the zone named: ``20:26:12 JST`` (the terminal's
    log lines)."""
    wall = in_zone(moment, timezone)
    return f"{wall:%H:%M:%S} {label(wall)}"


def zone_name(timezone: str, at: datetime | None = None) -> str:
    """The zone named for people at ``at`` (default now): ``JST (Asia/Tokyo)``, ``UTC``."""
    abbreviation = label(in_zone(at or datetime.now(UTC), timezone))
    return abbreviation + (f" ({timezone})" if abbreviation != timezone else "")


def zone_note(timezone: str, at: datetime | None = None) -> str:
    """The header that names the zone of a table or page: ``times in JST (Asia/Tokyo)``."""
    return f"times in {zone_name(timezone, at)}"


def run_started(run_id: str) -> datetime | None:
    """The UTC start time a run id begins with (``20261130T112612Z-a1b2c3``), or None for an
    id that does not begin with one."""
    try:
        return datetime.strptime(run_id[:16], _RUN_ID_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
