#!/usr/bin/env bash
# Rebuilds the bundled tiny checkpoint from the committed Hugging Face fixture directory.
# Run from the repository root after `scripts/setup`:  checkpoints/tiny/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
.build/release/irm convert Tests/Fixtures/hf/neox checkpoints/tiny/pythia-tiny.h5 \
    --source-model "random-initialised Pythia-like GPT-NeoX (scripts/fixtures/make_hf_fixtures.py)" \
    --notes "2 layers, hidden 48, rotary_pct 0.25, vocabulary padded to 336; random weights, for format demos only"
