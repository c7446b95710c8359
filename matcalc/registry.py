"""The operator registry: every record in the top-level ``rules/`` folder.

One record per operator overload (``[[op]]``), per element-wise function
(``[[elementwise]]``) and per fused rule (``[[rule]]``), all in TOML.  An
operator record holds, on adjacent lines, everything that makes it:

- ``syntax``: the spelling it handles, in the matcalc language ("W*X", "sum(X, 1)");
- ``shape``: its shape condition ("W: n,k; X: k,m -> n,m");
- its meaning: ``algebra`` (a core constructor of ``algebra.py``), or a
  primitive ``op`` with a NumPy ``kernel`` (and an ``exact`` one for the
  oracle), or a ``define`` in other operators (so a derived operator needs no
  Python), or ``inline`` (pure notation, expanded as it is read);
- ``grad.X``: the vector-Jacobian product for each operand in terms of the
  upstream gradient ``G`` (a derived operator may leave them out: the engine
  then differentiates its definition);
- ``text`` and ``latex``: how a generic operator prints;
- ``explain`` and ``source``.

The loader rejects, naming the file and the record, anything incomplete: a
missing field, a template that does not parse or names an unknown operator, a
primitive without a kernel.  This is the only place that printing,
evaluation, code generation, conversion from SymPy and shape inference look
operators up.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from .errors import ParseError, RuleError
from .syntax import Term, parse, to_text

KINDS = {"scalar", "column", "row", "matrix", "square", "vector", "any"}
ASSUMPTIONS = {"onehot", "onehot-rows", "symmetric", "spd", "general"}
CORE_HEADS = {"+", "-", "*", "/", ".*", "./", "^", ".^", "'", "neg"}
CONSTANTS = {"ones", "eye", "zeros"}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DIM = re.compile(rf"^({_NAME}|\d+)(\*({_NAME}|\d+))*$")
_FIELD = re.compile(r"\{(" + _NAME + r")\}")


# -- shape conditions --------------------------------------------------------------------

@dataclass(frozen=True)
class ShapeSpec:
    """Each operand's (rows, cols) and the result's, in named dimensions; a
    dimension may be a product ("r*c", the rows of vec(X))."""

    operands: dict
    out: tuple | None
    text: str

    @staticmethod
    def parse(text: str, need_out: bool = True) -> "ShapeSpec":
        if not isinstance(text, str):
            raise ValueError(f"expected the shape as text, got {type(text).__name__}")
        left, arrow, right = text.partition("->")
        if need_out and not arrow:
            raise ValueError("expected 'operand: rows,cols; ... -> rows,cols'")
        operands = {}
        for part in filter(None, (p.strip() for p in left.split(";"))):
            name, colon, dims = part.partition(":")
            if not colon or not re.fullmatch(_NAME, name.strip()):
                raise ValueError(f"expected 'name: rows,cols', got {part!r}")
            operands[name.strip()] = _dims(dims)
        return ShapeSpec(operands, _dims(right) if arrow else None, text.strip())

    def dimension_names(self) -> set:
        found = set()
        for dims in (*self.operands.values(), *([self.out] if self.out else [])):
            for d in dims:
                found |= {f for f in _factors(d) if isinstance(f, str)}
        return found


def _factors(d) -> tuple:
    return d[1:] if isinstance(d, tuple) else (d,)


def _dims(text: str) -> tuple:
    dims = tuple(d.strip() for d in text.split(","))
    if len(dims) != 2 or not all(_DIM.match(d) for d in dims):
        raise ValueError(f"expected two dimensions 'rows,cols', got {text.strip()!r}")
    return tuple(_dim(d) for d in dims)


def _dim(text: str):
    parts = [int(p) if p.isdigit() else p for p in text.split("*")]
    return parts[0] if len(parts) == 1 else ("*", *parts)


def _kinds(text) -> dict:
    if not isinstance(text, str):
        raise ValueError("expected 'when' as text")
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, kind = part.partition(":")
        if kind.strip() not in KINDS:
            raise ValueError(f"unknown kind {kind.strip()!r}; expected one of {sorted(KINDS)}")
        out[name.strip()] = kind.strip()
    return out


def kind_holds(actual: str | None, wanted: str) -> bool:
    """Does a node of kind ``actual`` satisfy a rule's ``wanted`` kind?"""
    if wanted == "any":
        return True
    if wanted == "vector":
        return actual in ("column", "row")
    if wanted == "matrix":
        return actual in ("matrix", "square")
    return actual == wanted


