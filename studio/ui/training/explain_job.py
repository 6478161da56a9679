"""Explaining samples off the GUI thread: the Evaluate view asks, a worker thread loads the
run's project and weights once (``studio.training.explain.Explainer``) and answers with the
attribution, the sample as a picture and the chosen layer's feature maps.

A thread rather than a child process: the data and weights stay loaded between questions,
so a second sample or method answers at once. Only the latest question about the current
weights is answered: the check is made in the GUI thread when the answer arrives, so nothing
about weights no longer shown slips in. The thread is a daemon: closing the window never
waits for an explanation still being computed.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True)
class Source:
    """Which weights explain: a run's project file and a checkpoint or weights file."""

    project_file: Path
    weights: Path
    base_dir: Path | None = None


@dataclass(frozen=True)
class Question:
    index: int  # into the dataset as loaded, before any split
    method: str
    target: int | None = None  # None: the predicted class
    layer: str | None = None  # the node for Grad-CAM and the feature maps; None: the last conv


class ExplainJob(QObject):
    """Answers :class:`Question` s about one :class:`Source` in a worker thread."""

    answered = Signal(object)  # a dict: see ``_answer``
    failed = Signal(str)
    #: from the worker: (number, source, answer dict or failure text), checked on arrival
    _done = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._questions: queue.Queue[tuple[int, Source, Question] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loaded: tuple[tuple[Any, ...], Any] | None = None  # (run, Explainer)
        self._weights: tuple[Any, ...] | None = None  # (file, mtime, size) loaded
        self._asked = 0
        self.source: Source | None = None
        self._done.connect(self._deliver)

    def set_source(self, source: Source | None) -> None:
        self.source = source

    def ask(self, question: Question) -> None:
        if self.source is None:
            self.failed.emit("no trained weights yet: train the network, or evaluate a "
                             "checkpoint from the runs list")
            return
        self._asked += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="explain", daemon=True)
            self._thread.start()
        self._questions.put((self._asked, self.source, question))

    def shutdown(self) -> None:
        """No more questions; the one being answered, if any, is dropped unseen."""
        self._asked += 1
        self._questions.put(None)

    def _deliver(self, number: int, source: Source, value: Any) -> None:
        if number != self._asked or source != self.source:
            return  # a newer question, or other weights, since it was asked
        if isinstance(value, dict):
            self.answered.emit(value)
        else:
            self.failed.emit(str(value))

    # -- the worker thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            item = self._questions.get()
            if item is None:
                return
            number, source, q = item
            if number != self._asked:  # a newer question came while this one waited
                continue
            try:
                value: Any = self._answer(source, q)
            except Exception as exc:  # a question must never take the window down
                from studio.core.errors import first_line

                value = first_line(exc)
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self._done.emit(number, source, value)

    def _explainer(self, source: Source) -> Any:
        """The source's network, loaded once per run: a newer checkpoint of the same run (its
        next epoch, or its best) only replaces the weights."""
        from studio.core.errors import TrainingError
        from studio.core.project import Project
        from studio.training.explain import Explainer

        if not source.weights.exists():
            raise TrainingError("no weights yet: a run writes them at the end of its first "
                                "epoch", str(source.weights))
        stat = source.weights.stat()
        run = (source.project_file, source.base_dir)
        key = (source.weights, stat.st_mtime_ns, stat.st_size)
        if self._loaded is not None and self._loaded[0] == run:
            if self._weights != key:
                self._loaded[1].reload(source.weights)
                self._weights = key
            return self._loaded[1]
        self._loaded = None  # free the old data before loading the new
        project = Project.load(source.project_file)
        self._loaded = (run, Explainer(project, source.weights, source.base_dir))
        self._weights = key
        return self._loaded[1]

    def _answer(self, source: Source, q: Question) -> dict[str, Any]:
        from studio.training import feature_maps as fm
        from studio.training.explain import gradcam_layers, map_layers

        ex = self._explainer(source)
        graph = ex.graph
        from studio.core.flat import layer_modules

        inner = layer_modules(ex.model)  # the layers inside blocks too, by their paths
        modules = {**dict(ex.model.named_children()), **inner}
        # Grad-CAM reads the chosen layer when it has a map on the way to the output, else
        # the last convolution (the caption says so)
        cam = q.layer if q.layer in map_layers(graph) and q.layer in modules else None
        e = ex.explain(q.index, q.method, q.target, cam if q.method == "gradcam" else None)
        x = ex.sample(q.index)
        truth, said, what = ex.verdict(q.index, e)
        answer: dict[str, Any] = {
            "question": q, "source": source, "explanation": e, "count": len(ex),
            "truth": truth, "predicted": said, "explained": what, "targets": ex.targets(),
            "classes": list(ex.classes), "columns": list(ex.columns), "image": None,
            "values": None, "weights": source.weights, "layers": gradcam_layers(graph),
            "nodes": (list(inner) if graph.blocks
                      else [n for n in graph.topological_order() if n in modules]),
        }
        if ex.image:
            answer["image"] = ex.picture(q.index)
        else:
            answer["values"] = _unscaled(x.numpy().reshape(-1), ex.norm)
        convs = answer["layers"]
        node = q.layer or (convs[-1] if convs else None)
        if node is not None and node in modules:
            out = fm.node_output(ex.model, x, node)
            answer.update(maps_node=node, maps_shape=tuple(out.shape),
                          maps=fm.channel_tiles(out, fm.channels_first(graph, node)))
        first = fm.first_convolution(graph)
        if first is not None:
            w = fm.filters(ex.model, first)
            answer.update(filters_node=first, filters_shape=tuple(w.shape),
                          filters=fm.filter_tiles(w))
        return answer


def _unscaled(x: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """A table sample in its file's units (the scaling undone), for the bar chart's labels."""
    if norm and norm.get("per") == "feature" and len(norm["mean"]) == len(x):
        return x * np.asarray(norm["std"], np.float32) + np.asarray(norm["mean"], np.float32)
    return x
