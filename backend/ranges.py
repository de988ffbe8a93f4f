"""Range composition (query layer): a time range read from day, hour and minute gold alike.

Gold keeps the same mergeable sums at three grains: one-minute partials, and hour and day
rollups that the job keeps complete below its rollup marks (``glue_job.rollups``), which
every commit row states. A snapshot (``Snapshot``: the committed batch and its marks)
answers a range [since, until) from

- day rollups for the whole days in it below the day mark,
- hour rollups for the other whole hours below the hour mark,
- minute partials for the rest: the ragged edges, and whatever the job has not rolled up.

Sums of sums are the sums, so every KPI equals the minute-level answer, while a month reads
some thirty day rows per key instead of forty thousand minute rows. The SQL side is one
macro (``{{window_rows(table)}}`` in ``backend.range_sql``): the union of the three, each
with the partitions of its own part of the range, so the engine reads nothing outside it.
A trend bucket caps the grain: a chart by the hour may take hours, never days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# The grains a trend bucket may use, by its unit (none: a total over the range).
_GRAINS_OF_UNIT = {None: 2, "day": 2, "hour": 1, "minute": 0}
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


class Snapshot(int):
    """A committed batch and its rollup marks.

    It *is* the batch id (every query binds it as ``:batch``, caches key on it, and a batch
    id alone still means a snapshot, read from minute partials only); the marks come with
    it from the same commit row, so they are the same for everyone who sees that batch.
    """

    hours_until: datetime | None
    ops_hours_until: datetime | None  # ``_ops``'s own rollups' mark (``glue_job.rollups``)

    def __new__(
        cls,
        batch: int,
        hours_until: datetime | None = None,
        ops_hours_until: datetime | None = None,
    ) -> Snapshot:
        snapshot = super().__new__(cls, batch)
        snapshot.hours_until = hours_until
        snapshot.ops_hours_until = ops_hours_until
        return snapshot

    @property
    def ops(self) -> Snapshot:
        """The same batch with ``_ops``'s marks as its own: what ``{{ops_rows}}`` composes
        a window from."""
        return Snapshot(int(self), self.ops_hours_until)

    @property
    def days_until(self) -> datetime | None:
        if self.hours_until is None:
            return None
        return self.hours_until.replace(hour=0, minute=0, second=0, microsecond=0)

    def __repr__(self) -> str:
        return (
            f"Snapshot({int(self)}, hours_until={self.hours_until!r}, "
            f"ops_hours_until={self.ops_hours_until!r})"
        )

    def __str__(self) -> str:  # printed, it is the batch id it is
        return str(int(self))

    def __format__(self, spec: str) -> str:
        return format(int(self), spec)


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def _floor(moment: datetime, step: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    if step == _DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Segments:
    """[rolled_since, rolled_until) is read from rollups, and within it [days_since,
    days_until) from day rollups; the rest of the window from minute partials. An empty
    part has its since equal to its until."""

    rolled_since: datetime
    rolled_until: datetime
    days_since: datetime
    days_until: datetime


def compose(since: datetime, until: datetime, batch: int, unit: str | None = None) -> Segments:
    """The parts of [since, until) for a snapshot ``batch``, grains capped by ``unit``."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    grains = _GRAINS_OF_UNIT[unit]
    hours_until = getattr(batch, "hours_until", None)
    none = Segments(since, since, since, since)
    if grains < 1 or hours_until is None or until <= since:
        return none
    rolled_since = _ceil(since, _HOUR)
    rolled_until = _floor(min(until, hours_until.astimezone(UTC)), _HOUR)
    if rolled_until <= rolled_since:
        return none
    days_since = days_until = rolled_since
    if grains >= 2:
        first, last = _ceil(rolled_since, _DAY), _floor(rolled_until, _DAY)
        if first < last:
            days_since, days_until = first, last
    return Segments(rolled_since, rolled_until, days_since, days_until)


# How a moment travels as a query parameter: a UTC text that DuckDB and Athena both CAST the
# same way (written by ``range_params``, read back by ``scope_of``).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def _month(moment: datetime) -> str:
    return date(moment.year, moment.month, 1).isoformat()


def range_params(
    since: datetime, until: datetime, batch: int, unit: str | None = None, prefix: str = ""
) -> dict[str, str]:
    """The parameters of ``{{window_rows(table, prefix)}}``: the window's own and its
    parts' (``compose``), each moment with the day or month of its partition."""
    parts = compose(since, until, batch, unit)
    values = {
        "since": _timestamp(since),
        "until": _timestamp(until),
        "since_day": _day(since),
        "until_day": _day(until),
        "rolled_since": _timestamp(parts.rolled_since),
        "rolled_until": _timestamp(parts.rolled_until),
        "rolled_since_day": _day(parts.rolled_since),
        "rolled_until_day": _day(parts.rolled_until),
        "days_since": _timestamp(parts.days_since),
        "days_until": _timestamp(parts.days_until),
        "days_since_day": _day(parts.days_since),
        "days_until_day": _day(parts.days_until),
        "days_since_month": _month(parts.days_since),
        "days_until_month": _month(parts.days_until),
    }
    return {f"{prefix}{name}": value for name, value in values.items()}


# --- What a range reads: the engine lists only these partitions' files --------------------

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Scope:
    """The periods a query's windows read, by grain: half-open [start, end) intervals of
    minute rows (and of any table keyed by a moment, such as quarantine's ingest time), of
    hour rollups and of day rollups. The inverse of ``range_params``: the same parts the
    ``{{window_rows}}`` and ``{{in_window}}`` predicates select, so an engine that lists
    only the partitions overlapping them reads every row the SQL can return."""

    minutes: tuple[Interval, ...]
    hours: tuple[Interval, ...] = ()
    days: tuple[Interval, ...] = ()
    # Instead of the periods: only each table's newest partition that holds files. For the
    # newest row of a table whose partitions advance with its rows, as ``_ops``'s
    # ``batch_date`` (the date a batch started) advances with ``batch_id``.
    newest: bool = False


NEWEST = Scope((), newest=True)


def _moment(text: object) -> datetime:
    return datetime.strptime(str(text), TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def scope_of(params: dict[str, object]) -> Scope | None:
    """The ``Scope`` of a query's parameters, or None when it has no window (it reads the
    whole of every table it names). One window per prefix (``range_params``' own, or
    ``Window.params``' four), merged."""
    minutes: list[Interval] = []
    hours: list[Interval] = []
    days: list[Interval] = []
    prefixes = [
        key.removesuffix("since_day")
        for key in params
        if key.endswith("since_day") and not key.endswith(("rolled_since_day", "days_since_day"))
    ]
    for p in prefixes:
        since, until = _moment(params[f"{p}since"]), _moment(params[f"{p}until"])
        if f"{p}rolled_since" not in params:  # {{in_window}}: one part, at the minute grain
            minutes.append((since, until))
            continue
        rolled_since, rolled_until = (_moment(params[f"{p}rolled_{e}"]) for e in ("since", "until"))
        days_since, days_until = (_moment(params[f"{p}days_{e}"]) for e in ("since", "until"))
        minutes += [(since, rolled_since), (rolled_until, until)]
        hours += [(rolled_since, days_since), (days_until, rolled_until)]
        days.append((days_since, days_until))
    if not prefixes:
        return None
    return Scope(*(tuple((s, e) for s, e in part if s < e) for part in (minutes, hours, days)))
