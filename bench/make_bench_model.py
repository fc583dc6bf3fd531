#!/usr/bin/env python3
"""A GPT-2-small-sized model (124M parameters, random weights) and scoring data for bench/run_bench.py.

    /work/venv/bin/python bench/make_bench_model.py [--out bench/out]

Made with torch 2.13.0+cpu, transformers 5.23.0, numpy 2.4.6. Nothing it writes is committed
(bench/out/ is git-ignored). Everything is seeded.

Writes
- OUT/gpt2-124m/: a Hugging Face directory, GPT2LMHeadModel with GPT-2 small's configuration
  (12 layers, 12 heads, 768 wide, 50257-token vocabulary, 1024 positions) and transformers' own
  random initialisation. The tokenizer files are the tiny test tokenizer's: the benchmark data is
  token ids, so no text is ever encoded.
- OUT/unique.jsonl: 64 samples, each with its own prompt.
- OUT/pairs.jsonl: 32 prompts with two responses each (64 samples), as in preference data.
  Prompt and response lengths are uniform in [64, 192] tokens (256 on average per sample); ids are
  uniform over the vocabulary.
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    model_dir = os.path.join(args.out, "gpt2-124m")
    if not os.path.exists(os.path.join(model_dir, "model.safetensors")):
        torch.manual_seed(0)
        config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
        model = GPT2LMHeadModel(config)
        model.save_pretrained(model_dir, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(REPO, "Tests", "Fixtures", "hf", "gpt2", name), os.path.join(model_dir, name))
        print(f"wrote {model_dir}: {sum(p.numel() for p in model.parameters())} parameters")

    rng = np.random.default_rng(1)
    vocab = 50257

    def ids(n):
        return [int(x) for x in rng.integers(0, vocab, size=n)]

    def length():
        return int(rng.integers(64, 193))

    with open(os.path.join(args.out, "unique.jsonl"), "w") as f:
        for i in range(args.samples):
            f.write(json.dumps({"id": f"u{i}", "prompt_ids": ids(length()), "response_ids": ids(length())}) + "\n")
    with open(os.path.join(args.out, "pairs.jsonl"), "w") as f:
        for i in range(args.samples // 2):
            f.write(json.dumps({"id": f"p{i}", "prompt_ids": ids(length()), "chosen_ids": ids(length()),
                                "rejected_ids": ids(length())}) + "\n")
    print(f"wrote {args.out}/unique.jsonl and {args.out}/pairs.jsonl")


if __name__ == "__main__":
    main()
