"""The rule table: one TOML record per rule in the top-level ``rules/`` folder.

A record names its pattern (in the matcalc language), its shape condition
(``"W: n,k; X: k,m -> n,m"``), a gradient template per operand in terms of the
upstream gradient ``G``, an explanation and a source.  The engine matches
patterns and instantiates templates; it knows no operator.
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
_DIM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*|\d+)$")


@dataclass(frozen=True)
class ShapeSpec:
    """Shape condition: each operand's (rows, cols) and the result's, in named dimensions."""

    operands: dict
    out: tuple
    text: str

    @staticmethod
    def parse(text: str) -> "ShapeSpec":
        if "->" not in text:
            raise ValueError("expected 'operand: rows,cols; ... -> rows,cols'")
        left, right = text.split("->")
        operands = {}
        for part in filter(None, (p.strip() for p in left.split(";"))):
            name, _, dims = part.partition(":")
            operands[name.strip()] = _dims(dims)
        return ShapeSpec(operands, _dims(right), text.strip())


def _dims(text: str) -> tuple:
    dims = tuple(d.strip() for d in text.split(","))
    if len(dims) != 2 or not all(_DIM.match(d) for d in dims):
        raise ValueError(f"expected two dimensions 'rows,cols', got {text.strip()!r}")
    return tuple(int(d) if d.isdigit() else d for d in dims)


def _kinds(text: str) -> dict:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, kind = part.partition(":")
        if kind.strip() not in KINDS:
            raise ValueError(f"unknown kind {kind.strip()!r}; expected one of {sorted(KINDS)}")
        out[name.strip()] = kind.strip()
    return out


@dataclass(frozen=True)
class Case:
    """Which of article 000's rule ids a product is, from its operands' kinds."""

    when: dict
    ids: dict


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    pattern: Term | None
    shape: ShapeSpec | None
    grads: dict                  # operand -> template Term
    explain: str
    source: str
    file: str
    templates: dict = field(default_factory=dict)   # operand -> template text
    ids: dict = field(default_factory=dict)         # operand -> rule id, where not ``id``
    cases: tuple = ()
    when: dict = field(default_factory=dict)
    assume: dict = field(default_factory=dict)      # operand -> assumption (e.g. "onehot")
    hint: str | None = None
    default: bool = False
    over_functions: bool = False                    # the pattern's call head ranges over the functions
    check_only: bool = False                        # R0: applied at every step, matches no node

    @property
    def pattern_text(self) -> str:
        return to_text(self.pattern) if self.pattern is not None else ""

    @cached_property
    def fused(self) -> bool:
        """A pattern deeper than one operation: it replaces several nodes' rules."""
        return self.pattern is not None and any(a.op not in ("name", "num") for a in self.pattern.args)

    @cached_property
    def dimension_args(self) -> set:
        """Pattern names that stand for dimensions (``k`` in ``ones(k)``)."""
        if self.shape is None or self.pattern is None:
            return set()
        named = {d for dims in (*self.shape.operands.values(), self.shape.out) for d in dims}
        return {a.value for a in self.pattern.args if a.op == "name"} & named - set(self.shape.operands)

    def id_for(self, operand: str, kinds: dict) -> str:
        """The rule id for the gradient of one operand, given every operand's kind."""
        for case in self.cases:
            if all(kind_holds(kinds.get(n), k) for n, k in case.when.items()):
                return case.ids.get(operand, self.ids.get(operand, self.id))
        return self.ids.get(operand, self.id)

    def all_ids(self) -> set:
        return {self.id, *self.ids.values(), *(i for c in self.cases for i in c.ids.values())}


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


@dataclass(frozen=True)
class Function:
    """An element-wise function and its derivative, in the variable ``x``."""

    name: str
    derivative: Term
    derivative_text: str
    explain: str
    file: str


@dataclass
class RuleTable:
    rules: list
    functions: dict

    def by_id(self, rule_id: str) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        for r in self.rules:
            if rule_id in r.all_ids():
                return r
        return None

    @cached_property
    def fused_by_head(self) -> dict:
        """Fused rules by the head of their pattern, the largest pattern first."""
        out: dict = {}
        for rule in sorted((r for r in self.rules if r.fused), key=lambda r: -_size(r.pattern)):
            out.setdefault(rule.pattern.head, []).append(rule)
        return out

    def primitives(self, head: str, arity: int) -> list:
        """The one-operation rules that can handle a node, in table order."""
        return [r for r in self.rules if not r.check_only and not r.fused and r.pattern is not None
                and len(r.pattern.args) == arity
                and (r.pattern.head == head or (r.over_functions and head in self.functions))]


def _size(t: Term) -> int:
    return 1 + sum(_size(a) for a in t.args)


def match(pattern: Term, term: Term, rule: Rule, functions: dict, binding: dict | None = None):
    """Bind the pattern's names to sub-terms of ``term``; None if it does not match.

    Every name in a pattern is a variable; a name used twice must bind the
    same sub-term twice.  Numbers match themselves.
    """
    binding = {} if binding is None else binding
    if pattern.op == "name":
        bound = binding.get(pattern.value)
        if bound is None:
            binding[pattern.value] = term
            return binding
        return binding if bound is term or bound == term else None
    if pattern.op == "num":
        return binding if term.op == "num" and float(term.value) == float(pattern.value) else None
    if pattern.op != term.op or len(pattern.args) != len(term.args):
        return None
    if pattern.op == "call" and pattern.value != term.value:
        if not (rule.over_functions and term.value in functions):
            return None
    for p, t in zip(pattern.args, term.args):
        if match(p, t, rule, functions, binding) is None:
            return None
    return binding


