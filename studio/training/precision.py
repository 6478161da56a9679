"""Numeric precision as one object with a few verbs, in the manner of Lightning Fabric's plugins.

The loop never asks which precision it runs under: it enters ``forward_context()`` for the
forward pass and the loss, and hands the loss to ``backward_step``. Mixed precision (bf16 or
fp16 autocast), fp16's loss scaling and the TF32 switches all live here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


class Precision:
    """``setting`` is the project's ``training.precision``: auto, fp32, bf16 or fp16."""

    def __init__(self, setting: str, device: torch.device,
                 message: Callable[[str], None] = lambda _t: None) -> None:
        cuda = device.type == "cuda"
        self.device_type = device.type
        #: the autocast dtype, or None for plain fp32
        self.dtype: torch.dtype | None = None
        if setting == "auto":  # the GPU fast path: bf16 where the GPU has it
            if cuda and torch.cuda.is_bf16_supported():
                self.dtype = torch.bfloat16
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
        elif setting != "fp32":
            if cuda or setting == "bf16":
                self.dtype = torch.bfloat16 if setting == "bf16" else torch.float16
            else:
                message("fp16 needs CUDA; training in fp32")
        self.scaler = torch.amp.GradScaler("cuda") if cuda and setting == "fp16" else None

    @property
    def plain(self) -> bool:
        """fp32 without loss scaling: the loop may take its lean step."""
        return self.dtype is None and self.scaler is None

    def forward_context(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      params: Iterable[nn.Parameter], clip: float | None) -> None:
        """Backward, optional gradient-norm clipping (on unscaled gradients) and the step."""
        # the ignores: torch leaves Tensor.backward unannotated
        if self.scaler is not None:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            if clip:
                self.scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, clip)
            self.scaler.step(optimizer)
            self.scaler.update()
            return
        loss.backward()  # type: ignore[no-untyped-call]
        if clip:
            nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None:
            self.scaler.load_state_dict(state)
