"""Which C++ test programs may share one translation unit (a conservative gate).

Batched C++ builds compile several programs at once: the shared leading ``#include`` lines are
hoisted to the top, each program is wrapped in ``namespace slmbench_member_<i> { ... }`` and a
generated ``main`` dispatches to one member. A wrapped program must mean exactly what it means
alone. Wrapping changes three things, and each rule below exists for one of them:

- Lookup: a name the program declares inside its namespace hides every global or ``std`` name of
  the same spelling, so overload resolution can pick a different function (HumanEvalPack C++/23
  defines ``int strlen(string)``; alone, ``strlen("")`` calls the C function). Hence: no declared
  name may be spelled like anything the headers mention.
- Process: namespace-scope objects with dynamic initialisation would run their constructors in
  every member's process. Hence: nothing but functions, types, aliases and constants at namespace
  scope.
- Text: macros, ``#`` directives, ``__LINE__``, ``extern``, ``namespace``, modules, type names
  printed through ``typeid`` reach beyond the wrapped block or see it. Hence: those block.

A program that fails to compile when wrapped is harmless (batches fall back to solo builds), so
the rules only need to rule out programs that compile wrapped yet behave differently. When the
scanner is unsure, it blocks.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RESERVED_PREFIX = "slmbench_"  # the batch's own names (namespaces, macros) start so, in any case
USER_MAIN = "slmbench_user_main"  # what cpp's -Dmain=... renames main to

# --- tokens ---------------------------------------------------------------------------------

_KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
    nullptr operator or or_eq private protected public register reinterpret_cast requires return
    short signed sizeof static static_assert static_cast struct switch template this thread_local
    throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
    xor xor_eq""".split()
)
_ARITHMETIC = frozenset("int long short char bool float double unsigned signed wchar_t char16_t char32_t".split())
# keywords that make a parameter a declaration (none can appear in an expression without parens)
_TYPE_WORDS = _ARITHMETIC | {"void", "auto", "const", "volatile"}
_CLASS_KEYS = frozenset({"struct", "class", "union"})

# Anywhere in the program: these reach outside the namespace, see the file/line, or change linkage.
_FORBIDDEN = frozenset(
    """asm __asm__ __asm __attribute__ extern operator thread_local _Pragma __COUNTER__ __LINE__
    __FILE__ __FILE_NAME__ __BASE_FILE__ __INCLUDE_LEVEL__ __DATE__ __TIME__ __TIMESTAMP__
    __PRETTY_FUNCTION__ __FUNCTION__ __has_include export module import friend""".split()
)
# Macros from the standard headers that expand to literals: fine in a constant's initialiser.
_CONSTANT_MACROS = frozenset(
    """INT_MAX INT_MIN UINT_MAX LONG_MAX LONG_MIN ULONG_MAX LLONG_MAX LLONG_MIN ULLONG_MAX SHRT_MAX
    SHRT_MIN CHAR_MAX CHAR_MIN CHAR_BIT DBL_MAX DBL_MIN DBL_EPSILON FLT_MAX FLT_MIN FLT_EPSILON
    M_PI M_E M_SQRT2 EOF""".split()
)
_CONSTANT_OPERATORS = frozenset(
    "+ - * / % ( ) << >> & | ^ ~ ! < > <= >= == != && || ? : and or not xor bitand bitor compl not_eq".split()
)
# Tokens a parameter's type (before any default argument) may consist of.
_TYPE_PUNCT = frozenset(":: < > >> , * & && [ ] ...".split())

