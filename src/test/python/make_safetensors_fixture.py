"""Writes src/test/resources/weights/reference.safetensors with the reference `safetensors` library.

SafetensorsWriterTest writes the same tensors with aya.weights.SafetensorsWriter and expects the same bytes.
Run: ~/.venvs/ref/bin/python src/test/python/make_safetensors_fixture.py
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

out = Path(__file__).resolve().parents[1] / "resources" / "weights" / "reference.safetensors"
tensors = {
    # names and dtypes chosen so the reference's ordering rule (dtype first, then name) is visible
    "model.norm.weight": torch.tensor([1.0, -1.5, 0.25], dtype=torch.float32),
    "a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5,
    "b.bf16": torch.tensor([1.0, -2.0, 0.5, 3.140625], dtype=torch.bfloat16),
    "c.f16": torch.tensor([[0.1, -0.2], [65504.0, 1e-4]], dtype=torch.float16),
    "d.i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "e.empty_": torch.zeros((0, 4), dtype=torch.float32),
}
save_file(tensors, str(out), metadata={"format": "pt"})
print(out, out.stat().st_size, "bytes")
