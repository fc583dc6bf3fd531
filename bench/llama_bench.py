#!/usr/bin/env python3
"""Llama-shape scoring benchmark: irm against transformers and llama.cpp on the same tokens.

    .venv/bin/python bench/llama_bench.py [--irm .build/release/irm] [--ctx 512] [--chunks 16] [--threads N]

A random-initialised Llama (default about 0.6B parameters: 20 layers, hidden 1536, intermediate
4096, 12 heads, 4 KV heads, vocabulary 32000; seeded, N(0, 0.02^2) weights) is written in bf16
safetensors with a SentencePiece tokenizer trained on synthetic words, converted with
`irm convert --dtype bf16` and with llama.cpp's `convert_hf_to_gguf.py` to F16 and BF16 GGUF.
llama.cpp is built here from the llama-cpp-python sdist (PyPI), in bench/out/, with cmake
(release, GGML_NATIVE, no BLAS); none of its code is in this repository.

The same tokens: `llama-perplexity -c C` splits the tokenised text into chunks of C tokens, puts
BOS at position 0 of each chunk (when the vocabulary adds BOS) and scores the predictions of tokens
C/2+1 .. C-1 (tools/perplexity/perplexity.cpp: `first = n_ctx/2`, `n_ctx - 1 - first` tokens per
chunk). The text is tokenised once with `llama-tokenize` (the same `common_tokenize` call, the
file read as perplexity reads it: no trailing newline), and each chunk becomes one irm/transformers
sample: prompt = its first C/2+1 tokens, response = the C/2-1 tokens llama-perplexity scores. Each
tool's perplexity over those tokens is printed beside the others as a check.

Tokens/s counts every token of every chunk (C per chunk) per second of scoring (model load
excluded; llama.cpp's from its own timer); whole-process seconds are shown beside. Not a test;
asserts nothing. Prints the BLAS kernel, the load average at the start and the end, and irm's time
split.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np
import torch

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SDIST = "llama-cpp-python"


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(command, **kwargs):
    """Runs `command` under /usr/bin/time -v; returns (stdout, stderr, wall seconds, peak RSS MiB)."""
    start = time.perf_counter()
    finished = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        sys.exit(f"failed ({finished.returncode}): {' '.join(command)}\n{finished.stderr[-3000:]}{finished.stdout[-2000:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", finished.stderr)
    return finished.stdout, finished.stderr, wall, (int(match.group(1)) / 1024 if match else float("nan"))


# MARK: llama.cpp

def build_llama_cpp(cache):
    """Builds llama-perplexity, llama-bench and llama-tokenize from the llama-cpp-python sdist."""
    binaries = os.path.join(cache, "build", "bin")
    tools = ["llama-perplexity", "llama-bench", "llama-tokenize"]
    source = os.path.join(cache, "src")
    if all(os.path.exists(os.path.join(binaries, t)) for t in tools):
        return source, binaries
    os.makedirs(cache, exist_ok=True)
    download = os.path.join(cache, "download")
    if not os.path.isdir(download) or not os.listdir(download):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", SDIST, "-d", download], check=True)
    archive = os.path.join(download, sorted(os.listdir(download))[-1])
    if not os.path.isdir(source):
        unpacked = os.path.join(cache, "unpacked")
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        top = os.path.join(unpacked, os.listdir(unpacked)[0])
        os.rename(os.path.join(top, "vendor", "llama.cpp"), source)
        shutil.rmtree(unpacked)
    build = os.path.join(cache, "build")
    subprocess.run(["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DGGML_BLAS=OFF",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j", str(os.cpu_count()), "--target"] + tools, check=True, stdout=subprocess.DEVNULL)
    return source, binaries


# MARK: The model

def synthetic_text(words, seed):
    """Sentences of pseudo-words, so that the tokenizer has something to learn."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lexicon = ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(6000)]
    weights = 1.0 / np.arange(1, len(lexicon) + 1)
    picks = rng.choice(len(lexicon), size=words, p=weights / weights.sum())
    sentences, current = [], []
    for k, p in enumerate(picks):
        current.append(lexicon[p])
        if rng.random() < 0.08 or k == len(picks) - 1:
            sentences.append(" ".join(current).capitalize() + ".")
            current = []
    return " ".join(sentences)