_PUNCT = (
    r"\?\?|<(?=::[^:>])|<:|:>|<%|%>|%:%:|%:|##|#|\.\.\.|->\*|<=>|<<=|>>=|::|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||"
    r"\+=|-=|\*=|/=|%=|&=|\|=|\^=|\.\*|[{}\[\]()<>;:,.?~!+\-*/%^&|=]"
)
_SCAN = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\f\v\r]+)|(?P<lcomment>//[^\n]*)|(?P<bcomment>/\*.*?\*/)|(?P<open_comment>/\*)"
    r"|(?P<raw>(?:u8|u|U|L)?R\")"
    r"|(?P<string>(?:u8|u|U|L)?\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<char>(?:u8|u|U|L)?'(?:[^'\\\n]|\\.)+')"
    r"|(?P<number>\.?[0-9](?:'[0-9A-Za-z_]|[eEpP][+-]|[0-9A-Za-z_.])*)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    rf"|(?P<punct>{_PUNCT})",
    re.DOTALL,
)
_PROBLEM_PUNCT = {
    "??": "trigraph",
    "<:": "digraph",
    ":>": "digraph",
    "<%": "digraph",
    "%>": "digraph",
    "%:": "digraph",
    "%:%:": "digraph",
    "#": "stray #",
    "##": "stray ##",
}
_LINE_SPLICE = re.compile(r"\\[ \t]*\r?\n")
_IDENTIFIER = re.compile(
    r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|//[^\n]*|/\*.*?\*/|\.?[0-9](?:'\w|[eEpP][+-]|[\w.])*|([A-Za-z_]\w*)",
    re.DOTALL,
)
_UNDEF_NDEBUG = re.compile(r"#\s*undef\s+NDEBUG")
_INCLUDE_ASSERT = re.compile(r"#\s*include\s*<assert\.h>")
INCLUDE_LINE = re.compile(r"\s*#\s*include\s*[<\"][^>\"]+[>\"]\s*$")


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, char, punct
    text: str


@dataclass(frozen=True)
class Directive:
    text: str  # from '#' to the end of the line, stripped
    position: int  # number of code tokens before it
    depth: int  # brace depth where it stands


@dataclass(frozen=True)
class Scan:
    tokens: tuple[Token, ...]
    directives: tuple[Directive, ...]
    problem: str | None


class Blocked(Exception):
    """Internal: raised with the reason a program may not be wrapped."""


def identifiers(text: str) -> frozenset[str]:
    """Every identifier token in ``text`` (literals and comments skipped; keywords included).

    Meant for the output of ``g++ -E -P`` of a program's hoisted includes: every name the headers
    declare anywhere, in any namespace or scope, a deliberate superset of what lookup can find."""
    return frozenset(name for name in _IDENTIFIER.findall(text) if name)


def scan(body: str) -> Scan:
    """Tokens of ``body`` without comments, with string/char literals collapsed into one token,
    and its preprocessor lines apart. ``problem`` names the first lexical feature that blocks."""
    tokens: list[Token] = []
    directives: list[Directive] = []
    problem: str | None = "line splice (backslash-newline)" if _LINE_SPLICE.search(body) else None
    line_start, depth, pos = True, 0, 0
    while pos < len(body):
        m = _SCAN.match(body, pos)
        if m is None:
            problem = problem or f"unexpected character {body[pos]!r}"
            pos += 1
            continue
        kind, text = m.lastgroup or "", m.group()
        if kind == "punct" and text == "#" and line_start:
            end = body.find("\n", pos)
            end = len(body) if end < 0 else end
            directives.append(Directive(body[pos:end].strip(), len(tokens), depth))
            pos = end
            continue
        pos = m.end()
        if kind == "nl":
            line_start = True
        elif kind in ("ws", "lcomment"):
            pass
        elif kind == "bcomment":
            # a comment spanning lines leaves a later '#' mid-line: not a directive (then: stray '#')
            line_start = line_start and "\n" not in text
        elif kind == "open_comment":
            problem = problem or "unterminated comment"
        elif kind == "raw":
            problem = problem or "raw string literal"
        else:
            line_start = False
            if kind == "punct" and text in _PROBLEM_PUNCT:
                problem = problem or _PROBLEM_PUNCT[text]
            depth += (text == "{") - (text == "}") if kind == "punct" else 0
            tokens.append(Token(kind, text))
    return Scan(tuple(tokens), tuple(directives), problem)


# --- the gate -------------------------------------------------------------------------------


def batch_blocker(body: str, leading: tuple[str, ...], header_names: frozenset[str]) -> str | None:
    """None when ``body`` (a test program without slmbench's trailer) may be wrapped in a namespace
    and batched with others sharing its leading includes ``leading`` (as ``cpp.leading_includes``
    returns them); otherwise a short reason. ``header_names``: ``identifiers()`` of the
    preprocessed hoisted headers (``cpp.header_names``); the trailer's headers are added here."""
    scanned = scan(body)
    if scanned.problem:
        return scanned.problem
    try:
        _check_directives(scanned.directives, leading)
        _check_tokens(scanned.tokens)
        declared = _NamespaceScope(scanned.tokens).declarations()
        _check_declared(declared, header_names | trailer_names())
    except Blocked as blocked:
        return str(blocked)
    return None


