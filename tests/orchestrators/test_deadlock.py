"""The wait-for graph: cycles are found when the edge that closes them is added."""

from __future__ import annotations

from tierd.orchestrators._deadlock import WaitForGraph


def test_wait_for_graph_finds_cycles():
    """Blocking closes no cycle until the chain leads back to the waiter."""
    graph = WaitForGraph()
    assert graph.block("a@1", "b@1") is None
    assert graph.block("b@1", "c@2") is None
    assert graph.block("c@2", "a@1") == ["c@2", "a@1", "b@1"]
    graph.unblock("b@1")
    assert graph.block("c@2", "a@1") is None
