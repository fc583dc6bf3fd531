#!/usr/bin/env python3
"""Times Hugging Face tokenizers (one text at a time, and batched) and tiktoken's GPT-2 on the same
JSON Lines file, checks that they agree with irm's ids on a sample, and prints MB/s.

    python3 bench/tokenizer/reference.py TOKENIZER.json TEXT.jsonl [IRM_MB_PER_S]

tiktoken's GPT-2 encoding is rebuilt from the tokenizer.json vocabulary (its ranks are GPT-2's ids),
so no download is needed; run it with Tests/Fixtures/tokenizers/gpt2.tokenizer.json.
"""
import json
import sys
import time

import tiktoken
import tokenizers
from tokenizers import Tokenizer


def gpt2_tiktoken(config):
    byte_for_char = {}
    n = 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            byte_for_char[chr(b)] = b
        else:
            byte_for_char[chr(256 + n)] = b
            n += 1
    ranks = {bytes(byte_for_char[c] for c in token): i for token, i in config["model"]["vocab"].items()
             if token != "<|endoftext|>"}
    from tiktoken_ext.openai_public import r50k_pat_str
    return tiktoken.Encoding(name="gpt2-local", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)


def timed(label, megabytes, body):
    start = time.perf_counter()
    tokens = body()
    seconds = time.perf_counter() - start
    rate = megabytes / seconds
    print(f"{label:<34} {rate:8.2f} MB/s  {tokens:>9} tokens  {seconds:7.3f} s")
    return rate


def main():
    tokenizer_path, text_path = sys.argv[1], sys.argv[2]
    irm_rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
    texts = [json.loads(line)["text"] for line in open(text_path, encoding="utf-8") if line.strip()]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    config = json.load(open(tokenizer_path, encoding="utf-8"))
    hf = Tokenizer.from_file(tokenizer_path)
    print(f"tokenizers {tokenizers.__version__}, tiktoken {tiktoken.__version__}; {megabytes:.2f} MB in {len(texts)} texts")
    rates = {}
    rates["hf"] = timed("HF tokenizers, one at a time", megabytes, lambda: sum(len(hf.encode(t).ids) for t in texts))
    rates["hf-batch"] = timed("HF tokenizers, encode_batch", megabytes,
                              lambda: sum(len(e.ids) for e in hf.encode_batch(texts)))
    if "Ġ" in config["model"]["vocab"] and len(config["model"]["vocab"]) == 50257:
        enc = gpt2_tiktoken(config)
        rates["tiktoken"] = timed("tiktoken gpt2, one at a time", megabytes,
                                  lambda: sum(len(enc.encode(t, allowed_special="all")) for t in texts))
        rates["tiktoken-batch"] = timed("tiktoken gpt2, encode_batch", megabytes,
                                        lambda: sum(len(x) for x in enc.encode_batch(texts, allowed_special="all")))
        sample = texts[:50]
        assert all(hf.encode(t).ids == enc.encode(t, allowed_special="all") for t in sample), "HF and tiktoken disagree"
    if irm_rate:
        for name, rate in rates.items():
            print(f"irm / {name:<15} {irm_rate / rate:6.2f}x")


if __name__ == "__main__":
    main()
