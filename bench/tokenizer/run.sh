#!/usr/bin/env bash
# Tokenizer throughput: irm (release build) against Hugging Face tokenizers and tiktoken, measured in
# the same run on the same text. Run from anywhere:
#
#     bench/tokenizer/run.sh                 # 4 MB of mixed text
#     MEGABYTES=10 PYTHON=/path/to/venv/bin/python bench/tokenizer/run.sh
#
# Needs Python with tokenizers and tiktoken (PYTHON, default python3). Writes only under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
MEGABYTES="${MEGABYTES:-4}"
OUT=bench/out/tokenizer
mkdir -p "$OUT"

swift build -c release --product irm >&2
IRM="$(swift build -c release --show-bin-path)/irm"
"$PYTHON" bench/tokenizer/make_text.py "$OUT/text.jsonl" "$MEGABYTES" >&2

for name in gpt2 llama3-style llama2-style; do
    tokenizer="Tests/Fixtures/tokenizers/$name.tokenizer.json"
    echo "== $name"
    # Throughput is counted over the encoding alone (reading the file is excluded, as for Python).
    line="$("$IRM" tokenize --tokenizer "$tokenizer" --file "$OUT/text.jsonl" --benchmark)"
    echo "$line"
    rate="$(echo "$line" | sed -E 's/.* = ([0-9.]+) MB\/s.*/\1/')"
    "$PYTHON" bench/tokenizer/reference.py "$tokenizer" "$OUT/text.jsonl" "$rate"
done
