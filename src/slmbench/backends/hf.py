"""Hugging Face transformers runtime: ``--model hf:<hub id or local path>``.

Generation is our own decode loop over the model's forward pass rather than ``generate()``,
because the benchmark needs what ``generate()`` does not give together:

* the n samples of a prompt share one prefill (the prompt's KV cache is computed once and
  repeated for its samples), and several prompts share a batch with left padding;
* stopping per sequence: a sequence that produced a stop sequence leaves the batch at once (its
  rows are dropped from the KV cache) and its text is cut exactly at the stop, while the
  others continue;
* continuous batching: a queued sequence takes the freed place at once (its prompt's KV cache,
  left-padded, is stacked onto the running batch), so every step runs up to ``batch_size``
  sequences; prompts keep their prefill until all their samples are admitted;
* seeding per sequence: sample i of problem p draws from its own generator seeded from
  (seed, p, i), so it does not depend on which other samples share its batch (up to the
  floating-point differences of a different batch shape) and the same request list always
  gives the same samples;
* OOM back-off: on ``torch.OutOfMemoryError`` the batch size halves, the sequences in flight
  start over (same samples: generators restart from their seeds) and the run records it.

Each completion is yielded as soon as its sequence finishes, so a crash loses at most the
sequences in flight. Time is measured two ways, because batching makes them differ:

* ``latency_s`` and ``ttft_s`` are wall times from the moment ``generate`` starts working on the
  requests (every request is submitted then) to the sample's last and first token. Waiting in
  the queue before admission into the batch counts: it is time the caller waits for the
  sample. ``usage.extra["queue_s"]`` says how much of it was waiting. latency_s >= ttft_s.
* ``usage.extra["compute_s"]``: the sample's share of the decoding steps it took part in (each
  step's time split equally among its sequences). Samples run concurrently, so their latencies
  overlap; the shares do not, and their sum is the generation time that tokens/s divides by.

Energy is charged like ``compute_s``; peak memory is the process's peak RSS (CPU, kernel
high-water mark) or ``torch.cuda.max_memory_allocated`` (GPU) since the start of ``generate``.
"""

from __future__ import annotations

import collections
import gc
import hashlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.backends.chat import extract_code, instruction
from slmbench.backends.stopping import StopWatcher
from slmbench.errors import UserError
from slmbench.metrics.efficiency import EfficiencyMeter
from slmbench.spec import DecodingSpec
from slmbench.types import Completion, Usage

_KNOWN_ARGS = {
    "dtype": "auto | float32 | float16 | bfloat16 (default: float32 on CPU, the checkpoint's on GPU)",
    "device": "cpu | cuda | cuda:N (default: cuda when available)",
    "device_map": "passed to from_pretrained, e.g. auto (spreads a large model over GPUs)",
    "revision": "hub revision (branch, tag or commit)",
    "trust_remote_code": "true | false",
    "batch_size": "sequences per forward pass (overrides the decoding spec; halved on OOM)",
    "attn_implementation": "eager | sdpa | flash_attention_2",
}


def parse_bool(value: str, name: str) -> bool:
    v = str(value).strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off"}:
        return False
    raise UserError(f"model argument {name}={value!r} is not a boolean", hint="use true or false")


def parse_int(value: str, name: str, lowest: int = 1, hint: str | None = None) -> int:
    """A whole-number model argument of at least ``lowest``; else a one-line UserError."""
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text) or int(text) < lowest:
        what = "a positive integer" if lowest == 1 else f"an integer >= {lowest}"
        raise UserError(f"model argument {name}={value!r} is not {what}", hint=hint)
    return int(text)