def kind_of(shape: tuple) -> str:
    """scalar, column, row, square or matrix, from a (rows, cols) shape."""
    r, c = shape
    if r == 1 and c == 1:
        return "scalar"
    if c == 1:
        return "column"
    if r == 1:
        return "row"
    return "square" if r == c else "matrix"


# -- records --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """Which of article 000's rule ids a product is, from its operands' kinds."""

    when: dict
    ids: dict
    names: dict


@dataclass(eq=False)
class Op:
    """One operator overload: a spelling, its shape condition, its meaning,
    its gradient templates and how it prints."""

    id: str
    name: str
    syntax: Term
    shape: ShapeSpec
    explain: str
    source: str
    file: str
    algebra: str | None = None        # a core constructor of algebra.py
    op: str | None = None             # the IR op of a generic operator
    kernel: str | None = None         # NumPy kernel: "np.tanh" or a name in kernels.py
    exact: str | None = None          # the oracle's kernel: an mpmath function or a name in kernels.EXACT
    define: Term | None = None        # meaning in other operators
    inline: Term | None = None        # notation, expanded as it is read
    transpose: Term | None = None     # the operator's transpose in its operands (diag(v)ᵀ = diag(v))
    linear: bool = False              # linear in each operand: scalar factors come out (vec(2X) = 2 vec(X))
    grads: dict = field(default_factory=dict)       # operand -> template Term
    templates: dict = field(default_factory=dict)   # operand -> template text
    text: str | None = None
    latex: str | None = None
    ids: dict = field(default_factory=dict)
    cases: tuple = ()
    when: dict = field(default_factory=dict)
    hint: str | None = None
    default: bool = False
    aliases: tuple = ()
    literal: tuple = ()               # operands that must be written as numbers (X^k)
    elementwise: bool = False
    derivative: Term | None = None    # f′ in x, for an element-wise function
    derivative_text: str = ""
    domain: str | None = None         # where an element-wise function is real
    over_elementwise: bool = False    # R7: the template every element-wise function uses

    @property
    def head(self) -> str:
        return self.syntax.head

    @property
    def arity(self) -> int:
        return len(self.syntax.args)

    @property
    def operands(self) -> list:
        """The pattern's operand names, in order (dimension arguments excluded)."""
        return [a.value for a in self.syntax.args if a.op == "name" and a.value not in self.dimension_args]

    @cached_property
    def dimension_args(self) -> set:
        """Pattern names that stand for dimensions (``k`` in ``ones(k)``)."""
        named = self.shape.dimension_names()
        return {a.value for a in self.syntax.args if a.op == "name"} & named - set(self.shape.operands)

    @property
    def pattern(self) -> Term:
        return self.syntax

    @property
    def pattern_text(self) -> str:
        return to_text(self.syntax)

    @property
    def primitive(self) -> bool:
        return self.algebra is None and self.define is None and self.inline is None

    @property
    def fused(self) -> bool:
        return False

    def id_for(self, operand: str, kinds: dict) -> str:
        for case in self.cases:
            if all(kind_holds(kinds.get(n), k) for n, k in case.when.items()):
                return case.ids.get(operand, self.ids.get(operand, self.id))
        return self.ids.get(operand, self.id)

    def name_for(self, operand: str, kinds: dict) -> str:
        """The step's name: Rules 1-6 are told apart by their case."""
        for case in self.cases:
            if all(kind_holds(kinds.get(n), k) for n, k in case.when.items()):
                return case.names.get(operand, self.name)
        if operand in self.ids:
            return {"R6": "Rule 6: Y = W*X, ∂l/∂X = W'*G"}.get(self.ids[operand], self.name)
        return {"R5": "Rule 5: Y = W*X, ∂l/∂W = G*X'"}.get(self.id, self.name)

    def all_ids(self) -> set:
        return {self.id, *self.ids.values(), *(i for c in self.cases for i in c.ids.values())}


