"""Attributions (``studio explain``): maps faithful to the network, not decorative.

A small CNN trained for a few seconds on the 5,000-digit MNIST subset is the subject: hiding
the pixels a method ranks highest must hurt its answer far more than hiding as many random
ones, and a random map, checked the same way, must fail.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.cli import main
from studio.core.build import build_module
from studio.core.errors import TrainingError
from studio.core.project import DataSettings, Project, TrainingSettings
from studio.data.lazy import LoaderBatches
from studio.data.sources import load_arrays
from studio.training.checkpoint import save_weights
from studio.training.explain import (
    METHODS,
    NO_CONVOLUTION,
    Explainer,
    explain_sample,
    gradcam_layers,
)
from studio.training.trainer import Trainer
from tests.graphs import net

from .helpers import mlp

CNN = net(("input", "Input", {"shape": [1, 28, 28]}),
          ("conv1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
          ("relu1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": 2}),
          ("conv2", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
          ("relu2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": 2}),
          ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 10}))

#: share of the image hidden (against random pixels; against another sample's map), samples
HIDDEN, HIDDEN_VS_OTHER, SAMPLES = 0.2, 0.1, 30


def _train(project: Project, folder: Path, base: Path) -> tuple[Path, Path]:
    """Train in ``folder`` with the test session's caches; (project file, weights)."""
    with pytest.MonkeyPatch.context() as mp:  # the autouse fixture is per test, this is not
        mp.setenv("STUDIO_CACHE_DIR", str(base / "cache"))
        mp.setenv("STUDIO_DATA_DIR", str(base / "data"))
        result = Trainer(project, out_dir=folder / "run").fit()
    assert result.status == "completed", result.message
    project.save(folder / "project.studio.json")
    return folder / "project.studio.json", folder / "run" / "model.safetensors"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Explainer, Path, Path]:
    project = Project("cnn", CNN, DataSettings(dataset="mnist-5k", batch_size=64,
                                               val_fraction=0.2, test_fraction=0.1),
                      TrainingSettings(epochs=5, optimizer={"type": "Adam", "lr": 0.003},
                                       device="cpu"))
    base = tmp_path_factory.getbasetemp()
    path, weights = _train(project, tmp_path_factory.mktemp("cnn"), base)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_CACHE_DIR", str(base / "cache"))
        ex = Explainer(project, weights)
    return ex, path, weights


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Explainer, Path, Path]:
    project = mlp(device="cpu")
    path, weights = _train(project, tmp_path_factory.mktemp("wine"),
                           tmp_path_factory.getbasetemp())
    return Explainer(project, weights), path, weights


def _true_class_drop(ex: Explainer, x: torch.Tensor, y: int, ranking: np.ndarray,
                     hidden: float) -> float:
    """How far the true class's probability falls when the top ``hidden`` share of the pixels
    by ``ranking`` are replaced with the baseline (a black image)."""
    k = int(hidden * ranking.size)
    hide = torch.zeros(ranking.size, dtype=torch.bool)
    hide[torch.from_numpy(np.argsort(-ranking.reshape(-1), kind="stable")[:k])] = True
    dark = torch.where(hide.reshape(ranking.shape), ex.baseline, x)
    with torch.no_grad():
        p = torch.softmax(ex.model(torch.stack([x, dark])), -1)[:, y]
    return float(p[0] - p[1])


def _mean_drop(ex: Explainer, maps: dict[int, np.ndarray], hidden: float) -> float:
    return float(np.mean([_true_class_drop(ex, ex.sample(i), int(ex.label(i)[0]), m, hidden)
                          for i, m in maps.items()]))


def _random_maps(maps: dict[int, np.ndarray], seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i: rng.random(m.shape) for i, m in maps.items()}


def _faithful(attributed: float, random: float) -> bool:
    return attributed >= 2 * random and attributed - random >= 0.1


def _confident(ex: Explainer) -> list[int]:
    """The first validation samples the network gets right with confidence (a doubtful
    answer changes with any pixel, which blurs the comparison for every method alike)."""
    assert ex.bundle.val_idx is not None
    out = []
    for i in ex.bundle.val_idx.tolist():
        with torch.no_grad():
            p = torch.softmax(ex.model(ex.sample(i)[None]), -1)[0]
        if int(p.argmax()) == ex.label(i)[0] and p.max() >= 0.9:
            out.append(i)
        if len(out) == SAMPLES:
            return out
    raise AssertionError("the network is wrong too often to be explained")


