#!/usr/bin/env python3
"""Benchmark: `irm score` against Hugging Face transformers on a GPT-2-small-sized model.

    swift build -c release --scratch-path .build-engine
    /work/venv/bin/python bench/run_bench.py --irm .build-engine/release/irm

Made with torch 2.13.0+cpu, transformers 5.23.0, numpy 2.4.6. See bench/README.md.

It makes the model and data if bench/out/ lacks them (bench/make_bench_model.py), converts the model
with `irm convert`, and takes the first --samples samples of each data set (unique prompts; pairs
of responses to one prompt). Then, for each data set in turn, on the same machine and close in time:
1. measures raw OpenBLAS sgemm (the library irm links) on the block GEMM shapes, through ctypes;
2. runs `irm score --profile`, with its peak RSS from /usr/bin/time;
3. runs transformers on the same token ids, fp32, torch.inference_mode, batches of 8 padded on
   the right, torch threads = irm threads = cores, in two variants:
   - common: forward over the padded batch with the full logits, then log_softmax and gather (what
     RewardBench and TRL do);
   - lean: the LM head only on the rows that predict response tokens, then log_softmax and gather.
It prints tokens/s (prompt + response tokens of the samples per second of scoring, model loading
excluded for both; irm's end-to-end time is shown too), the ratios, irm's achieved GFLOP/s against
the raw sgemm, the peak RSS against 1.25 × fp32 weights + 300 MB, and the largest log-prob
difference between irm and transformers. Nothing is asserted. The machine's load average is printed
at the start and the end: other work on the cores makes every figure, and most of all the ratios,
unreliable.
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def raw_sgemm_gflops(shapes, threads, repeats=3):
    """Best-of-`repeats` GFLOP/s of C = A·Bᵀ through the system OpenBLAS for each (M, N, K)."""
    lib = ctypes.CDLL("libopenblas.so.0")
    lib.openblas_set_num_threads(threads)
    rates = {}
    for m, n, k in shapes:
        a = np.random.default_rng(0).standard_normal((m, k)).astype(np.float32)
        b = np.random.default_rng(1).standard_normal((n, k)).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        args = (101, 111, 112, m, n, k, ctypes.c_float(1.0), a.ctypes.data_as(ctypes.c_void_p), k,
                b.ctypes.data_as(ctypes.c_void_p), k, ctypes.c_float(0.0), c.ctypes.data_as(ctypes.c_void_p), n)
        lib.cblas_sgemm(*args)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            lib.cblas_sgemm(*args)
            best = min(best, time.perf_counter() - start)
        rates[(m, n, k)] = 2.0 * m * n * k / best / 1e9
    return rates


def run_irm(irm, model, data, out, threads):
    """Runs `irm score --profile` under /usr/bin/time, whose %M is irm's own peak RSS (a child forked
    straight from this process would report this process's RSS, torch and all, until its exec)."""
    command = ["/usr/bin/time", "-f", "peak-rss-kb %M", irm, "score", "--model", model, "--data", data, "--out", out,
               "--threads", str(threads), "--profile"]
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        sys.exit(f"irm score failed ({finished.returncode}): {finished.stderr}{finished.stdout}")
    stderr_text = finished.stderr
    numbers = {}
    for key, pattern in [("load", r"load ([\d.]+) s"), ("scoring", r"scoring ([\d.]+) s"),
                         ("gemm_s", r"block GEMMs ([\d.]+) s"), ("gemm_rate", r"block GEMMs [\d.]+ s at ([\d.]+) GFLOP/s"),
                         ("widen", r"widening weights ([\d.]+) s"),
                         ("attention", r"attention ([\d.]+) s\)"), ("head_s", r"head GEMMs ([\d.]+) s"),
                         ("head_rate", r"head GEMMs [\d.]+ s at ([\d.]+) GFLOP/s"), ("softmax", r"log-softmax ([\d.]+) s"),
                         ("block_gflop", r"flops block ([\d.]+) G"), ("head_gflop", r"head ([\d.]+) G\n"),
                         ("rss_kb", r"peak-rss-kb (\d+)")]:
        match = re.search(pattern, stderr_text)
        numbers[key] = float(match.group(1)) if match else float("nan")
    numbers["wall"] = wall
    numbers["rss_mb"] = numbers["rss_kb"] / 1024.0
    return numbers


