"""Project files (``*.studio.json``): load with full validation, save atomically.

Loading parses JSON into plain data, migrates old versions, checks structure with pydantic,
then resolves every name against allow-lists (layer catalog, losses, optimizers, datasets).
Nothing named in a file is ever imported or evaluated. Every failure is one ProjectError whose
``where`` is the field path (``graph.nodes[2] 'fc1'.params.out_features``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .blockdef import check_blocks
from .errors import GraphError, ProjectError
from .files import read_limited
from .graph import Edge, Graph
from .graph_file import blocks_dict, graph_dict, load_graph
from .settings import DataSettings, EarlyStopping, TrainingSettings, error_message

FORMAT = "studio.project"
VERSION = 2
#: the version written when a project uses no blocks (older Studios open such files)
PLAIN_VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024

#: version N → a function turning a version-N dict into a version-(N+1) dict.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: lambda raw: raw,  # version 2 adds "blocks"; a version-1 file reads unchanged
}


@dataclass
class Project:
    """Everything one file holds: the network, its data and how to train it."""

    name: str = "Untitled"
    graph: Graph = field(default_factory=Graph)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    #: one line on what the project is for (File ▸ Open Sample shows it for the samples)
    description: str = ""
    #: a hyperparameter sweep's search space (``studio.core.sweep_spec``); None: no sweep
    sweep: dict[str, Any] | None = None
    path: Path | None = None

    # -- dict form ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        blocks = self.graph.blocks
        out: dict[str, Any] = {"format": FORMAT,
                               "version": VERSION if blocks else PLAIN_VERSION,
                               "name": self.name}
        if self.description:  # absent when empty: such files still open in older Studios
            out["description"] = self.description
        if blocks:  # absent without blocks, and the version stays 1
            out["blocks"] = blocks_dict(blocks)
        out.update({
            "graph": graph_dict(self.graph),
            "data": self.data.model_dump(),
            "training": self.training.model_dump(),
        })
        if self.sweep is not None:  # absent without a sweep, as description
            out["sweep"] = copy.deepcopy(self.sweep)
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> Project:
        """Validate a parsed file; raises ProjectError naming the field path."""
        if not isinstance(raw, dict):
            raise ProjectError("a project file must hold a JSON object", "(top level)")
        raw = migrate(raw)
        bad = unencodable(raw)
        if bad is not None:
            raise ProjectError("text that cannot be written as UTF-8 (a lone surrogate)", bad)
        unknown = set(raw) - {"format", "version", "name", "description", "blocks", "graph",
                              "data", "training", "sweep"}
        if unknown:
            raise ProjectError(f"unknown field {sorted(unknown)[0]!r}", "(top level)")
        name = raw.get("name", "Untitled")
        if not isinstance(name, str):
            raise ProjectError("must be text", "name")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise ProjectError("must be text", "description")
        graph = load_graph(raw.get("graph"), raw.get("blocks"))
        data = _model(DataSettings, raw.get("data", {}), "data")
        training = _model(TrainingSettings, raw.get("training", {}), "training")
        project = cls(name=name, description=description, graph=graph, data=data,
                      training=training)
        if raw.get("sweep") is not None:
            from .sweep_spec import validate_sweep

            project.sweep = validate_sweep(raw["sweep"], project)
        return project

    # -- files ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Project:
        path = Path(path)
        data = read_limited(path, MAX_FILE_BYTES, ProjectError, what="project files")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProjectError("not a text file (expected UTF-8 JSON)", str(path)) from None
        project = cls.loads(text, source=str(path))
        project.path = path
        return project

    @classmethod
    def loads(cls, text: str, source: str = "<project>") -> Project:
        project: Project = read_json(text, source, cls.from_dict)
        return project

    def dumps(self) -> str:
        return pretty_json(self.to_dict()) + "\n"

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write atomically: a crash leaves the old file or the new one, never half of one."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ProjectError("no file name given")
        try:  # never write a file that would not open again
            check_blocks(self.graph)
        except GraphError as exc:
            raise ProjectError(exc.message, exc.where) from None
        atomic_write(target, self.dumps().encode("utf-8"))
        self.path = target
        return target

    def copy(self) -> Project:
        """An independent snapshot (a run trains this, not the graph being edited)."""
        p = Project.from_dict(self.to_dict())
        p.path = self.path
        return p


def read_json(text: str, source: str, make: Callable[[Any], Any]) -> Any:
    """``make`` of the JSON ``text``; every ProjectError names ``source`` (the file) before
    the field path, and broken JSON its line and column."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"not valid JSON: {exc.msg}",
                           f"{source}, line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ProjectError("JSON is nested too deeply", source) from None
    try:
        return make(raw)
    except ProjectError as exc:
        raise ProjectError(exc.message, f"{source}: {exc.where}" if exc.where else source
                           ) from None


