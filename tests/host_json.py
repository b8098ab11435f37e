"""Hypothesis strategies for JSON shaped like what `ip -j` and `nft -j` print, with the
key names those tools use, so property tests reach deep into the parsers."""

from __future__ import annotations

from hypothesis import strategies as st

KEY_NAMES = """ifname ifindex flags stats64 stats rx tx errors dropped addr_info family local
prefixlen scope dst gateway dev metric type nexthops weight via host nftables rule set chain
table expr match op left right payload protocol field meta key ct range elem val handle comment
xt name reject jump goto target log prefix level limit rate per burst inv drop accept counter
hook policy"""
JSON_KEYS = st.sampled_from(KEY_NAMES.split())
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["tcp", "dport", "@s", "==", "!=", "in", "ip", "inet", "th", "lo"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(JSON_KEYS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=40,
)
