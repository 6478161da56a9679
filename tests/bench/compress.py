"""What compression buys and costs (issue 19), measured on the samples.

Run: python -m tests.bench.compress [--seeds 3] [--out docs/compress.json]

1. int8 against fp32 (``studio quantize``): the MNIST CNN sample trained as it ships; the
   CIFAR CNN sample's network on 32×32 RGB images written here (CIFAR-10 itself is a
   download; without it the accuracy is chance and only size and latency mean anything).
   Latency: onnxruntime on the CPU, batch 1 and 64, interleaved pairs (median of 7).
2. Structured pruning (``studio prune --structured``) of the trained MNIST CNN at 30/50/70%
   with 2 fine-tuning epochs: multiply-adds and validation accuracy.
3. Distillation: the MNIST MLP sample trained alone and taught by the trained MNIST CNN
   (T 4, alpha 0.7), the same epochs, mean of ``--seeds`` seeds each.
Prints one markdown table per part and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.project import Project, sample_paths
from studio.export.prune import prune
from studio.export.quantize import quantize
from studio.training.trainer import Trainer


def sample(name: str) -> Project:
    return Project.load(next(p for p in sample_paths() if p.name.startswith(name)))


def train(p: Project, out: Path, base: Path | None = None) -> Path:
    p.training.device = "cpu"
    result = Trainer(p, out_dir=out, base_dir=base).fit()
    assert result.status == "completed", result.message
    return out / "model.safetensors"


def cifar_like(folder: Path, n: int = 60) -> None:
    """Random 32×32 RGB PNGs in 10 class folders (image-folder's layout)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(10):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
        for k in range(n // 10):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                folder / f"c{c}" / f"{k}.png")


def int8_rows(tmp: Path, mnist_weights: Path, mnist: Project) -> list[dict[str, Any]]:
    rows = []
    r = quantize(mnist, mnist_weights, tmp / "q-mnist" / "int8.onnx")
    rows.append({"network": "MNIST CNN sample", **r})
    cifar = sample("cifar_cnn")
    cifar_like(tmp / "cifar-like")
    cifar.data.dataset = "image-folder"
    cifar.data.options = {"path": str(tmp / "cifar-like"), "size": [32, 32]}
    cifar.data.test_fraction = 0.0
    cifar.data.augment = []
    cifar.training.epochs = 1
    cifar.training.early_stopping = None
    weights = train(cifar, tmp / "cifar-run")
    r = quantize(cifar, weights, tmp / "q-cifar" / "int8.onnx")
    rows.append({"network": "CIFAR CNN sample (random images: size and latency only)", **r})
    return rows


def prune_rows(tmp: Path, weights: Path, mnist: Project) -> list[dict[str, Any]]:
    rows = []
    for amount in (0.3, 0.5, 0.7):
        r = prune(mnist, weights, tmp / f"pruned-{amount}", amount, structured=True,
                  finetune_epochs=2)
        rows.append({"amount": amount, **r})
    return rows


def distill_rows(tmp: Path, teacher: Path, seeds: int) -> dict[str, Any]:
    alone, taught = [], []
    for seed in range(seeds):
        for distill, into in ((None, alone), ({"teacher": str(teacher), "temperature": 4.0,
                                               "alpha": 0.7}, taught)):
            p = sample("mnist_mlp")
            p.training.seed = seed
            p.training.early_stopping = None
            p.training.distill = distill
            p = Project.from_dict(p.to_dict())
            out = tmp / f"mlp-{seed}-{'taught' if distill else 'alone'}"
            train(p, out)
            lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            into.append([x for x in lines if "epoch" in x][-1]["val_accuracy"])
    return {"alone": alone, "taught": taught, "alone_mean": statistics.mean(alone),
            "taught_mean": statistics.mean(taught)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mnist = sample("mnist_cnn")
        mnist.data.test_fraction = 0.15
        weights = train(mnist, tmp / "mnist-run")
        result = {"int8": int8_rows(tmp, weights, mnist),
                  "prune": prune_rows(tmp, weights, mnist),
                  "distill": distill_rows(tmp, weights, args.seeds)}
    print("| network | mode | fp32 size | int8 size | fp32 ms b1 | int8 ms b1 | fp32 ms b64 | "
          "int8 ms b64 | fp32 val acc | int8 val acc |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in result["int8"]:
        f, q = r["fp32"], r["int8"]
        print(f"| {r['network']} | {r['mode']} | {f['file_bytes']:,} | {q['file_bytes']:,} | "
              f"{f['latency_ms_batch1']:.3f} | {q['latency_ms_batch1']:.3f} | "
              f"{f['latency_ms_batch64']:.2f} | {q['latency_ms_batch64']:.2f} | "
              f"{f.get('val_accuracy', 0):.4f} | {q.get('val_accuracy', 0):.4f} |")
    print()
    print("| channels removed | multiply-adds | parameters | val acc before | val acc after "
          "(2 epochs fine-tuned) | ms b64 before | ms b64 after |")
    print("|---|---|---|---|---|---|---|")
    for r in result["prune"]:
        b, a = r["before"], r["after"]
        print(f"| {r['amount']:.0%} | {b['macs']:,} → {a['macs']:,} | {b['params']:,} → "
              f"{a['params']:,} | {b['val_accuracy']:.4f} | {a['val_accuracy']:.4f} | "
              f"{b['latency_ms_batch64']:.2f} | {a['latency_ms_batch64']:.2f} |")
    print()
    dd = result["distill"]
    print(f"distillation (val accuracy, {args.seeds} seeds): alone {dd['alone']} mean "
          f"{dd['alone_mean']:.4f}; taught {dd['taught']} mean {dd['taught_mean']:.4f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