@pytest.mark.parametrize("method", METHODS)
def test_hiding_the_most_attributed_pixels_hurts_far_more_than_hiding_random_ones(
        cnn, method) -> None:
    ex = cnn[0]
    maps = {i: ex.explain(i, method, target=int(ex.label(i)[0])).map for i in _confident(ex)}
    attributed = _mean_drop(ex, maps, HIDDEN)
    random = _mean_drop(ex, _random_maps(maps, 0), HIDDEN)
    print(f"{method}: hiding {HIDDEN:.0%} of the pixels drops the true class by "
          f"{attributed:.3f} (attributed) vs {random:.3f} (random)")
    assert _faithful(attributed, random), (attributed, random)
    if method == "gradcam":
        # Grad-CAM's map is the last convolution's (14×14 here) upsampled, and its channel
        # weights assume global pooling; on a network that flattens, it is no better than
        # another digit's map, so it is checked against its definition instead (below)
        return
    # a map of the digit in general is not enough: it must be this sample's
    keys = list(maps)
    others = {i: maps[keys[(n + 1) % len(keys)]] for n, i in enumerate(keys)}
    own = _mean_drop(ex, maps, HIDDEN_VS_OTHER)
    other = _mean_drop(ex, others, HIDDEN_VS_OTHER)
    print(f"{method}: hiding {HIDDEN_VS_OTHER:.0%} drops it by {own:.3f} by its own map vs "
          f"{other:.3f} by another sample's")
    assert own >= 1.3 * other and own - other >= 0.1, (own, other)


def test_a_random_map_fails_the_same_check(cnn) -> None:
    """The negative control: the check above is not passed by any map at all."""
    ex = cnn[0]
    maps = _random_maps({i: np.zeros((28, 28)) for i in _confident(ex)}, 1)
    attributed = _mean_drop(ex, maps, HIDDEN)
    random = _mean_drop(ex, _random_maps(maps, 0), HIDDEN)
    assert not _faithful(attributed, random), (attributed, random)


def test_gradcam_is_the_layer_maps_weighted_by_their_mean_gradient(cnn) -> None:
    """Grad-CAM as Selvaraju et al. define it: ReLU(Σ_k mean(∂y/∂A_k) · A_k), upsampled."""
    ex = cnn[0]
    x, y = ex.sample(11), int(ex.label(11)[0])
    seen: list[torch.Tensor] = []
    hook = ex.model.conv2.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        out = ex.model(x[None])
    finally:
        hook.remove()
    (grad,) = torch.autograd.grad(out[0, y], seen[0])
    cam = (grad.mean((2, 3), keepdim=True) * seen[0]).sum(1, keepdim=True)
    want = torch.relu(torch.nn.functional.interpolate(cam, (28, 28), mode="bilinear"))
    e = ex.explain(11, "gradcam", target=y)
    np.testing.assert_allclose(e.map, want[0, 0].detach().numpy(), rtol=1e-4, atol=1e-6)
    assert e.map.max() > 0


def test_image_maps_are_height_by_width_and_gradcam_takes_the_last_convolution(cnn) -> None:
    ex = cnn[0]
    assert gradcam_layers(ex.graph) == ["conv1", "conv2"]
    for method in METHODS:
        e = ex.explain(3, method)
        assert e.map.shape == (28, 28) and e.raw.shape == (1, 28, 28), method
        assert e.raw.dtype == np.float32 and e.image and e.method == method
        assert e.probs.shape == (10,) and e.probs.sum() == pytest.approx(1, abs=1e-5)
        assert e.target == int(e.probs.argmax())  # by default the predicted class
        assert e.layer == ("conv2" if method == "gradcam" else None)
        assert (e.map >= 0).all()
    e = ex.explain(3, "gradcam", target=4, layer="relu1")
    assert (e.layer, e.target, e.map.shape) == ("relu1", 4, (28, 28))
    with pytest.raises(TrainingError, match=r"'flat' gives \[784\]"):
        ex.explain(3, "gradcam", layer="flat")
    with pytest.raises(TrainingError, match="no node 'nope'"):
        ex.explain(3, "gradcam", layer="nope")


