#!/usr/bin/env python3
"""A random-initialised Llama-shape pair (base and tuned) in bf16, converted to irm checkpoints,
for bench/memory_7b.sh (and any size given on the command line). Nothing it writes is committed.

    /work/main/.venv/bin/python bench/make_llama_pair.py --irm .build/release/irm --out bench/out/llama-7b \
        [--layers 32 --hidden 4096 --intermediate 11008 --heads 32 --kv-heads 32 --vocab 32000]

Made with torch 2.13.0+cpu and safetensors. The defaults are Llama-2-7B's shape (6.74B parameters,
13.5 GB per model in bf16). Each model is written as 1 GB safetensors shards (so that no more than
one shard is in memory), converted with `irm convert --dtype bf16`, and its shards deleted, so the
disk peak is about 2.2 model sizes (30 GB for 7B) plus the two finished checkpoints' growth: check
`df` first (the runner does). The tuned model is the base plus N(0, 0.002²) noise on every matrix,
so the pair differs a little, as a fine-tuned pair does. Weights are N(0, 0.02²), norms 1. Seeded.

Also writes OUT/data.jsonl: 32 samples of token ids, prompts and responses of 16-48 tokens each.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import save_file

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def tensor_shapes(a):
    d, i, layers = a.hidden, a.intermediate, a.layers
    head_dim = d // a.heads
    kv = a.kv_heads * head_dim
    shapes = [("model.embed_tokens.weight", (a.vocab, d))]
    for layer in range(layers):
        p = f"model.layers.{layer}."
        shapes += [(p + "input_layernorm.weight", (d,)), (p + "self_attn.q_proj.weight", (d, d)),
                   (p + "self_attn.k_proj.weight", (kv, d)), (p + "self_attn.v_proj.weight", (kv, d)),
                   (p + "self_attn.o_proj.weight", (d, d)), (p + "post_attention_layernorm.weight", (d,)),
                   (p + "mlp.gate_proj.weight", (i, d)), (p + "mlp.up_proj.weight", (i, d)), (p + "mlp.down_proj.weight", (d, i))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (a.vocab, d))]
    return shapes


def write_pair(a, base_dir, tuned_dir):
    generator = torch.Generator().manual_seed(0)
    shard_bytes = 1 << 30
    index = {"base": {}, "tuned": {}}
    shards = {"base": [], "tuned": []}
    pending = {"base": {}, "tuned": {}}
    size = 0

    def flush():
        nonlocal size
        for which, directory in (("base", base_dir), ("tuned", tuned_dir)):
            if not pending[which]:
                continue
            name = f"model-{len(shards[which]) + 1:05d}.safetensors"
            save_file(pending[which], os.path.join(directory, name), metadata={"format": "pt"})
            for tensor in pending[which]:
                index[which][tensor] = name
            shards[which].append(name)
            pending[which] = {}
        size = 0

    for name, shape in tensor_shapes(a):
        if len(shape) == 1:
            base = torch.ones(shape, dtype=torch.bfloat16)
            tuned = base.clone()
        else:
            values = torch.randn(shape, generator=generator, dtype=torch.float32).mul_(0.02)
            base = values.to(torch.bfloat16)
            tuned = values.add_(torch.randn(shape, generator=generator, dtype=torch.float32).mul_(0.002)).to(torch.bfloat16)
            del values
        pending["base"][name] = base
        pending["tuned"][name] = tuned
        size += base.numel() * 2
        if size >= shard_bytes:
            flush()
    flush()
    for which, directory in (("base", base_dir), ("tuned", tuned_dir)):
        total = len(shards[which])
        renamed = {}
        for k, old in enumerate(shards[which]):
            new = f"model-{k + 1:05d}-of-{total:05d}.safetensors"
            os.rename(os.path.join(directory, old), os.path.join(directory, new))
            renamed[old] = new
        weight_map = {tensor: renamed[shard] for tensor, shard in index[which].items()}
        with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--irm", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--intermediate", type=int, default=11008)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--samples", type=int, default=32)
    a = parser.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base_h5, tuned_h5 = os.path.join(a.out, "base.h5"), os.path.join(a.out, "tuned.h5")
    if not (os.path.exists(base_h5) and os.path.exists(tuned_h5)):
        hf = {which: os.path.join(a.out, f"hf-{which}") for which in ("base", "tuned")}
        for directory in hf.values():
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
                      "intermediate_size": a.intermediate, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
                      "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "max_position_embeddings": 4096,
                      "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
                      "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}
            with open(os.path.join(directory, "config.json"), "w") as f:
                json.dump(config, f, indent=1)
            for name in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(REPO, "Tests", "Fixtures", "hf", "gpt2", name), os.path.join(directory, name))
        write_pair(a, hf["base"], hf["tuned"])
        for which, target in (("base", base_h5), ("tuned", tuned_h5)):
            subprocess.run([a.irm, "convert", hf[which], target, "--dtype", "bf16"], check=True)
            shutil.rmtree(hf[which])
            print(f"wrote {target}: {os.path.getsize(target) / 1e9:.2f} GB", file=sys.stderr)
    rng = np.random.default_rng(1)
    with open(os.path.join(a.out, "data.jsonl"), "w") as f:
        for k in range(a.samples):
            prompt = [int(x) for x in rng.integers(3, a.vocab, size=int(rng.integers(16, 49)))]
            response = [int(x) for x in rng.integers(3, a.vocab, size=int(rng.integers(16, 49)))]
            f.write(json.dumps({"id": f"s{k}", "prompt_ids": prompt, "response_ids": response}) + "\n")


if __name__ == "__main__":
    main()
