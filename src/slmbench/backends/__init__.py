"""Model runtimes. ``--model NAME`` or ``--model NAME:TARGET`` picks one by NAME."""

from __future__ import annotations

from collections.abc import Mapping

from slmbench.backends.base import Backend
from slmbench.errors import UserError
from slmbench.registry import Registry

BACKENDS: Registry[type[Backend]] = Registry("backend")

BACKENDS.add("reference", "slmbench.backends.reference:ReferenceBackend")
BACKENDS.add("replay", "slmbench.backends.replay:ReplayBackend")
BACKENDS.add("hf", "slmbench.backends.hf:HFBackend")
BACKENDS.add("vllm", "slmbench.backends.vllm:VLLMBackend")
BACKENDS.add("openai", "slmbench.backends.openai_api:OpenAIBackend")
BACKENDS.add("llamacpp", "slmbench.backends.llamacpp:LlamaCppBackend")


def backend_class(model: str) -> type[Backend]:
    """The backend class ``model`` names, refusing a runtime that needs a model but was given none."""
    name, _, target = model.partition(":")
    cls = BACKENDS.get(name)
    if cls.needs_target and not target.strip():
        raise UserError(f"--model {model!r} names no model", hint=f"e.g. --model {name}:{cls.target_example}")
    return cls


def create_backend(
    model: str, args: Mapping[str, str] | None = None, *, chat: bool = False, allow_download: bool = False, **kwargs
) -> Backend:
    """``model`` is ``name`` or ``name:target`` (e.g. ``hf:Qwen/Qwen2.5-Coder-1.5B``).
    ``allow_download`` reaches the backends that can fetch weights from a hub."""
    name, _, target = model.partition(":")
    cls = backend_class(model)
    if cls.uses_hub:
        kwargs["allow_download"] = allow_download
    return cls(target or name, args, chat=chat, **kwargs)
