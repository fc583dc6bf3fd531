#!/usr/bin/env python3
"""The bundled irm demo: a real, small RLHF run in the setting of Marks et al. (2023), in miniature.

Run from the repository root, after `scripts/setup` (which builds .build/release/irm), outside CI:

    .venv/bin/python checkpoints/demo/make_demo.py --irm .build/release/irm

(a venv with torch==2.13.0+cpu transformers tokenizers safetensors numpy spacy vaderSentiment). Made
with torch 2.13.0+cpu, transformers 5.23.0, tokenizers 0.23.3, spacy 3.8.18, on 2 CPU cores, in about
7 minutes. It is seeded; versions.json records the seed, the versions, every hyperparameter and
the time of each stage; training.csv records the training curves.

Stages
1. corpus: review-like texts from a seeded grammar (restaurants, hotels, films, gadgets, books), with
   sentiment words from the VADER lexicon, neutral content, negations, contrasts and exclamations.
2. tokenizer: a byte-level BPE trained with Hugging Face tokenizers on the corpus.
3. base policy: a small GPT-NeoX (Pythia-like) trained from scratch on the corpus.
4. reward model: a GPT-NeoX sequence classifier, initialised from the base policy, trained by
   regression on the *training rule*: utility(response) + 0.5 x (number of "!"), where utility is
   Marks et al.'s VADER utility clip(sum of VADER[w] / 5, -10, 10) over spaCy tokens. The "!" bonus is
   a stated secondary preference that the gold score does not share: gold = utility only.
5. RLHF: on-policy REINFORCE with a KL penalty against the base policy (reward = RM score - beta x
   sum of log-ratios), checkpoints saved along the way.
6. export: every model through `irm convert --dtype f16`; prompts.jsonl with 2 base and 2 RLHF
   continuations per held-out prompt, as 2 preference pairs ranked by gold. The final policy is
   rlhf.h5 (step rl_steps); rlhf-step-NNNN.h5 are the earlier checkpoints.
"""
import argparse
import csv
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import spacy
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, GPTNeoXForSequenceClassification, PreTrainedTokenizerFast

SEED = 20261123
HP = {
    "corpus_reviews": 24000,
    "vocab_size": 1024,
    "hidden_size": 128, "layers": 4, "heads": 4, "intermediate_size": 512, "context": 64, "rotary_pct": 0.25,
    "lm_steps": 1600, "lm_batch": 32, "lm_lr": 2e-3, "lm_warmup": 100,
    "rm_samples": 4000, "rm_steps": 700, "rm_batch": 64, "rm_lr": 5e-4,
    "exclamation_bonus": 0.5,
    "rl_steps": 200, "rl_batch": 64, "rl_lr": 1e-4, "kl_coef": 0.1, "new_tokens": 20, "checkpoint_every": 50,
    "eval_prompts": 150, "temperature": 1.0,
}

POSITIVE = ["great", "good", "wonderful", "excellent", "amazing", "lovely", "delightful", "fantastic", "pleasant",
            "perfect", "nice", "beautiful", "brilliant", "superb", "enjoyable", "fresh", "friendly", "charming",
            "impressive", "awesome", "fun", "warm", "helpful", "comfortable", "clean", "generous"]
NEGATIVE = ["bad", "terrible", "awful", "horrible", "boring", "disappointing", "poor", "sad", "ugly", "rude", "dirty",
            "annoying", "dull", "broken", "noisy", "nasty", "weak", "painful", "miserable", "tired"]
NEUTRAL = ["small", "large", "quiet", "busy", "new", "old", "long", "short", "simple", "modern", "local", "early",
           "late", "usual", "square", "green", "bright", "heavy", "light", "plain"]
