"""Shape inference by unification, driven by the operator records' shape conditions.

Every node gets (rows, cols).  A dimension is an int, a user's name ("n"), a
product of them, or an unknown.  The letter convention: a name not given
starts as a matrix if it is uppercase (its dimensions are never 1) and as a
vector if lowercase (a column, or a row where only a row reading exists).
Each overload's shape condition then adds equations.  Where several overloads
could handle a node (``a*B`` scales or multiplies, ``A + b`` adds or
broadcasts), the one whose condition already holds wins; if none does yet, the
node waits, and in the end the one that keeps unknown dimensions free (a
vector stays a vector) is taken, then the ``default``.

Where the reading departs from the letter convention (a lowercase name read
as a scalar, or as a dimension's size), a notice says so and how to override it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import permutations

from .errors import NotScalarError, ParseError, ShapeError
from .expr import dim_divide, dim_mul, dim_text
from .registry import Registry
from .syntax import Term, bind, to_text

# Lowercase names that may stand for a dimension's size when used as a number.
DIMENSION_LIKE = ("n", "m", "d", "k")
NAME_POOL = "ndmkpqrstuvabcefghij"


class Var:
    """An unknown dimension; ``order`` makes newer unknowns point at older ones."""

    __slots__ = ("order",)
    _count = 0

    def __init__(self):
        Var._count += 1
        self.order = Var._count


class Prod:
    """A product of dimensions some of which are still unknown (the rows of vec(X))."""

    __slots__ = ("factors",)

    def __init__(self, factors):
        self.factors = tuple(factors)


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
        if isinstance(d, Prod):
            factors = [self.find(f) for f in d.factors]
            if not any(isinstance(f, (Var, Prod)) for f in factors):
                out = 1
                for f in factors:
                    out = dim_mul(out, f)
                return out
        return d

    def unify(self, a, b) -> bool:
        a, b = self.find(a), self.find(b)
        if a is b or (not isinstance(a, (Var, Prod)) and not isinstance(b, (Var, Prod)) and a == b):
            return True
        if isinstance(a, Prod) or isinstance(b, Prod):
            return self._unify_product(a, b)
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

    def _unify_product(self, a, b) -> bool:
        if isinstance(a, Var) or isinstance(b, Var):
            v, p = (a, b) if isinstance(a, Var) else (b, a)
            self.parent[v] = p
            self.trail.append(v)
            return True
        if isinstance(b, Prod) and not isinstance(a, Prod):
            a, b = b, a
        if not isinstance(b, Prod):            # n·? = n·d (or 2·? = 8): the unknown is the quotient
            unknown = [f for f in (self.find(x) for x in a.factors) if isinstance(f, (Var, Prod))]
            if len(unknown) == 1 and isinstance(unknown[0], Var):
                known = 1
                for f in (self.find(x) for x in a.factors):
                    if f is not unknown[0]:
                        known = dim_mul(known, f)
                quotient = dim_divide(b, known)
                return quotient is not None and self.unify(unknown[0], quotient)
        fa = a.factors if isinstance(a, Prod) else (a[1:] if isinstance(a, tuple) else (a,))
        fb = b.factors if isinstance(b, Prod) else (b[1:] if isinstance(b, tuple) else (b,))
        if len(fa) != len(fb):
            return False
        for order in permutations(fb):
            mark = len(self.trail)
            if all(self.unify(x, y) for x, y in zip(fa, order)):
                return True
            self.undo(mark)
        return False

    def undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            item = self.trail.pop()
            if isinstance(item, tuple):
                self.rigid.discard(item[1])
            else:
                del self.parent[item]


@dataclass
class Inference:
    """What shape inference found: a shape per term, an overload per operation."""

    shapes: dict          # Term -> (rows, cols), dims as int | str | product
    rules: dict           # Term -> Op (the overload that handles it)
    variables: dict       # name -> (rows, cols)
    inferred: set         # names whose shapes were not given
    dimension_names: set  # names that stand for a dimension's size
    notices: list = field(default_factory=list)


def infer(root: Term, given: dict, table: Registry, scalar_root: bool = False,
          source: str | None = None, square=frozenset(), sizes: dict | None = None,
          dimensions=frozenset()) -> Inference:
    """Shapes of every node of ``root``; ``given`` maps names to (rows, cols);
    ``square`` names matrices declared symmetric; ``dimensions`` names known to be
    dimensions (a size used as a number, as in (A + m)/m)."""
    rows: set = set()        # lowercase names read as rows
    scalars: set = set()     # lowercase names read as scalars on purpose
    if sizes:                # a dimension whose size is fixed is that number everywhere
        given = {name: tuple(_sized(d, sizes) for d in shape) for name, shape in given.items()}

    def solve(rows, scalars, reserved=frozenset()):
        return _Solver(root, given, table, source, rows, scalars, reserved, square, sizes,
                       dimensions).run(scalar_root)

    inference = solve(rows, scalars)
    scalars = _broadcast_names(root, inference, given)
    if scalars:
        inference = solve(rows, scalars)
    for name in _scalar_lowercase(inference, given, scalars):
        trial = _attempt(solve, rows | {name}, scalars)
        if trial is not None and trial.variables.get(name, (1, 1)) != (1, 1):
            rows.add(name)
            inference = trial
    inference = _dimensions_from_names(inference, given, scalars, lambda reserved: solve(rows, scalars, reserved))
    inference.notices += [f"{name} is read as a scalar: it is added to a scalar; declare "
                          f"--shape {name}=k,1 (shapes={{'{name}': ('k',)}}) to broadcast a vector instead"
                          for name in sorted(scalars)]
    return inference


def _sized(d, sizes):
    if isinstance(d, str):
        return sizes.get(d, d)
    if isinstance(d, tuple):
        out = 1
        for f in d[1:]:
            out = dim_mul(out, _sized(f, sizes))
        return out
    return d


def _attempt(solve, *args):
    try:
        return solve(*args)
    except (ShapeError, ParseError):
        return None


def _broadcast_names(root: Term, inference: Inference, given: dict) -> set:
    """b2 in ``w2'*a + b2``: an unknown lowercase name whose every use is to be added to a
    computed scalar is that scalar's partner, not a vector of a size nothing else has."""
    parents: dict = {}
    for t in inference.shapes:
        for a in t.args:
            if a.op == "name":
                parents.setdefault(a.value, set()).add(t)
    found = set()
    for name, uses in parents.items():
        if name in given or not name[0].islower() or inference.variables.get(name) == (1, 1):
            continue
        if all(_broadcast_against_scalar(t, name, inference) for t in uses):
            found.add(name)
    return found


