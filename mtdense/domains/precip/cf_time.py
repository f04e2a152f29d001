"""Decode CF-style time values ("<unit> since <epoch>", CF conventions section 4.4) to UTC datetimes.

Used by the P-Tree (days since 1858-11-17) and IMERG (seconds since 1970-01-01 or 1980-01-06)
readers so neither hard-codes an epoch. Calendars are treated as proleptic Gregorian, exact for
any date after 1582 (IMERG's "julian" label refers to the same day counts in this range).
"""

from __future__ import annotations

import datetime as dt
import re

_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_UNITS = re.compile(r"^\s*(second|minute|hour|day)s?\s+since\s+(\d{4})-(\d{1,2})-(\d{1,2})"
                    r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?", re.IGNORECASE)


def decode_cf_time(value: float, units: str | bytes, where: str = "time") -> dt.datetime:
    """``value`` in ``units`` (e.g. "seconds since 1980-01-06 00:00:00 UTC") as a naive UTC datetime."""
    if isinstance(units, bytes):
        units = units.decode("ascii", "replace")
    m = _UNITS.match(str(units))
    if m is None:
        raise ValueError(f"{where}: cannot parse time units {units!r}; "
                         "expected '<seconds|days|...> since YYYY-MM-DD hh:mm:ss'")
    unit, y, mo, d, h, mi, s = m.groups()
    epoch = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0)) + dt.timedelta(seconds=float(s or 0))
    return epoch + dt.timedelta(seconds=float(value) * _UNIT_SECONDS[unit.lower()])
