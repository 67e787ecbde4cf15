"""Chat (instruct) models: the instruction they get and the code taken from their answers.

Shared by every runtime with a chat mode (transformers with ``--chat``, the OpenAI chat
endpoint, llama.cpp chat), so all of them ask the same question and read answers the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from slmbench.tasks.base import CompletionForm, truncate_at_stop
from slmbench.types import Completion, Usage

if TYPE_CHECKING:
    from slmbench.backends.base import GenerationRequest

# fence tags that name each language (the first is used in the instruction)
_TAGS: dict[str, tuple[str, ...]] = {
    "python": ("python", "py", "python3"),
    "javascript": ("javascript", "js", "node"),
    "js": ("javascript", "js", "node"),
    "typescript": ("typescript", "ts"),
    "java": ("java",),
    "cpp": ("cpp", "c++", "cc", "cxx"),
    "c": ("c",),
    "go": ("go", "golang"),
    "rust": ("rust", "rs"),
    "php": ("php",),
    "ruby": ("ruby", "rb"),
}

# ``` or ~~~ fences, optional tag; an unterminated last fence (answer cut by max tokens) runs to the end
_FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)


def language_tag(language: str) -> str:
    return _TAGS.get(language.lower(), (language.lower(),))[0]


def instruction(prompt: str, language: str = "python") -> str:
    """The user message for an instruct model: complete the given code, answer in one block."""
    tag = language_tag(language)
    return (
        f"Complete the following {language} code. Reply with the complete program, "
        f"including the given code, in a single ```{tag} code block.\n\n```{tag}\n{prompt.rstrip()}\n```"
    )


@dataclass(frozen=True)
class Extracted:
    code: str
    form: CompletionForm  # "program" when the code stands alone, else a continuation of the prompt
    fenced: bool


def code_blocks(answer: str) -> list[tuple[str, str]]:
    """(tag, code) of every fenced block, in order."""
    return [(m.group(2).strip().lower(), m.group(3)) for m in _FENCE.finditer(answer)]


def _defines(code: str, entry_point: str) -> bool:
    return bool(entry_point) and re.search(rf"\b{re.escape(entry_point)}\s*[(<=:]", code) is not None


def extract_code(answer: str, language: str = "python", entry_point: str = "", prompt: str = "") -> Extracted:
    """The code in a chat answer: the best fenced block, or the plain answer when it has none.

    Among several blocks prefer one that defines ``entry_point``, then one tagged with the
    language, then the first. The result is a whole program when it defines the entry point or
    repeats the prompt's first code line; otherwise it is taken as a continuation of the prompt
    (a model that answered with only the function body).
    """
    blocks = code_blocks(answer)
    if blocks:
        tags = _TAGS.get(language.lower(), (language.lower(),))
        chosen = next((c for _, c in blocks if _defines(c, entry_point)), None)
        if chosen is None:
            chosen = next((c for t, c in blocks if t in tags), blocks[0][1])
        code, fenced = chosen, True
    else:
        code, fenced = answer, False
    code = code.strip("\n")
    first_line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    whole = _defines(code, entry_point) or (bool(first_line) and first_line in code) or not prompt
    return Extracted(code=code + "\n" if code else "", form="program" if whole else "continuation", fenced=fenced)


def answer_completion(
    request: GenerationRequest, sample: int, text: str, usage: Usage, *, chat: bool, finish: str
) -> Completion:
    """The Completion for a runtime's raw answer: for chat, the code extracted from the answer
    (the answer itself kept in ``usage.extra["chat_answer"]``); otherwise the continuation cut
    at its first stop sequence, for runtimes that return text past a stop. ``finish`` is the
    runtime's own reason ("stop", "length", ...)."""
    problem = request.problem
    if chat:
        extracted = extract_code(text, problem.language, problem.entry_point, request.prompt)
        code, form, extra = extracted.code, extracted.form, {"chat_answer": text}
    else:
        code, form, extra = truncate_at_stop(text, request.stop_sequences), None, {}
        if len(code) < len(text):
            finish = "stop"
    return Completion(
        problem_id=problem.problem_id,
        sample=sample,
        text=code,
        finish_reason="stop" if finish == "stop" else "length",
        usage=replace(usage, extra={**usage.extra, **extra}),
        form=form,
    )