def test_bad_requests_are_refused_in_words(cnn) -> None:
    ex = cnn[0]
    assert len(ex) == 5000
    with pytest.raises(TrainingError, match="unknown method 'lime'; use saliency") as info:
        ex.explain(0, "lime")
    assert info.value.where == "method"
    with pytest.raises(TrainingError, match=r"sample 5000 is out of range: the dataset has "
                                            r"5,000 samples \(0–4,999\)"):
        ex.explain(5000, "saliency")
    with pytest.raises(TrainingError, match="out of range"):
        ex.sample(-1)
    with pytest.raises(TrainingError, match=r"target 10 is out of range: the network has 10 "
                                            r"classes \(0–9\)"):
        ex.explain(0, "saliency", target=10)


def test_samples_are_the_tensors_training_saw_in_every_part(cnn) -> None:
    ex = cnn[0]
    b = ex.bundle
    raw = load_arrays("mnist-5k", {})
    mean, std = b.norm["mean"][0], b.norm["std"][0]
    for idx, x, y in ((b.train_idx, b.x_train, b.y_train), (b.val_idx, b.x_val, b.y_val),
                      (b.test_idx, b.x_test, b.y_test)):
        assert idx is not None and x is not None and y is not None
        for row in (0, len(idx) // 2, len(idx) - 1):
            i = int(idx[row])
            assert torch.equal(ex.sample(i), x[row])
            assert ex.label(i)[0] == int(y[row]) == int(raw.y[i])
            np.testing.assert_allclose(ex.sample(i).numpy() * std + mean, raw.x[i] / 255.0,
                                       atol=1e-5)
    assert sorted(np.concatenate([b.train_idx, b.val_idx, b.test_idx]).tolist()) == \
        list(range(5000))


def test_the_model_is_left_as_found(cnn) -> None:
    ex = cnn[0]
    model = ex.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model.conv1.weight.requires_grad_(False)
    try:
        for method in METHODS:
            explain_sample(model, ex.sample(5), method, graph=ex.graph, baseline=ex.baseline)
        assert model.training
        assert not model.conv1.weight.requires_grad and model.fc.weight.requires_grad
        assert all(p.grad is None for p in model.parameters())
        assert not any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks
                       for m in model.modules())
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    finally:
        model.conv1.weight.requires_grad_(True)
        model.eval()


def test_a_table_sample_has_one_value_per_named_feature(wine) -> None:
    from sklearn.datasets import load_wine

    ex = wine[0]
    d = load_wine()
    assert ex.columns == list(d.feature_names) and not ex.image and len(ex) == 178
    mean, std = np.array(ex.norm["mean"]), np.array(ex.norm["std"])
    for i in range(len(ex)):  # every part, numbered as loaded, scaled as training scaled it
        np.testing.assert_allclose(ex.sample(i).numpy(), (d.data[i] - mean) / std, atol=1e-4)
        assert ex.label(i).tolist() == [d.target[i]]
    for method in ("saliency", "integrated-gradients", "occlusion"):
        e = ex.explain(7, method)
        assert e.map.shape == e.raw.shape == (13,) and not e.image and e.layer is None
    # Integrated Gradients adds up to the output's change from the baseline (the mean sample)
    e = ex.explain(7, "integrated-gradients", target=1)
    with torch.no_grad():
        gap = ex.model(torch.stack([ex.sample(7), ex.baseline]))[:, 1]
    assert e.raw.sum() == pytest.approx(float(gap[0] - gap[1]), rel=0.02, abs=1e-3)
    with pytest.raises(TrainingError, match=NO_CONVOLUTION):
        ex.explain(7, "gradcam")


def test_dropout_is_off_while_explaining(wine) -> None:
    ex = wine[0]
    ex.model.train()  # the MLP has a Dropout: in training mode two passes would differ
    try:
        a = explain_sample(ex.model, ex.sample(3), "saliency").map
        b = explain_sample(ex.model, ex.sample(3), "saliency").map
        np.testing.assert_array_equal(a, b)
        assert ex.model.training
    finally:
        ex.model.eval()