# -- loading ------------------------------------------------------------------------

def rules_dir() -> Path:
    """``rules/`` beside the package (a source checkout), or inside it (a wheel)."""
    if os.environ.get("MATCALC_RULES"):
        return Path(os.environ["MATCALC_RULES"])
    here = Path(__file__).resolve().parent
    for candidate in (here / "rules", here.parent / "rules"):
        if candidate.is_dir():
            return candidate
    raise RuleError(f"no rules/ folder found beside {here}", hint="set MATCALC_RULES to the rules folder")


def load(folder: str | Path | None = None) -> RuleTable:
    """The rule table in ``folder`` (default: the project's ``rules/``), loaded once."""
    return _load(str(Path(folder) if folder else rules_dir()))


@lru_cache(maxsize=8)
def _load(folder: str) -> RuleTable:
    folder = Path(folder)
    rules, functions = [], {}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise RuleError(f"{path.name}: not valid TOML: {e}") from None
        for record in data.get("function", []):
            fn = _load_function(record, path.name)
            functions[fn.name] = fn
        rules.extend(_load_rule(record, path.name) for record in data.get("rule", []))
    table = RuleTable(rules, functions)
    _check_table(table)
    return table


def _need(record: dict, key: str, where: str):
    if key not in record or not isinstance(record[key], str) or not record[key].strip():
        raise RuleError(f"{where}: missing or empty field {key!r}")
    return record[key]


def _parse_template(text: str, where: str, what: str) -> Term:
    try:
        return parse(text)
    except ParseError as e:
        raise RuleError(f"{where}: {what} {text!r} does not parse: {e.message}") from None


def _load_function(record: dict, file: str) -> Function:
    where = f"{file}: function {record.get('name', '?')!r}"
    name = _need(record, "name", where)
    text = _need(record, "derivative", where)
    derivative = _parse_template(text, where, "derivative")
    if not derivative.names() <= {"x"}:
        raise RuleError(f"{where}: a derivative may only use the variable x, got {sorted(derivative.names())}")
    return Function(name, derivative, text, record.get("explain", ""), file)


def _load_rule(record: dict, file: str) -> Rule:
    where = f"{file}: rule {record.get('id', '?')!r}"
    rule_id = _need(record, "id", where)
    for key in ("name", "explain", "source"):
        _need(record, key, where)
    check_only = record.get("kind") == "check"
    pattern = None if check_only else _parse_template(_need(record, "pattern", where), where, "pattern")
    try:
        shape = ShapeSpec.parse(record["shape"]) if "shape" in record else None
        when = _kinds(record.get("when", ""))
        cases = tuple(Case(_kinds(_need(c, "when", where)), dict(c.get("ids", {})))
                      for c in record.get("case", []))
    except ValueError as e:
        raise RuleError(f"{where}: {e}") from None
    templates = dict(record.get("grad", {}))
    grads = {op: _parse_template(text, where, f"gradient of {op}") for op, text in templates.items()}
    rule = Rule(id=rule_id, name=record["name"], pattern=pattern, shape=shape, grads=grads,
                explain=" ".join(record["explain"].split()), source=record["source"], file=file,
                templates=templates, ids=dict(record.get("ids", {})), cases=cases, when=when,
                assume=dict(record.get("assume", {})), hint=record.get("hint"),
                default=bool(record.get("default", False)),
                over_functions=record.get("over") == "functions", check_only=check_only)
    _check_rule(rule, where)
    return rule


def _check_rule(rule: Rule, where: str) -> None:
    if rule.check_only:
        return
    names = rule.pattern.names()
    if not rule.fused and rule.shape is None:
        raise RuleError(f"{where}: a one-operation rule needs a shape condition")
    if rule.shape is not None:
        unknown = set(rule.shape.operands) - names
        if unknown:
            raise RuleError(f"{where}: the shape condition names {sorted(unknown)}, not in the pattern")
    spec_dims = {d for dims in (*rule.shape.operands.values(), rule.shape.out) for d in dims
                 if isinstance(d, str)} if rule.shape else set()
    allowed = names | spec_dims | {"G"}
    for op, template in rule.grads.items():
        if op not in names:
            raise RuleError(f"{where}: a gradient for {op!r}, which the pattern does not have")
        extra = template.names() - allowed
        if extra:
            raise RuleError(f"{where}: the gradient of {op} uses {sorted(extra)}, "
                            f"expected only G, the pattern's names and the shape's dimensions")


def _check_table(table: RuleTable) -> None:
    seen = {}
    for rule in table.rules:
        if rule.id in seen:
            raise RuleError(f"{rule.file}: rule id {rule.id!r} is already used in {seen[rule.id]}")
        seen[rule.id] = rule.file
    for rule in table.rules:
        if rule.over_functions and not table.functions:
            raise RuleError(f"{rule.file}: rule {rule.id!r} ranges over functions, but none are defined")