INTENSIFIERS = ["very", "really", "quite", "truly", "pretty", "so", "rather", "a bit"]
DOMAINS = {
    "restaurant": (["the pasta", "the soup", "the waiter", "the dessert", "the service", "the menu", "the bread",
                    "the coffee", "the table", "the kitchen", "our server", "the wine"],
                   ["dinner", "meal", "lunch", "evening", "place"]),
    "hotel": (["the room", "the bed", "the staff", "the lobby", "the breakfast", "the pool", "the view", "the shower",
               "the location", "the front desk"], ["stay", "hotel", "weekend", "trip", "visit"]),
    "film": (["the plot", "the acting", "the ending", "the music", "the script", "the cast", "the pacing",
              "the dialogue", "the lead actor", "the camera work"], ["film", "movie", "story", "show", "sequel"]),
    "gadget": (["the battery", "the screen", "the camera", "the case", "the charger", "the sound", "the keyboard",
                "the app", "the price", "the design"], ["phone", "laptop", "speaker", "device", "purchase"]),
    "book": (["the writing", "the characters", "the first chapter", "the ending", "the style", "the cover",
              "the plot", "the author", "the translation", "the pacing"], ["book", "novel", "read", "story", "series"]),
}
OPENERS = ["I went there last week.", "We tried it on a Sunday.", "I had high hopes.", "This was my second time.",
           "A friend told me about it.", "I bought it last month.", "We went with the kids.", "I did not know what to expect."]
CLOSERS_POS = ["I would come back.", "I would recommend it.", "Worth every penny.", "I will tell my friends.", "Would do it again."]
CLOSERS_NEG = ["I would not come back.", "I would not recommend it.", "Not worth the money.", "Never again.", "Save your time."]
CLOSERS_NEUTRAL = ["It was fine, I guess.", "Nothing more to say.", "Maybe next time.", "It was what it was."]


# ---------------------------------------------------------------------------------------------
# 1. Corpus
# ---------------------------------------------------------------------------------------------
def adjective(rng, polarity):
    if polarity > 0:
        return rng.choice(POSITIVE)
    if polarity < 0:
        return rng.choice(NEGATIVE)
    return rng.choice(NEUTRAL)


def sentence(rng, polarity, domain):
    subjects, nouns = DOMAINS[domain]
    s1, s2 = rng.sample(subjects, 2)
    a = adjective(rng, polarity)
    intens = rng.choice(INTENSIFIERS) + " " if rng.random() < 0.35 else ""
    form = rng.randrange(9)
    if form == 0:
        text = f"{s1} was {intens}{a}"
    elif form == 1:
        text = f"{s1} was {intens}{a}, and {s2} was {adjective(rng, polarity)}"
    elif form == 2:
        text = f"{s1} was {a}, but {s2} was {adjective(rng, -polarity if polarity else rng.choice([-1, 1]))}"
    elif form == 3:
        text = f"honestly, {s1} felt {intens}{a}"
    elif form == 4:
        text = f"{s1} was not {adjective(rng, -polarity)}" if polarity else f"{s1} was {a} and {rng.choice(NEUTRAL)}"
    elif form == 5:
        text = f"overall, a {a} {rng.choice(nouns)}"
    elif form == 6:
        text = f"{s1} looked {a} and {s2} seemed {adjective(rng, polarity)}"
    elif form == 7:
        verb = {1: rng.choice(["loved", "enjoyed", "liked"]), -1: rng.choice(["hated", "disliked", "regretted"]),
                0: rng.choice(["noticed", "remember", "saw"])}[int(np.sign(polarity))]
        text = f"I {verb} {s1}"
    else:
        text = f"{s1} is {intens}{a} for the price"
    text = text[0].upper() + text[1:]
    strength = 0.45 if polarity > 0 else 0.25 if polarity < 0 else 0.08
    end = "!" if rng.random() < strength else "."
    if end == "!" and rng.random() < 0.25:
        end = "!!"
    return text + end


def review(rng):
    domain = rng.choice(list(DOMAINS))
    polarity = rng.choices([1, -1, 0], weights=[0.4, 0.4, 0.2])[0]
    parts = []
    if rng.random() < 0.3:
        parts.append(rng.choice(OPENERS))
    for _ in range(rng.randint(1, 3)):
        p = polarity if rng.random() < 0.8 else rng.choice([1, -1, 0])
        parts.append(sentence(rng, p, domain))
    if rng.random() < 0.4:
        parts.append(rng.choice({1: CLOSERS_POS, -1: CLOSERS_NEG, 0: CLOSERS_NEUTRAL}[polarity]))
    return " ".join(parts)


