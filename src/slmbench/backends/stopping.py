"""Per-sequence stop detection over incrementally decoded tokens.

Each generated sequence owns a :class:`StopWatcher`. After every new token it decodes only the
tail it has not seen (the prefix/read offset scheme, so byte-level and SentencePiece tokenizers
both decode multi-token characters and leading spaces correctly) and looks for a stop sequence
in the new text plus the ``len(stop) - 1`` characters before it, so a stop split across tokens
is found the step it completes. The final text is cut exactly at the earliest stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from slmbench.tasks.base import truncate_at_stop

# how many prompt tokens seed the decoder so the first generated token decodes in context
_CONTEXT_TOKENS = 4


class StopWatcher:
    def __init__(
        self,
        decode: Callable[[list[int]], str],
        prompt_ids: Sequence[int],
        stop_sequences: Sequence[str],
        eos_ids: frozenset[int] = frozenset(),
    ) -> None:
        self._decode = decode
        self._stops = tuple(s for s in stop_sequences if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._eos = eos_ids
        context = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._ids: list[int] = context
        self._prefix = 0
        self._read = len(context)
        self._n_context = len(context)
        self.text = ""  # the continuation decoded so far (before truncation)
        self.finished = False
        self.finish_reason = "length"

    @property
    def generated(self) -> list[int]:
        return self._ids[self._n_context :]

    def push(self, token: int) -> bool:
        """Add one generated token; True when the sequence is finished (stop sequence or EOS)."""
        if token in self._eos:
            self.finished, self.finish_reason = True, "stop"
            self._ids.append(token)
            return True
        self._ids.append(token)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) <= len(prefix_text) or new_text.endswith("\ufffd"):
            return False  # an incomplete multi-byte character: wait for the next token
        start = max(0, len(self.text) - self._longest + 1)
        self.text += new_text[len(prefix_text) :]
        self._prefix, self._read = self._read, len(self._ids)
        if self._stops and any(self.text.find(s, start) != -1 for s in self._stops):
            self.finished, self.finish_reason = True, "stop"
        return self.finished

    def result(self, full_decode: Callable[[list[int]], str] | None = None) -> str:
        """The continuation cut exactly at the earliest stop sequence.

        ``full_decode`` (generated ids -> text in the prompt's context) re-decodes the whole
        continuation once, which is exact where incremental decoding is only a detector.
        """
        ids = [t for t in self.generated if t not in self._eos]
        text = full_decode(ids) if full_decode is not None else self.text
        cut = truncate_at_stop(text, self._stops)
        if len(cut) < len(text):
            self.finish_reason = "stop"
        return cut
