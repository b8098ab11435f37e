"""The database checks' thresholds (`[thresholds.database]`), with their defaults and why.

    [thresholds.database]
    connections = { warn = 80, crit = 90 }        # % of the slots ordinary users may take
    idle_in_transaction = { warn = 60, crit = 600 }  # seconds idle inside an open transaction
    long_query = { warn = 60, crit = 600 }        # seconds one statement has been running
    dead_rows = 10_000                            # fewer dead rows than this: never a finding
    unused_index_age = 604_800                    # seconds of statistics before "unused" (7 days)
    top = 5                                       # statements, tables and client addresses listed
    client_share = { warn = 50, crit = 80 }       # % of the slots one client address holds
    expected_clients = ["10.0.1.0/24"]            # addresses or networks the clients come from
    unexpected_clients = { warn = 1, crit = 20 }  # connections from other (non-local) addresses

Every `{ warn, crit }` pair may also be written as a table (`[thresholds.database.long_query]`).
Durations are seconds, sizes bytes, statement times milliseconds, percentages 0-100; warn is
never above crit. `expected_clients` is a list of addresses or networks (`10.0.1.5`,
`10.0.1.0/24`, `fd00::/64`); the local socket and loopback are always expected, and with no
list no address is judged for where it comes from. `parse_db_thresholds` checks a table the
way `checks.storage.config` does: `fail(dotted_key, problem)` builds the error to raise, so
the settings file names the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
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
    """How many statements, tables, indexes and client addresses a finding lists."""
    client_share: Limit = Limit(50, 80)
    """% of the slots ordinary users may take that the connections from one client address
    (the local socket counts as one) hold. A pool sized past half the server leaves no room
    for a second instance of its application during a rolling deploy, and a leak from one
    application server shows here before db.connections reaches its 80 %."""
    expected_clients: tuple[IPv4Network | IPv6Network, ...] = ()
    """The addresses and networks clients are expected to connect from, besides the local
    socket and loopback; empty: none is judged for where it comes from (only listed)."""
    unexpected_clients: Limit = Limit(1, 20)
    """Connections from non-local addresses outside `expected_clients` (when it is set): one
    is already worth a look in a security review (R09); twenty is a client, not a probe."""


LIMITS = tuple(f.name for f in fields(DbThresholds) if f.type in ("Limit", Limit))
NETWORKS = ("expected_clients",)
COUNTS = tuple(f.name for f in fields(DbThresholds) if f.name not in (*LIMITS, *NETWORKS))
PERCENT = frozenset({"connections", "dead_ratio", "client_share"})
MAX_NETWORKS = 1000
"""More entries than this in `expected_clients` is a mistake (a generated file), not a list."""


def parse_db_thresholds(
    table: object, fail: Fail = value_error, where: str = "thresholds.database"
) -> DbThresholds:
    """The thresholds a `[thresholds.database]` table sets over the defaults; raises
    `fail(dotted_key, problem)` at the first key it cannot use."""
    if not isinstance(table, Mapping):
        raise fail(where, f"expected a table such as [{where}]")
    found = DbThresholds()
    changes: dict[str, Any] = {}
    known = ", ".join((*LIMITS, *COUNTS, *NETWORKS))
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
        elif key in NETWORKS:
            changes[key] = parse_networks(value, dotted, fail)
        else:
            raise fail(dotted, f"unknown key (known: {known})")
    return replace(found, **changes)


def parse_networks(value: object, dotted: str, fail: Fail) -> tuple[IPv4Network | IPv6Network, ...]:
    """A list of addresses and networks (`10.0.1.5`, `10.0.1.0/24`, `fd00::/64`); a network
    with host bits set (`10.0.1.5/24`) is refused, as it is more likely a typo than meant."""
    if not isinstance(value, list) or len(value) > MAX_NETWORKS:
        raise fail(dotted, f"expected a list of up to {MAX_NETWORKS} addresses or networks")
    networks = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            said = f"expected an address such as 10.0.1.0/24, got {item!r}"
            raise fail(f"{dotted}[{index}]", said)
        try:
            networks.append(ip_network(item.strip()))
        except ValueError as error:
            raise fail(f"{dotted}[{index}]", str(error)) from None
    return tuple(networks)


TABLE = SettingsTable("database", ("thresholds", "database"), parse_db_thresholds)
"""`[thresholds.database]`: the database domain's settings (a `DbThresholds`)."""