def _broadcast_against_scalar(t: Term, name: str, inference: Inference) -> bool:
    rule = inference.rules.get(t)
    if rule is None or not rule.id.startswith(("add-scalar", "subtract-scalar")):
        return False
    names = list(rule.shape.operands)
    scalar_side = 0 if rule.shape.operands[names[0]] == (1, 1) else 1
    other, scalar = t.args[1 - scalar_side], t.args[scalar_side]
    return other.op == "name" and other.value == name and bool(scalar.args)


def _scalar_lowercase(inference: Inference, given: dict, scalars: set) -> list:
    return [name for name, shape in inference.variables.items()
            if shape == (1, 1) and name not in given and name not in scalars and name[0].islower()]


def _dimensions_from_names(inference, given, scalars, solve):
    """``/n`` with n not given: n is the size of a dimension the expression has, not a new scalar."""
    candidates = [n for n in DIMENSION_LIKE if inference.variables.get(n) == (1, 1) and n not in given
                  and n not in scalars]
    if not candidates:
        return inference
    result = _attempt(solve, frozenset(candidates))
    if result is None:
        return inference
    used = {d for shape in result.variables.values() for d in shape} & set(candidates)
    if not used:
        return inference
    for name in sorted(used):
        holders = [v for v, shape in result.variables.items() if name in shape and v != name]
        result.notices.append(f"{name} is read as the size of the dimension {name}"
                              + (f" ({holders[0]} is {'×'.join(dim_text(d) for d in result.variables[holders[0]])})"
                                 if holders else "")
                              + f"; declare --scalar {name} (shapes={{'{name}': ()}}) for a variable {name}")
    return result