def pretty_json(value: Any, indent: int = 0, width: int = 100) -> str:
    """JSON with short objects and lists on one line, so a node reads as one line in diffs."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + indent <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {pretty_json(v, indent + 2, width)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + pretty_json(v, indent + 2, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename over the target, fsync the folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # name the file the user knows, not the temporary one
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _file_mode(path: Path) -> int:
    """Keep an existing file's permissions; new files get the usual 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file up to the current version, one step at a time."""
    if raw.get("format") != FORMAT:
        raise ProjectError(f"not a Studio project (format must be {FORMAT!r})", "format")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError("must be a whole number ≥ 1", "version")
    if version > VERSION:
        raise ProjectError(f"written by a newer Studio (version {version}); this one reads up "
                           f"to version {VERSION}", "version")
    while version < VERSION:
        raw = MIGRATIONS[version](raw)
        version += 1
        raw["version"] = version
    return raw


def unencodable(value: Any, where: str = "") -> str | None:
    """The field path of the first text that UTF-8 cannot hold (JSON's ``"\ud800"``), or
    None: such a project could be opened but never saved or exported."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(top level)"
        return None
    items = (value.items() if isinstance(value, dict) else enumerate(value)
             if isinstance(value, list) else ())
    for k, v in items:
        if isinstance(k, str) and unencodable(k) is not None:
            return where or "(top level)"
        sub = f"{where}[{k}]" if isinstance(k, int) else f"{where}.{k}" if where else str(k)
        found = unencodable(v, sub)
        if found is not None:
            return found
    return None


def _model(cls: type[BaseModel], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ProjectError("must be an object", where)
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join([where, *(f"[{p}]" if isinstance(p, int) else str(p)
                                  for p in err["loc"])])
        msg = error_message(err)
        if ": " in msg and err["type"] == "value_error":
            sub, _, rest = msg.partition(": ")
            if sub and " " not in sub:  # "lr: must be > 0": the field goes into the path
                path, msg = f"{path}.{sub}", rest
        raise ProjectError(msg, path.replace(".[", "[")) from None


def file_stem(path: Path) -> str:
    """A project file's name without ``.studio.json`` (or ``.json``): runs and exports are
    named after it."""
    return path.name.removesuffix(".json").removesuffix(".studio")


def samples_dir() -> Path:
    """The ready projects shipped with the package (``samples/`` of the repository)."""
    from importlib.resources import files

    return Path(str(files("studio.samples"))).resolve()


def sample_paths() -> list[Path]:
    return sorted(samples_dir().glob("*.studio.json"))


def sample_header(path: Path) -> tuple[str, str]:
    """A project file's name and description without validating the rest (menus list many
    files); the file's stem when it cannot be read."""
    try:
        raw = json.loads(read_limited(path, MAX_FILE_BYTES, ProjectError,
                                      what="project files"))
        name, description = raw.get("name"), raw.get("description", "")
        if isinstance(name, str) and isinstance(description, str):
            return name, " ".join(description.split())
    except (ProjectError, ValueError, AttributeError):
        pass
    return file_stem(path), ""


DEFAULT_SAMPLE = "mnist_cnn.studio.json"


def default_sample() -> Path:
    return samples_dir() / DEFAULT_SAMPLE


__all__ = [
    "DataSettings",
    "EarlyStopping",
    "Edge",
    "Project",
    "TrainingSettings",
    "atomic_write",
    "default_sample",
    "sample_paths",
]