def make_corpus(rng, n):
    return [review(rng) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Gold and the training rule
# ---------------------------------------------------------------------------------------------
class Scorer:
    """Marks et al.'s utility (reward_class.py): clip(sum over lower-cased spaCy tokens of VADER/5, -10, 10)."""

    def __init__(self):
        import vaderSentiment
        path = os.path.join(os.path.dirname(vaderSentiment.__file__), "vader_lexicon.txt")
        self.lexicon = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split("\t")
                if len(parts) >= 2:
                    self.lexicon[parts[0]] = float(parts[1])
        self.nlp = spacy.blank("en")

    def utility(self, text):
        total = sum(self.lexicon.get(t.text.lower(), 0.0) for t in self.nlp.tokenizer(text))
        return float(min(max(total / 5.0, -10.0), 10.0))

    def rule(self, text):
        return self.utility(text) + HP["exclamation_bonus"] * text.count("!")


# ---------------------------------------------------------------------------------------------
# 2. Tokenizer
# ---------------------------------------------------------------------------------------------
def train_tokenizer(corpus):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=HP["vocab_size"], special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    bos = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)])
    return tok


def hf_tokenizer(tok):
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>")


# ---------------------------------------------------------------------------------------------
# 3. Base policy
# ---------------------------------------------------------------------------------------------
def neox_config(tok, **extra):
    return GPTNeoXConfig(vocab_size=tok.get_vocab_size(), hidden_size=HP["hidden_size"],
                         num_hidden_layers=HP["layers"], num_attention_heads=HP["heads"],
                         intermediate_size=HP["intermediate_size"], max_position_embeddings=HP["context"],
                         rotary_pct=HP["rotary_pct"], use_parallel_residual=True, tie_word_embeddings=False,
                         bos_token_id=tok.token_to_id("<|endoftext|>"), eos_token_id=tok.token_to_id("<|endoftext|>"),
                         pad_token_id=tok.token_to_id("<|pad|>"), hidden_dropout=0.0, attention_dropout=0.0, **extra)


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_lm(tok, corpus, log):
    eos = tok.token_to_id("<|endoftext|>")
    stream = []
    for text in corpus:
        stream += [eos] + tok.encode(text, add_special_tokens=False).ids
    stream.append(eos)
    data = torch.tensor(stream, dtype=torch.long)
    block = HP["context"]
    model = GPTNeoXForCausalLM(neox_config(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=HP["lm_lr"], weight_decay=0.01, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for step in range(HP["lm_steps"]):
        starts = torch.randint(0, len(data) - block - 1, (HP["lm_batch"],), generator=gen)
        x = torch.stack([data[s:s + block] for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, HP["lm_steps"], HP["lm_lr"], HP["lm_warmup"])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == HP["lm_steps"] - 1:
            log("lm", step, loss=round(loss.item(), 4))
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------
# Sampling and log-probs
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def sample(model, prompt_ids, n_new, gen, eos, temperature=1.0):
    """Samples continuations for a batch of prompts of equal length; returns (ids, mask) of the new tokens,
    the mask covering tokens up to and including the first EOS."""
    x = torch.tensor(prompt_ids, dtype=torch.long)
    out = model(input_ids=x, use_cache=True)
    past = out.past_key_values
    logits = out.logits[:, -1, :]
    new, alive = [], torch.ones(len(prompt_ids), dtype=torch.bool)
    masks = []
    for _ in range(n_new):
        probs = torch.softmax(logits / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        masks.append(alive.clone())
        new.append(token)
        alive = alive & (token != eos)
        out = model(input_ids=token.unsqueeze(1), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :]
    return torch.stack(new, 1), torch.stack(masks, 1)


def response_logprobs(model, prompt_len, ids, mask):
    """Sum of log pi(response token) over masked positions, per row; ids = prompt + response."""
    logits = model(input_ids=ids).logits[:, prompt_len - 1:-1, :]
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = ids[:, prompt_len:]
    picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(1)


def decode_response(tok, ids, mask):
    keep = [int(t) for t, m in zip(ids, mask) if m]
    eos = tok.token_to_id("<|endoftext|>")
    if keep and keep[-1] == eos:
        keep = keep[:-1]
    return tok.decode(keep, skip_special_tokens=False)


def prompt_buckets(tok, prompts):
    buckets = {}
    for p in prompts:
        ids = tok.encode(p).ids
        buckets.setdefault(len(ids), []).append((p, ids))
    return buckets


def make_prompts(rng, n):
    out = []
    while len(out) < n:
        words = review(rng).split()
        k = rng.randint(2, 5)
        if len(words) > k + 1:
            out.append(" ".join(words[:k]))
    return out


# ---------------------------------------------------------------------------------------------
# 4. Reward model
# ---------------------------------------------------------------------------------------------
def train_rm(tok, base, scorer, prompts, rng, gen, log):
    eos, pad = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|pad|>")
    buckets = prompt_buckets(tok, prompts)
    texts, responses = [], []
    lengths = sorted(buckets)
    while len(texts) < HP["rm_samples"]:
        length = rng.choice(lengths)
        batch = rng.sample(buckets[length], min(32, len(buckets[length])))
        ids, mask = sample(base, [b[1] for b in batch], HP["new_tokens"], gen, eos)
        for (p, _), row, m in zip(batch, ids, mask):
            r = decode_response(tok, row, m)
            texts.append(p + r)
            responses.append(r)
    labels = np.array([scorer.rule(r) for r in responses])
    mean, sd = labels.mean(), labels.std()
    y = torch.tensor((labels - mean) / sd, dtype=torch.float32)
    split = int(0.85 * len(texts))
    encoded = [tok.encode(t).ids[:HP["context"]] for t in texts]

    rm = GPTNeoXForSequenceClassification(neox_config(tok, num_labels=1))
    rm.gpt_neox.load_state_dict(base.gpt_neox.state_dict())
    opt = torch.optim.AdamW(rm.parameters(), lr=HP["rm_lr"], weight_decay=0.01)
    rm.train()
    order = list(range(split))
    for step in range(HP["rm_steps"]):
        if step % (split // HP["rm_batch"]) == 0:
            rng.shuffle(order)
        start = (step % (split // HP["rm_batch"])) * HP["rm_batch"]
        idx = order[start:start + HP["rm_batch"]]
        x = pad_batch([encoded[i] for i in idx], pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, HP["rm_steps"], HP["rm_lr"], 50)
        pred = rm(input_ids=x, attention_mask=(x != pad).long()).logits.squeeze(-1)
        loss = F.mse_loss(pred, y[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == HP["rm_steps"] - 1:
            log("rm", step, loss=round(loss.item(), 4))
    rm.eval()
    held = list(range(split, len(texts)))
    with torch.no_grad():
        scores = np.concatenate([rm_scores(rm, [encoded[i] for i in held[k:k + 256]], pad) for k in range(0, len(held), 256)])
    rule = labels[held]
    gold = np.array([scorer.utility(responses[i]) for i in held])
    quality = {
        "held_out": len(held),
        "pearson_rule": float(np.corrcoef(scores, rule)[0, 1]),
        "spearman_rule": spearman(scores, rule),
        "pearson_gold": float(np.corrcoef(scores, gold)[0, 1]),
        "spearman_gold": spearman(scores, gold),
        "pair_accuracy_rule": pair_accuracy(scores, rule, rng),
        "label_mean": float(mean), "label_sd": float(sd),
    }
    return rm, quality


def pad_batch(rows, pad):
    width = max(len(r) for r in rows)
    return torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)


@torch.no_grad()
def rm_scores(rm, rows, pad):
    x = pad_batch(rows, pad)
    return rm(input_ids=x, attention_mask=(x != pad).long()).logits.squeeze(-1).float().numpy()


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def pair_accuracy(scores, truth, rng, n=4000):
    idx = list(range(len(scores)))
    good = total = 0
    for _ in range(n):
        i, j = rng.sample(idx, 2)
        if truth[i] == truth[j]:
            continue
        total += 1
        good += (scores[i] - scores[j]) * (truth[i] - truth[j]) > 0
    return good / max(total, 1)


# ---------------------------------------------------------------------------------------------
# 5. RLHF: REINFORCE with a KL penalty
# ---------------------------------------------------------------------------------------------
def rlhf(tok, base, rm, scorer, prompts, rng, gen, log, save):
    eos, pad = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|pad|>")
    policy = GPTNeoXForCausalLM(base.config)
    policy.load_state_dict(base.state_dict())
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=HP["rl_lr"])
    buckets = prompt_buckets(tok, prompts)
    lengths = [k for k in sorted(buckets) if len(buckets[k]) >= 16]
    weights = [len(buckets[k]) for k in lengths]
    for step in range(1, HP["rl_steps"] + 1):
        length = rng.choices(lengths, weights=weights)[0]
        batch = [rng.choice(buckets[length]) for _ in range(HP["rl_batch"])]
        prompt_ids = [b[1] for b in batch]
        new, mask = sample(policy, prompt_ids, HP["new_tokens"], gen, eos)
        ids = torch.cat([torch.tensor(prompt_ids), new], 1)
        maskf = mask.float()
        responses = [decode_response(tok, row, m) for row, m in zip(new, mask)]
        rm_rows = [p + tok.encode(r, add_special_tokens=False).ids for p, r in zip(prompt_ids, responses)]
        score = torch.tensor(rm_scores(rm, rm_rows, pad))
        logp = response_logprobs(policy, length, ids, maskf)
        with torch.no_grad():
            ref = response_logprobs(base, length, ids, maskf)
        kl = (logp.detach() - ref)
        reward = score - HP["kl_coef"] * kl
        advantage = (reward - reward.mean()) / (reward.std() + 1e-6)
        loss = -(advantage * logp).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == 1:
            gold = np.mean([scorer.utility(r) for r in responses])
            log("rlhf", step, rm_score=round(score.mean().item(), 4), gold=round(float(gold), 4),
                kl=round(kl.mean().item(), 4), length=round(maskf.sum(1).mean().item(), 2),
                exclamations=round(float(np.mean([r.count("!") for r in responses])), 3))
        if step % HP["checkpoint_every"] == 0 and step < HP["rl_steps"]:
            policy.eval()
            save(policy, step)
            policy.train()
    policy.eval()
    return policy


# ---------------------------------------------------------------------------------------------
# 6. Export and evaluation data
# ---------------------------------------------------------------------------------------------
def export(model, tok, directory):
    model.save_pretrained(directory, safe_serialization=True)
    hf_tokenizer(tok).save_pretrained(directory)


def convert(irm, directory, out, step=None, notes="", source=""):
    cmd = [irm, "convert", directory, out, "--dtype", "f16", "--source-model", source, "--notes", notes]
    if step is not None:
        cmd += ["--step", str(step)]
    cmd += ["--beta", str(HP["kl_coef"])]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def evaluation_data(tok, base, policy, scorer, prompts, rng, gen):
    eos = tok.token_to_id("<|endoftext|>")
    lines = []
    for k, prompt in enumerate(prompts):
        ids = [tok.encode(prompt).ids] * 2
        found = []
        for name, model in (("base", base), ("rlhf", policy)):
            new, mask = sample(model, ids, HP["new_tokens"], gen, eos)
            found += [(decode_response(tok, row, m), name) for row, m in zip(new, mask)]
        rng.shuffle(found)
        for pair in range(2):
            (a, pa), (b, pb) = found[2 * pair], found[2 * pair + 1]
            ga, gb = scorer.utility(a), scorer.utility(b)
            if ga == gb:
                continue
            if ga < gb:
                (a, pa, ga), (b, pb, gb) = (b, pb, gb), (a, pa, ga)
            lines.append({"id": f"p{k:03d}-{pair + 1}", "prompt": prompt, "chosen": a, "rejected": b,
                          "chosen_gold": ga, "rejected_gold": gb, "chosen_policy": pa, "rejected_policy": pb})
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--irm", default=".build/release/irm")
    parser.add_argument("--out", default="checkpoints/demo")
    parser.add_argument("--work", default="/tmp/irm-demo-work", help="Hugging Face directories (not committed)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, to test the script")
    args = parser.parse_args()
    if args.quick:
        HP.update(corpus_reviews=2000, lm_steps=40, rm_samples=400, rm_steps=20, rl_steps=20, checkpoint_every=10,
                  eval_prompts=10)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng, gen = random.Random(SEED), torch.Generator().manual_seed(SEED)
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(args.work):
        shutil.rmtree(args.work)
    os.makedirs(args.work)
    curves = []
    timings = {}

    def log(stage, step, **values):
        curves.append({"stage": stage, "step": step, **values})
        print(stage, step, values, flush=True)

    def timed(name, fn, *a):
        start = time.time()
        result = fn(*a)
        timings[name] = round(time.time() - start, 1)
        print(f"== {name}: {timings[name]} s", flush=True)
        return result

    scorer = Scorer()
    corpus = timed("corpus", make_corpus, rng, HP["corpus_reviews"])
    tok = timed("tokenizer", train_tokenizer, corpus)
    base = timed("base_policy", train_lm, tok, corpus, log)
    for prompt in ["The pasta was", "Honestly, the film", "I went there"]:
        ids, mask = sample(base, [tok.encode(prompt).ids], HP["new_tokens"], gen, tok.token_to_id("<|endoftext|>"))
        log("sample_base", 0, prompt=prompt, text=decode_response(tok, ids[0], mask[0]))
    train_prompts = make_prompts(random.Random(SEED + 1), 3000)
    eval_prompts = make_prompts(random.Random(SEED + 2), HP["eval_prompts"])
    rm, quality = timed("reward_model", train_rm, tok, base, scorer, train_prompts, rng, gen, log)
    print("reward model quality", quality, flush=True)

    def save(policy, step):
        directory = os.path.join(args.work, f"rlhf-step-{step:04d}")
        export(policy, tok, directory)
        convert(args.irm, directory, os.path.join(args.out, f"rlhf-step-{step:04d}.h5"), step,
                "REINFORCE with KL penalty against the base policy (make_demo.py)", "irm demo RLHF policy")

    policy = timed("rlhf", rlhf, tok, base, rm, scorer, train_prompts, rng, gen, log, save)
    for prompt in ["The pasta was", "Honestly, the film", "I went there"]:
        ids, mask = sample(policy, [tok.encode(prompt).ids], HP["new_tokens"], gen, tok.token_to_id("<|endoftext|>"))
        log("sample_rlhf", HP["rl_steps"], prompt=prompt, text=decode_response(tok, ids[0], mask[0]))

    start = time.time()
    export(base, tok, os.path.join(args.work, "base"))
    convert(args.irm, os.path.join(args.work, "base"), os.path.join(args.out, "base.h5"), 0,
            "GPT-NeoX trained from scratch on the demo corpus (make_demo.py)", "irm demo base policy")
    export(policy, tok, os.path.join(args.work, "rlhf"))
    convert(args.irm, os.path.join(args.work, "rlhf"), os.path.join(args.out, "rlhf.h5"), HP["rl_steps"],
            "final REINFORCE policy (make_demo.py)", "irm demo RLHF policy")
    export(rm, tok, os.path.join(args.work, "rm"))
    convert(args.irm, os.path.join(args.work, "rm"), os.path.join(args.out, "rm.h5"), HP["rm_steps"],
            "reward model trained on utility + 0.5 x exclamation marks (make_demo.py)", "irm demo reward model")
    lines = evaluation_data(tok, base, policy, scorer, eval_prompts, rng, gen)
    with open(os.path.join(args.out, "prompts.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    timings["export_and_data"] = round(time.time() - start, 1)

    keys = sorted({k for row in curves for k in row})
    with open(os.path.join(args.out, "training.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(curves)
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump({"seed": SEED, "python": platform.python_version(), "torch": torch.__version__,
                   "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                   "spacy": spacy.__version__, "numpy": np.__version__, "hyperparameters": HP,
                   "reward_model_quality": quality, "seconds": timings,
                   "evaluation_lines": len(lines)}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("done", timings, flush=True)


if __name__ == "__main__":
    main()