class _Solver:
    def __init__(self, root, given, table, source, rows=frozenset(), scalars=frozenset(), reserved=frozenset(),
                 square=frozenset(), sizes=None, dimensions=frozenset()):
        self.root, self.given, self.table, self.source = root, given, table, source
        self.sizes = dict(sizes or {})
        self.rows, self.scalars, self.reserved, self.square = rows, scalars, set(reserved), square
        self.dims = Dims()
        self.shape: dict = {}
        self.rule: dict = {}
        self._candidate_cache: dict = {}
        self.order = _post_order(root)
        self.dimension_names = {f for dims in given.values() for d in dims for f in _dim_factors(d)
                                if isinstance(f, str)}
        self.dimension_names |= self._dimension_args() | self.reserved | set(dimensions)

    def _dimension_args(self) -> set:
        """Names used as ``k`` in ``ones(k)`` are dimensions."""
        found = set()
        for t in self.order:
            if t.op == "call":
                for rule in self.table.overloads(t.head, len(t.args)):
                    binding = match_syntax(rule, t)
                    if binding:
                        for n in rule.dimension_args:
                            found |= {x.value for x in _walk(binding[n]) if x.op == "name"}
        return found

    def run(self, scalar_root: bool) -> Inference:
        for t in self.order:
            self.shape[t] = self._leaf_shape(t) if not t.args else (Var(), Var())
        self._solve([t for t in self.order if t.args or t.op == "call"])
        if scalar_root and not self._unify_shape(self.shape[self.root], (1, 1)):
            raise NotScalarError(
                f"grad needs a scalar loss, got a {_show(self._result().shapes[self.root])} "
                f"expression {_clip(to_text(self.root))!r}",
                hint="use jacobian for a vector or matrix output, or reduce it with sum(), tr() or norm2()",
                source=self.source, pos=self.root.pos)
        return self._result()

    # -- leaves -------------------------------------------------------------------
    def _leaf_shape(self, t: Term):
        if t.op == "num" or t.value in self.dimension_names:
            return (1, 1)
        if t.op == "call":
            return (Var(), Var())
        if t.value in self.given:
            return self.given[t.value]
        if t.value in self.scalars:
            return (1, 1)
        if t.value in self.square:
            n = Var()
            self.dims.make_rigid(n)
            return (n, n)
        if t.value[0].isupper():
            rows, cols = Var(), Var()
            self.dims.make_rigid(rows)
            self.dims.make_rigid(cols)
            return (rows, cols)
        return (1, Var()) if t.value in self.rows else (Var(), 1)

    # -- one pass over the operations that still wait for an overload ---------------
    def _solve(self, pending: list) -> None:
        """Children before parents; a node whose overload is not yet decided waits, and is looked
        at again only when a dimension it depends on is decided (so the work is linear).  When
        every waiting node waits, the first is settled by its best option."""
        index = {t: i for i, t in enumerate(pending)}
        queue, queued = [(i, t) for t, i in index.items()], set(pending)
        waiting, watchers, first = set(), {}, []
        while queue or waiting:
            if not queue:                      # no progress: settle the first by its best option
                while first[0][1] not in waiting:
                    heapq.heappop(first)
                t = heapq.heappop(first)[1]
                waiting.discard(t)
                options = self._options(t)
                fewest = min(ones for _, _, ones in options)
                best = [r for r, _, ones in options if ones == fewest]
                self._wake(self._commit(t, next((r for r in best if r.default), best[0])), watchers, queue,
                           queued, index)
                continue
            _, t = heapq.heappop(queue)
            queued.discard(t)
            options = self._known_options(t) or self._options(t)
            settled = [r for r, entailed, _ in options if entailed]
            if not settled:                    # the default, where it alone keeps every vector a vector
                free = [r for r, _, ones in options if ones == 0]
                settled = free if len(free) == 1 and free[0].default and len(options) > 1 else []
            if settled or len(options) == 1:
                waiting.discard(t)
                rule = next((r for r in settled if r.default), settled[0]) if settled else options[0][0]
                self._wake(self._commit(t, rule), watchers, queue, queued, index)
            else:
                if t not in waiting:
                    waiting.add(t)
                    heapq.heappush(first, (index[t], t))
                for v in self._unknowns(t):
                    watchers.setdefault(v, set()).add(t)

    def _unknowns(self, t: Term) -> set:
        found = set()
        for a in (*t.args, t):
            for d in self.shape[a]:
                stack = [self.dims.find(d)]
                while stack:
                    x = stack.pop()
                    if isinstance(x, Var):
                        found.add(x)
                    elif isinstance(x, Prod):
                        stack.extend(self.dims.find(f) for f in x.factors)
        return found

    def _wake(self, changed: list, watchers: dict, queue: list, queued: set, index: dict) -> None:
        for item in changed:
            var = item[1] if isinstance(item, tuple) else item
            for t in watchers.pop(var, ()):
                if t not in queued:
                    queued.add(t)
                    heapq.heappush(queue, (index[t], t))

    def _candidates(self, t: Term) -> list:
        found = self._candidate_cache.get(t)
        if found is not None:
            return found
        found = []
        for rule in self.table.overloads(t.head, len(t.args)):
            binding = match_syntax(rule, t)
            if binding is not None:
                found.append((rule, binding))
        if not found:
            self._no_rule(t)
        self._candidate_cache[t] = found
        return found

    def _cannot(self, rule, binding) -> bool:
        """A quick no: the condition wants 1 where an operand has a matrix's (never 1) dimension
        or another number."""
        for operand, spec in rule.shape.operands.items():
            for want, have in zip(spec, self.shape[binding[operand]]):
                if want == 1:
                    have = self.dims.find(have)
                    if (isinstance(have, Var) and have in self.dims.rigid) or \
                            (not isinstance(have, (Var, Prod)) and have != 1):
                        return True
        return False

    def _options(self, t: Term) -> list:
        """(overload, entailed, unknowns it sets to 1) for every overload whose condition can hold;
        just the default one when its condition already holds (nothing else could be chosen)."""
        options = []
        before = [self.dims.find(d) for a in t.args for d in self.shape[a]]
        candidates = self._candidates(t)
        default = [c for c in candidates if c[0].default]
        for i, (rule, binding) in enumerate(default + [c for c in candidates if not c[0].default]):
            if self._cannot(rule, binding):
                continue
            mark = len(self.dims.trail)
            ok = self._apply(rule, binding, t)
            after = [self.dims.find(d) for a in t.args for d in self.shape[a]]
            self.dims.undo(mark)
            if ok:
                ones = sum(isinstance(x, Var) and y == 1 for x, y in zip(before, after))
                entailed = all(x is y for x, y in zip(before, after))
                if entailed and i < len(default):
                    return [(rule, True, ones)]
                options.append((rule, entailed, ones))
        if not options:
            self._clash(t)
        order = {id(r): k for k, (r, _) in enumerate(candidates)}
        return sorted(options, key=lambda o: order[id(o[0])])

    def _known_options(self, t: Term) -> list:
        """Where every operand's shape is already known, an overload either holds or not, and
        one that holds changes no operand: check the conditions directly (no trial and undo)."""
        from .construct import bind_dims
        shapes = []
        for a in t.args:
            dims = tuple(self.dims.find(d) for d in self.shape[a])
            if any(isinstance(d, (Var, Prod)) for d in dims):
                return []
            shapes.append(dims)
        options = []
        for rule, binding in self._candidates(t):
            if rule.dimension_args or any(isinstance(d, tuple) for dims in rule.shape.operands.values()
                                          for d in dims):
                return []
            given = {name: shapes[t.args.index(binding[name])] for name in rule.shape.operands}
            if bind_dims(rule, given) is not None:
                options.append((rule, True, 0))
        return options

    def _commit(self, t: Term, rule) -> list:
        """Apply the chosen overload; returns what it decided (for the waiting nodes to wake)."""
        mark = len(self.dims.trail)
        self._apply(rule, match_syntax(rule, t), t)
        self.rule[t] = rule
        return self.dims.trail[mark:]

    def _apply(self, rule, binding: dict, t: Term) -> bool:
        """Add the overload's shape equations for node ``t``; False if they cannot hold."""
        local: dict = {}
        for name in rule.dimension_args:
            d = dimension_of(binding[name])
            local[name] = self.sizes.get(d, d) if isinstance(d, str) else d

        def dim(d):
            if isinstance(d, int):
                return d
            if isinstance(d, tuple):
                return Prod(dim(f) for f in d[1:])
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
            arities = self.table.arities(t.head)
            if arities:
                raise ParseError(f"{t.head} takes {' or '.join(map(str, arities))} argument(s), "
                                 f"got {len(t.args)}", source=self.source, pos=t.pos,
                                 hint=_call_hint(self.table, t.head))
            from difflib import get_close_matches
            close = get_close_matches(t.head, self.table.functions(), n=3)
            hint = (f"did you mean {' or '.join(close)}? " if close else "") + "'matcalc rules' lists the operators"
            raise ParseError(f"unknown function {_clip(t.head)!r}", source=self.source, pos=t.pos, hint=hint)
        raise ParseError(f"no rule handles {_clip(to_text(t))!r}", source=self.source, pos=t.pos)

    def _clash(self, t: Term):
        rules = [r for r, _ in self._candidates(t)]
        rule = next((r for r in rules if r.default), rules[0])
        parts = ", ".join(f"{_clip(to_text(a), 40)} is {_show(self._resolve(a))}" for a in t.args
                          if a.op != "num")
        wanted = "; ".join(f"{n}: {'×'.join(dim_text(d) for d in s)}" for n, s in rule.shape.operands.items())
        hint = rule.hint or "check the shapes you gave, or transpose an operand with '"
        if t.op in ("^",) and t.args[1].op == "name" and t.args[1].value == "T":
            hint = "W^T is not a transpose here: write W' (or W.T, Wᵀ)"
        if any(r.literal for r in rules) and rule.literal:
            hint = rule.hint or hint
        raise ShapeError(f"shapes do not fit in {_clip(to_text(t))!r}: {parts}; the {rule.name} needs {wanted}",
                         hint=hint, source=self.source, pos=t.pos)

    # -- the answer -----------------------------------------------------------------------
    def _most_shared(self, axis: int, named: dict):
        """The unknown dimension that most variables have along ``axis`` (two at least)."""
        counts: dict = {}
        for t in self.order:
            if t.op == "name" and t.value not in self.dimension_names:
                d = self.dims.find(self.shape[t][axis])
                if isinstance(d, Var) and d not in named:
                    counts[d] = counts.get(d, 0) + 1
        best = max(counts.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def _resolve(self, t: Term):
        return tuple(self.dims.find(d) for d in self.shape[t])

    def _result(self) -> Inference:
        taken = (set(self.dimension_names) - self.reserved) | (self.root.names() - self.reserved)
        names: dict = {}
        used_reserved: set = set()
        for reserved, axis in (("m", 1), ("n", 0)):      # m: the samples' columns, n: the rows most share
            if reserved in self.reserved:
                best = self._most_shared(axis, names)
                if best is not None:
                    names[best] = reserved
                    used_reserved.add(reserved)
        pool = (n for n in NAME_POOL if n not in taken and n not in used_reserved)

        def name(d):
            d = self.dims.find(d)
            if isinstance(d, Var):
                if d not in names:
                    names[d] = next(pool, f"d{len(names)}")
                    if names[d] in self.reserved:
                        used_reserved.add(names[d])
                return names[d]
            if isinstance(d, Prod):
                out = 1
                for f in d.factors:
                    out = dim_mul(out, name(f))
                return out
            return d

        shapes = {t: tuple(name(d) for d in self._resolve(t)) for t in self.order}
        dimension_names = (self.dimension_names - self.reserved) | used_reserved
        variables = {t.value: shapes[t] for t in self.order
                     if t.op == "name" and t.value not in dimension_names}
        inferred = {v for v in variables if v not in self.given}
        return Inference(shapes, self.rule, variables, inferred, dimension_names)


def match_syntax(rule, term: Term):
    """Bind an overload's spelling to a term: names bind sub-terms, numbers match themselves,
    and an operand marked ``literal`` (the k of X^k) must be written as a number."""
    if term.op == "call" and term.value in rule.aliases:          # trace(X) is tr(X), norm(x) is norm2(x)
        term = Term("call", term.args, rule.syntax.value, term.pos)
    binding = _match(rule.syntax, term, {})
    if binding is None:
        return None
    for name in rule.literal:
        if not _is_integer_literal(binding[name]):
            return None
    return binding


def _match(pattern: Term, term: Term, binding: dict):
    if pattern.op == "name":
        return bind(binding, pattern.value, term)
    if pattern.op == "num":
        return binding if term.op == "num" and float(term.value) == float(pattern.value) else None
    if pattern.op != term.op or len(pattern.args) != len(term.args):
        return None
    if pattern.op == "call" and pattern.value != term.value:
        return None
    for p, t in zip(pattern.args, term.args):
        if _match(p, t, binding) is None:
            return None
    return binding


def _is_integer_literal(t: Term) -> bool:
    if t.op == "neg":
        return _is_integer_literal(t.args[0])
    return t.op == "num" and float(t.value).is_integer()


def dimension_of(t: Term):
    """A dimension argument: a name, a positive integer, or a product of them (ones(n*d))."""
    if t.op == "name":
        return t.value
    if t.op == "num":
        value = float(t.value)
        if not value.is_integer() or value < 1 or value > 10**9:
            raise ShapeError(f"expected a dimension (a positive whole number or a name), got {t.value}",
                             hint="write ones(3), ones(n) or ones(n, m)", pos=t.pos)
        return int(value)
    if t.op == "*":
        return dim_mul(dimension_of(t.args[0]), dimension_of(t.args[1]))
    raise ShapeError(f"expected a dimension (a positive whole number or a name), got {_clip(to_text(t))!r}",
                     hint="write ones(3), ones(n) or ones(n, m)", pos=t.pos)


def _call_hint(table, head) -> str:
    spellings = sorted({op.pattern_text for op in table.ops if op.head == head or head in op.aliases})
    return "write " + " or ".join(spellings) if spellings else f"write {head}(...) with the right arguments"


def _walk(t: Term):
    stack = [t]
    while stack:
        x = stack.pop()
        yield x
        stack.extend(x.args)


def _dim_factors(d):
    return d[1:] if isinstance(d, tuple) else (d,)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _show(shape) -> str:
    if tuple(shape) == (1, 1):
        return "scalar (1×1)"
    return "×".join("?" if isinstance(d, (Var, Prod)) else dim_text(d) for d in shape)


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
