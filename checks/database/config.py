"""The database checks' thresholds (`[thresholds.database]`), with their defaults and why.

    [thresholds.database]
    connections = { warn = 80, crit = 90 }        # % of the slots ordinary users may take
    idle_in_transaction = { warn = 60, crit = 600 }  # seconds idle inside an open transaction
    long_query = { warn = 60, crit = 600 }        # seconds one statement has been running
    dead_rows = 10_000                            # fewer dead rows than this: never a finding
    unused_index_age = 604_800                    # seconds of statistics before "unused" (7 days)
    top = 5                                       # statements and tables listed

Every `{ warn, crit }` pair may also be written as a table (`[thresholds.database.long_query]`).
Durations are seconds, sizes bytes, statement times milliseconds, percentages 0-100; warn is
never above crit. `parse_db_thresholds` checks a table the way `checks.storage.config` does:
`fail(dotted_key, problem)` builds the error to raise, so the settings file names the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from fleetdeck.checks.settings import Fail, Limit, SettingsTable, parse_pair, value_error

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True, slots=True)
class DbThresholds:
    """What the database checks compare against. The defaults, and where they come from:"""

    connect_seconds: Limit = Limit(1.0, 5.0)
    """Seconds to connect and authenticate: a healthy server answers in milliseconds."""
    connections: Limit = Limit(80, 90)
    """% of max_connections minus the reserved slots (the issue's 80 % and 90 %)."""
    idle_in_transaction: Limit = Limit(60, 600)
    """Seconds a session has sat idle inside a transaction, holding its locks and snapshot."""
    long_query: Limit = Limit(60, 600)
    """Seconds one statement has run (check_postgres query_time uses the same scale)."""
    lock_wait: Limit = Limit(10, 120)
    """Seconds the longest waiter behind a root blocker has waited (deadlock_timeout is 1 s:
    a wait this long is a pile-up, not a deadlock about to be broken)."""
    dead_ratio: Limit = Limit(20, 50)
    """% of a table's rows that are dead. Autovacuum starts at 20 % (its default scale
    factor), so a table past it means autovacuum is behind or off."""
    dead_rows: int = 10_000
    """A table with fewer dead rows is never a finding, whatever its ratio."""
    wraparound: Limit = Limit(500_000_000, 1_000_000_000)
    """Transactions since a database's oldest unfrozen ID (age(datfrozenxid)), and the same
    for multixacts. Autovacuum forces a freeze at 200 million (autovacuum_freeze_max_age);
    500 million means it is failing; at 1 billion half the 2^31 IDs are gone, and the server
    stops new transactions some 3 million short of 2^31."""
    replication_lag: Limit = Limit(30, 300)
    """Seconds a standby's replay trails the primary (replay_lag; on a standby, its own)."""
    slot_wal: Limit = Limit(1 * GIB, 10 * GIB)
    """Bytes of WAL an inactive replication slot keeps the server from recycling."""
    slow_statement: Limit = Limit(1000, 10_000)
    """Mean execution time of a statement in pg_stat_statements, in milliseconds."""
    unused_index_bytes: int = 10 * MIB
    """An index never scanned is listed when it is at least this big (small ones cost
    little)."""
    unused_index_age: int = 7 * 86400
    """Seconds the usage statistics must go back before an index never scanned is called
    unused: a weekly job's index is used once a week."""
    top: int = 5
    """How many statements, tables and indexes a finding lists."""


LIMITS = tuple(f.name for f in fields(DbThresholds) if f.type in ("Limit", Limit))
COUNTS = tuple(f.name for f in fields(DbThresholds) if f.name not in LIMITS)
PERCENT = frozenset({"connections", "dead_ratio"})


def parse_db_thresholds(
    table: object, fail: Fail = value_error, where: str = "thresholds.database"
) -> DbThresholds:
    """The thresholds a `[thresholds.database]` table sets over the defaults; raises
    `fail(dotted_key, problem)` at the first key it cannot use."""
    if not isinstance(table, Mapping):
        raise fail(where, f"expected a table such as [{where}]")
    found = DbThresholds()
    changes: dict[str, Any] = {}
    known = ", ".join((*LIMITS, *COUNTS))
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key in LIMITS:
            percent = key in PERCENT
            changes[key] = parse_pair(getattr(found, key), value, dotted, fail, percent=percent)
        elif key in COUNTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(dotted, f"expected a whole number >= 0, got {value!r}")
            if key == "top" and not 1 <= value <= 100:
                raise fail(dotted, f"expected 1 to 100 rows, got {value!r}")
            changes[key] = value
        else:
            raise fail(dotted, f"unknown key (known: {known})")
    return replace(found, **changes)


TABLE = SettingsTable("database", ("thresholds", "database"), parse_db_thresholds)
"""`[thresholds.database]`: the database domain's settings (a `DbThresholds`)."""