def make_model(a, directory):
    """A random Llama in bf16 safetensors with a SentencePiece tokenizer, as Hugging Face lays it out."""
    import sentencepiece as spm
    from safetensors.torch import save_file
    from transformers import LlamaTokenizerFast

    os.makedirs(directory, exist_ok=True)
    corpus = os.path.join(directory, "corpus.txt")
    with open(corpus, "w") as f:
        f.write(synthetic_text(400_000, seed=3).replace(". ", ".\n"))
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(directory, "tokenizer"), vocab_size=a.tokenizer_vocab,
                                   model_type="bpe", byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, num_threads=os.cpu_count(),
                                   minloglevel=2)
    os.remove(corpus)
    os.remove(os.path.join(directory, "tokenizer.vocab"))
    LlamaTokenizerFast(vocab_file=os.path.join(directory, "tokenizer.model"), legacy=True).save_pretrained(directory)
    d, head_dim = a.hidden, a.hidden // a.heads
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d, "intermediate_size": a.intermediate,
              "num_hidden_layers": a.layers, "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
              "vocab_size": a.vocab, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    generator = torch.Generator().manual_seed(0)
    kv = a.kv_heads * head_dim
    shapes = [("model.embed_tokens.weight", (a.vocab, d))]
    for layer in range(a.layers):
        p = f"model.layers.{layer}."
        shapes += [(p + "input_layernorm.weight", (d,)), (p + "self_attn.q_proj.weight", (d, d)), (p + "self_attn.k_proj.weight", (kv, d)),
                   (p + "self_attn.v_proj.weight", (kv, d)), (p + "self_attn.o_proj.weight", (d, d)),
                   (p + "post_attention_layernorm.weight", (d,)), (p + "mlp.gate_proj.weight", (a.intermediate, d)),
                   (p + "mlp.up_proj.weight", (a.intermediate, d)), (p + "mlp.down_proj.weight", (d, a.intermediate))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (a.vocab, d))]
    tensors = {}
    for name, shape in shapes:
        if len(shape) == 1:
            tensors[name] = torch.ones(shape, dtype=torch.bfloat16)
        else:
            tensors[name] = torch.randn(shape, generator=generator).mul_(0.02).to(torch.bfloat16)
    save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    return sum(t.numel() for t in tensors.values())


# MARK: The tokens

def chunk_samples(tokens, ctx, chunks, bos):
    """What llama-perplexity scores, as samples: chunk i is tokens[i*ctx:(i+1)*ctx] with BOS first
    (when `bos` is not None); prompt = its first ctx/2+1 tokens, response = the rest."""
    first = ctx // 2
    samples = []
    for i in range(min(chunks, len(tokens) // ctx)):
        ids = list(tokens[i * ctx:(i + 1) * ctx])
        if bos is not None:
            ids[0] = bos
        samples.append({"id": f"chunk{i}", "prompt_ids": ids[:first + 1], "response_ids": ids[first + 1:]})
    return samples


def gguf_bos(path, source):
    sys.path.insert(0, os.path.join(source, "gguf-py"))
    from gguf import GGUFReader
    reader = GGUFReader(path)

    def value(key):
        field = reader.fields.get(key)
        return None if field is None else field.parts[field.data[0]][0]
    add_bos = value("tokenizer.ggml.add_bos_token")
    return int(value("tokenizer.ggml.bos_token_id")) if add_bos is None or bool(add_bos) else None


# MARK: The tools

def irm_score(a, model, data, out):
    command = [a.irm, "score", "--model", model, "--data", data, "--out", out, "--threads", str(a.threads), "--profile"]
    _, stderr, wall, rss = run(command)
    numbers = {"wall": wall, "rss": rss, "split": [line for line in stderr.splitlines() if line.startswith("profile:")]}
    for key, pattern in [("scoring", r"scoring ([\d.]+) s"), ("load", r"load ([\d.]+) s")]:
        numbers[key] = float(re.search(pattern, stderr).group(1))
    numbers["per_chunk"] = [[lp for lp in json.loads(line)["logprobs"] if lp is not None] for line in open(out)]
    logprobs = [lp for chunk in numbers["per_chunk"] for lp in chunk]
    numbers["scored"] = len(logprobs)
    numbers["ppl"] = float(np.exp(-np.mean(logprobs)))
    return numbers


def torch_score(directory, samples, threads, lean, batch_size):
    """transformers fp32: common = full logits, log_softmax, gather; lean = head on response rows."""
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="sdpa").eval()
    per_chunk = []
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(samples), batch_size):
            batch = samples[b:b + batch_size]
            ids = torch.tensor([s["prompt_ids"] + s["response_ids"] for s in batch])
            p = len(batch[0]["prompt_ids"])
            if lean:
                hidden = model.model(input_ids=ids).last_hidden_state[:, p - 1:-1]
                logits = model.lm_head(hidden)
            else:
                logits = model(input_ids=ids).logits[:, p - 1:-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, p:].unsqueeze(-1)).squeeze(-1)
            per_chunk += logprobs.double().tolist()
    seconds = time.perf_counter() - start
    flat = [lp for chunk in per_chunk for lp in chunk]
    return {"scoring": seconds, "scored": len(flat), "ppl": float(np.exp(-np.mean(flat))), "per_chunk": per_chunk}