def _check_directives(directives: Sequence[Directive], leading: tuple[str, ...]) -> None:
    head = tuple(d.text for d in directives[: len(leading)])
    if head != leading or any(d.position > 0 for d in directives[: len(leading)]):
        raise Blocked("leading #include lines differ from the hoisted ones")
    for d in directives[len(leading) :]:
        if not (_UNDEF_NDEBUG.fullmatch(d.text) or _INCLUDE_ASSERT.fullmatch(d.text)):
            word = re.match(r"#\s*(\w*)", d.text)
            raise Blocked(f"preprocessor directive #{word.group(1) if word else ''}: {d.text[:60]}")
        if d.depth != 0:
            raise Blocked("preprocessor directive inside braces")


def _check_tokens(tokens: Sequence[Token]) -> None:
    texts = [t.text for t in tokens]
    names = {t.text for t in tokens if t.kind == "ident"}
    for i, t in enumerate(tokens):
        if t.kind != "ident":
            continue
        if t.text in _FORBIDDEN:
            raise Blocked(f"uses {t.text}")
        # any case: the batch's own macros are spelled SLMBENCH_...
        if t.text.lower().startswith(RESERVED_PREFIX) and t.text != USER_MAIN:
            raise Blocked(f"uses the reserved name {t.text}")
        if t.text == "namespace" and not (texts[i - 1 : i] == ["using"] and texts[i + 1 : i + 3] == ["std", ";"]):
            raise Blocked("uses namespace (other than `using namespace std;`)")
    # type names printed at run time carry the namespace (N18slmbench_member_0...)
    if names & {"typeid", "type_info", "type_index", "type"}:
        for i in range(1, len(texts) - 1):
            if texts[i] == "name" and texts[i - 1] in (".", "->") and texts[i + 1] == "(":
                raise Blocked("prints a type name (typeid(...).name())")


@dataclass(frozen=True)
class Declared:
    name: str
    kind: str  # function, type, enumerator, alias, constant


def _check_declared(declared: Iterable[Declared], header_names: frozenset[str]) -> None:
    for d in declared:
        if d.name == "main" or d.name == USER_MAIN:
            continue  # renamed by -Dmain=...; the dispatcher calls it qualified
        if d.name in header_names:
            raise Blocked(f"declares {d.name}, also declared by the headers")
        if d.name.startswith("__") or re.match(r"_[A-Z]", d.name):
            raise Blocked(f"declares the reserved name {d.name}")


# --- namespace scope ------------------------------------------------------------------------


