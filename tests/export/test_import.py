"""torchvision architectures imported as editable graphs, equal to torchvision's modules."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torchvision

from studio.core.build import build_module
from studio.export.torchvision_import import ImportError_, import_torchvision


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg11", "mobilenet_v2",
                                  "mobilenet_v3_small", "efficientnet_b0", "densenet121"])
def test_imported_graph_equals_torchvision_with_the_same_weights(name) -> None:
    result = import_torchvision(name, size=64)
    tv = torchvision.models.get_model(name).eval()
    assert result.params == sum(p.numel() for p in tv.parameters())
    net = build_module(result.project.graph, seed=None).eval()
    net.load_state_dict({result.key_map[k]: v for k, v in tv.state_dict().items()})
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net(x), tv(x), atol=1e-5)
    assert len({n.pos for n in result.project.graph}) == len(result.project.graph)  # laid out


def test_what_the_catalog_cannot_express_is_listed_by_name() -> None:
    with pytest.raises(ImportError_) as err:
        import_torchvision("vit_b_16")
    assert "MultiheadAttention ×12" in str(err.value) and "class_token" in str(err.value)


def test_cli_import_and_summary_show_torchvisions_parameter_count(tmp_path) -> None:
    out = tmp_path / "r.studio.json"
    r = subprocess.run([sys.executable, "-m", "studio", "import", "torchvision:resnet18",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    s = subprocess.run([sys.executable, "-m", "studio", "summary", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert s.returncode == 0 and "11,689,512" in s.stdout


def test_offline_pretrained_weights_are_a_clear_message(tmp_path) -> None:
    env = {**__import__("os").environ, "TORCH_HOME": str(tmp_path / "empty"),
           "NO_PROXY": "*", "HTTPS_PROXY": "http://127.0.0.1:9"}  # no cache, no network
    r = subprocess.run([sys.executable, "-m", "studio", "import", "torchvision:resnet18",
                        "--weights", "--out", str(tmp_path / "r.studio.json")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "not cached and could not be downloaded" in r.stderr
    with pytest.raises(ImportError_, match="no model"):
        import_torchvision("resnet9000")
