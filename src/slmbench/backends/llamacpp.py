"""llama.cpp runtime through ``llama-cpp-python``: ``--model llamacpp:<path to .gguf>``.

Samples are generated one at a time. The n samples of a prompt still share its prefill:
llama.cpp keeps the KV cache of the previous call and only evaluates the tokens after the
longest common prefix, so consecutive samples of one prompt skip the prompt. Each sample gets
its own seed derived from (seed, problem, sample), so samples are reproducible one by one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from slmbench.backends.base import Backend, BackendInfo, GenerationRequest
from slmbench.backends.chat import answer_completion, instruction
from slmbench.backends.hf import check_args, parse_int, sample_seed
from slmbench.errors import UserError
from slmbench.metrics.efficiency import EfficiencyMeter, NvmlMeter
from slmbench.spec import DecodingSpec
from slmbench.types import Completion, Usage

_KNOWN_ARGS = {
    "n_ctx": "context window in tokens (default 4096)",
    "n_gpu_layers": "layers offloaded to the GPU (-1: all; default 0 = CPU)",
    "n_threads": "CPU threads (default: llama.cpp's choice)",
    "n_batch": "prompt tokens per evaluation batch",
    "chat_format": "llama-cpp-python chat format, when the GGUF has no chat template",
}


class LlamaCppBackend(Backend):
    name = "llamacpp"
    needs_target = True
    target_example = "model.gguf"

    def __init__(self, target: str, args: Mapping[str, str] | None = None, *, chat: bool = False) -> None:
        super().__init__(target, args, chat=chat)
        check_args("llamacpp", self.args, _KNOWN_ARGS)
        for key in ("n_ctx", "n_gpu_layers", "n_threads", "n_batch"):
            if key in self.args:
                parse_int(self.args[key], key, lowest=-1 if key == "n_gpu_layers" else 1)
        if chat:
            self.form = "program"
        self._llm: Any = None
        self._load_time: float | None = None
        self._gpu = int(self.args.get("n_gpu_layers", "0")) != 0

    def _ensure_loaded(self) -> Any:
        if self._llm is not None:
            return self._llm
        try:
            import llama_cpp
        except ImportError as exc:
            raise UserError(
                "the llamacpp backend needs llama-cpp-python", hint="pip install 'slmbench[llamacpp]'"
            ) from exc
        path = Path(self.target)
        if not path.is_file():
            raise UserError(f"GGUF file not found: {path}", hint="give the path of a .gguf model file")
        kwargs: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": int(self.args.get("n_ctx", "4096")),
            "n_gpu_layers": int(self.args.get("n_gpu_layers", "0")),
            "verbose": False,
        }
        for key in ("n_threads", "n_batch"):
            if key in self.args:
                kwargs[key] = int(self.args[key])
        if "chat_format" in self.args:
            kwargs["chat_format"] = self.args["chat_format"]
        t0 = time.perf_counter()
        try:
            self._llm = llama_cpp.Llama(**kwargs)
        except ValueError as exc:
            raise UserError(f"llama.cpp cannot load {path}: {exc}", hint="is it a valid GGUF file?") from exc
        self._load_time = time.perf_counter() - t0
        return self._llm

    def info(self) -> BackendInfo:
        llm = self._ensure_loaded()
        import llama_cpp

        meta = dict(getattr(llm, "metadata", {}) or {})
        return BackendInfo(
            backend=self.name,
            model=self.target,
            parameters=int(llama_cpp.llama_model_n_params(llm.model)),
            load_time_s=self._load_time,
            device="gpu" if self._gpu else "cpu",
            dtype=_FILE_TYPES.get(str(meta.get("general.file_type")), meta.get("general.file_type")),
            extra={
                "architecture": meta.get("general.architecture"),
                "n_ctx": llm.n_ctx(),
                "llama_cpp_python": llama_cpp.__version__,
            },
        )

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def generate(self, requests: Sequence[GenerationRequest], decoding: DecodingSpec) -> Iterator[Completion]:
        llm = self._ensure_loaded()
        meter = EfficiencyMeter("cpu") if not self._gpu else None
        nvml = NvmlMeter() if self._gpu else None
        for request in requests:
            for sample in request.samples:
                yield self._one(llm, request, sample, decoding, meter, nvml)

    def _one(
        self,
        llm: Any,
        request: GenerationRequest,
        sample: int,
        decoding: DecodingSpec,
        meter: EfficiencyMeter | None,
        nvml: NvmlMeter | None,
    ) -> Completion:
        first_token: list[float] = []

        def note_first_token(input_ids: Any, logits: Any) -> bool:
            if not first_token:
                first_token.append(time.perf_counter())
            return False

        params: dict[str, Any] = {
            "max_tokens": decoding.max_new_tokens,
            "temperature": decoding.temperature,
            "top_p": decoding.top_p,
            "top_k": decoding.top_k,  # 0 disables it (llama-cpp-python's own default is 40)
            "min_p": 0.0,  # off: the spec has no min-p, and llama-cpp-python defaults to 0.05
            "typical_p": 1.0,
            "repeat_penalty": 1.0,
            "seed": sample_seed(decoding.seed, request.problem.problem_id, sample) & 0x7FFFFFFF,
            "stopping_criteria": _criteria(note_first_token),
        }
        e0 = nvml.energy_mj() if nvml else None
        window = meter.window() if meter else None
        t0 = time.perf_counter()
        try:
            if window:
                window.__enter__()
            if self.chat:
                messages = [{"role": "user", "content": instruction(request.prompt, request.problem.language)}]
                # the chat call takes no stopping criteria: no time to first token there
                params.pop("stopping_criteria")
                out = llm.create_chat_completion(messages=messages, **params)
                text = out["choices"][0]["message"]["content"] or ""
            else:
                stops = list(request.stop_sequences) or None
                out = llm.create_completion(request.prompt, stop=stops, **params)
                text = out["choices"][0]["text"]
        except ValueError as exc:  # e.g. the prompt does not fit the context window
            raise UserError(
                f"llama.cpp failed on {request.problem.problem_id}: {exc}", hint="raise n_ctx in --model-args"
            ) from exc
        finally:
            if window:
                window.__exit__(None, None, None)
        latency = time.perf_counter() - t0
        finish = out["choices"][0].get("finish_reason") or "length"
        usage_raw = out.get("usage") or {}
        extra: dict[str, Any] = {}
        peak = energy = None
        if window and window.result:
            peak, energy = window.result.peak_memory_bytes, window.result.energy_j
            if window.result.energy_source == "rapl":
                extra.update(energy_source="rapl", energy_scope="cpu package, all processes")
        elif nvml:
            peak = nvml.used_memory_bytes()  # device-wide: llama.cpp allocates outside torch
            e1 = nvml.energy_mj()
            energy = (e1 - e0) / 1e3 if e1 is not None and e0 is not None else None
            if energy is not None:
                extra["energy_source"] = "nvml"
        usage = Usage(
            prompt_tokens=usage_raw.get("prompt_tokens"),
            completion_tokens=usage_raw.get("completion_tokens"),
            latency_s=latency,
            ttft_s=first_token[0] - t0 if first_token else None,
            peak_memory_bytes=peak,
            energy_j=energy,
            extra=extra,
        )
        return answer_completion(request, sample, text, usage, chat=self.chat, finish=finish)


def _criteria(fn: Any) -> Any:
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList([fn])


# GGUF general.file_type codes (llama_ftype) for the common cases
_FILE_TYPES = {
    "0": "F32",
    "1": "F16",
    "2": "Q4_0",
    "3": "Q4_1",
    "7": "Q8_0",
    "15": "Q4_K_M",
    "17": "Q5_K_M",
    "18": "Q6_K",
}