@dataclass(eq=False)
class Rule:
    """A fused rule: a pattern over several operations, its precondition and templates."""

    id: str
    name: str
    pattern: Term
    shape: ShapeSpec | None
    grads: dict
    templates: dict
    explain: str
    source: str
    file: str
    assume: dict = field(default_factory=dict)
    when: dict = field(default_factory=dict)
    suggest: dict = field(default_factory=dict)     # operand -> an assumption that would give a simpler form

    fused = True
    cases = ()
    ids: dict = field(default_factory=dict)
    over_elementwise = False
    elementwise = False

    @property
    def pattern_text(self) -> str:
        return to_text(self.pattern)

    @cached_property
    def dimension_args(self) -> set:
        """Names the pattern passes to ones/eye/zeros: they are dimensions."""
        found, stack = set(), [self.pattern]
        while stack:
            t = stack.pop()
            if t.op == "call" and t.value in CONSTANTS:
                found |= {a.value for a in t.args if a.op == "name"}
            stack.extend(t.args)
        return found

    def id_for(self, operand, kinds) -> str:
        return self.id

    def name_for(self, operand, kinds) -> str:
        return self.name

    def all_ids(self) -> set:
        return {self.id}


@dataclass(frozen=True)
class Rewrite:
    """A simplification the algebra applies as it builds a node: from → to."""

    id: str
    pattern: Term
    to: Term
    explain: str
    file: str
    source: str = "a simplification of the algebra"
    templates = {}
    fused = False

    @property
    def name(self) -> str:
        return f"rewrite {to_text(self.pattern)} → {to_text(self.to)}"

    @property
    def pattern_text(self) -> str:
        return to_text(self.pattern)

    def all_ids(self) -> set:
        return {self.id}


@dataclass(frozen=True)
class Check:
    id: str
    name: str
    explain: str
    source: str
    file: str
    check_only = True
    grads = {}
    templates = {}
    pattern = None
    pattern_text = ""
    cases = ()
    ids = {}
    fused = False

    def all_ids(self) -> set:
        return {self.id}


# -- the table --------------------------------------------------------------------------------

@dataclass
class Registry:
    ops: list                     # every overload, in file order
    rules: list                   # fused rules
    checks: list                  # R0
    folder: str
    rewrites: list = field(default_factory=list)

    @cached_property
    def rewrites_by_op(self) -> dict:
        """Rewrites by the IR op at the root of their pattern."""
        out: dict = {}
        for rewrite in self.rewrites:
            for op in self.overloads(rewrite.pattern.head, len(rewrite.pattern.args)):
                if op.op:
                    out.setdefault(op.op, []).append(rewrite)
        return out

    @cached_property
    def by_head(self) -> dict:
        """Overloads by the head and arity of their spelling (aliases included)."""
        out: dict = {}
        for op in self.ops:
            if op.over_elementwise:
                continue
            for head in (op.head, *op.aliases):
                out.setdefault((head, op.arity), []).append(op)
        return out

    @cached_property
    def by_op(self) -> dict:
        """The record that gives a generic IR op its printing, kernel and definition."""
        out: dict = {}
        for op in self.ops:
            if op.op and op.op not in out:
                out[op.op] = op
        return out

    @cached_property
    def elementwise(self) -> dict:
        return {op.op: op for op in self.ops if op.elementwise}

    @cached_property
    def rule7(self) -> Op:
        return next(op for op in self.ops if op.over_elementwise)

    @cached_property
    def fused_by_head(self) -> dict:
        """Fused rules by the head of their pattern, the largest pattern first."""
        out: dict = {}
        for rule in sorted(self.rules, key=lambda r: -_size(r.pattern)):
            out.setdefault(rule.pattern.head, []).append(rule)
            p = rule.pattern
            if p.head == "sum" and len(p.args) == 1 and p.args[0].op == ".*":
                out.setdefault("*", []).append(rule)        # Σ u ⊙ v is also written uᵀv
        return out

    @cached_property
    def heads(self) -> set:
        return {h for h, _ in self.by_head}

    def overloads(self, head: str, arity: int) -> list:
        return self.by_head.get((head, arity), [])

    def arities(self, head: str) -> list:
        return sorted({n for h, n in self.by_head if h == head})

    def by_id(self, rule_id: str):
        for r in (*self.checks, *self.ops, *self.rules):
            if r.id == rule_id or (hasattr(r, "op") and getattr(r, "op", None) == rule_id
                                   and getattr(r, "elementwise", False)):
                return r
        for r in (*self.ops, *self.rules):
            if rule_id in r.all_ids():
                return r
        return None

    @property
    def everything(self) -> list:
        return [*self.checks, *self.ops, *self.rules, *self.rewrites]

    def functions(self) -> list:
        """The names a call may use, for error messages."""
        return sorted(h for h in self.heads if h not in CORE_HEADS)


