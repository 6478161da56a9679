"""Every catalog entry explains itself: a formula, a shape rule, two sentences of advice and a
link to PyTorch's page for what it builds, shown alike in the inspector and docs/layers.md."""

from __future__ import annotations

import importlib
import re

import pytest
from torch import nn

from studio.core import catalog, modules
from studio.core.docs import layers_markdown

SPECS = list(catalog.CATALOG.values())
#: a page of PyTorch's API reference, named by the dotted path it documents
_REFERENCE = re.compile(r"^https://docs\.pytorch\.org/[a-z]+/stable/generated/([\w.]+)\.html$")


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text.strip())


def resolve(dotted: str) -> object:
    """``torch.nn.LSTM`` → the class; the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_every_layer_has_a_formula_a_shape_rule_and_two_sentences(spec) -> None:
    assert spec.formula.strip() and spec.shape_rule.strip()
    said = sentences(spec.about)
    assert len(said) == 2, said
    for sentence in said:
        assert sentence[0].isupper() and sentence.endswith("."), sentence
    assert "`" not in spec.formula + spec.shape_rule  # docs/layers.md puts them in code spans


def test_element_wise_activations_keep_the_shape() -> None:
    for spec in SPECS:
        if spec.category == "Activation":
            assert spec.shape_rule == catalog.SAME_SHAPE, spec.type


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_every_layer_links_to_pytorchs_documentation(spec) -> None:
    assert spec.doc_url.startswith("https://docs.pytorch.org/")
    if spec.torch_class:  # the page of the very class built
        assert spec.doc_url == catalog.torch_doc(f"torch.nn.{spec.torch_class}")
        assert isinstance(getattr(nn, spec.torch_class), type)


@pytest.mark.parametrize("spec", [s for s in SPECS if _REFERENCE.match(s.doc_url)],
                         ids=lambda s: s.type)
def test_every_reference_link_names_something_that_exists(spec) -> None:
    dotted = _REFERENCE.match(spec.doc_url).group(1)
    if dotted.startswith("torchvision."):
        pytest.importorskip("torchvision")
    target = resolve(dotted)
    if dotted == f"torch.nn.{spec.type}" and not spec.torch_class:
        assert issubclass(getattr(modules, spec.type), target)  # a wrapper links its base


def test_the_links_of_studio_modules_are_the_closest_torch_pages() -> None:
    names = {s.type: _REFERENCE.match(s.doc_url).group(1) for s in SPECS
             if not s.torch_class and _REFERENCE.match(s.doc_url)}
    assert names["Reshape"] == "torch.reshape" and names["Permute"] == "torch.permute"
    assert names["Add"] == "torch.add" and names["Concat"] == "torch.cat"
    assert names["Multiply"] == "torch.mul" and names["LSTM"] == "torch.nn.LSTM"
    assert names["StochasticDepth"] == "torchvision.ops.StochasticDepth"


def test_docs_show_each_layers_help() -> None:
    text = layers_markdown()
    for spec in SPECS:
        section = text.split(f"\n### {spec.type}\n", 1)[1].split("\n### ", 1)[0]
        assert spec.about in section
        assert f"- Formula: `{spec.formula}`" in section
        assert spec.shape_rule in section
        assert f"[PyTorch documentation]({spec.doc_url})" in section