def check_args(backend: str, args: Mapping[str, str], known: Mapping[str, str]) -> None:
    unknown = sorted(set(args) - set(known))
    if unknown:
        listing = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise UserError(f"unknown --model-args for {backend}: {', '.join(unknown)}", hint=f"known: {listing}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sample_seed(seed: int, problem_id: str, sample: int) -> int:
    """A 63-bit seed that depends only on (run seed, problem, sample index)."""
    digest = hashlib.sha256(f"{seed}\0{problem_id}\0{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass
class _Seq:
    """One sample being generated (mutable: lives only inside one batch attempt)."""

    request: GenerationRequest
    sample: int
    prompt_ids: tuple[int, ...]
    stops: tuple[str, ...]
    submitted: float = 0.0  # perf_counter when generate took the request: latency's origin
    watcher: StopWatcher | None = None
    generator: Any = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    queue_s: float = 0.0
    compute_s: float = 0.0
    energy_j: float | None = 0.0
    max_new: int = 0
    finished: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class HFBackend(Backend):
    name = "hf"
    needs_target = True
    target_example = "Qwen/Qwen2.5-Coder-1.5B"
    uses_hub = True

    def __init__(
        self,
        target: str,
        args: Mapping[str, str] | None = None,
        *,
        chat: bool = False,
        allow_download: bool = False,
    ) -> None:
        super().__init__(target, args, chat=chat)
        check_args("hf", self.args, _KNOWN_ARGS)
        self.allow_download = allow_download
        if chat:
            self.form = "program"
        self._model: Any = None
        self._cache_kwarg: str | None = None  # the forward's name for the KV cache (_cache_name)
        self._tokenizer: Any = None
        self._load_time: float | None = None
        self._events: list[dict[str, Any]] = []
        self._meter: EfficiencyMeter | None = None
        self._batch_size: int | None = None
        if "batch_size" in self.args:
            self._batch_size = parse_int(self.args["batch_size"], "batch_size", hint="e.g. batch_size=8")

    # ---- loading ------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        self._ensure_loaded()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._ensure_loaded()
        return self._tokenizer

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise UserError(
                f"the hf backend needs torch and transformers ({exc.name} is missing)",
                hint="pip install 'slmbench[hf]'",
            ) from exc
        device = self.args.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            torch.device(device)
        except RuntimeError:
            raise UserError(f"unknown device {device!r}", hint="use cpu, cuda or cuda:N") from None
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device={device} asked for, but torch sees no CUDA GPU", hint="use device=cpu")
        dtype_arg = self.args.get("dtype") or ("float32" if device == "cpu" else "auto")
        if dtype_arg != "auto" and not isinstance(getattr(torch, dtype_arg, None), torch.dtype):
            raise UserError(f"unknown dtype {dtype_arg!r}", hint="use auto, float32, float16 or bfloat16")
        common: dict[str, Any] = {
            "revision": self.args.get("revision"),
            "trust_remote_code": parse_bool(self.args.get("trust_remote_code", "false"), "trust_remote_code"),
            "local_files_only": not self.allow_download,
        }
        model_kwargs: dict[str, Any] = {"dtype": dtype_arg if dtype_arg == "auto" else getattr(torch, dtype_arg)}
        if "device_map" in self.args:
            model_kwargs["device_map"] = self.args["device_map"]
        if "attn_implementation" in self.args:
            model_kwargs["attn_implementation"] = self.args["attn_implementation"]
        t0 = time.perf_counter()
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.target, **common)
            model = AutoModelForCausalLM.from_pretrained(self.target, **common, **model_kwargs)
            if "device_map" not in self.args:
                model = model.to(device)  # a GPU too small for the model fails here
        except OSError as exc:
            local = Path(self.target).exists()
            hint = (
                "the folder needs config.json, the weights and the tokenizer files"
                if local
                else "pass --allow-download to fetch it from the Hugging Face hub, or give a local folder"
            )
            raise UserError(f"cannot load model {self.target!r}: {_first_line(exc)}", hint=hint) from exc
        except (ValueError, RuntimeError) as exc:
            # transformers' verdict on what it was given: an unknown architecture or dtype, a bad
            # device_map or attn_implementation, weights that do not fit the config
            raise UserError(
                f"cannot load model {self.target!r}: {_first_line(exc)}",
                hint="check the model folder and --model-args",
            ) from exc
        model.eval()
        model.requires_grad_(False)  # never record autograd graphs: they would keep every step alive
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        self._load_time = time.perf_counter() - t0
        self._model, self._tokenizer = model, tokenizer
        self._meter = EfficiencyMeter(str(model.device))

    def info(self) -> BackendInfo:
        self._ensure_loaded()
        import torch
        import transformers

        model = self._model
        return BackendInfo(
            backend=self.name,
            model=self.target,
            parameters=int(sum(p.numel() for p in model.parameters())),
            load_time_s=self._load_time,
            device=str(model.device),
            dtype=str(model.dtype).removeprefix("torch."),
            extra={
                "architecture": getattr(model.config, "model_type", None),
                "revision": self.args.get("revision"),
                "chat": self.chat,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
            },
        )

    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def close(self) -> None:
        self._model = None
        self._cache_kwarg = None
        self._tokenizer = None
        gc.collect()

    # ---- prompts ------------------------------------------------------------------------
    def _encode(self, request: GenerationRequest) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """Prompt token ids and the stop sequences that apply to it."""
        tok = self._tokenizer
        if not self.chat:
            return tuple(tok(request.prompt)["input_ids"]), tuple(request.stop_sequences)
        if not getattr(tok, "chat_template", None):
            raise UserError(f"model {self.target!r} has no chat template", hint="drop --chat for a base model")
        text = tok.apply_chat_template(
            [{"role": "user", "content": instruction(request.prompt, request.problem.language)}],
            tokenize=False,
            add_generation_prompt=True,
        )
        # the task's stop sequences cut continuations; a chat answer is a whole program ending at EOS
        return tuple(tok(text, add_special_tokens=False)["input_ids"]), ()

    def _eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (getattr(self._model, "generation_config", None), self._tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(int(v) for v in value)
        return frozenset(ids)

    def _max_positions(self) -> int | None:
        config = self._model.config
        for attr in ("max_position_embeddings", "n_positions"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    # ---- generation ---------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        self._ensure_loaded()
        import torch

        submitted = time.perf_counter()  # every request is submitted now: latencies count from here
        seqs: list[_Seq] = []
        encoded = [(r, *self._encode(r)) for r in requests]
        # longest prompts first: similar lengths share batches (less padding) and OOM shows early
        encoded.sort(key=lambda e: -len(e[1]))
        limit = self._max_positions()
        for request, ids, stops in encoded:
            if limit is not None and len(ids) >= limit:
                raise UserError(
                    f"prompt of {request.problem.problem_id} has {len(ids)} tokens, the model's limit is {limit}",
                    hint="use a model with a longer context or skip this task",
                )
            seqs.extend(_Seq(request, s, ids, stops, submitted) for s in request.samples)
        queue = collections.deque(seqs)
        batch_size = self._batch_size or decoding.batch_size
        assert self._meter is not None
        with self._meter.run() as meter:
            while queue:
                flight: list[_Seq] = []
                try:
                    yield from self._decode(queue, flight, batch_size, decoding, meter)
                except torch.OutOfMemoryError:
                    if batch_size == 1:
                        raise UserError(
                            f"out of memory generating one sequence of {flight[0].request.problem.problem_id}",
                            hint="use a smaller dtype (dtype=float16), fewer --max-new-tokens or a larger GPU",
                        ) from None
                    smaller = max(1, batch_size // 2)
                    self._events.append(
                        {
                            "event": "oom_backoff",
                            "batch_size_from": batch_size,
                            "batch_size_to": smaller,
                            "problem_id": flight[0].request.problem.problem_id if flight else None,
                        }
                    )
                    batch_size = smaller
                    # the sequences in flight start over (same seeds: same samples); finished ones stay done
                    queue.extendleft(reversed(flight))
                    flight.clear()
                    gc.collect()
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()

    def _decode(
        self, queue: collections.deque[_Seq], active: list[_Seq], batch_size: int, decoding: DecodingSpec, meter: Any
    ) -> Iterator[Completion]:
        """Continuous batching: finished sequences leave the batch at once and queued ones take
        their place, so every step runs as many sequences as the batch size allows.

        ``active`` is the caller's list of the sequences in flight (requeued on OOM).
        """
        import torch

        model, tok = self._model, self._tokenizer
        device = model.device
        eos = self._eos_ids()
        limit = self._max_positions()
        prompts = _PromptCache(queue)
        state: _State | None = None
        while queue or active:
            free = batch_size - len(active)
            if free > 0 and queue and (state is None or state.mergeable):
                new = [queue.popleft() for _ in range(min(free, len(queue)))]
                for s in new:  # fresh state: a retried sequence reproduces the same sample
                    s.watcher = StopWatcher(tok.decode, s.prompt_ids, s.stops, eos)
                    seed = sample_seed(decoding.seed, s.request.problem.problem_id, s.sample)
                    s.generator = torch.Generator(device=device).manual_seed(seed)
                    s.ttft_s, s.compute_s, s.energy_j, s.finished = None, 0.0, 0.0, False
                    s.max_new = (
                        decoding.max_new_tokens
                        if limit is None
                        else min(decoding.max_new_tokens, limit - len(s.prompt_ids))
                    )
                active.extend(new)
                t0, e0 = time.perf_counter(), meter.energy_j()
                added = self._admit(new, prompts)
                tokens = self._next_tokens(added.logits, new, decoding)
                self._account(new, tokens.tolist(), t0, e0, meter, first=True)
                added.tokens = tokens
                state = added if state is None else state.merge(added)
            assert state is not None
            finished = [row for row, s in enumerate(active) if s.finished]
            if finished:
                keep = [row for row, s in enumerate(active) if not s.finished]
                done = [active[row] for row in finished]
                active[:] = [active[row] for row in keep]
                state = state.select(keep) if keep else None
                for s in done:
                    yield self._completion(s, meter, batch_size)
                continue  # refill the freed places before the next step
            t0, e0 = time.perf_counter(), meter.energy_j()
            state.mask = torch.cat([state.mask, state.mask.new_ones((len(active), 1))], dim=1)
            logits, state.cache = self._forward(
                state.tokens[:, None], state.mask, state.positions, state.cache, prefill=False
            )
            state.positions = state.positions + 1
            state.tokens = self._next_tokens(logits[:, -1, :], active, decoding)
            self._account(active, state.tokens.tolist(), t0, e0, meter, first=False)

    def _account(
        self, seqs: list[_Seq], tokens: list[int], t0: float, e0: float | None, meter: Any, *, first: bool
    ) -> None:
        """Feed each sequence its token, charge it an equal share of the step's time and energy,
        and note the wall times of its first and last tokens."""
        now = time.perf_counter()  # after .tolist(): the device is synchronised
        share = (now - t0) / len(seqs)
        e1 = meter.energy_j()
        energy = (e1 - e0) / len(seqs) if e0 is not None and e1 is not None else None
        for s, t in zip(seqs, tokens, strict=True):
            s.compute_s += share
            if energy is None:
                s.energy_j = None
            elif s.energy_j is not None:
                s.energy_j += energy
            if first:  # admission step (again after an OOM restart: the earlier tokens were discarded)
                s.queue_s = t0 - s.submitted
                s.ttft_s = now - s.submitted
            assert s.watcher is not None
            if s.watcher.push(t) or len(s.watcher.generated) >= s.max_new:
                s.finished = True
                s.latency_s = now - s.submitted

    def _admit(self, new: list[_Seq], prompts: _PromptCache) -> _State:
        """Decoding state for new sequences: prefill the prompts not seen yet (in one left-padded
        forward pass), then repeat each prompt's KV cache for its samples."""
        import torch

        model, tok = self._model, self._tokenizer
        device = model.device
        missing = list(dict.fromkeys(s.prompt_ids for s in new if s.prompt_ids not in prompts))
        if missing:
            longest = max(len(p) for p in missing)
            pad = tok.pad_token_id if tok.pad_token_id is not None else 0
            input_ids = torch.full((len(missing), longest), pad, dtype=torch.long)
            mask = torch.zeros((len(missing), longest), dtype=torch.long)
            for row, ids in enumerate(missing):
                input_ids[row, longest - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                mask[row, longest - len(ids) :] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits, cache = self._forward(input_ids, mask, positions, None, prefill=True)
            prompts.store(missing, cache, logits[:, -1, :])
        return prompts.state([s.prompt_ids for s in new])

    def _forward(self, input_ids: Any, mask: Any, positions: Any, cache: Any, *, prefill: bool) -> tuple[Any, Any]:
        """(logits, KV cache) of one forward pass."""
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": positions,
            "use_cache": True,
        }
        # transformers 5.x names the KV cache `cache` (`past_key_values` is deprecated, to be
        # removed in 5.40); 4.x knows only `past_key_values`
        name = self._cache_name()
        if cache is not None:
            kwargs[name] = cache
        if prefill:
            kwargs["logits_to_keep"] = 1  # the prompt's other logits are never used
        import torch

        # here, not around the generator: a context held across `yield` would leak into the caller
        with torch.inference_mode():
            out = self._model(**kwargs)
        return out.logits, out[name]

    def _cache_name(self) -> str:
        if self._cache_kwarg is None:
            import inspect

            # the class's forward: an instance's may be wrapped (hooks, tests)
            params = inspect.signature(type(self._model).forward).parameters
            self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        return self._cache_kwarg

    @staticmethod
    def _next_tokens(logits: Any, active: list[_Seq], decoding: DecodingSpec) -> Any:
        import torch

        if decoding.greedy:
            return logits.argmax(dim=-1)
        scores = logits.float() / decoding.temperature
        if decoding.top_k and decoding.top_k < scores.shape[-1]:
            kth = torch.topk(scores, decoding.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if decoding.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
            probs = torch.softmax(sorted_scores, dim=-1)
            # drop tokens once the probability mass before them already reaches top_p
            drop = (probs.cumsum(dim=-1) - probs) >= decoding.top_p
            sorted_scores = sorted_scores.masked_fill(drop, float("-inf"))
            scores = torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores)
        probs = torch.softmax(scores, dim=-1)
        picks = [torch.multinomial(probs[row], 1, generator=s.generator) for row, s in enumerate(active)]
        return torch.cat(picks)

    def _completion(self, s: _Seq, meter: Any, batch_size: int) -> Completion:
        assert s.watcher is not None
        decode = self._tokenizer.decode
        prompt_text = decode(list(s.prompt_ids))

        def full_decode(ids: list[int]) -> str:
            # decode in the prompt's context so leading spaces (SentencePiece) come out right
            text = decode(list(s.prompt_ids) + ids)
            return text[len(prompt_text) :] if text.startswith(prompt_text) else decode(ids)

        text = s.watcher.result(full_decode)
        extra: dict[str, Any] = {"batch_size": batch_size, "compute_s": s.compute_s, "queue_s": s.queue_s}
        if s.energy_j is not None and meter.energy_source:
            extra["energy_source"] = meter.energy_source
            if meter.energy_source == "rapl":
                extra["energy_scope"] = "cpu package, all processes"
        gpu_used = meter.gpu_memory_used_bytes()
        if gpu_used is not None:
            extra["gpu_memory_used_bytes"] = gpu_used
        form = None
        if self.chat:
            problem = s.request.problem
            extracted = extract_code(text, problem.language, problem.entry_point, s.request.prompt)
            extra["chat_answer"] = text
            text, form = extracted.code, extracted.form
        usage = Usage(
            prompt_tokens=len(s.prompt_ids),
            completion_tokens=len(s.watcher.generated),
            latency_s=s.latency_s,
            ttft_s=s.ttft_s,
            peak_memory_bytes=meter.peak_memory_bytes(),
            energy_j=s.energy_j,
            extra=extra,
        )
        return Completion(
            problem_id=s.request.problem.problem_id,
            sample=s.sample,
            text=text,
            finish_reason=s.watcher.finish_reason,
            usage=usage,
            form=form,
        )


class _PromptCache:
    """Prefilled prompts (KV cache without padding, last-position logits) kept while samples of
    them are still queued, so every sample of a prompt reuses one prefill."""

    def __init__(self, queue: collections.deque[_Seq]) -> None:
        self._left = collections.Counter(s.prompt_ids for s in queue)
        self._kv: dict[tuple[int, ...], tuple[list[tuple[Any, Any]], Any]] = {}

    def __contains__(self, ids: tuple[int, ...]) -> bool:
        return ids in self._kv

    def store(self, prompts: list[tuple[int, ...]], cache: Any, logits: Any) -> None:
        layers = _layers(cache)
        for row, ids in enumerate(prompts):
            n = len(ids)
            kv = [(k[row : row + 1, :, -n:, :], v[row : row + 1, :, -n:, :]) for k, v in layers]
            self._kv[ids] = (kv, logits[row])

    def state(self, prompts: list[tuple[int, ...]]) -> _State:
        import torch
        import torch.nn.functional as F
        from transformers import DynamicCache

        longest = max(len(p) for p in prompts)
        n_layers = len(self._kv[prompts[0]][0])
        keys: list[list[Any]] = [[] for _ in range(n_layers)]
        values: list[list[Any]] = [[] for _ in range(n_layers)]
        for ids in prompts:
            kv, _ = self._kv[ids]
            gap = longest - len(ids)
            for i, (k, v) in enumerate(kv):
                keys[i].append(F.pad(k, (0, 0, gap, 0)))
                values[i].append(F.pad(v, (0, 0, gap, 0)))
        cache = DynamicCache()
        for i in range(n_layers):
            cache.update(torch.cat(keys[i]), torch.cat(values[i]), i)
        device = keys[0][0].device
        mask = torch.zeros((len(prompts), longest), dtype=torch.long, device=device)
        for row, ids in enumerate(prompts):
            mask[row, longest - len(ids) :] = 1
        positions = torch.tensor([[len(ids)] for ids in prompts], device=device)
        logits = torch.stack([self._kv[ids][1] for ids in prompts])
        for ids in prompts:  # forget prompts whose samples are all admitted
            self._left[ids] -= 1
            if self._left[ids] <= 0:
                self._kv.pop(ids, None)
        return _State(cache, mask, positions, logits)


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


@dataclass
class _State:
    """The rows in flight: KV cache, attention mask (left-padded), next positions, next tokens."""

    cache: Any
    mask: Any
    positions: Any
    logits: Any = None
    tokens: Any = None

    @property
    def mergeable(self) -> bool:
        # only plain full-attention layers can be padded and stacked (not sliding-window ones)
        return all(type(layer).__name__ == "DynamicLayer" for layer in self.cache.layers)

    def merge(self, other: _State) -> _State:
        """Stack two states' rows, left-padding the shorter one's cache and mask."""
        import torch
        import torch.nn.functional as F

        ta, tb = self.mask.shape[1], other.mask.shape[1]
        t = max(ta, tb)
        for la, lb in zip(self.cache.layers, other.cache.layers, strict=True):
            la.keys = torch.cat([F.pad(la.keys, (0, 0, t - ta, 0)), F.pad(lb.keys, (0, 0, t - tb, 0))])
            la.values = torch.cat([F.pad(la.values, (0, 0, t - ta, 0)), F.pad(lb.values, (0, 0, t - tb, 0))])
        self.mask = torch.cat([F.pad(self.mask, (t - ta, 0)), F.pad(other.mask, (t - tb, 0))])
        self.positions = torch.cat([self.positions, other.positions])
        self.tokens = torch.cat([self.tokens, other.tokens])
        return self

    def select(self, rows: list[int]) -> _State:
        """Keep only ``rows``, and drop the leading columns that are padding for all of them."""
        import torch

        index = torch.tensor(rows, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions, self.tokens = self.mask[index], self.positions[index], self.tokens[index]
        first = int(self.mask.any(dim=0).int().argmax())
        if first > 0:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
            self.mask = self.mask[:, first:]
        return self
