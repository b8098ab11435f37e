"""The readers of Prometheus's and Alertmanager's JSON, fed anything JSON can hold: each
either reads it or raises `SourceGarbage` naming the URL, never another exception; and the
fleet batch cut from odd series still gives each host a Sample or a clear error."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.hosts.prometheus.api import (
    VectorItem,
    parse_am_alerts,
    parse_rule_alerts,
    parse_silence,
    parse_targets,
    parse_vector,
)
from fleetdeck.hosts.prometheus.http import SourceGarbage
from fleetdeck.hosts.prometheus.sampler import host_names, split_batch, to_sample

URL = "http://source.example:9090/api"
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
KEYS = ["status", "data", "resultType", "result", "metric", "value", "alerts", "labels",
        "state", "activeTargets", "matchers", "name", "id", "silencedBy", "x"]  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_every_reader_reads_or_says_garbage_naming_the_url(answer: Any) -> None:
    for reader in (
        parse_vector,
        parse_rule_alerts,
        parse_targets,
        parse_am_alerts,
        parse_silence,
    ):
        try:
            reader(URL, answer)
        except SourceGarbage as error:
            assert str(error).startswith(URL)


def test_a_recorded_vector_is_read_and_nan_is_no_figure() -> None:
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"instance": "a:9100"}, "value": [1.5, "3"]},
                {"metric": {"instance": "b:9100"}, "value": [1.5, "+Inf"]},
            ],
        },
    }
    assert parse_vector(URL, answer) == [VectorItem({"instance": "a:9100"}, 3.0)]


def test_hosts_are_named_without_the_port_unless_two_share_a_name() -> None:
    names = host_names(["web-1:9100", "db:9100", "db:9200", "[::1]:9100", "bare"])
    assert names == {
        "web-1:9100": "web-1",
        "db:9100": "db:9100",
        "db:9200": "db:9200",
        "[::1]:9100": "::1",
        "bare": "bare",
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["cpu", "memory", "load", "net", "fs", "up"]),
            st.dictionaries(
                st.sampled_from(["instance", "__name__", "cpu", "mode", "device", "mountpoint"]),
                st.text(max_size=6),
                max_size=5,
            ),
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
        ),
        max_size=30,
    )
)
def test_a_batch_of_odd_series_gives_samples_or_value_errors(rows: list[Any]) -> None:
    answers: dict[str, list[VectorItem]] = {}
    for kind, labels, value in rows:
        answers.setdefault(kind, []).append(VectorItem(labels, value))
    batch = split_batch(answers, 0.0)
    for figures in batch.hosts.values():
        # PromSampler turns a ValueError into SampleGarbage naming the host and the source
        with contextlib.suppress(ValueError):
            to_sample(figures, 0.0)