def load_samples(path):
    samples = []
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "response_ids" in record:
                samples.append((record["prompt_ids"], record["response_ids"]))
            else:
                samples.append((record["prompt_ids"], record["chosen_ids"]))
                samples.append((record["prompt_ids"], record["rejected_ids"]))
    return samples


def torch_score(model, samples, lean, batch_size=8):
    """Per-sample response log-prob lists, batches padded on the right."""
    import torch
    results = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = samples[start:start + batch_size]
            sequences = [p + r for p, r in batch]
            length = max(len(s) for s in sequences)
            ids = torch.zeros((len(batch), length), dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for i, s in enumerate(sequences):
                ids[i, :len(s)] = torch.tensor(s)
                mask[i, :len(s)] = 1
            if lean:
                hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
                rows, targets, owners = [], [], []
                for i, (p, r) in enumerate(batch):
                    positions = torch.arange(len(p) - 1, len(p) + len(r) - 1)
                    rows.append(hidden[i, positions])
                    targets.append(torch.tensor(r))
                    owners.append(len(r))
                logp = torch.log_softmax(model.lm_head(torch.cat(rows)), dim=-1)
                picked = logp.gather(1, torch.cat(targets)[:, None])[:, 0]
                offset = 0
                for n in owners:
                    results.append(picked[offset:offset + n].tolist())
                    offset += n
            else:
                logits = model(input_ids=ids, attention_mask=mask).logits
                logp = torch.log_softmax(logits.float(), dim=-1)
                for i, (p, r) in enumerate(batch):
                    positions = torch.arange(len(p) - 1, len(p) + len(r) - 1)
                    results.append(logp[i, positions].gather(1, torch.tensor(r)[:, None])[:, 0].tolist())
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--irm", default=os.path.join(REPO, ".build", "release", "irm"), help="the release irm binary")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--samples", type=int, default=32, help="samples per data set (pairs count twice)")
    parser.add_argument("--dtypes", default="f32,bf16,f16",
                        help="storage types to convert the model to and score with irm (the first is the transformers comparison's)")
    args = parser.parse_args()
    dtypes = args.dtypes.split(",")

    if not os.path.exists(os.path.join(args.out, "pairs.jsonl")):
        subprocess.run([sys.executable, os.path.join(REPO, "bench", "make_bench_model.py"), "--out", args.out], check=True)
    checkpoints = {}
    for dtype in dtypes:
        checkpoints[dtype] = os.path.join(args.out, "gpt2-124m.h5" if dtype == "f32" else f"gpt2-124m-{dtype}.h5")
        if not os.path.exists(checkpoints[dtype]):
            subprocess.run([args.irm, "convert", os.path.join(args.out, "gpt2-124m"), checkpoints[dtype], "--dtype", dtype], check=True)
    checkpoint = checkpoints[dtypes[0]]
    doctor = subprocess.run([args.irm, "doctor"], capture_output=True, text=True).stdout
    print("\n".join(line for line in doctor.splitlines() if line.startswith("blas")))
    weights_mb = 124_439_808 * 4 / 2**20
    threads = args.threads

    print(f"threads: {threads}; model: GPT-2 small shape, 124.4M parameters ({weights_mb:.0f} MiB fp32); "
          f"load average {os.getloadavg()[0]:.2f}")
    tokens_per_batch = 2048
    shapes = [(tokens_per_batch, 2304, 768), (tokens_per_batch, 768, 768), (tokens_per_batch, 3072, 768), (tokens_per_batch, 768, 3072)]
    # Weight each shape by its share of a block's FLOPs (qkv 3, out 1, up 4, down 4).
    shape_weights = [3, 1, 4, 4]

    import torch
    from transformers import GPT2LMHeadModel
    torch.set_num_threads(threads)
    model = GPT2LMHeadModel.from_pretrained(os.path.join(args.out, "gpt2-124m"), dtype=torch.float32,
                                            attn_implementation="sdpa").eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, SDPA attention, batch 8")

    datasets = [("unique prompts", "unique.jsonl", args.samples), ("shared-prompt pairs", "pairs.jsonl", args.samples // 2)]
    rows = []
    for label, name, lines in datasets:
        with open(os.path.join(args.out, name)) as f:
            head = f.readlines()[:lines]
        data = os.path.join(args.out, f"bench-{name}")
        with open(data, "w") as f:
            f.writelines(head)
        rates = raw_sgemm_gflops(shapes, threads)
        raw = sum(shape_weights) / sum(w / rates[s] for w, s in zip(shape_weights, shapes))
        print(f"{label}: raw OpenBLAS sgemm " + ", ".join(f"{m}x{n}x{k} {rates[(m, n, k)]:.1f}" for m, n, k in shapes)
              + f" GFLOP/s; block mix {raw:.1f} GFLOP/s")
        out = os.path.join(args.out, f"irm-{name}")
        irm = run_irm(args.irm, checkpoint, data, out, threads)
        by_dtype = {dtypes[0]: irm}
        for dtype in dtypes[1:]:
            by_dtype[dtype] = run_irm(args.irm, checkpoints[dtype], data, out + f".{dtype}", threads)
        samples = load_samples(data)
        tokens = sum(len(p) + len(r) for p, r in samples)
        timings = {}
        outputs = {}
        torch_score(model, samples[:8], lean=True)  # warm-up
        for variant in ("common", "lean"):
            start = time.perf_counter()
            outputs[variant] = torch_score(model, samples, lean=(variant == "lean"))
            timings[variant] = time.perf_counter() - start
        with open(out) as f:
            irm_logprobs = [json.loads(line)["logprobs"] for line in f]
        worst = max(abs(a - b) for x, y in zip(irm_logprobs, outputs["lean"]) for a, b in zip(x, y))
        achieved = (irm["block_gflop"] + irm["head_gflop"]) / irm["scoring"]
        rows.append((label, len(samples), tokens, irm, timings, worst, achieved, raw, by_dtype))

    print()
    print(f"{'data':<22}{'samples':>8}{'tokens':>8}{'irm tok/s':>11}{'irm e2e':>9}{'common':>9}{'lean':>9}"
          f"{'vs common':>11}{'vs lean':>9}")
    for label, count, tokens, irm, timings, worst, achieved, raw, _ in rows:
        irm_rate = tokens / irm["scoring"]
        print(f"{label:<22}{count:>8}{tokens:>8}{irm_rate:>11.0f}{tokens / irm['wall']:>9.0f}"
              f"{tokens / timings['common']:>9.0f}{tokens / timings['lean']:>9.0f}"
              f"{timings['common'] / irm['scoring']:>10.2f}x{timings['lean'] / irm['scoring']:>8.2f}x")
    print("(tokens/s = prompt + response tokens per second of scoring; irm e2e includes process start and model load)")
    print()
    for label, count, tokens, irm, timings, worst, achieved, raw, _ in rows:
        print(f"{label}: irm scoring {irm['scoring']:.2f} s (load {irm['load']:.2f} s): block GEMMs {irm['gemm_s']:.2f} s at "
              f"{irm['gemm_rate']:.1f} GFLOP/s = {irm['gemm_rate'] / raw:.0%} of raw sgemm; attention {irm['attention']:.2f} s; "
              f"head {irm['head_s']:.2f} s at {irm['head_rate']:.1f} GFLOP/s; log-softmax {irm['softmax']:.2f} s; "
              f"overall {achieved:.1f} GFLOP/s = {achieved / raw:.0%} of raw sgemm")
        budget = 1.25 * weights_mb + 300
        print(f"{label}: peak RSS {irm['rss_mb']:.0f} MiB (budget 1.25 x {weights_mb:.0f} + 300 = {budget:.0f} MiB); "
              f"max |irm - transformers lean| log-prob {worst:.2e}")
    if len(dtypes) > 1:
        print()
        print(f"storage precision (weights mapped in place; {dtypes[0]} is the reference row)")
        print(f"{'data':<22}{'dtype':>6}{'irm tok/s':>11}{'vs ' + dtypes[0]:>8}{'widen s':>9}{'peak RSS MiB':>14}{'vs ' + dtypes[0]:>8}")
        for label, count, tokens, irm, timings, worst, achieved, raw, by_dtype in rows:
            reference = by_dtype[dtypes[0]]
            for dtype in dtypes:
                run = by_dtype[dtype]
                print(f"{label:<22}{dtype:>6}{tokens / run['scoring']:>11.0f}{reference['scoring'] / run['scoring']:>7.2f}x"
                      f"{run['widen']:>9.2f}{run['rss_mb']:>14.0f}{run['rss_mb'] / reference['rss_mb']:>7.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