class _NamespaceScope:
    """Walks the declarations at brace depth 0 and collects the names they declare."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.texts = [t.text for t in tokens]
        self.declared: list[Declared] = []
        self.constants: set[str] = set()
        self.types: set[str] = set()

    def declarations(self) -> list[Declared]:
        i = 0
        while i < len(self.tokens):
            if self.texts[i] == ";":  # empty declaration, e.g. after a function body
                i += 1
                continue
            end = self._head_end(i)
            head = list(self.tokens[i:end])
            if self.texts[end] == ";":
                self._declaration(head)
                i = end + 1
            else:
                close = self._matching(end, "{", "}")
                i = self._braced(head, end, close)
        return self.declared

    def _head_end(self, start: int) -> int:
        """Index of the ';' or '{' that ends the declaration starting at ``start``."""
        depth = 0
        for j in range(start, len(self.tokens)):
            text = self.texts[j]
            if text in ("(", "["):
                depth += 1
            elif text in (")", "]"):
                depth -= 1
            elif depth == 0 and text in (";", "{"):
                return j
            elif depth == 0 and text == "}":
                raise Blocked("unbalanced braces")
        raise Blocked("unterminated declaration at namespace scope")

    def _matching(self, start: int, opening: str, closing: str) -> int:
        depth = 0
        for j in range(start, len(self.tokens)):
            depth += (self.texts[j] == opening) - (self.texts[j] == closing)
            if depth == 0:
                return j
        raise Blocked(f"unbalanced {opening}{closing}")

    def _add(self, name: str, kind: str) -> None:
        self.declared.append(Declared(name, kind))
        if kind in ("constant", "enumerator"):
            self.constants.add(name)
        if kind in ("type", "alias"):
            self.types.add(name)

    # declarations ending with '{ ... }'

    def _braced(self, head: list[Token], brace: int, close: int) -> int:
        """Handles ``head { ... }``; returns the index after it."""
        rest = _strip_template(head)
        texts = [t.text for t in rest]
        if _outside_parens(texts, "=") >= 0:
            raise Blocked(f"namespace-scope variable {_last_name(rest, stop='=')}")
        if rest and texts[0] in _CLASS_KEYS | {"enum"} and "(" not in texts:
            if self.texts[close + 1 : close + 2] != [";"]:
                raise Blocked("declarator after a class definition (`} x;`)")
            self._class(rest, brace, close)
            return close + 2
        if "(" in texts:
            for name in _function_head(rest, definition=True, constants=self.constants, types=self.types):
                self._add(name, "function")
            return close + 1
        raise Blocked(f"namespace-scope variable {_last_name(rest)}")

    def _class(self, head: list[Token], brace: int, close: int) -> None:
        texts = [t.text for t in head]
        body = self.tokens[brace + 1 : close]
        if texts[0] == "enum":
            scoped = texts[1:2] in (["class"], ["struct"])
            name_at = 2 if scoped else 1
            names = _names_before_colon(head[name_at:])
            for name in names:
                self._add(name, "type")
            if not scoped:
                for enumerator in _enumerators(body):
                    self._add(enumerator, "enumerator")
            elif not names:
                raise Blocked("unnamed scoped enum")
            return
        names = _names_before_colon(head[1:], allow_final=True)
        if not names:
            raise Blocked(f"unnamed {texts[0]} at namespace scope")
        if any(t.text == "inline" for t in body):
            # `static inline T x = f();` members are initialised dynamically at start-up
            raise Blocked("inline in a class body")
        self._add(names[0], "type")

    # declarations ending with ';'

    def _declaration(self, head: list[Token]) -> None:
        texts = [t.text for t in head]
        if texts == ["using", "namespace", "std"]:
            return
        rest = _strip_template(head)
        rt = [t.text for t in rest]
        if rt[:1] == ["using"] and len(rt) >= 3 and rest[1].kind == "ident" and rt[2] == "=":
            self._add(rt[1], "alias")
        elif rt[:1] == ["typedef"]:
            self._add(_typedef_name(rest), "alias")
        elif len(rt) == 2 and rt[0] in _CLASS_KEYS and rest[1].kind == "ident":
            self._add(rt[1], "type")  # forward declaration
        elif rest is head and _is_constant_head(rt):
            self._add(self._constant(rest), "constant")
        elif "(" in rt and not 0 <= _outside_parens(rt, "=") < rt.index("("):
            for name in _function_head(rest, definition=False, constants=self.constants, types=self.types):
                self._add(name, "function")
        else:
            raise Blocked(f"namespace-scope variable {_last_name(rest, stop='=')}")

    def _constant(self, head: list[Token]) -> str:
        """``[static] const|constexpr <arithmetic type> NAME = <constant expression>`` -> NAME."""
        texts = [t.text for t in head]
        eq = texts.index("=")
        specifiers, name, init = texts[: eq - 1], head[eq - 1], head[eq + 1 :]
        if name.kind != "ident" or name.text in _KEYWORDS or not init:
            raise Blocked("namespace-scope variable with an unusual declarator")
        if not set(specifiers) <= _ARITHMETIC | {"static", "const", "constexpr"} or not set(specifiers) & _ARITHMETIC:
            raise Blocked(f"namespace-scope variable {name.text} (not of a builtin type)")
        for t in init:
            ok = (
                t.kind in ("number", "char")
                or t.text in _CONSTANT_OPERATORS
                or t.text in ("true", "false")
                or t.text in self.constants
                or t.text in _CONSTANT_MACROS
            )
            if not ok:
                raise Blocked(f"namespace-scope variable {name.text} (initialiser not a plain constant)")
        return name.text


def _is_constant_head(texts: list[str]) -> bool:
    """``... const ... NAME = ...`` with no parentheses before the ``=``."""
    eq = texts.index("=") if "=" in texts else -1
    return eq > 0 and "(" not in texts[:eq] and bool({"const", "constexpr"} & set(texts[:eq]))


def _outside_parens(texts: Sequence[str], target: str) -> int:
    """Index of the first ``target`` outside (), [] and {}; -1 when there is none."""
    depth = 0
    for j, text in enumerate(texts):
        if text == target and depth == 0:
            return j
        depth += (text in ("(", "[", "{")) - (text in (")", "]", "}"))
    return -1


def _strip_template(head: list[Token]) -> list[Token]:
    """``template<...> rest`` -> rest. Explicit specialisations (``template<>``) block."""
    if not head or head[0].text != "template":
        return head
    if len(head) < 3 or head[1].text != "<":
        raise Blocked("unusual template declaration")
    if head[2].text == ">":
        raise Blocked("explicit template specialisation")
    depth = 0
    for j in range(1, len(head)):
        text = head[j].text
        depth += (text == "<") - (text == ">") - 2 * (text == ">>")
        if text in ("(", "{", ";", "="):
            if text != "=":  # default template arguments are fine, anything fancier blocks
                raise Blocked("unusual template parameter list")
        if depth <= 0:
            rest = head[j + 1 :]
            if rest[:1] and rest[0].text == "template":
                raise Blocked("nested template declaration")
            return rest
    raise Blocked("unbalanced template parameter list")


def _function_head(head: list[Token], *, definition: bool, constants: set[str], types: set[str]) -> list[str]:
    """Names declared by ``specifiers type [X::]name(params) [qualifiers]`` (definition or
    prototype); blocks what is not clearly such a head."""
    texts = [t.text for t in head]
    open_at = texts.index("(")
    name_at = open_at - 1
    if name_at < 0 or head[name_at].kind != "ident" or texts[name_at] in _KEYWORDS:
        raise Blocked("namespace-scope declaration that is not a plain function")
    names, start = [texts[name_at]], name_at
    while start >= 2 and texts[start - 1] == "::" and head[start - 2].kind == "ident":
        names.insert(0, texts[start - 2])
        start -= 2
    if start >= 1 and texts[start - 1] in ("::", "~"):
        raise Blocked(f"unusual qualified name {texts[start - 1]}{'::'.join(names)}")
    for t in head[:start]:
        if not (t.kind in ("ident", "number") or t.text in _TYPE_PUNCT):
            raise Blocked(f"unusual return type of {names[-1]} ({t.text})")
    close = open_at + _close_paren(texts[open_at:])
    _check_qualifiers(head[close + 1 :], names[-1])
    if not definition:
        _check_prototype_params(head[open_at + 1 : close], names[-1], constants, types)
    return names


def _close_paren(texts: list[str]) -> int:
    depth = 0
    for j, text in enumerate(texts):
        depth += (text == "(") - (text == ")")
        if depth == 0:
            return j
    raise Blocked("unbalanced parentheses")


def _check_qualifiers(trailing: Sequence[Token], name: str) -> None:
    texts = [t.text for t in trailing]
    j = 0
    while j < len(texts) and texts[j] in ("const", "noexcept", "override", "final", "volatile", "&", "&&"):
        j += 1
    if j < len(texts) and texts[j] == "->":
        for t in trailing[j + 1 :]:
            if not (t.kind in ("ident", "number") or t.text in _TYPE_PUNCT):
                raise Blocked(f"unusual trailing return type of {name}")
        return
    if j < len(texts):
        what = (
            "constructor initialiser list"
            if texts[j] == ":"
            else f"`{' '.join(texts[j : j + 2])}` after the parameters"
        )
        raise Blocked(f"{what} in {name}")


def _check_prototype_params(params: Sequence[Token], name: str, constants: set[str], types: set[str]) -> None:
    """``T x(a);`` may be a prototype or a variable (``vector<int> v(n);``, ``Foo f(bar);``):
    admit only parameter lists that cannot be expressions."""
    texts = [t.text for t in params]
    if texts in ([], ["void"]):
        return
    for param in _split_params(params):
        decl = param[: [t.text for t in param].index("=")] if any(t.text == "=" for t in param) else param
        if not decl or not _is_parameter_declaration(decl, constants, types):
            raise Blocked(f"namespace-scope variable {name} (or a prototype that looks like one)")


def _split_params(params: Sequence[Token]) -> list[list[Token]]:
    out: list[list[Token]] = [[]]
    parens = angles = 0
    in_default = False
    for t in params:
        text = t.text
        parens += (text in ("(", "[", "{")) - (text in (")", "]", "}"))
        if not in_default:
            angles = max(0, angles + (text == "<") - (text == ">") - 2 * (text == ">>"))
        if text == "=" and parens == 0 and angles == 0:
            in_default = True
        if text == "," and parens == 0 and angles == 0:
            out.append([])
            in_default = False
            continue
        out[-1].append(t)
    return out


def _is_parameter_declaration(decl: Sequence[Token], constants: set[str], types: set[str]) -> bool:
    texts = [t.text for t in decl]
    for t in decl:
        if t.kind not in ("ident",) and t.text not in _TYPE_PUNCT:
            return False  # literals, parentheses, operators: maybe an initialiser
        if t.text in constants or (
            t.text in _KEYWORDS and t.text not in _TYPE_WORDS | {"struct", "class", "enum", "typename"}
        ):
            return False
    if set(texts) & _TYPE_WORDS or "<" in texts:
        return True
    # `Type name` (two names side by side) is never an expression; `T * x` is one unless T is a type
    for a, b in zip(decl, decl[1:], strict=False):
        if b.kind == "ident" and (a.kind == "ident" or a.text == ">"):
            return True
    return any(
        a.kind == "ident" and a.text in types and b.text in ("*", "&", "&&")
        for a, b in zip(decl, decl[1:], strict=False)
    )


def _names_before_colon(rest: Sequence[Token], allow_final: bool = False) -> list[str]:
    """The name in ``Name [final] [: bases]`` (empty when unnamed); blocks anything fancier."""
    texts = [t.text for t in rest]
    if not texts or texts[0] == ":":
        return []
    if rest[0].kind != "ident" or texts[0] in _KEYWORDS:
        raise Blocked("unusual class or enum head")
    after = texts[1:]
    if allow_final and after[:1] == ["final"]:
        after = after[1:]
    if after and after[0] != ":":
        raise Blocked(f"unusual class or enum head ({' '.join(texts[:4])})")
    for t in rest[len(texts) - len(after) + 1 :]:
        if not (t.kind in ("ident", "number") or t.text in _TYPE_PUNCT):
            raise Blocked(f"unusual base clause of {texts[0]}")
    return [texts[0]]


def _enumerators(body: Sequence[Token]) -> list[str]:
    names, depth, expect = [], 0, True
    for t in body:
        if expect and depth == 0:
            if t.kind != "ident":
                raise Blocked("unusual enumerator list")
            names.append(t.text)
            expect = False
        depth += (t.text in ("(", "{", "[")) - (t.text in (")", "}", "]"))
        if t.text == "," and depth == 0:
            expect = True
    return names


def _typedef_name(rest: Sequence[Token]) -> str:
    texts = [t.text for t in rest]
    if "(" in texts or "[" in texts or rest[-1].kind != "ident":
        raise Blocked("typedef that declares more than a plain name")
    angles = 0
    for text in texts:
        angles += (text == "<") - (text == ">") - 2 * (text == ">>")
        if text == "," and angles == 0:
            raise Blocked("typedef of several names")
    return texts[-1]


def _last_name(tokens: Sequence[Token], stop: str | None = None) -> str:
    texts = [t.text for t in tokens]
    if stop in texts:
        tokens = tokens[: texts.index(stop)]
    names = [t.text for t in tokens if t.kind == "ident" and t.text not in _KEYWORDS]
    return names[-1] if names else "(unnamed)"


# --- the trailer's headers ------------------------------------------------------------------


def expanded_identifiers(include_lines: Sequence[str], flags: Sequence[str] = ("-std=c++17",)) -> frozenset[str]:
    """``identifiers()`` of what ``include_lines`` expand to (``g++ -E -P``): the header names."""
    done = subprocess.run(
        ["g++", *flags, "-E", "-P", "-x", "c++", "-"],
        input="\n".join(include_lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return identifiers(done.stdout)


@functools.cache
def trailer_names() -> frozenset[str]:
    """``identifiers()`` of the headers slmbench's trailer includes after every program.

    Alone, a program's global ``int write(int, const char*, size_t)`` would take part in the
    trailer's call to ``write`` (or clash with the C declaration and fail to compile); wrapped in
    a namespace it would not. So names these headers spell count as header names too."""
    from slmbench.execution.languages.cpp import TRAILER  # cpp imports this module

    includes = [line.strip() for line in TRAILER.splitlines() if INCLUDE_LINE.match(line)]
    try:
        return expanded_identifiers(includes)
    except OSError:
        return frozenset()  # no g++: nothing is built, batched or not