def test_one_logit_and_regression_outputs() -> None:
    g = net(("x", "Input", {"shape": [4]}), ("h", "Linear", {"out_features": 8}),
            ("act", "Tanh", {}), ("out", "Linear", {"out_features": 1}))
    model = build_module(g, seed=3)
    x = torch.randn(4)
    yes = explain_sample(model, x, "integrated-gradients", target=1)
    no = explain_sample(model, x, "integrated-gradients", target=0)
    assert yes.probs.shape == (2,) and yes.probs.sum() == pytest.approx(1)
    np.testing.assert_allclose(no.raw, -yes.raw, rtol=1e-5, atol=1e-7)  # class 0 is −z
    r = explain_sample(model, x, "saliency", task="regression")
    assert r.target == 0 and r.probs.shape == (1,)
    with torch.no_grad():
        assert r.probs[0] == pytest.approx(float(model(x[None])[0, 0]), abs=1e-6)
    with pytest.raises(TrainingError, match=r"target 1 is out of range: the network has 1 "
                                            r"outputs"):
        explain_sample(model, x, "saliency", target=1, task="regression")


def test_loading_weights_leaves_the_global_generator_alone(wine) -> None:
    """A run training in a thread of the window draws its dropout masks from torch's global
    generator: loading weights to explain beside it must neither seed nor rewind it."""
    import threading

    _, path, weights = wine
    project = Project.load(path)

    def draws(out: list[float], loaded: threading.Event | None) -> None:
        torch.manual_seed(0)
        while len(out) < 400 and (loaded is None or not loaded.is_set() or len(out) < 200):
            out.append(float(torch.rand(1)))  # as a dropout mask would
            if loaded is not None:
                loaded.wait(0.001)
        while loaded is not None and len(out) < 400:
            out.append(float(torch.rand(1)))

    alone: list[float] = []
    draws(alone, None)
    beside: list[float] = []
    loaded = threading.Event()
    thread = threading.Thread(target=draws, args=(beside, loaded))
    thread.start()
    ex = Explainer(project, weights)  # while the thread draws
    ex.reload(weights)
    loaded.set()
    thread.join()
    assert beside == alone


def test_regression_is_told_in_the_targets_units(tmp_path) -> None:
    from sklearn.datasets import load_diabetes

    g = net(("x", "Input", {"shape": [10]}), ("h", "Linear", {"out_features": 8}),
            ("act", "ReLU", {}), ("out", "Linear", {"out_features": 1}))
    project = Project("reg", g, DataSettings(dataset="diabetes"),
                      TrainingSettings(device="cpu", loss={"type": "MSELoss"}))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_module(g).state_dict(), {})
    ex = Explainer(project, weights)
    y = load_diabetes().target
    e = ex.explain(5, "saliency")
    truth, said, what = ex.verdict(5, e)
    assert float(truth) == pytest.approx(y[5], rel=1e-3) and what == "output 0"
    m, s = ex.bundle.target_norm
    with torch.no_grad():
        out = float(ex.model(ex.sample(5)[None])[0, 0])
    assert float(said) == pytest.approx(out * s + m, rel=1e-3)
    assert 20 < float(said) < 400  # in the disease score's units, not normalised


def test_a_picture_read_flat_is_still_explained_as_a_picture(tmp_path) -> None:
    g = net(("x", "Input", {"shape": [784]}), ("h", "Linear", {"out_features": 16}),
            ("act", "ReLU", {}), ("out", "Linear", {"out_features": 10}))
    project = Project("flat", g, DataSettings(dataset="mnist-5k"), TrainingSettings(device="cpu"))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_module(g).state_dict(), {})
    ex = Explainer(project, weights)
    assert ex.image and ex.picture_shape == (1, 28, 28) and ex.sample(3).shape == (784,)
    e = ex.explain(3, "saliency")
    assert e.image and e.map.shape == (28, 28) and e.raw.shape == (1, 28, 28)
    pic = ex.picture(3)
    assert pic is not None and pic.shape == (28, 28, 1)
    # the map is the gradient's size at each pixel, in the picture's layout
    np.testing.assert_allclose(e.map.reshape(-1), np.abs(explain_sample(
        ex.model, ex.sample(3), "saliency").map), rtol=1e-5)
    assert ex.verdict(3, e)[0] == ex.classes[int(ex.label(3)[0])]
    # occlusion hides patches of the picture, not single values of the flat vector
    occ = ex.explain(3, "occlusion")
    assert occ.map.shape == (28, 28) and len(np.unique(occ.map.round(6))) < 28 * 28 // 2
    # the galleries draw the validation samples as pictures too
    from studio.training.loading import load_trained
    from studio.training.predictions import collect_predictions

    pred = collect_predictions(load_trained(project, weights, cpu=True))
    assert pred["images"].shape[1:] == (28, 28, 1) and len(pred["images"]) == len(pred["y_true"])


