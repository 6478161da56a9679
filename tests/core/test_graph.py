import pytest

from studio.core.errors import CycleError, GraphError, PortError
from studio.core.graph import Edge, Graph, Node


def chain(*types: str) -> Graph:
    g = Graph()
    prev = None
    for i, t in enumerate(types):
        g.add_node(Node(f"n{i}", t))
        if prev:
            g.connect(prev, f"n{i}")
        prev = f"n{i}"
    return g


def test_topological_order_follows_edges_and_insertion_order() -> None:
    g = Graph()
    for nid, t in [("out", "Add"), ("a", "ReLU"), ("inp", "Input"), ("b", "Tanh")]:
        g.add_node(Node(nid, t))
    g.connect("inp", "a")
    g.connect("inp", "b")
    g.connect("a", "out", 0)
    g.connect("b", "out", 1)
    assert g.topological_order() == ["inp", "a", "b", "out"]


def test_cycle_is_refused_with_reason() -> None:
    g = chain("Input", "ReLU", "Tanh")
    with pytest.raises(CycleError, match="cycle"):
        g.connect("n2", "n1")
    assert not g.can_connect("n1", "n1")
    assert len(g.edges) == 2


def test_second_edge_into_single_input_port_is_refused() -> None:
    g = chain("Input", "ReLU")
    g.add_node(Node("other", "Input"))
    with pytest.raises(PortError, match="already fed by 'n0'"):
        g.connect("other", "n1", 0)
    with pytest.raises(PortError, match="port 1 does not exist"):
        g.connect("other", "n1", 1)
    with pytest.raises(PortError, match="takes no input"):
        g.connect("n1", "other")


def test_merge_nodes_take_many_inputs() -> None:
    g = Graph()
    g.add_node(Node("x", "Input"))
    g.add_node(Node("cat", "Concat"))
    for i in range(4):
        g.add_node(Node(f"r{i}", "ReLU"))
        g.connect("x", f"r{i}")
        g.connect(f"r{i}", "cat", g.free_port("cat"))
    assert g.predecessors("cat") == ["r0", "r1", "r2", "r3"]


def test_remove_node_returns_its_edges_for_undo() -> None:
    g = chain("Input", "ReLU", "Tanh")
    before = g.structure()
    where = g.index("n1")
    node, edges = g.remove_node("n1")
    assert set(edges) == {Edge("n0", "n1", 0), Edge("n1", "n2", 0)}
    assert g.edges == []
    g.add_node(node, where)
    for e in edges:
        g.connect(e.src, e.dst, e.port)
    assert g.structure() == before


def test_signals_announce_every_change() -> None:
    g = Graph()
    seen: list[tuple[str, object]] = []
    for name in ("node_added", "node_removed", "node_changed", "edge_added", "edge_removed"):
        getattr(g, name).connect(lambda x, name=name: seen.append((name, x)))
    g.add_node(Node("a", "Input"))
    g.add_node(Node("b", "ReLU"))
    e = g.connect("a", "b")
    g.move_node("b", (3, 4))
    g.set_params("a", {"shape": [3]})
    g.remove_node("b")
    assert [s[0] for s in seen] == ["node_added", "node_added", "edge_added", "node_changed",
                                    "node_changed", "edge_removed", "node_removed"]
    assert seen[2][1] == e


def test_ids_must_be_identifiers_and_unique() -> None:
    g = Graph()
    g.add_node(Node("fc1", "Linear"))
    with pytest.raises(GraphError, match="already exists"):
        g.add_node(Node("fc1", "Linear"))
    for bad in ("1fc", "fc.1", "", "a b"):
        with pytest.raises(GraphError, match="must start with a letter"):
            g.add_node(Node(bad, "Linear"))
    assert g.new_id("Conv2d") == "conv2d_1"
    assert g.new_id("Linear") == "linear_1"


def test_copy_is_independent() -> None:
    g = chain("Input", "Linear")
    c = g.copy()
    c.set_params("n1", {"out_features": 3})
    c.remove_node("n0")
    assert g.nodes["n1"].params == {}
    assert len(g.edges) == 1
