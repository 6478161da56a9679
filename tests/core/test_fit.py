"""What fits where: the catalog's own shape rules decide, as the analysis does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core import catalog
from studio.core.fit import accepts, bridges, layers_accepting
from studio.core.graph import Edge, Graph, Node
from studio.core.project import Project, default_sample
from studio.core.shapes import analyze


def test_a_conv_feature_map_is_offered_image_layers_and_not_linear() -> None:
    offered = layers_accepting((64, 26, 26))
    for kind in ("Conv2d", "MaxPool2d", "Flatten", "BatchNorm2d", "ReLU", "Dropout2d", "Add"):
        assert kind in offered
    for kind in ("Linear", "Conv1d", "BatchNorm1d", "LSTM", "Embedding", "Input"):
        assert kind not in offered


def test_a_flat_vector_is_offered_dense_layers_and_not_convolutions() -> None:
    offered = layers_accepting((128,))
    for kind in ("Linear", "BatchNorm1d", "Dropout", "ReLU", "Softmax"):
        assert kind in offered
    for kind in ("Conv2d", "Conv1d", "MaxPool2d", "BatchNorm2d", "LSTM", "Embedding"):
        assert kind not in offered


def test_a_sequence_is_offered_recurrent_and_attention_layers() -> None:
    offered = layers_accepting((20, 32))
    for kind in ("LSTM", "GRU", "MultiheadAttention", "TransformerEncoderLayer", "Conv1d",
                 "Linear", "LayerNorm"):
        assert kind in offered
    for kind in ("Conv2d", "MaxPool2d", "BatchNorm2d", "Embedding"):
        assert kind not in offered


def test_token_ids_are_offered_embedding_and_reshaping_only() -> None:
    offered = layers_accepting((20,), "int64")
    assert "Embedding" in offered and "Linear" not in offered and "ReLU" not in offered
    assert set(offered) <= {"Embedding", "Flatten", "Reshape", "Permute"}


def test_params_are_part_of_the_fit() -> None:
    assert accepts("Conv2d", (3, 8, 8))
    assert not accepts("Conv2d", (3, 8, 8), params={"kernel_size": 9})  # bigger than the image
    assert not accepts("Linear", (64, 5, 5))
    assert not accepts("Nope", (3,))
    assert not accepts("Conv2d", (3, 8, 8), params={"kernel_size": 0})  # an invalid param


def test_the_list_follows_the_palette_order() -> None:
    order = [s.type for group in catalog.by_category().values() for s in group]
    offered = layers_accepting((64, 26, 26))
    assert offered == [t for t in order if t in offered]


_TYPES = [s.type for s in catalog.CATALOG.values() if s.inputs == 1]


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(_TYPES),
       shape=st.lists(st.integers(1, 40), min_size=1, max_size=4).map(tuple),
       dtype=st.sampled_from(["float32", "int64"]))
def test_fit_agrees_with_the_analysis_of_the_wired_graph(kind, shape, dtype) -> None:
    g = Graph()
    g.add_node(Node("x", "Input", {"shape": list(shape), "dtype": dtype}))
    g.add_node(Node("y", kind))
    g.connect("x", "y")
    wired_ok = analyze(g).nodes["y"].shape is not None
    assert accepts(kind, shape, dtype) == wired_ok


# -- closing the gap a delete leaves ------------------------------------------------------------

def sample() -> Graph:
    return Project.load(default_sample()).graph


def test_deleting_a_link_of_a_chain_bridges_its_neighbours() -> None:
    assert bridges(sample(), ["relu2"]) == [Edge("conv2", "pool2", 0)]


def test_a_run_of_deleted_nodes_is_bridged_end_to_end() -> None:
    assert bridges(sample(), ["conv2", "relu2"]) == [Edge("pool1", "pool2", 0)]
    assert bridges(sample(), ["relu1", "relu2"]) == [Edge("conv1", "pool1", 0),
                                                     Edge("conv2", "pool2", 0)]


def test_no_bridge_when_the_result_would_not_fit() -> None:
    # Linear after a deleted Flatten would get [64, 5, 5]: left unconnected instead
    assert bridges(sample(), ["flatten"]) == []


def test_no_bridge_around_sources_branches_or_sinks() -> None:
    g = sample()
    assert bridges(g, ["input"]) == [] and bridges(g, ["dense2"]) == []
    g.add_node(Node("side", "ReLU"))
    g.connect("relu1", "side")  # relu1 now has two outputs
    assert bridges(g, ["relu1"]) == []


def test_a_bridge_keeps_the_merge_port_it_replaces() -> None:
    g = Graph.from_parts(
        [Node("x", "Input", {"shape": [8]}), Node("a", "ReLU"), Node("b", "Tanh"),
         Node("cat", "Concat")],
        [Edge("x", "a"), Edge("x", "b"), Edge("a", "cat", 0), Edge("b", "cat", 1)])
    assert bridges(g, ["b"]) == [Edge("x", "cat", 1)]