def _size(t: Term) -> int:
    return 1 + sum(_size(a) for a in t.args)


# -- loading ------------------------------------------------------------------------------------

def rules_dir() -> Path:
    """``rules/`` beside the package (a source checkout), or inside it (a wheel)."""
    if os.environ.get("MATCALC_RULES"):
        return Path(os.environ["MATCALC_RULES"])
    here = Path(__file__).resolve().parent
    for candidate in (here / "rules", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise RuleError(f"no rules/ folder found beside {here}", hint="set MATCALC_RULES to the rules folder")


def load(folder: str | Path | None = None) -> Registry:
    """The registry in ``folder`` (default: the project's ``rules/``), loaded once."""
    return _load(str(Path(folder) if folder else rules_dir()))


_OP_FIELDS = {"id", "name", "syntax", "shape", "algebra", "op", "kernel", "exact", "define", "inline", "transpose",
              "linear",
              "grad", "text", "latex", "ids", "case", "when", "hint", "default", "aliases", "literal",
              "explain", "source", "over"}
_ELEMENTWISE_FIELDS = {"name", "aliases", "derivative", "kernel", "exact", "define", "latex", "explain",
                       "source", "domain"}
_RULE_FIELDS = {"id", "name", "pattern", "shape", "grad", "assume", "suggest", "when", "explain", "source"}
_CHECK_FIELDS = {"id", "name", "explain", "source"}
_ALGEBRA = {"add", "sub", "neg", "mul", "div", "hadamard", "hdiv", "power", "transpose", "tr", "sum", "det",
            "inv", "matpow", "badd", "bsub", "ones", "eye", "zeros"}
_DOMAINS = {"positive", "nonnegative", "unit", "above-minus-one"}


@lru_cache(maxsize=8)
def _load(folder: str) -> Registry:
    path = Path(folder)
    if not path.is_dir():
        raise RuleError(f"the rules folder {folder!r} does not exist",
                        hint="set MATCALC_RULES to a folder of rule files, or unset it")
    files = sorted(path.glob("*.toml"))
    if not files:
        raise RuleError(f"the rules folder {folder!r} has no .toml rule files",
                        hint="set MATCALC_RULES to a folder of rule files, or unset it")
    ops, rules, checks, rewrites = [], [], [], []
    for file in files:
        data = _read(file)
        for key, items in data.items():
            if key not in ("op", "elementwise", "rule", "check", "rewrite"):
                raise RuleError(f"{file.name}: unknown table {key!r}",
                                hint="a rule file holds [[op]], [[elementwise]], [[rule]] and [[check]] records")
            if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
                raise RuleError(f"{file.name}: {key} must be a list of records ([[{key}]]), got {type(items).__name__}")
            for record in items:
                if key == "op":
                    ops.append(_load_op(record, file.name))
                elif key == "elementwise":
                    ops.append(_load_elementwise(record, file.name))
                elif key == "rule":
                    rules.append(_load_rule(record, file.name))
                elif key == "rewrite":
                    rewrites.append(_load_rewrite(record, file.name))
                else:
                    checks.append(_load_check(record, file.name))
    registry = Registry(ops, rules, checks, folder, rewrites)
    _check_registry(registry)
    return registry


def _read(file: Path) -> dict:
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleError(f"{file.name}: not valid UTF-8 (byte {e.start})") from None
    except OSError as e:
        raise RuleError(f"{file.name}: cannot be read ({e.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{file.name}: not valid TOML: {e}") from None
    except RecursionError:
        raise RuleError(f"{file.name}: nested too deeply to read") from None


def _where(file, kind, record) -> str:
    label = record.get("id", record.get("name", "?"))
    return f"{file}: {kind} {label!r}" if isinstance(label, str) else f"{file}: {kind} {label!r}"


def _fields(record: dict, allowed: set, where: str) -> None:
    extra = set(record) - allowed
    if extra:
        raise RuleError(f"{where}: unknown field(s) {sorted(extra)}",
                        hint=f"the fields are {', '.join(sorted(allowed))}")


def _text(record: dict, key: str, where: str, required: bool = True):
    if key not in record:
        if required:
            raise RuleError(f"{where}: missing field {key!r}")
        return None
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise RuleError(f"{where}: field {key!r} must be non-empty text, got {value!r}")
    return value


def _term(text: str, where: str, what: str) -> Term:
    try:
        return parse(text)
    except ParseError as e:
        raise RuleError(f"{where}: {what} {text!r} does not parse: {e.message}") from None


def _grads(record: dict, where: str) -> tuple[dict, dict]:
    templates = record.get("grad", {})
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        raise RuleError(f"{where}: grad must be a table of templates (grad.X = \"...\")")
    return {k: _term(v, where, f"the gradient of {k}") for k, v in templates.items()}, dict(templates)


def _spec(record, where, need_out=True):
    try:
        return ShapeSpec.parse(record["shape"], need_out)
    except ValueError as e:
        raise RuleError(f"{where}: shape {e}") from None


def _load_op(record: dict, file: str) -> Op:
    where = _where(file, "op", record)
    _fields(record, _OP_FIELDS, where)
    for key in ("id", "name", "explain", "source", "syntax", "shape"):
        _text(record, key, where)
    syntax = _term(record["syntax"], where, "syntax")
    spec = _spec(record, where)
    grads, templates = _grads(record, where)
    try:
        when = _kinds(record.get("when", ""))
        cases = tuple(Case(_kinds(c.get("when", "")), dict(c.get("ids", {})), dict(c.get("names", {})))
                      for c in record.get("case", []))
    except (ValueError, AttributeError) as e:
        raise RuleError(f"{where}: {e}") from None
    meaning = [k for k in ("algebra", "op", "inline") if k in record]
    over = record.get("over")
    if over not in (None, "elementwise"):
        raise RuleError(f"{where}: over must be \"elementwise\", got {over!r}")
    if not over and len([k for k in ("algebra", "inline") if k in record]) + ("op" in record) != 1:
        raise RuleError(f"{where}: give exactly one of algebra, op or inline, got {meaning or 'none'}")
    algebra = record.get("algebra")
    if algebra is not None and algebra not in _ALGEBRA:
        raise RuleError(f"{where}: algebra {algebra!r} is not a core constructor",
                        hint=f"the core constructors are {', '.join(sorted(_ALGEBRA))}")
    op = Op(id=record["id"], name=record["name"], syntax=syntax, shape=spec,
            explain=" ".join(record["explain"].split()), source=record["source"], file=file,
            algebra=algebra, op=_text(record, "op", where, False),
            kernel=_text(record, "kernel", where, False), exact=_text(record, "exact", where, False),
            define=_term(record["define"], where, "define") if "define" in record else None,
            inline=_term(record["inline"], where, "inline") if "inline" in record else None,
            transpose=_term(record["transpose"], where, "transpose") if "transpose" in record else None,
            linear=bool(record.get("linear", False)),
            grads=grads, templates=templates, text=_text(record, "text", where, False),
            latex=_text(record, "latex", where, False), ids=dict(record.get("ids", {})), cases=cases,
            when=when, hint=record.get("hint"), default=bool(record.get("default", False)),
            aliases=tuple(record.get("aliases", ())), literal=tuple(record.get("literal", ())),
            over_elementwise=over == "elementwise")
    _check_op(op, where)
    return op


def _load_elementwise(record: dict, file: str) -> Op:
    where = _where(file, "elementwise", record)
    _fields(record, _ELEMENTWISE_FIELDS, where)
    name = _text(record, "name", where)
    if not re.fullmatch(_NAME, name):
        raise RuleError(f"{where}: {name!r} is not a function name")
    text = _text(record, "derivative", where)
    derivative = _term(text, where, "derivative")
    if not derivative.names() <= {"x"}:
        raise RuleError(f"{where}: a derivative may only use the variable x, got {sorted(derivative.names())}")
    _text(record, "kernel", where)
    if "exact" not in record and "define" not in record:
        raise RuleError(f"{where}: give exact (an mpmath function) or define (its meaning) for the exact check")
    domain = record.get("domain")
    if domain is not None and domain not in _DOMAINS:
        raise RuleError(f"{where}: domain must be one of {sorted(_DOMAINS)}, got {domain!r}")
    define = _term(record["define"], where, "define") if "define" in record else None
    if define is not None and not define.names() <= {"x"}:
        raise RuleError(f"{where}: a definition may only use the variable x, got {sorted(define.names())}")
    explain = _text(record, "explain", where)
    return Op(id=name, name=f"{name} (element-wise)", syntax=Term("call", (Term("name", (), "X"),), name),
              shape=ShapeSpec.parse("X: r,c -> r,c"), explain=" ".join(explain.split()),
              source=record.get("source", "article 000, Rule 7"), file=file, op=name,
              kernel=record["kernel"], exact=record.get("exact"), define=define,
              latex=record.get("latex"), aliases=tuple(record.get("aliases", ())), elementwise=True,
              derivative=derivative, derivative_text=text, domain=domain)


def _load_rule(record: dict, file: str) -> Rule:
    where = _where(file, "rule", record)
    _fields(record, _RULE_FIELDS, where)
    for key in ("id", "name", "explain", "source", "pattern"):
        _text(record, key, where)
    pattern = _term(record["pattern"], where, "pattern")
    spec = _spec(record, where, need_out=False) if "shape" in record else None
    if spec is None:
        raise RuleError(f"{where}: a fused rule needs a shape condition on what it binds (its precondition)")
    grads, templates = _grads(record, where)
    if not grads:
        raise RuleError(f"{where}: a fused rule needs at least one gradient template")
    assume = record.get("assume", {})
    if not isinstance(assume, dict) or not all(v in ASSUMPTIONS for v in assume.values()):
        raise RuleError(f"{where}: assume must map operands to one of {sorted(ASSUMPTIONS)}")
    try:
        when = _kinds(record.get("when", ""))
    except ValueError as e:
        raise RuleError(f"{where}: {e}") from None
    suggest = record.get("suggest", {})
    if not isinstance(suggest, dict) or not all(v in ASSUMPTIONS for v in suggest.values()):
        raise RuleError(f"{where}: suggest must map operands to one of {sorted(ASSUMPTIONS)}")
    rule = Rule(id=record["id"], name=record["name"], pattern=pattern, shape=spec, grads=grads,
                templates=templates, explain=" ".join(record["explain"].split()), source=record["source"],
                file=file, assume=dict(assume), when=when, suggest=dict(suggest))
    names = pattern.names()
    for operand in (*grads, *assume, *suggest, *spec.operands):
        if operand not in names:
            raise RuleError(f"{where}: names {operand!r}, which the pattern does not have")
    _check_template_names(rule.grads, names | spec.dimension_names() | {"G"}, where)
    return rule


def _load_rewrite(record: dict, file: str) -> Rewrite:
    where = _where(file, "rewrite", record)
    _fields(record, {"id", "from", "to", "explain"}, where)
    for key in ("id", "from", "to", "explain"):
        _text(record, key, where)
    pattern, to = _term(record["from"], where, "from"), _term(record["to"], where, "to")
    if pattern.op != "call":
        raise RuleError(f"{where}: a rewrite's pattern must be a call of a registry operator, got {record['from']!r}")
    if not to.names() <= pattern.names():
        raise RuleError(f"{where}: the replacement uses {sorted(to.names() - pattern.names())}, not in the pattern")
    return Rewrite(record["id"], pattern, to, " ".join(record["explain"].split()), file)


def _load_check(record: dict, file: str) -> Check:
    where = _where(file, "check", record)
    _fields(record, _CHECK_FIELDS, where)
    for key in ("id", "name", "explain", "source"):
        _text(record, key, where)
    return Check(record["id"], record["name"], " ".join(record["explain"].split()), record["source"], file)


def _check_op(op: Op, where: str) -> None:
    names = op.syntax.names()
    unknown = set(op.shape.operands) - names
    if unknown:
        raise RuleError(f"{where}: the shape condition names {sorted(unknown)}, not in the syntax")
    if op.over_elementwise:
        return
    if "G" in names:
        raise RuleError(f"{where}: G is the upstream gradient; name the operand otherwise")
    if op.op is not None and op.algebra is None and op.inline is None and op.define is None:
        if op.kernel is None:
            raise RuleError(f"{where}: the primitive {op.op} has no kernel",
                            hint="give kernel = \"np.NAME\" or a function of matcalc/kernels.py, or a define")
        if op.exact is None:
            raise RuleError(f"{where}: the primitive {op.op} has no exact kernel for the oracle",
                            hint="give exact = an mpmath function or a name in kernels.EXACT, or a define")
    allowed = names | op.shape.dimension_names() | {"G"}
    for operand in op.grads:
        if operand not in names:
            raise RuleError(f"{where}: a gradient for {operand!r}, which the syntax does not have")
    _check_template_names(op.grads, allowed, where)
    for what, term in (("define", op.define), ("inline", op.inline), ("transpose", op.transpose)):
        if term is not None:
            extra = term.names() - names - op.shape.dimension_names()
            if extra:
                raise RuleError(f"{where}: the {what} uses {sorted(extra)}, "
                                f"expected only the syntax's names and the shape's dimensions")
    if op.text is not None:
        fields = set(_FIELD.findall(op.text))
        if not fields <= names:
            raise RuleError(f"{where}: text names {sorted(fields - names)}, not in the syntax")


def _check_template_names(grads: dict, allowed: set, where: str) -> None:
    for operand, template in grads.items():
        extra = template.names() - allowed
        if extra:
            raise RuleError(f"{where}: the gradient of {operand} uses {sorted(extra)}, "
                            f"expected only G, the pattern's names and the shape's dimensions")


def _calls(t: Term):
    stack = [t]
    while stack:
        x = stack.pop()
        if x.op == "call":
            yield x
        stack.extend(x.args)


def _check_registry(registry: Registry) -> None:
    seen: dict = {}
    for record in registry.everything:
        if record.id in seen:
            raise RuleError(f"{record.file}: id {record.id!r} is already used in {seen[record.id]}")
        seen[record.id] = record.file
    if not any(op.over_elementwise for op in registry.ops) and any(op.elementwise for op in registry.ops):
        raise RuleError(f"{registry.folder}: element-wise functions are defined, but no rule (R7) ranges over them")
    known = {(h, n) for h, n in registry.by_head}
    for op in registry.ops:
        terms = [("syntax", op.syntax), *((f"the gradient of {k}", t) for k, t in op.grads.items())]
        terms += [("define", op.define), ("inline", op.inline), ("derivative", op.derivative),
                  ("transpose", op.transpose)]
        for what, term in terms:
            if term is None or (what == "syntax"):
                continue
            _resolve_calls(term, known, op, what, registry)
    for rule in registry.rules:
        for what, term in [("pattern", rule.pattern), *((f"the gradient of {k}", t) for k, t in rule.grads.items())]:
            _resolve_calls(term, known, rule, what, registry)
    for rewrite in registry.rewrites:
        for what, term in (("from", rewrite.pattern), ("to", rewrite.to)):
            _resolve_calls(term, known, rewrite, what, registry)


def _resolve_calls(term: Term, known: set, record, what: str, registry: Registry) -> None:
    for call in _calls(term):
        if call.value == "df" and getattr(record, "over_elementwise", False):
            continue
        if (call.value, len(call.args)) not in known:
            arities = registry.arities(call.value)
            detail = f"takes {' or '.join(map(str, arities))} argument(s)" if arities else "is not an operator"
            raise RuleError(f"{record.file}: {type(record).__name__.lower()} {record.id!r}: {what} calls "
                            f"{call.value}() with {len(call.args)} argument(s), but {call.value} {detail}",
                            hint="every function a template uses needs its own complete record")


__all__ = ["Registry", "Op", "Rule", "Check", "ShapeSpec", "load", "rules_dir", "kind_of", "kind_holds"]
