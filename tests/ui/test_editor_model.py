"""Model checking of the editor: random sequences of user commands, invariants after each step.

A Hypothesis state machine drives the command layer the window uses (add, delete, delete with
reconnect, connect, disconnect, insert into a wire, move, edit, freeze, settings, undo, redo,
save, load) on a live canvas scene and checks after every step that the scene mirrors the
graph, that the graph is well formed, that save → load gives the same project, that every undo
and redo gives back exactly the project seen at that point of the stack, and at the end that
undoing everything restores the start.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from PySide6.QtWidgets import QApplication

from studio.core.graph import Edge
from studio.core.project import Project, sample_paths
from studio.core.shapes import analyze
from studio.ui.canvas import CanvasScene
from studio.ui.editor import Editor

LAYERS = ["Linear", "ReLU", "Conv2d", "Flatten", "Dropout", "BatchNorm1d", "Add", "Concat",
          "MaxPool2d", "Sigmoid"]


class EditorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = QApplication.instance() or QApplication([])
        src = next(p for p in sample_paths() if p.name.startswith("mnist_cnn"))
        self.project = Project.load(src)
        self.start = self.project.dumps()
        self.editor = Editor(self.project)
        self.scene = CanvasScene(self.editor)
        self.refusals = 0
        self.editor.refused.connect(lambda _m: setattr(self, "refusals", self.refusals + 1))
        self.tmp = os.environ["STUDIO_MODEL_CHECK_DIR"]
        self.seen = {0: self.start}  # the project at each index of the undo stack
        self.last_index = 0
        self.travelled = False  # the last rule was an undo or redo

    def check_history(self) -> None:
        """After an undo or redo: exactly the project seen at that index of the stack."""
        known = self.seen.get(self.editor.stack.index())
        if known is not None:
            assert self.project.dumps() == known

    def edges(self) -> list[Edge]:
        return sorted(self.editor.graph.edges, key=lambda e: (e.src, e.dst, e.port))

    def teardown(self) -> None:
        # the end: undo everything, and the start comes back exactly
        while self.editor.stack.canUndo():
            self.editor.stack.undo()
        assert self.project.dumps() == self.start
        self.check_scene()
        self.scene.deleteLater()
        self.editor.deleteLater()

    def ids(self) -> list[str]:
        return sorted(self.editor.graph.nodes)

    # -- rules: what a user can do -------------------------------------------------------------

    @rule(layer=st.sampled_from(LAYERS), data=st.data(), x=st.floats(-500, 500),
          y=st.floats(-500, 500))
    def add(self, layer: str, data, x: float, y: float) -> None:
        after = data.draw(st.sampled_from([None, *self.ids()]))
        self.editor.add_layer(layer, (x, y), after=after)

    @precondition(lambda self: len(self.editor.graph.nodes) > 1)
    @rule(data=st.data())
    def delete(self, data) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3))
        self.editor.delete(ids)

    @precondition(lambda self: len(self.editor.graph.nodes) > 1)
    @rule(data=st.data())
    def connect(self, data) -> None:
        src = data.draw(st.sampled_from(self.ids()))
        dst = data.draw(st.sampled_from(self.ids()))
        self.editor.connect_nodes(src, dst)  # cycles and taken ports are refused, not raised

    @precondition(lambda self: bool(self.editor.graph.edges))
    @rule(data=st.data())
    def disconnect(self, data) -> None:
        self.editor.disconnect_edge(data.draw(st.sampled_from(self.edges())))

    @precondition(lambda self: bool(self.editor.graph.nodes))  # a delete can empty it
    @rule(data=st.data(), dx=st.floats(-200, 200), dy=st.floats(-200, 200))
    def move(self, data, dx: float, dy: float) -> None:
        nid = data.draw(st.sampled_from(self.ids()))
        old = self.editor.graph.nodes[nid].pos
        self.editor.move({nid: (old, (old[0] + dx, old[1] + dy))})

    @precondition(lambda self: bool(self.editor.graph.nodes))  # a delete can empty it
    @rule(data=st.data(), value=st.one_of(st.integers(-5, 300), st.floats(-1, 2),
                                          st.text(max_size=4), st.none()))
    def edit(self, data, value) -> None:
        nid = data.draw(st.sampled_from(self.ids()))
        node = self.editor.graph.nodes[nid]
        if node.spec is None or not node.spec.schema.params:
            return
        p = data.draw(st.sampled_from([p.name for p in node.spec.schema.params]))
        self.editor.set_params(nid, {**node.params, p: value})  # bad values are refused

    @precondition(lambda self: bool(self.editor.graph.nodes))  # a delete can empty it
    @rule(data=st.data(), on=st.booleans())
    def freeze(self, data, on: bool) -> None:
        self.editor.set_trainable(data.draw(st.sampled_from(self.ids())), on)

    @rule(epochs=st.integers(-3, 200), bs=st.integers(-1, 5000))
    def settings(self, epochs: int, bs: int) -> None:
        self.editor.set_setting("training", "epochs", epochs)
        self.editor.set_setting("data", "batch_size", bs)

    @precondition(lambda self: bool(self.editor.graph.edges))
    @rule(layer=st.sampled_from(LAYERS), data=st.data())
    def insert_into_wire(self, layer: str, data) -> None:
        edge = data.draw(st.sampled_from(self.edges()))
        self.editor.insert_layer(layer, (0.0, 0.0), edge)  # a misfit is refused

    @precondition(lambda self: bool(self.editor.graph.edges))
    @rule(data=st.data())
    def insert_node_into_wire(self, data) -> None:
        nid = data.draw(st.sampled_from(self.ids()))
        edge = data.draw(st.sampled_from(self.edges()))
        old = self.editor.graph.nodes[nid].pos
        self.editor.insert_node(nid, edge, {nid: (old, (old[0], old[1] + 10))})

    @precondition(lambda self: len(self.editor.graph.nodes) > 1)
    @rule(data=st.data())
    def delete_and_reconnect(self, data) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3))
        self.editor.delete_and_reconnect(ids)

    @rule(n=st.integers(1, 4))
    def undo(self, n: int) -> None:
        self.travelled = True
        for _ in range(n):
            self.editor.stack.undo()
            self.check_history()

    @rule(n=st.integers(1, 4))
    def redo(self, n: int) -> None:
        self.travelled = True
        for _ in range(n):
            self.editor.stack.redo()
            self.check_history()

    @rule()
    def save_and_load(self) -> None:
        path = os.path.join(self.tmp, "model-check.studio.json")
        self.project.save(path)
        again = Project.load(path)
        assert again.dumps() == self.project.dumps()
        assert again.graph.structure() == self.project.graph.structure()

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def check_scene(self) -> None:
        g = self.editor.graph
        assert set(self.scene.nodes) == set(g.nodes)
        assert set(self.scene.edge_items) == set(g.edges)
        for nid, item in self.scene.nodes.items():
            assert item.node is g.nodes[nid]
            assert (item.pos().x(), item.pos().y()) == g.nodes[nid].pos
        for e in g.edges:  # well formed: ends exist, one edge per input port
            assert e.src in g.nodes and e.dst in g.nodes
        ports = [(e.dst, e.port) for e in g.edges]
        assert len(ports) == len(set(ports))
        assert not any(g.reaches(e.dst, e.src) for e in g.edges)  # no cycle

    @invariant()
    def remember_history(self) -> None:
        """An edit keeps what lies below it on the stack and replaces what was above; what it
        pushed in between (a rule may push twice) is not known."""
        now = self.editor.stack.index()
        if not self.travelled:
            self.seen = {i: d for i, d in self.seen.items() if i <= self.last_index}
            self.seen[now] = self.project.dumps()
        self.last_index, self.travelled = now, False

    @invariant()
    def analysis_never_raises(self) -> None:
        analyze(self.editor.graph)  # problems are values, never exceptions


def test_random_editing_sessions_keep_every_invariant(qapp, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_MODEL_CHECK_DIR", str(tmp_path))
    run_state_machine_as_test(EditorMachine, settings=settings(
        max_examples=int(os.environ.get("STUDIO_MODEL_CHECK_EXAMPLES", "100")),
        stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
