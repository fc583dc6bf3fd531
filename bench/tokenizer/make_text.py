#!/usr/bin/env python3
"""Writes seeded mixed text as JSON Lines ({"text": ...}) for the tokenizer benchmark.

    python3 bench/tokenizer/make_text.py OUT.jsonl [MEGABYTES]

Mostly English-like prose, with code, numbers, whitespace runs, CJK, Cyrillic, Arabic and emoji, so
that every branch of the pre-tokenizer and the BPE cache (hits and misses) is exercised.
"""
import json
import random
import sys

rng = random.Random(1234)
syllables = ["ka", "to", "ri", "an", "the", "ing", "er", "on", "st", "re", "pro", "con", "ment", "ly", "ab",
             "ou", "ch", "sh", "qu", "ion", "ed", "es", "in", "it", "is", "at", "or", "al", "tion", "ver"]
common = ("the of and to in is you that it he was for on are with as I his they be at one have this from "
          "or had by word but what some we can out other were all there when up use your how said an each").split()
rare = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 5))) for _ in range(20000)]
foreign = ["日本語のテキスト", "中文字符和标点", "Привет, как дела?", "مرحبا بالعالم", "😀👍🏽", "👩‍💻", "Ελληνικά", "한국어 텍스트"]
code = ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
        "SELECT id, name FROM users WHERE age > 30;\n", "{\"key\": [1, 2, 3], \"ok\": true}\n"]


def sentence():
    words = []
    for _ in range(rng.randint(5, 25)):
        r = rng.random()
        words.append(rng.choice(common) if r < 0.6 else rng.choice(rare) if r < 0.93 else str(rng.randint(0, 99999)))
    text = " ".join(words).capitalize() + rng.choice([".", "!", "?", ",", ";", "'s", "'ll"])
    if rng.random() < 0.05:
        text += " " + rng.choice(foreign)
    return text


def record():
    parts = []
    while sum(len(p) for p in parts) < rng.randint(500, 3000):
        r = rng.random()
        parts.append(rng.choice(code) if r < 0.07 else sentence() + (" " if r < 0.8 else "\n\n" if r < 0.95 else "   \n"))
    return "".join(parts)


def main():
    out = sys.argv[1]
    target = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    total = 0
    with open(out, "w", encoding="utf-8") as f:
        while total < target * 1e6:
            text = record()
            total += len(text.encode("utf-8"))
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    print(f"wrote {total / 1e6:.2f} MB to {out}")


if __name__ == "__main__":
    main()
