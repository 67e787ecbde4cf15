"""vLLM runtime (GPU only, extra ``[vllm]``): ``--model vllm:<hub id or local path>``.

Prefix caching is on, so the n samples of a prompt share its prefill; each sample is its own
request with a seed derived from (seed, problem, sample), so samples do not depend on their
batch. vLLM schedules continuously inside one ``generate`` call; we hand it ``chunk`` samples at
a time so completions reach the store as each chunk finishes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.backends.chat import answer_completion, instruction
from slmbench.backends.hf import check_args, parse_bool, parse_int, sample_seed
from slmbench.errors import UserError
from slmbench.metrics.efficiency import NvmlMeter
from slmbench.spec import DecodingSpec
from slmbench.types import Completion, Usage

_KNOWN_ARGS = {
    "dtype": "auto | float16 | bfloat16 | float32",
    "revision": "hub revision",
    "trust_remote_code": "true | false",
    "gpu_memory_utilization": "fraction of GPU memory vLLM may take (default 0.9)",
    "tensor_parallel_size": "GPUs to shard the model over (default 1)",
    "max_model_len": "context length to allocate for",
    "chunk": "samples handed to vLLM per call; completions are stored after each (default 256)",
}


def missing_requirements() -> list[str]:
    """What this machine lacks for vLLM (empty when it can run)."""
    missing = []
    try:
        import vllm  # noqa: F401
    except ImportError:
        missing.append("vLLM is not installed (pip install 'slmbench[vllm]')")
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        missing.append("no CUDA GPU is visible")
    return missing


def _check_numbers(args: Mapping[str, str]) -> None:
    for name in ("tensor_parallel_size", "max_model_len", "chunk"):
        if name in args:
            parse_int(args[name], name)
    value = args.get("gpu_memory_utilization")
    if value is not None:
        try:
            ok = 0.0 < float(value) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise UserError(f"model argument gpu_memory_utilization={value!r} is not a fraction in (0, 1]")


class VLLMBackend(Backend):
    name = "vllm"
    needs_target = True
    target_example = "Qwen/Qwen2.5-Coder-1.5B"
    uses_hub = True

    def __init__(
        self, target: str, args: Mapping[str, str] | None = None, *, chat: bool = False, allow_download: bool = False
    ) -> None:
        super().__init__(target, args, chat=chat)
        check_args("vllm", self.args, _KNOWN_ARGS)
        _check_numbers(self.args)  # here, not at load: a typo must not wait for (or need) a GPU
        self.allow_download = allow_download
        if chat:
            self.form = "program"
        self._llm: Any = None
        self._load_time: float | None = None
        self._nvml: NvmlMeter | None = None

    def _ensure_loaded(self) -> Any:
        if self._llm is not None:
            return self._llm
        missing = missing_requirements()
        if missing:
            raise UserError(
                f"the vllm backend cannot run here: {'; '.join(missing)}",
                hint="use --model hf:<model> (transformers) or llamacpp:<file.gguf> instead",
            )
        if not self.allow_download and not Path(self.target).exists():
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(self.target, "config.json"), str):
                raise UserError(
                    f"model {self.target!r} is neither a local folder nor in the Hugging Face cache",
                    hint="pass --allow-download to fetch it",
                )
        from vllm import LLM

        a = self.args
        kwargs: dict[str, Any] = {
            "model": self.target,
            "enable_prefix_caching": True,
            "dtype": a.get("dtype", "auto"),
            "trust_remote_code": parse_bool(a.get("trust_remote_code", "false"), "trust_remote_code"),
            "gpu_memory_utilization": float(a.get("gpu_memory_utilization", "0.9")),
            "tensor_parallel_size": int(a.get("tensor_parallel_size", "1")),
        }
        if "revision" in a:
            kwargs["revision"] = a["revision"]
        if "max_model_len" in a:
            kwargs["max_model_len"] = int(a["max_model_len"])
        t0 = time.perf_counter()
        self._llm = LLM(**kwargs)
        self._load_time = time.perf_counter() - t0
        self._nvml = NvmlMeter()
        return self._llm

    def info(self) -> BackendInfo:
        llm = self._ensure_loaded()
        import vllm

        config = llm.llm_engine.model_config
        return BackendInfo(
            backend=self.name,
            model=self.target,
            load_time_s=self._load_time,
            device="cuda",
            dtype=str(config.dtype).removeprefix("torch."),
            extra={"vllm": vllm.__version__, "prefix_caching": True},
        )

    def _prompt(self, llm: Any, request: GenerationRequest) -> str:
        if not self.chat:
            return request.prompt
        tok = llm.get_tokenizer()
        if not getattr(tok, "chat_template", None):
            raise UserError(f"model {self.target!r} has no chat template", hint="drop --chat for a base model")
        message = {"role": "user", "content": instruction(request.prompt, request.problem.language)}
        return tok.apply_chat_template([message], tokenize=False, add_generation_prompt=True)

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        llm = self._ensure_loaded()
        from vllm import SamplingParams

        jobs = [(r, s, self._prompt(llm, r)) for r in requests for s in r.samples]
        chunk = int(self.args.get("chunk", "256"))
        for start in range(0, len(jobs), chunk):
            part = jobs[start : start + chunk]
            params = [
                SamplingParams(
                    n=1,
                    temperature=decoding.temperature,
                    top_p=decoding.top_p,
                    top_k=decoding.top_k or -1,
                    max_tokens=decoding.max_new_tokens,
                    stop=None if self.chat else list(r.stop_sequences) or None,
                    seed=sample_seed(decoding.seed, r.problem.problem_id, s) & 0x7FFFFFFF,
                )
                for r, s, _ in part
            ]
            assert self._nvml is not None
            e0 = self._nvml.energy_mj()
            t0 = time.perf_counter()
            outputs = llm.generate([p for _, _, p in part], params, use_tqdm=False)
            wall = time.perf_counter() - t0
            e1 = self._nvml.energy_mj()
            energy = (e1 - e0) / 1e3 if e0 is not None and e1 is not None else None
            used = self._nvml.used_memory_bytes()
            tokens = [len(o.outputs[0].token_ids) for o in outputs]
            total = sum(tokens) or 1
            for (request, sample, _), out, n_tok in zip(part, outputs, tokens, strict=True):
                yield self._completion(request, sample, out, n_tok, wall, used, energy, n_tok / total)

    def _completion(
        self,
        request: GenerationRequest,
        sample: int,
        out: Any,
        n_tok: int,
        wall: float,
        used: int | None,
        energy: float | None,
        share: float,
    ) -> Completion:
        result = out.outputs[0]
        text, finish = result.text, result.finish_reason or "length"
        latency, ttft, source = _request_times(getattr(out, "metrics", None), wall)
        # the requests of a chunk run concurrently: throughput needs each one's share of the
        # chunk's time (by tokens), not its latency (latencies overlap)
        extra: dict[str, Any] = {"latency_attribution": source, "compute_s": wall * share}
        usage = Usage(
            prompt_tokens=len(out.prompt_token_ids or []),
            completion_tokens=n_tok,
            latency_s=latency,
            ttft_s=ttft,
            peak_memory_bytes=used,  # NVML device memory: vLLM's engine runs outside this process's torch
            energy_j=energy * share if energy is not None else None,
            extra=extra,
        )
        return answer_completion(request, sample, text, usage, chat=self.chat, finish=finish)


def _request_times(metrics: Any, wall: float) -> tuple[float, float | None, str]:
    """(latency, ttft, where latency comes from) of one request, both counted from its arrival.

    vLLM V1 reports monotonic stamps (``queued_ts``, ``first_token_ts``, ``last_token_ts``), V0
    ``arrival_time``, ``first_token_time`` and ``finished_time``; offline runs with statistics
    off report neither. Then the latency is the chunk's wall time, which is exact for what the
    caller sees: the chunk's requests are all submitted at once and come back together.
    """
    names = ("queued_ts", "first_token_ts", "last_token_ts")  # V1
    if not getattr(metrics, "queued_ts", None):
        names = ("arrival_time", "first_token_time", "finished_time")  # V0
    start, first, last = (getattr(metrics, name, None) for name in names)
    ttft = first - start if start and first else None
    if start and last:
        return last - start, ttft, "vllm request timestamps"
    return wall, ttft, "chunk wall time (vLLM reported no per-request times)"
