"""Typed parameter descriptions shared by layers, losses, optimizers and datasets.

One ``ParamSpec`` drives validation when a project file loads, the inspector's form widget,
the defaults the builder fills in and the generated documentation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ParamError

Kind = Literal["int", "float", "bool", "choice", "ints", "padding", "shape", "str"]


@dataclass(frozen=True)
class ParamSpec:
    """One constructor argument: its kind, default, range and a line of documentation.

    Kinds: ``int``, ``float``, ``bool``, ``choice`` (one of ``choices``), ``ints`` (an int or a
    list of ``length`` ints, as torch's ``kernel_size``), ``padding`` (``ints`` or ``"same"`` /
    ``"valid"``), ``shape`` (a list of ints of any length), ``str`` (free text).
    """

    name: str
    kind: Kind
    default: Any
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    length: int = 1
    nullable: bool = False
    min_exclusive: bool = False
    max_exclusive: bool = False
    unit: str = ""  # what the number counts (epochs, samples…), shown beside it
    allow_negative_one: bool = False

    def validate(self, value: Any) -> Any:
        """Return the value as stored in a project file, or raise ParamError saying why not."""
        if value is None:
            if self.nullable:
                return None
            raise ParamError(f"must not be empty ({self._expect()})")
        kind = self.kind
        if kind == "int":
            return self._check_int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParamError(f"must be a number, not {_show(value)}")
            value = float(value)
            if not math.isfinite(value):
                raise ParamError(f"must be a finite number, not {value}")
            self._check_range(value)
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"must be true or false, not {_show(value)}")
            return value
        if kind in ("choice", "str"):
            if not isinstance(value, str):
                raise ParamError(f"must be text, not {_show(value)}")
            if kind == "choice" and value not in self.choices:
                raise ParamError(f"must be one of {', '.join(self.choices)}; got {value!r}")
            return value
        if kind == "padding" and isinstance(value, str):
            if value not in ("same", "valid"):
                raise ParamError(f"must be a number, a list of {self.length}, 'same' or 'valid'")
            return value
        if kind in ("ints", "padding"):
            if isinstance(value, list | tuple):
                if len(value) != self.length:
                    raise ParamError(f"must have {self.length} values, got {len(value)}")
                return [self._check_int(v) for v in value]
            return self._check_int(value)
        if kind == "shape":
            if not isinstance(value, list | tuple) or not value:
                raise ParamError(f"must be a non-empty list of whole numbers, not {_show(value)}")
            out = [self._check_int(v) for v in value]
            if self.allow_negative_one and out.count(-1) > 1:
                raise ParamError("may contain -1 at most once")
            return out
        raise ParamError(f"unknown parameter kind {kind}")  # pragma: no cover - catalog bug

    def _check_int(self, value: Any) -> int:
        number: int
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise ParamError(f"must be a whole number, not {_show(value)}")
        if self.allow_negative_one and number == -1:
            return number
        self._check_range(number)
        return number

    def _check_range(self, value: float) -> None:
        if self.min is not None and (
                value < self.min or (self.min_exclusive and value == self.min)):
            op = ">" if self.min_exclusive else "≥"
            raise ParamError(f"must be {op} {_num(self.min)}, got {_num(value)}")
        if self.max is not None and (
                value > self.max or (self.max_exclusive and value == self.max)):
            op = "<" if self.max_exclusive else "≤"
            raise ParamError(f"must be {op} {_num(self.max)}, got {_num(value)}")

    def _expect(self) -> str:
        return {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
            self.kind, self.kind
        )


@dataclass(frozen=True)
class Schema:
    """The parameters of one catalog entry (a layer, a loss, an optimizer, a dataset)."""

    params: tuple[ParamSpec, ...] = ()
    _by_name: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})

    def __getitem__(self, name: str) -> ParamSpec:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def defaults(self) -> dict[str, Any]:
        return {p.name: _copy(p.default) for p in self.params}

    def validate(self, values: Mapping[str, Any], where: str = "params") -> dict[str, Any]:
        """Check every given value; unknown names are refused so typos do not pass silently."""
        if not isinstance(values, Mapping):
            raise ParamError(f"must be an object of parameters, not {_show(values)}", where)
        out: dict[str, Any] = {}
        for name, value in values.items():
            spec = self._by_name.get(name)
            if spec is None:
                known = ", ".join(self.names()) or "none"
                raise ParamError(f"unknown parameter {name!r} (known: {known})", where)
            try:
                out[name] = spec.validate(value)
            except ParamError as exc:
                raise ParamError(exc.message, f"{where}.{name}") from None
        return out

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """All parameters: the given values over the defaults."""
        full = self.defaults()
        full.update(values)
        return full


def as_tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    """torch's rule: one int means the same value in every spatial dimension."""
    if isinstance(value, int):
        return (value,) * n
    return tuple(value)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def _num(x: float) -> str:
    if abs(x) >= 1e15:  # a number too long to read is shown by its size
        return f"{float(x):.3g}"
    return str(int(x)) if float(x).is_integer() else repr(x)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
