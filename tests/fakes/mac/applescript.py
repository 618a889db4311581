"""A small AppleScript compiler and interpreter, enough for the scripts decl sends to UTM.

It compiles the whole script first (a syntax error runs nothing, as osascript does), with
UTM's dictionary terms known only inside `tell application "UTM"`, then runs it against an
application object (see osascript.py). Supported:

- statements: `tell application "X"` ... `end tell`, `tell application "X" to STMT`,
  `set NAME to EXPR`, `return EXPR`, `get EXPR`, an expression, and the commands
  `make new virtual machine with properties REC`, `update configuration [of] VM with REC`,
  `start VM`, `stop VM [by force|kill|request]`, `delete VM`;
- expressions: strings (escapes \\" \\\\ \\n \\r \\t), integers, reals, `true`/`false`,
  `missing value`, lists and records `{...}` (multi-word keys from the dictionary, or one
  plain identifier as a user key), `(...)`, `&` (text or list concatenation),
  `character id N`, `POSIX file "path"`, `PROPERTY of EXPR`, `every virtual machine`,
  `virtual machines`, `virtual machine id "X"`, `virtual machine named "X"`,
  `virtual machine "X"`, enumeration constants, variables, `item N of LIST`, `count of LIST`.
- comments `-- ...` and `# ...` to the end of the line.

Errors carry AppleScript's numbers: -2741 syntax, -1728 can't get, -2753 undefined variable,
-1700 can't make (type), and whatever the application raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class ScriptError(Exception):
    """A compile (syntax) or run (execution) error, with osascript's character range."""

    def __init__(self, kind: str, message: str, number: int, start: int = 0, end: int = 0,
                 app: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.number = number
        self.start = start
        self.end = end
        self.app = app

    def text(self) -> str:
        """`S:E: execution error: X got an error: MESSAGE (N)` as osascript prints it."""
        who = f"{self.app} got an error: " if self.app else ""
        return f"{self.start}:{self.end}: {self.kind} error: {who}{self.message} ({self.number})"


@dataclass(frozen=True)
class Enum:
    """An enumeration constant (`shared`, `qemu`, ...): an AEKeyword, never a string."""

    name: str


@dataclass(frozen=True)
class FileRef:
    """`POSIX file "path"`."""

    path: str


@dataclass(frozen=True)
class AppRef:
    """`application "UTM"`."""

    name: str


@dataclass
class Record:
    """An AppleScript record: keys are dictionary terms ("cpu cores") or user identifiers."""

    items: dict[str, Any] = field(default_factory=dict)


MISSING = Enum("missing value")

# Dictionary terms of UTM.sdef (and the standard suite) usable inside `tell application "UTM"`.
UTM_PROPERTIES = [
    "id", "name", "backend", "status", "configuration", "notes", "version", "UTM version",
    "auto terminate", "icon", "architecture", "machine", "memory", "cpu cores", "hypervisor",
    "uefi", "directory share mode", "drives", "network interfaces", "serial ports", "displays",
    "qemu additional arguments", "removable", "interface", "host size", "guest size", "raw",
    "source", "index", "hardware", "mode", "address", "host interface", "port forwards",
    "directory shares", "read only", "protocol", "host address", "host port", "guest address",
    "guest port", "port", "dynamic resolution", "native resolution", "os",
]
UTM_ENUMS = [
    "apple", "qemu", "unavailable", "stopped", "starting", "started", "pausing", "paused",
    "resuming", "stopping", "force", "kill", "request", "ptty", "tcp", "none", "WebDAV",
    "VirtFS", "IDE", "SCSI", "SD", "MTD", "Floppy", "PFlash", "VirtIO", "NVMe", "USB",
    "emulated", "shared", "host", "bridged", "TCP", "UDP", "linear", "nearest", "linux", "macOS",
]
UTM_KEYWORDS = ["virtual machines", "virtual machine", "make", "new", "with properties",
                "update configuration", "start", "stop", "delete", "by", "named", "every"]
CORE_KEYWORDS = ["tell", "end tell", "end", "application", "to", "of", "set", "return", "get",
                 "with", "true", "false", "missing value", "POSIX file", "character id",
                 "item", "count", "version"]

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+|¬[ \t\r]*\n)
  | (?P<comment>(?:--|\#)[^\n]*)
  | (?P<nl>\n)
  | (?P<str>"(?:[^"\\]|\\.)*"|“[^”]*”)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*|\|[^|]*\|)
  | (?P<punct>[{}():,&\-])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


def tokenize(source: str) -> list[Token]:
    """Tokens of a script (no whitespace or comments); a syntax error on anything else."""
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ScriptError("syntax", "Expected expression but found unknown token.",
                              -2741, pos, pos + 1)
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    out.append(Token("nl", "", len(source), len(source)))
    out.append(Token("eof", "", len(source), len(source)))
    return out


def unescape(literal: str) -> str:
    """The value of a string literal."""
    if literal.startswith("“"):
        return literal[1:-1]
    body = literal[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            out.append({"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}.get(nxt,
                                                                                 "\\" + nxt))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


# -- AST ---------------------------------------------------------------------------------

@dataclass
class Node:
    op: str
    args: tuple[Any, ...]
    start: int
    end: int


class Parser:
    """Recursive descent over the tokens, with the terms of the current tell target."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.targets: list[str] = []

    # terms

    def terms(self) -> list[str]:
        words = list(CORE_KEYWORDS)
        if self.targets and self.targets[-1] == "UTM":
            words += UTM_PROPERTIES + UTM_ENUMS + UTM_KEYWORDS
        return sorted(words, key=lambda t: -len(t.split()))

    def peek_term(self) -> tuple[str | None, int]:
        """The longest known term starting here (case-insensitive) and its token count."""
        for term in self.terms():
            parts = term.split()
            tokens = self.tokens[self.pos:self.pos + len(parts)]
            if len(tokens) == len(parts) and all(
                    t.kind == "word" and t.text.lower() == p.lower()
                    for t, p in zip(tokens, parts, strict=True)):
                return term, len(parts)
        return None, 0

    def at(self, term: str) -> bool:
        found, _ = self.peek_term()
        return found is not None and found.lower() == term.lower()

    def take(self, term: str) -> Token:
        found, count = self.peek_term()
        if found is None or found.lower() != term.lower():
            self.fail(f"Expected “{term}” but found {self.describe()}.")
        token = self.tokens[self.pos]
        self.pos += count
        return token

    def describe(self) -> str:
        token = self.tokens[self.pos]
        if token.kind in ("nl", "eof"):
            return "end of line" if token.kind == "nl" else "end of script"
        if token.kind == "str":
            return "“\"”"
        if token.kind == "num":
            return "number"
        found, _ = self.peek_term()
        if found is not None:
            if found in UTM_PROPERTIES:
                return "property"
            if found in UTM_ENUMS:
                return "constant"
            return f"“{found}”"
        if token.kind == "word":
            return "identifier"
        return f"“{token.text}”"

    def fail(self, message: str) -> None:
        token = self.tokens[self.pos]
        raise ScriptError("syntax", message, -2741, token.start, max(token.end, token.start))

    def punct(self, text: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "punct" and token.text == text

    def expect_punct(self, text: str) -> None:
        if not self.punct(text):
            self.fail(f"Expected “{text}” but found {self.describe()}.")
        self.pos += 1

    # statements

    def parse(self) -> list[Node]:
        body = self.block(top=True)
        return body

    def skip_newlines(self) -> None:
        while self.tokens[self.pos].kind == "nl":
            self.pos += 1

    def block(self, top: bool = False) -> list[Node]:
        out: list[Node] = []
        while True:
            self.skip_newlines()
            token = self.tokens[self.pos]
            if token.kind == "eof":
                if not top:
                    self.fail("Expected “end” or “end tell” but found end of script.")
                return out
            if self.at("end tell") or self.at("end"):
                if top:
                    self.fail(f"Expected end of line, etc. but found {self.describe()}.")
                return out
            out.append(self.statement())
            if self.tokens[self.pos].kind not in ("nl", "eof"):
                self.fail(f"Expected end of line but found {self.describe()}.")

    def statement(self) -> Node:
        start = self.tokens[self.pos].start
        if self.at("tell"):
            self.take("tell")
            self.take("application")
            name_token = self.tokens[self.pos]
            if name_token.kind != "str":
                self.fail(f"Expected “\"” but found {self.describe()}.")
            self.pos += 1
            app = unescape(name_token.text)
            self.targets.append(app)
            if self.at("to"):
                self.take("to")
                inner = [self.statement()]
            else:
                if self.tokens[self.pos].kind != "nl":
                    self.fail(f"Expected end of line but found {self.describe()}.")
                inner = self.block()
                if self.at("end tell"):
                    self.take("end tell")
                else:
                    self.take("end")
            self.targets.pop()
            return Node("tell", (app, inner), start, self.tokens[self.pos - 1].end)
        if self.at("set"):
            self.take("set")
            token = self.tokens[self.pos]
            found, _ = self.peek_term()
            if token.kind != "word" or found is not None:
                self.fail(f"Expected variable name but found {self.describe()}.")
            self.pos += 1
            self.take("to")
            value = self.expression()
            return Node("set", (token.text.lower(), value), start, value.end)
        if self.at("return"):
            self.take("return")
            if self.tokens[self.pos].kind in ("nl", "eof"):
                return Node("return", (None,), start, start + 6)
            value = self.expression()
            return Node("return", (value,), start, value.end)
        if self.at("get"):
            self.take("get")
            value = self.expression()
            return Node("expr", (value,), start, value.end)
        if self.at("update configuration"):
            self.take("update configuration")
            if self.at("of"):
                self.take("of")
            target = self.unary()
            self.take("with")
            value = self.expression()
            return Node("update", (target, value), start, value.end)
        if self.at("start") or self.at("delete"):
            verb, _ = self.peek_term()
            assert verb is not None
            self.take(verb)
            target = self.expression()
            return Node(verb, (target,), start, target.end)
        if self.at("stop"):
            self.take("stop")
            target = self.unary()
            method = None
            if self.at("by"):
                self.take("by")
                found, _ = self.peek_term()
                if found not in ("force", "kill", "request"):
                    self.fail(f"Expected “force”, “kill” or “request” but found "
                              f"{self.describe()}.")
                assert found is not None
                self.take(found)
                method = found
            return Node("stop", (target, method), start, self.tokens[self.pos - 1].end)
        value = self.expression()
        return Node("expr", (value,), start, value.end)

    # expressions

    def expression(self) -> Node:
        left = self.unary()
        while self.punct("&"):
            self.pos += 1
            right = self.unary()
            left = Node("concat", (left, right), left.start, right.end)
        return left

    def unary(self) -> Node:
        token = self.tokens[self.pos]
        start = token.start
        found, _ = self.peek_term()
        if found == "make":
            self.take("make")
            self.take("new")
            self.take("virtual machine")
            self.take("with properties")
            value = self.unary()
            return Node("make", (value,), start, value.end)
        if found == "every":
            self.take("every")
            self.take("virtual machine")
            return Node("every", (), start, self.tokens[self.pos - 1].end)
        if found == "virtual machines":
            self.take("virtual machines")
            return Node("every", (), start, self.tokens[self.pos - 1].end)
        if found == "virtual machine":
            self.take("virtual machine")
            how = "name"
            if self.at("id"):
                self.take("id")
                how = "id"
            elif self.at("named"):
                self.take("named")
            value = self.primary()
            return Node("vm", (how, value), start, value.end)
        if found in ("POSIX file", "character id"):
            self.take(found)
            value = self.primary()
            return Node("posix" if found == "POSIX file" else "charid", (value,), start,
                        value.end)
        if found in ("item",):
            self.take("item")
            index = self.primary()
            self.take("of")
            value = self.unary()
            return Node("item", (index, value), start, value.end)
        if found == "count":
            self.take("count")
            if self.at("of"):
                self.take("of")
            value = self.unary()
            return Node("count", (value,), start, value.end)
        if found in UTM_PROPERTIES and found is not None:
            self.take(found)
            if self.at("of"):
                self.take("of")
                value = self.unary()
                return Node("prop", (found, value), start, value.end)
            return Node("prop", (found, None), start, self.tokens[self.pos - 1].end)
        if self.punct("-") and self.tokens[self.pos + 1].kind == "num":
            self.pos += 1
            value = self.primary()
            return Node("neg", (value,), start, value.end)
        return self.primary()

    def primary(self) -> Node:
        token = self.tokens[self.pos]
        found, _ = self.peek_term()
        if token.kind == "str":
            self.pos += 1
            return Node("lit", (unescape(token.text),), token.start, token.end)
        if token.kind == "num":
            self.pos += 1
            value: Any = float(token.text) if "." in token.text else int(token.text)
            return Node("lit", (value,), token.start, token.end)
        if self.punct("("):
            self.pos += 1
            value_node = self.expression()
            self.expect_punct(")")
            return value_node
        if self.punct("{"):
            return self.braces()
        if found in ("true", "false"):
            self.take(found)
            return Node("lit", (found == "true",), token.start, token.end)
        if found == "missing value":
            self.take(found)
            return Node("lit", (MISSING,), token.start, self.tokens[self.pos - 1].end)
        if found == "application":
            self.take("application")
            name = self.tokens[self.pos]
            if name.kind != "str":
                self.fail(f"Expected “\"” but found {self.describe()}.")
            self.pos += 1
            return Node("app", (unescape(name.text),), token.start, name.end)
        if found in UTM_ENUMS and found is not None:
            self.take(found)
            return Node("lit", (Enum(found),), token.start, self.tokens[self.pos - 1].end)
        if token.kind == "word" and found is None:
            self.pos += 1
            return Node("var", (token.text.lower(),), token.start, token.end)
        self.fail(f"Expected expression but found {self.describe()}.")
        raise AssertionError("unreachable")

    def braces(self) -> Node:
        start = self.tokens[self.pos].start
        self.expect_punct("{")
        if self.punct("}"):
            self.pos += 1
            return Node("list", ((),), start, self.tokens[self.pos - 1].end)
        if self.record_ahead():
            items: list[tuple[str, Node]] = []
            while True:
                found, count = self.peek_term()
                token = self.tokens[self.pos]
                if found is not None and found in UTM_PROPERTIES + ["name"]:
                    key = found
                    self.pos += count
                elif token.kind == "word" and found is None:
                    key = token.text.lower()
                    self.pos += 1
                else:
                    self.fail(f"Expected property but found {self.describe()}.")
                    raise AssertionError("unreachable")
                self.expect_punct(":")
                items.append((key, self.expression()))
                if self.punct("}"):
                    self.pos += 1
                    break
                if not self.punct(","):
                    self.fail(f"Expected “,” or “}}” but found {self.describe()}.")
                self.pos += 1
            return Node("record", (tuple(items),), start, self.tokens[self.pos - 1].end)
        values = []
        while True:
            values.append(self.expression())
            if self.punct("}"):
                self.pos += 1
                break
            if not self.punct(","):
                self.fail(f"Expected “,” or “}}” but found {self.describe()}.")
            self.pos += 1
        return Node("list", (tuple(values),), start, self.tokens[self.pos - 1].end)

    def record_ahead(self) -> bool:
        """Whether `{` opens a record: a key (term or identifier) then `:`."""
        found, count = self.peek_term()
        token = self.tokens[self.pos]
        if found is not None:
            nxt = self.tokens[self.pos + count]
        elif token.kind == "word":
            nxt = self.tokens[self.pos + 1]
        else:
            return False
        return nxt.kind == "punct" and nxt.text == ":"


def compile_script(source: str) -> list[Node]:
    """The statements of a script, or a ScriptError of kind "syntax"."""
    return Parser(source).parse()


# -- running -----------------------------------------------------------------------------

class Return(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__("return")
        self.value = value


class Application:
    """What a scriptable application offers the interpreter (osascript.py implements UTM)."""

    name = "?"

    def prop(self, name: str, target: Any, node: Node) -> Any:
        raise ScriptError("execution", f"Can’t get {name}.", -1728, node.start, node.end)

    def command(self, verb: str, args: tuple[Any, ...], node: Node) -> Any:
        raise ScriptError("execution", f"{verb} is not understood.", -1708, node.start, node.end)


class Interpreter:
    """Runs compiled statements; applications by name from `apps`."""

    def __init__(self, apps: dict[str, Application]) -> None:
        self.apps = apps
        self.variables: dict[str, Any] = {}
        self.targets: list[Application | None] = []
        self.result: Any = None

    def run(self, statements: list[Node]) -> Any:
        try:
            for statement in statements:
                self.execute(statement)
        except Return as ret:
            return ret.value
        return self.result

    def target(self) -> Application | None:
        return self.targets[-1] if self.targets else None

    def execute(self, node: Node) -> None:
        if node.op == "tell":
            name, body = node.args
            app = self.apps.get(name)
            if app is None:
                raise ScriptError("syntax", f"Can’t get application \"{name}\".", -2753,
                                  node.start, node.end)
            self.targets.append(app)
            try:
                for statement in body:
                    self.execute(statement)
            finally:
                self.targets.pop()
        elif node.op == "set":
            name, value = node.args
            self.variables[name] = self.result = self.eval(value)
        elif node.op == "return":
            raise Return(self.eval(node.args[0]) if node.args[0] is not None else None)
        elif node.op == "expr":
            self.result = self.eval(node.args[0])
        elif node.op in ("update", "start", "delete", "stop"):
            app = self.need_app(node)
            args = tuple(self.eval(a) if isinstance(a, Node) else a for a in node.args)
            self.result = app.command(node.op, args, node)
        else:
            raise AssertionError(node.op)

    def need_app(self, node: Node) -> Application:
        app = self.target()
        if app is None:
            raise ScriptError("execution", "The command is not understood.", -1708,
                              node.start, node.end)
        return app

    def eval(self, node: Node) -> Any:
        op = node.op
        if op == "lit":
            return node.args[0]
        if op == "var":
            name = node.args[0]
            if name not in self.variables:
                raise ScriptError("execution", f"The variable {name} is not defined.", -2753,
                                  node.start, node.end)
            return self.variables[name]
        if op == "list":
            return [self.eval(n) for n in node.args[0]]
        if op == "record":
            return Record({key: self.eval(value) for key, value in node.args[0]})
        if op == "concat":
            left, right = self.eval(node.args[0]), self.eval(node.args[1])
            if isinstance(left, list):
                return left + (right if isinstance(right, list) else [right])
            if isinstance(left, str):
                return left + self.as_text(right, node)
            if isinstance(left, Record) and isinstance(right, Record):
                merged = dict(right.items)
                merged.update(left.items)
                return Record(merged)
            return [left] + (right if isinstance(right, list) else [right])
        if op == "charid":
            value = self.eval(node.args[0])
            if not isinstance(value, int) or not 0 <= value <= 0x10FFFF:
                raise ScriptError("execution", f"Can’t get character id {value!r}.", -1728,
                                  node.start, node.end)
            return chr(value)
        if op == "posix":
            value = self.eval(node.args[0])
            if not isinstance(value, str):
                raise ScriptError("execution", "Can’t make POSIX file.", -1700, node.start,
                                  node.end)
            return FileRef(value)
        if op == "neg":
            return -self.eval(node.args[0])
        if op == "app":
            return AppRef(node.args[0])
        if op == "item":
            index, value = self.eval(node.args[0]), self.eval(node.args[1])
            if not isinstance(value, list) or not isinstance(index, int) \
                    or not (1 <= abs(index) <= len(value)):
                raise ScriptError("execution", f"Can’t get item {index} of "
                                  f"{source_form(value)}.", -1728, node.start, node.end)
            return value[index - 1 if index > 0 else index]
        if op == "count":
            value = self.eval(node.args[0])
            return len(value) if isinstance(value, (list, str)) else len(value.items) \
                if isinstance(value, Record) else 1
        if op in ("make", "every", "vm"):
            app = self.need_app(node)
            args = tuple(self.eval(a) if isinstance(a, Node) else a for a in node.args)
            return app.command(op, args, node)
        if op == "prop":
            name, of = node.args
            target = self.eval(of) if of is not None else None
            if isinstance(target, Record):
                if name not in target.items:
                    raise ScriptError("execution", f"Can’t get {name} of "
                                      f"{source_form(target)}.", -1728, node.start, node.end)
                return target.items[name]
            if isinstance(target, AppRef):
                app = self.apps.get(target.name)
                if app is None:
                    raise ScriptError("execution", f"Can’t get application \"{target.name}\".",
                                      -1728, node.start, node.end)
                return app.prop(name, None, node)
            app = self.need_app(node)
            if isinstance(target, list):
                return [app.prop(name, item, node) for item in target]
            return app.prop(name, target, node)
        raise AssertionError(op)

    def as_text(self, value: Any, node: Node) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, Enum):
            return value.name
        raise ScriptError("execution", f"Can’t make {source_form(value)} into type text.",
                          -1700, node.start, node.end)


# -- printing ----------------------------------------------------------------------------

def quote(text: str) -> str:
    """A string in source form."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_form(value: Any) -> str:
    """`osascript -s s` form: strings quoted, records and lists in braces."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None or value == MISSING:
        return "missing value"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, FileRef):
        return f"file {quote(value.path)}"
    if isinstance(value, AppRef):
        return f"application {quote(value.name)}"
    if isinstance(value, list):
        return "{" + ", ".join(source_form(v) for v in value) + "}"
    if isinstance(value, Record):
        return "{" + ", ".join(f"{k}:{source_form(v)}" for k, v in value.items.items()) + "}"
    return str(value)


def human_form(value: Any) -> str:
    """osascript's default form: no braces or quotes."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(human_form(v) for v in value)
    if isinstance(value, Record):
        return ", ".join(f"{k}:{human_form(v)}" for k, v in value.items.items())
    return source_form(value)
