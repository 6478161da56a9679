"""Feature maps and filters: what a chosen layer makes of one sample, as tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.build import build_module
from studio.core.errors import TrainingError
from studio.training import feature_maps as fm
from tests.graphs import net

CNN = net(
    ("input", "Input", {"shape": [3, 12, 12]}),
    ("conv1", "Conv2d", {"out_channels": 6, "kernel_size": 3}),
    ("relu1", "ReLU", {}),
    ("conv2", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
    ("flat", "Flatten", {}),
    ("fc", "Linear", {"out_features": 5}),
)


def test_node_output_is_what_the_layer_computes_for_that_sample() -> None:
    model = build_module(CNN, seed=1).train()
    x = torch.randn(3, 12, 12)
    out = fm.node_output(model, x, "relu1")
    want = torch.relu(model.conv1(x[None]))[0].detach().numpy()
    assert out.shape == (6, 10, 10)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    assert model.training, "the model's mode is restored"
    assert not model.relu1._forward_hooks, "the hook lives for that pass only"
    fc = fm.node_output(model, x, "fc")
    assert fc.shape == (5,)


def test_node_output_names_a_node_without_a_layer() -> None:
    model = build_module(CNN, seed=1)
    with pytest.raises(TrainingError, match="'input' has no layer"):
        fm.node_output(model, torch.randn(3, 12, 12), "input")


def test_each_channel_is_scaled_on_its_own_and_a_dead_one_reads_black() -> None:
    a = np.stack([np.arange(16.0).reshape(4, 4),  # 0..15
                  50 + np.arange(16.0).reshape(4, 4) * 1e-2,  # a small range far from 0
                  np.zeros((4, 4))])  # dead
    tiles = fm.channel_tiles(a)
    assert len(tiles) == 3
    for t in tiles[:2]:
        assert t.min() == 0.0 and t.max() == pytest.approx(1.0)
    np.testing.assert_allclose(tiles[0], tiles[1], atol=1e-3)  # same pattern, any range
    assert not tiles[2].any()


def test_vectors_and_channel_rows_become_strips() -> None:
    assert [t.shape for t in fm.channel_tiles(np.arange(7.0))] == [(1, 7)]
    assert [t.shape for t in fm.channel_tiles(np.ones((3, 9)), channels_first=True)] == \
        [(1, 9)] * 3
    assert [t.shape for t in fm.channel_tiles(np.ones((5, 9)), channels_first=False)] == \
        [(5, 9)]
    assert len(fm.channel_tiles(np.ones((300, 2, 2)))) == fm.TILE_LIMIT


def test_first_convolution_filters_are_pictures_of_the_input() -> None:
    model = build_module(CNN, seed=1)
    assert fm.first_convolution(CNN) == "conv1"
    assert fm.first_convolution(net(("input", "Input", {"shape": [4]}),
                                    ("fc", "Linear", {"out_features": 2}))) is None
    w = fm.filters(model, "conv1")
    np.testing.assert_array_equal(w, model.conv1.weight.detach().numpy())
    tiles = fm.filter_tiles(w)
    assert len(tiles) == 6 and tiles[0].shape == (3, 3, 3)  # RGB: the input has 3 channels
    for t, f in zip(tiles, w, strict=True):
        img = np.moveaxis(f, 0, -1)
        # zero weight is mid grey; the largest weight in size reaches 0 or 1
        np.testing.assert_allclose(t - 0.5, 0.5 * img / np.abs(img).max(), rtol=1e-5)
    grey = fm.filter_tiles(fm.filters(model, "conv2"))
    assert grey[0].shape == (3, 3)  # 6 input channels averaged to one grey
    with pytest.raises(TrainingError, match="not a convolution"):
        fm.filters(model, "fc")


def test_a_sequence_is_told_from_channel_rows() -> None:
    g = net(("input", "Input", {"shape": [2, 16]}),
            ("c", "Conv1d", {"out_channels": 3, "kernel_size": 3}),
            ("r", "ReLU", {}),
            ("lstm", "LSTM", {"hidden_size": 4, "output": "sequence"}))
    assert fm.channels_first(g, "r") and fm.channels_first(g, "c")
    assert not fm.channels_first(g, "lstm")