def test_token_ids_are_refused_in_words() -> None:
    g = net(("x", "Input", {"shape": [6], "dtype": "int64"}),
            ("emb", "Embedding", {"num_embeddings": 10, "embedding_dim": 4}),
            ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 2}))
    with pytest.raises(TrainingError, match="token ids"):
        explain_sample(build_module(g), torch.arange(6), "occlusion")


def test_images_read_from_disk_are_normalised_as_the_loader_does(tmp_path, monkeypatch) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for k in range(6):
            pixels = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / c / f"{k}.png")
    g = net(("input", "Input", {"shape": [3, 8, 8]}),
            ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}),
            ("flat", "Flatten", {}), ("out", "Linear", {"out_features": 2}))
    project = Project("folder", g, DataSettings(dataset="image-folder", val_fraction=0.25,
                                                options={"path": str(tmp_path),
                                                         "size": [8, 8]}),
                      TrainingSettings(device="cpu"))
    weights = tmp_path / "w.safetensors"
    save_weights(weights, build_module(g).state_dict(), {})
    monkeypatch.setenv("STUDIO_IN_MEMORY_MB", "0")  # read from disk as needed
    ex = Explainer(project, weights)
    b = ex.bundle
    assert b.files is not None and len(ex) == 12
    for i in range(12):
        xb, yb = next(LoaderBatches(b.files, np.array([i]), 1, shuffle=False,
                                    device=torch.device("cpu"), mean=b.norm["mean"],
                                    std=b.norm["std"], workers=0).epoch())
        assert torch.equal(ex.sample(i), xb[0]) and ex.label(i)[0] == int(yb[0])
    assert ex.explain(2, "gradcam").map.shape == (8, 8)


# -- the command ------------------------------------------------------------------------------

def test_explain_command_writes_the_map_and_a_picture(cnn, tmp_path, capsys) -> None:
    ex, path, weights = cnn
    out = tmp_path / "map.npy"
    assert main(["explain", str(path), "--weights", str(weights), "--method", "saliency",
                 "--index", "17", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    truth = ex.classes[int(ex.label(17)[0])]
    assert line.startswith(f"explained sample 17 (true {truth}, predicted ")
    assert "with saliency for class" in line and line.endswith(str(out))
    m = np.load(out, allow_pickle=False)
    assert m.shape == (28, 28) and m.dtype == np.float32
    np.testing.assert_allclose(m, ex.explain(17, "saliency").map, rtol=1e-5)
    png = tmp_path / "map.png"
    assert main(["explain", str(path), "--weights", str(weights.parent / "best.ckpt"),
                 "--method", "gradcam", "--index", "17", "--target", "3", "--out",
                 str(png)]) == 0
    assert "with gradcam on conv2 for class 3" in capsys.readouterr().out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (224, 224)  # 28×28 scaled 8 times
    from PIL import Image

    with Image.open(png) as im:
        im.load()  # decodes every row: the CRCs and the compressed data are sound
        assert im.size == (224, 224) and im.mode == "RGB"


def test_explain_command_fails_in_one_line(cnn, wine, tmp_path, capsys) -> None:
    _, path, weights = cnn
    args = ["explain", str(path), "--weights", str(weights), "--method", "occlusion"]
    assert main([*args, "--index", "5000", "--out", str(tmp_path / "m.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "the dataset has 5,000 samples" in err
    assert main([*args, "--index", "1", "--out", str(tmp_path / "m.jpg")]) == 2
    assert "write FILE.npy" in capsys.readouterr().err
    _, table, table_weights = wine
    assert main(["explain", str(table), "--weights", str(table_weights), "--method",
                 "saliency", "--index", "0", "--out", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "one value per feature" in err
    assert main(["explain", str(table), "--weights", str(table_weights), "--method",
                 "saliency", "--index", "0", "--out", str(tmp_path / "t.npy")]) == 0
    assert np.load(tmp_path / "t.npy").shape == (13,)