def llama_perplexity(a, binaries, gguf, text):
    command = [os.path.join(binaries, "llama-perplexity"), "-m", gguf, "-f", text, "-c", str(a.ctx), "--chunks", str(a.chunks),
               "-t", str(a.threads), "-tb", str(a.threads), "-b", str(max(2048, a.ctx))]
    stdout, stderr, wall, rss = run(command)
    log = stdout + stderr
    ppl = float(re.search(r"Final estimate: PPL = ([\d.]+)", log).group(1))
    # Scoring time: the process after the log line that starts the chunks (its timestamp:
    # minutes.seconds.milliseconds.microseconds since start); tokenisation and model loading come
    # before it.
    def stamp(pattern):
        m, sec, ms, us = re.search(r"^(\d+)\.(\d+)\.(\d+)\.(\d+) . .*" + pattern, log, re.M).groups()
        return int(m) * 60 + int(sec) + int(ms) / 1e3 + int(us) / 1e6
    chunks = int(re.search(r"calculating perplexity over (\d+) chunks", log).group(1))
    # (the "Final estimate" stamp read back too early on a 16-chunk run: take the rest of the process)
    seconds = wall - stamp("calculating perplexity over")
    # The running perplexity it prints after each chunk: "[1]47012.3456,[2]..."
    running = [float(v) for v in re.findall(r"\[\d+\]([\d.]+),", log)]
    return {"scoring": seconds, "wall": wall, "rss": rss, "ppl": ppl, "scored": chunks * (a.ctx - a.ctx // 2 - 1), "running": running}


def llama_bench(a, binaries, gguf):
    command = [os.path.join(binaries, "llama-bench"), "-m", gguf, "-p", str(a.ctx), "-n", "0", "-t", str(a.threads), "-r", "2", "-o", "json"]
    stdout, _, _, _ = run(command)
    results = json.loads(stdout)
    return results[0]["avg_ts"] if results else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--irm", default=os.path.join(REPO, ".build", "release", "irm"))
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out", "llama-bench"))
    parser.add_argument("--llama-cpp", default=os.path.join(REPO, "bench", "out", "llama.cpp"), help="where llama.cpp is built (cached)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--ctx", type=int, default=512, help="llama-perplexity's -c: tokens per chunk")
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--intermediate", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--tokenizer-vocab", type=int, default=8000, help="SentencePiece pieces; the model's vocabulary pads the rest")
    parser.add_argument("--batch", type=int, default=4, help="transformers batch (chunks are all the same length: no padding)")
    parser.add_argument("--skip-transformers", action="store_true")
    a = parser.parse_args()
    os.makedirs(a.out, exist_ok=True)
    free_gb = shutil.disk_usage(a.out).free / 1e9
    if free_gb < 10:
        sys.exit(f"llama_bench.py: {free_gb:.0f} GB free under {a.out}; the model, its conversions and llama.cpp need about 10 GB")

    source, binaries = build_llama_cpp(a.llama_cpp)
    hf = os.path.join(a.out, "hf")
    h5 = os.path.join(a.out, "model-bf16.h5")
    ggufs = {t: os.path.join(a.out, f"model-{t}.gguf") for t in ("f16", "bf16")}
    if not os.path.exists(os.path.join(hf, "model.safetensors")):
        parameters = make_model(a, hf)
        print(f"wrote {hf}: {parameters / 1e9:.3f}B parameters", file=sys.stderr)
    if not os.path.exists(h5):
        subprocess.run([a.irm, "convert", hf, h5, "--dtype", "bf16"], check=True)
    env = dict(os.environ, PYTHONPATH=os.path.join(source, "gguf-py"))
    for outtype, path in ggufs.items():
        if not os.path.exists(path):
            subprocess.run([sys.executable, os.path.join(source, "convert_hf_to_gguf.py"), hf, "--outtype", outtype, "--outfile", path],
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # The text, tokenised as llama-perplexity tokenises it, cut into its chunks.
    text = os.path.join(a.out, "text.txt")
    with open(text, "w") as f:
        f.write(synthetic_text(a.ctx * (a.chunks + 2), seed=11))  # no trailing newline: perplexity's -f strips one
    stdout, _, _, _ = run([os.path.join(binaries, "llama-tokenize"), "-m", ggufs["f16"], "-f", text, "--ids"])
    tokens = json.loads([line for line in stdout.splitlines() if line.startswith("[")][-1])
    samples = chunk_samples(tokens, a.ctx, a.chunks, gguf_bos(ggufs["f16"], source))
    if len(samples) < a.chunks:
        sys.exit(f"the text gave {len(tokens)} tokens, {len(samples)} chunks of {a.ctx}; need {a.chunks}")
    data = os.path.join(a.out, "chunks.jsonl")
    with open(data, "w") as f:
        for s in samples:
            f.write(json.dumps(s) + "\n")
    all_tokens = len(samples) * a.ctx

    print("== machine")
    print(open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip("\t :"))
    print(subprocess.run([a.irm, "doctor"], capture_output=True, text=True).stdout.strip().replace("\n\n", "\n"))
    print(f"threads {a.threads}; model: Llama {a.layers} layers, hidden {a.hidden}, intermediate {a.intermediate}, "
          f"{a.heads} heads / {a.kv_heads} KV heads, vocabulary {a.vocab}, bf16; {len(samples)} chunks of {a.ctx} tokens "
          f"({all_tokens} tokens, {len(samples) * (a.ctx - a.ctx // 2 - 1)} scored)")
    print(f"load average at the start {load_average()}")

    rows = []
    irm = irm_score(a, h5, data, os.path.join(a.out, "irm-scores.jsonl"))
    rows.append(("irm", "bf16 mapped, f32 compute", irm))
    if not a.skip_transformers:
        for lean in (False, True):
            result = torch_score(hf, samples, a.threads, lean, a.batch)
            rows.append(("transformers", "fp32, " + ("lean" if lean else "common"), result))
    pp = {}
    for outtype, path in ggufs.items():
        rows.append(("llama-perplexity", outtype.upper(), llama_perplexity(a, binaries, path, text)))
        pp[outtype] = llama_bench(a, binaries, path)

    print()
    print(f"{'tool':<18} {'variant':<26} {'scored':>7} {'ppl':>10} {'scoring s':>10} {'process s':>10} {'tok/s':>8} "
          f"{'irm vs':>7} {'RSS MiB':>8}")
    base = all_tokens / irm["scoring"]
    for tool, variant, r in rows:
        rate = all_tokens / r["scoring"]
        process = f"{r['wall']:10.1f}" if "wall" in r else f"{'':>10}"
        rss = f"{r['rss']:8.0f}" if "rss" in r else f"{'':>8}"
        print(f"{tool:<18} {variant:<26} {r['scored']:>7} {r['ppl']:>10.3f} {r['scoring']:>10.2f} {process} {rate:>8.1f} "
              f"{base / rate:>6.2f}x {rss}")
    print("(tok/s: all tokens of every chunk per second of scoring, model load excluded; irm vs: irm's tok/s / the row's;")
    print(" process s: the whole process, load included; scored: tokens whose log-prob counts in the perplexity)")
    for outtype, rate in pp.items():
        print(f"llama-bench pp{a.ctx} {outtype.upper()}: {rate:.1f} tokens/s")
    for line in irm["split"]:
        print("irm " + line)
    # Token-level agreement: irm against transformers lean per token, and irm's running perplexity
    # after each chunk against the one llama-perplexity prints.
    ours = irm["per_chunk"]
    for tool, variant, r in rows:
        if tool == "transformers" and "per_chunk" in r:
            worst = max(abs(x - y) for mine, theirs in zip(ours, r["per_chunk"]) for x, y in zip(mine, theirs))
            print(f"largest |irm - transformers {variant.split(', ')[1]}| log-prob per token: {worst:.2e}")
    sums = np.cumsum([np.sum(chunk) for chunk in ours])
    counts = np.cumsum([len(chunk) for chunk in ours])
    running = np.exp(-sums / counts)
    for tool, variant, r in rows:
        if tool == "llama-perplexity" and len(r.get("running", [])) >= len(running):
            theirs = np.array(r["running"][:len(running)])
            print(f"running perplexity after each chunk, irm vs llama-perplexity {variant}: largest relative difference "
                  f"{np.max(np.abs(running / theirs - 1)):.2e}")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
