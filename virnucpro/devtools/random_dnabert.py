"""A random-weight DNABERT-S directory in the published layout (config.json, pytorch_model.bin, tokenizer).

Key names are written out here from the published checkpoint's layout rather than taken from our
model, so loading this directory also checks that our module names match the published ones.
Keys carry no `bert.` prefix, as a `BertModel` (the architecture DNABERT-S's config declares)
saves them; the loader accepts both forms. The pooler is included because the original has one.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import torch

SIZES = {
    # 6 heads exercise the non-power-of-two ALiBi slope rule, as the published 12 heads do.
    "tiny": {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 6, "intermediate_size": 128},
    "full": {},
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
INIT_STD = 0.02  # the published config's initializer_range


def published_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every tensor of the published checkpoint (BertModel layout) and its shape."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (config["vocab_size"], hidden),
        "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], hidden),
        "embeddings.LayerNorm.weight": (hidden,),
        "embeddings.LayerNorm.bias": (hidden,),
    }
    for n in range(config["num_hidden_layers"]):
        layer = f"encoder.layer.{n}"
        shapes |= {
            f"{layer}.attention.self.Wqkv.weight": (3 * hidden, hidden),
            f"{layer}.attention.self.Wqkv.bias": (3 * hidden,),
            f"{layer}.attention.output.dense.weight": (hidden, hidden),
            f"{layer}.attention.output.dense.bias": (hidden,),
            f"{layer}.attention.output.LayerNorm.weight": (hidden,),
            f"{layer}.attention.output.LayerNorm.bias": (hidden,),
            f"{layer}.mlp.gated_layers.weight": (2 * inter, hidden),
            f"{layer}.mlp.wo.weight": (hidden, inter),
            f"{layer}.mlp.wo.bias": (hidden,),
            f"{layer}.mlp.layernorm.weight": (hidden,),
            f"{layer}.mlp.layernorm.bias": (hidden,),
        }
    return shapes | {"pooler.dense.weight": (hidden, hidden), "pooler.dense.bias": (hidden,)}


def random_state_dict(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Normal(0, 0.02) matrices and biases; LayerNorm weights near 1 so their affine part is exercised."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in published_shapes(config).items():
        values = torch.randn(shape, generator=generator) * INIT_STD
        state[key] = values + 1.0 if "LayerNorm.weight" in key or "layernorm.weight" in key else values
    return state


def write_random_dnabert(directory: str | Path, size: str = "tiny", seed: int = 0) -> int:
    """Write the directory; returns the hidden size (the embedding width)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    packaged = resources.files("virnucpro") / "data" / "dnabert-s"
    config = json.loads((packaged / "config.json").read_text(encoding="utf-8")) | SIZES[size]
    (directory / "config.json").write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        with resources.as_file(packaged / name) as source:
            shutil.copyfile(source, directory / name)
    torch.save(random_state_dict(config, seed), directory / "pytorch_model.bin")
    return config["hidden_size"]
