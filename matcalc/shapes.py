"""Shape inference by unification, driven by the rules' shape conditions.

Every node gets (rows, cols).  A dimension is an int, a user's name ("n") or an
unknown.  A name that is not given starts as a matrix if it is uppercase and as
a column vector if lowercase; each rule's shape condition then adds equations.
Where several rules could handle a node (``a*B`` scales or multiplies), the one
whose condition already holds wins; if none does yet, the node waits, and in
the end the rule marked ``default`` is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import NotScalarError, ParseError, ShapeError
from .rules import Rule, RuleTable, match
from .syntax import Term, to_text


class Var:
    """An unknown dimension; ``order`` makes newer unknowns point at older ones."""

    __slots__ = ("order",)
    _count = 0

    def __init__(self):
        Var._count += 1
        self.order = Var._count


class Dims:
    """Union-find over dimensions, with a trail so that a trial can be undone."""

    def __init__(self):
        self.parent: dict = {}
        self.trail: list = []
        self.rigid: set = set()   # unknowns of matrices: never silently 1

    def make_rigid(self, d) -> None:
        self.rigid.add(d)

    def find(self, d):
        while isinstance(d, Var) and d in self.parent:
            d = self.parent[d]
        return d

    def unify(self, a, b) -> bool:
        a, b = self.find(a), self.find(b)
        if a is b or (not isinstance(a, Var) and not isinstance(b, Var) and a == b):
            return True
        if isinstance(a, Var) and isinstance(b, Var):
            a, b = (a, b) if a.order > b.order else (b, a)
        elif isinstance(b, Var):
            a, b = b, a
        if not isinstance(a, Var):
            return False       # two different known sizes or names
        if a in self.rigid and b == 1:
            return False       # an uppercase name is a matrix, not a vector or a scalar
        if a in self.rigid and isinstance(b, Var) and b not in self.rigid:
            self.rigid.add(b)
            self.trail.append(("rigid", b))
        self.parent[a] = b
        self.trail.append(a)
        return True

    def undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            item = self.trail.pop()
            if isinstance(item, tuple):
                self.rigid.discard(item[1])
            else:
                del self.parent[item]


@dataclass
class Inference:
    """What shape inference found: a shape per term, a rule per operation."""

    shapes: dict          # Term -> (rows, cols), dims as int | str
    rules: dict           # Term -> Rule (one-operation rules)
    variables: dict       # name -> (rows, cols)
    inferred: set         # names whose shapes were not given
    dimension_names: set  # names that stand for a dimension's size


def is_dimension_name(name: str, given: dict) -> bool:
    return any(name in dims for dims in given.values())


def infer(root: Term, given: dict, table: RuleTable, scalar_root: bool = False,
          source: str | None = None) -> Inference:
    """Shapes of every node of ``root``; ``given`` maps names to (rows, cols) or ()."""
    inference = _Solver(root, given, table, source).run(scalar_root)
    scalars = _broadcast_names(inference, given)
    if not scalars:
        return inference
    # b2 in w2'*a + b2: a name added to a computed scalar is a scalar, not a broadcast vector.
    again = _Solver(root, {**given, **{name: (1, 1) for name in scalars}}, table, source).run(scalar_root)
    again.inferred |= scalars
    return again


def _broadcast_names(inference: Inference, given: dict) -> set:
    """Unknown lowercase names broadcast against a computed 1×1, with a free row dimension."""
    found = set()
    for term, rule in inference.rules.items():
        spec = rule.shape.operands
        if len(term.args) != 2 or (1, 1) not in spec.values() or rule.default:
            continue
        names = list(spec)
        scalar_side = 0 if spec[names[0]] == (1, 1) else 1
        other = term.args[1 - scalar_side]
        if other.op != "name" or other.value in given or not other.value[0].islower():
            continue
        row = inference.shapes[other][0]
        elsewhere = {d for name, shape in inference.variables.items() if name != other.value for d in shape}
        named = {d for shape in given.values() for d in shape}
        if term.args[scalar_side].args and isinstance(row, str) and row not in elsewhere | named:
            found.add(other.value)
    return found


class _Solver:
    def __init__(self, root, given, table, source):
        self.root, self.given, self.table, self.source = root, given, table, source
        self.dims = Dims()
        self.shape: dict = {}
        self.rule: dict = {}
        self.order = _post_order(root)
        self.dimension_names = {d for dims in given.values() for d in dims if isinstance(d, str)}
        self.dimension_names |= self._dimension_args()

    def _dimension_args(self) -> set:
        """Names used as ``k`` in ``ones(k)`` are dimensions."""
        found = set()
        for t in self.order:
            if t.op == "call":
                for rule in self.table.primitives(t.head, len(t.args)):
                    binding = match(rule.pattern, t, rule, self.table.functions)
                    if binding:
                        found |= {binding[n].value for n in rule.dimension_args if binding[n].op == "name"}
        return found

    def run(self, scalar_root: bool) -> Inference:
        for t in self.order:
            self.shape[t] = self._leaf_shape(t) if not t.args else (Var(), Var())
        pending = [t for t in self.order if t.args]
        while pending:
            pending = self._pass(pending)
        if scalar_root and not self._unify_shape(self.shape[self.root], (1, 1)):
            raise NotScalarError(
                f"grad needs a scalar loss, got a {_show(self._result().shapes[self.root])} "
                f"expression {to_text(self.root)!r}",
                hint="use jacobian for a vector or matrix output, or reduce it with sum(), tr() or norm2()",
                source=self.source, pos=self.root.pos)
        return self._result()

    # -- leaves -------------------------------------------------------------------
    def _leaf_shape(self, t: Term):
        if t.op == "num" or t.value in self.dimension_names:
            return (1, 1)
        if t.value in self.given:
            return self.given[t.value]
        if t.value[0].isupper():
            rows, cols = Var(), Var()
            self.dims.make_rigid(rows)
            self.dims.make_rigid(cols)
            return (rows, cols)
        return (Var(), 1)

    # -- one pass over the operations that still wait for a rule --------------------
    def _pass(self, pending: list) -> list:
        waiting = []
        for t in pending:
            options = self._options(t)
            settled = [r for r, entailed in options if entailed]
            if settled or len(options) == 1:
                self._commit(t, settled[0] if settled else options[0][0])
            else:
                waiting.append(t)
        if len(waiting) == len(pending):   # no progress: settle the first by its default rule
            t = waiting.pop(0)
            options = [r for r, _ in self._options(t)]
            self._commit(t, next((r for r in options if r.default), options[0]))
        return waiting

    def _candidates(self, t: Term) -> list:
        found = []
        for rule in self.table.primitives(t.head, len(t.args)):
            binding = match(rule.pattern, t, rule, self.table.functions)
            if binding is not None:
                found.append((rule, binding))
        if not found:
            self._no_rule(t)
        return found

    def _options(self, t: Term) -> list:
        """(rule, entailed) for every rule whose shape condition can hold."""
        options = []
        for rule, binding in self._candidates(t):
            before = [self.dims.find(d) for a in t.args for d in self.shape[a]]
            mark = len(self.dims.trail)
            ok = self._apply(rule, binding, t)
            after = [self.dims.find(d) for a in t.args for d in self.shape[a]]
            self.dims.undo(mark)
            if ok:
                options.append((rule, all(x is y for x, y in zip(before, after))))
        if not options:
            self._clash(t)
        return options

    def _commit(self, t: Term, rule: Rule) -> None:
        binding = match(rule.pattern, t, rule, self.table.functions)
        self._apply(rule, binding, t)
        self.rule[t] = rule

    def _apply(self, rule: Rule, binding: dict, t: Term) -> bool:
        """Add the rule's shape equations for node ``t``; False if they cannot hold."""
        local: dict = {}
        for name in rule.dimension_args:
            arg = binding[name]
            local[name] = int(arg.value) if arg.op == "num" and arg.value.isdigit() else arg.value

        def dim(d):
            if isinstance(d, int):
                return d
            return local.setdefault(d, Var())

        for operand, spec in rule.shape.operands.items():
            if not self._unify_shape(self.shape[binding[operand]], tuple(dim(d) for d in spec)):
                return False
        return self._unify_shape(self.shape[t], tuple(dim(d) for d in rule.shape.out))

    def _unify_shape(self, a, b) -> bool:
        return all(self.dims.unify(x, y) for x, y in zip(a, b))

    # -- errors ---------------------------------------------------------------------
    def _no_rule(self, t: Term):
        if t.op == "call":
            known = sorted({r.pattern.head for r in self.table.rules if r.pattern is not None
                            and r.pattern.op == "call" and not r.over_functions} | set(self.table.functions))
            arities = sorted({len(r.pattern.args) for r in self.table.rules
                              if r.pattern is not None and r.pattern.head == t.head})
            if arities or t.head in self.table.functions:
                raise ParseError(f"{t.head} takes {' or '.join(map(str, arities or [1]))} argument(s), "
                                 f"got {len(t.args)}", source=self.source, pos=t.pos,
                                 hint=f"write {t.head}(...) with the right arguments")
            raise ParseError(f"unknown function {t.head!r}", source=self.source, pos=t.pos,
                             hint=f"the known functions are {', '.join(known)}")
        raise ParseError(f"no rule handles {to_text(t)!r}", source=self.source, pos=t.pos)

    def _clash(self, t: Term):
        rules = [r for r, _ in self._candidates(t)]
        rule = next((r for r in rules if r.default), rules[0])
        parts = ", ".join(f"{to_text(a)} is {_show(self._resolve(a))}" for a in t.args)
        wanted = "; ".join(f"{n}: {'×'.join(map(str, s))}" for n, s in rule.shape.operands.items())
        raise ShapeError(f"shapes do not fit in {to_text(t)!r}: {parts}; the {rule.name} needs {wanted}",
                         hint=rule.hint or "check the shapes you gave, or transpose an operand with '",
                         source=self.source, pos=t.pos)

    # -- the answer -----------------------------------------------------------------------
    def _resolve(self, t: Term):
        return tuple(self.dims.find(d) for d in self.shape[t])

    def _result(self) -> Inference:
        taken = set(self.dimension_names) | self.root.names()
        pool = (n for n in "ndmkpqrstuvabcefghij" if n not in taken)
        names: dict = {}

        def name(d):
            if isinstance(d, Var):
                if d not in names:
                    names[d] = next(pool, f"d{len(names)}")
                return names[d]
            return d

        shapes = {t: tuple(name(d) for d in self._resolve(t)) for t in self.order}
        variables = {t.value: shapes[t] for t in self.order
                     if t.op == "name" and t.value not in self.dimension_names}
        inferred = {v for v in variables if v not in self.given}
        return Inference(shapes, self.rule, variables, inferred, self.dimension_names)


def _show(shape) -> str:
    if tuple(shape) == (1, 1):
        return "scalar (1×1)"
    return "×".join("?" if isinstance(d, Var) else str(d) for d in shape)


def _post_order(root: Term) -> list:
    """Unique terms, children before parents, without recursion."""
    seen, order, stack = set(), [], [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if t in seen:
            continue
        seen.add(t)
        stack.append((t, True))
        stack.extend((a, False) for a in reversed(t.args))
    return order
