"""Worksheets: exercises generated from templates and the rule table, each with a
verified key, a worked solution and a self-test, as a pure function of the
arguments (the same arguments give the same sheet, byte for byte).

A template draws what varies — shapes (square or not), names of dimensions,
element-wise functions from the rule table, numbers, which variable is asked
for — from a ``random.Random`` seeded by the sheet's seed, the student and the
exercise's position.  matcalc then derives the key; the worked solution is
the derivation (the steps, the backprop program, the Rule 0 check and the
exact check).  Before an exercise is kept it is self-tested: its key verifies
against the element-wise Jacobian, the key and two rewritten equal forms are
accepted by ``check_answer``, and every mutant of the key is rejected with its
own diagnosis.  An exercise that fails is never written: the next sub-seed is
tried, and the failure is recorded in ``Worksheet.rejected``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from .errors import MatcalcError
from .dag import normalize_shapes

LEVELS = ("intro", "standard", "advanced")
TOPICS = ("shapes", "rules", "elementwise", "losses", "networks", "graph", "cookbook", "hessians")
MAX_COUNT = 200
ATTEMPTS = 4                    # sub-seeds tried for one exercise before the sheet fails

# Element-wise functions a level draws from (records of the rule table; none with a restricted domain).
FUNCTIONS = {"intro": ("tanh", "sigmoid", "relu", "exp"),
             "standard": ("tanh", "sigmoid", "relu", "exp", "sin", "cos", "softplus", "square"),
             "advanced": ("tanh", "sigmoid", "relu", "exp", "sin", "cos", "softplus", "square", "atan",
                          "sinh", "cosh", "expm1", "abs")}
DIMENSIONS = (("n", "d", "m"), ("k", "d", "m"), ("n", "p", "m"), ("h", "d", "m"))


@dataclass(frozen=True)
class Part:
    """One answer asked for: ∂l/∂wrt (order 1) or the Hessian (order 2), symbolic or at given inputs."""

    wrt: str
    key: str                      # the key in the matcalc language (it parses back)
    shape: str                    # the expected shape (Rule 0)
    order: int = 1
    at: tuple | None = None       # ((name, value), ...) for an exercise with numbers
    key_latex: str | None = None
    points: int = 1

    @property
    def label(self) -> str:
        root = "f" if self.at is not None else "l"
        return f"∂²{root}/∂{self.wrt}²" if self.order == 2 else f"∂{root}/∂{self.wrt}"

    @property
    def label_latex(self) -> str:
        from .printing import latex_name
        name, root = latex_name(self.wrt), "f" if self.at is not None else "l"
        if self.order == 2:
            return rf"\frac{{\partial^2 {root}}}{{\partial {name}^2}}"
        return rf"\frac{{\partial {root}}}{{\partial {name}}}"


@dataclass
class Exercise:
    number: int
    topic: str
    template: str
    seed: int
    level: str
    note: str                     # short and unique within a sheet: "r5-07c3"
    title: str
    prompt: str                   # the situation, in words
    loss: str                     # the loss in the matcalc language (an expression or a program)
    loss_latex: str | None        # LaTeX of a single expression (None for a program)
    shapes: dict                  # name -> shape, as check_answer takes it
    assume: dict
    parts: list
    hint: str
    solution: list                # the worked solution, line by line (monospace)
    graph: list | None = None     # a numeric graph: (name, definition, value) in topological order
    mode: str | None = None       # how a graph exercise is solved: reverse, forward or paths

    def check_args(self, part: Part) -> dict:
        """The arguments of ``check_answer`` for this part (what a notebook's check cell passes)."""
        args = {"expr": self.loss, "wrt": part.wrt}
        if self.shapes:
            args["shapes"] = dict(self.shapes)
        if self.assume:
            args["assume"] = dict(self.assume)
        if part.at is not None:
            args["at"] = dict(part.at)
        if part.order != 1:
            args["order"] = part.order
        return args

    def check(self, part: Part, answer: str):
        from .answers import check_answer
        return check_answer(**self.check_args(part), answer=answer)

    @property
    def points(self) -> int:
        return sum(p.points for p in self.parts)

    def shape_text(self) -> str:
        from .expr import shape_text
        return ", ".join(f"{name}: {'scalar' if tuple(s) == (1, 1) else shape_text(s)}"
                         for name, s in normalize_shapes(self.shapes).items())

    def question(self) -> str:
        what = ", ".join(p.label for p in self.parts)
        if self.parts and self.parts[0].at is not None:
            return f"Find {what} at the given inputs (to two decimals where needed)."
        return f"Find {what}."

    def to_dict(self, answers: bool = True) -> dict:
        out = {"number": self.number, "topic": self.topic, "template": self.template, "note": self.note,
               "level": self.level, "title": self.title, "prompt": self.prompt, "loss": self.loss,
               "shapes": {k: list(v) for k, v in self.shapes.items()}, "assume": dict(self.assume),
               "question": self.question(), "hint": self.hint,
               "parts": [{"wrt": p.wrt, "order": p.order, "shape": p.shape, "points": p.points,
                          "at": dict(p.at) if p.at else None, **({"key": p.key} if answers else {})}
                         for p in self.parts]}
        if answers:
            out["solution"] = list(self.solution)
        return out


@dataclass
class Worksheet:
    topics: tuple
    count: int
    seed: int
    level: str
    student: str | None
    exercises: list
    rejected: list = field(default_factory=list)     # (note, reason) of exercises that failed their self-test
    checked: dict = field(default_factory=dict)      # what the self-tests ran: keys, forms, mutants

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def title(self) -> str:
        return "Matrix calculus worksheet: " + ", ".join(self.topics)

    def metadata(self) -> dict:
        """What regenerates this sheet (and each exercise's key) without the file."""
        return {"schema": SCHEMA, "topics": list(self.topics), "count": self.count, "seed": self.seed,
                "level": self.level, "student": self.student, "variant": variant_seed(self.seed, self.student),
                "exercises": [{"number": e.number, "note": e.note, "parts": [p.wrt for p in e.parts],
                               "points": e.points} for e in self.exercises]}

    def render(self, format: str, answers: bool = False) -> str:
        from . import sheets
        return sheets.render(self, format, answers)

    def markdown(self, answers: bool = False) -> str:
        return self.render("md", answers)

    def latex(self, answers: bool = False) -> str:
        return self.render("tex", answers)

    def html(self, answers: bool = False) -> str:
        return self.render("html", answers)

    def notebook(self, answers: bool = False):
        from .sheets import notebook
        return notebook(self, answers)

    def to_dict(self, answers: bool = True) -> dict:
        return {**self.metadata(), "exercises": [e.to_dict(answers) for e in self.exercises]}

    def _repr_markdown_(self) -> str:
        return self.markdown(answers=False)


SCHEMA = "matcalc.worksheet/1"


# -- the sheet ----------------------------------------------------------------------------------

def worksheet(topics=("rules",), count: int = 10, seed: int = 0, level: str = "standard",
              student: str | None = None, *, verify: bool = True) -> Worksheet:
    """A worksheet of ``count`` exercises cycling over ``topics``: a pure function of its
    arguments.  ``student`` gives that student's own variant (seeded from the id and ``seed``).
    ``verify=False`` (for the grader, which only needs the keys) skips the self-tests and the
    worked solutions; an exercise the self-test would reject then shows as a changed note."""
    topics = _topics(topics)
    _arguments(count, seed, level, student)
    variant = variant_seed(seed, student)
    exercises, rejected, notes = [], [], set()
    checked = {"keys": 0, "forms": 0, "mutants": 0}
    for i in range(count):
        topic = topics[i % len(topics)]
        exercise = None
        for attempt in range(ATTEMPTS):
            sub = _sub_seed(variant, i, attempt)
            try:
                candidate = make_exercise(topic, sub, level, i + 1, _template_choice(topic, sub, i, level),
                                          worked=verify)
            except MatcalcError as e:
                rejected.append((f"{topic}-{sub:04x}", f"could not be generated: {e.message}"))
                continue
            if candidate.note in notes:
                continue
            stats = {"keys": 0, "forms": 0, "mutants": 0}
            failures = self_test(candidate, stats) if verify else []
            if failures:
                rejected.append((candidate.note, "; ".join(failures[:3])))
                continue
            exercise = candidate
            break
        if exercise is None:
            raise MatcalcError(f"exercise {i + 1} ({topic}) failed its self-test {ATTEMPTS} times",
                               hint="this is a defect of matcalc's templates: please report the seed")
        notes.add(exercise.note)
        exercises.append(exercise)
        if verify:
            checked = {k: checked[k] + stats[k] for k in checked}
    return Worksheet(tuple(topics), count, seed, level, student, exercises, rejected, checked)


def variant_seed(seed: int, student: str | None) -> int:
    """The seed of one student's variant: the sheet's seed mixed with the student's id."""
    if student is None:
        return seed
    digest = hashlib.blake2b(f"{seed}:{student}".encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big")


def _sub_seed(variant: int, index: int, attempt: int) -> int:
    digest = hashlib.blake2b(f"{variant}:{index}:{attempt}".encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big")


def _topics(topics) -> list:
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, (list, tuple)) or not topics:
        raise MatcalcError(f"expected a list of topics among {', '.join(TOPICS)}, got {topics!r}",
                           hint='for example topics=["rules", "networks"]')
    out = []
    for t in topics:
        if t not in TOPICS:
            raise MatcalcError(f"expected a topic among {', '.join(TOPICS)}, got {str(t)[:40]!r}",
                               hint="for example --topic rules --topic networks")
        if t not in out:
            out.append(t)
    return out


def _arguments(count, seed, level, student) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise MatcalcError(f"expected a count between 1 and {MAX_COUNT}, got {count!r}", hint="for example --count 10")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise MatcalcError(f"expected a seed that is a whole number ≥ 0, got {seed!r}", hint="for example --seed 3")
    if level not in LEVELS:
        raise MatcalcError(f"expected a level among {', '.join(LEVELS)}, got {str(level)[:40]!r}",
                           hint="for example --level intro")
    if student is not None and (not isinstance(student, str) or not student.strip() or len(student) > 100):
        raise MatcalcError(f"expected a student id as short text, got {str(student)[:40]!r}")


def _template_choice(topic: str, sub: int, index: int, level: str) -> str:
    names = sorted(TEMPLATES[topic])
    return names[random.Random(f"{sub}:{index}:{level}").randrange(len(names))]


# -- one exercise -------------------------------------------------------------------------------

@dataclass
class Spec:
    """What a template decides: the loss and what to find; everything else is derived."""

    title: str
    prompt: str
    loss: str
    shapes: dict
    wrts: list
    assume: dict = field(default_factory=dict)
    order: int = 1
    at: dict | None = None
    hint: str = ""
    mode: str | None = None
    graph: list | None = None


def make_exercise(topic: str, seed: int, level: str, number: int = 1, template: str | None = None,
                  worked: bool = True) -> Exercise:
    """One exercise of a topic from a sub-seed: the template's draw, then the key, the hint and
    the worked solution from matcalc's own derivation."""
    template = template or _template_choice(topic, seed, number - 1, level)
    rng = random.Random(f"{topic}:{template}:{seed}:{level}")
    spec = TEMPLATES[topic][template](rng, level)
    checkers = [_checker(spec, wrt) for wrt in spec.wrts]
    parts = [_part(spec, c) for c in checkers]
    steps = [s for c in checkers for s in c.derivation.steps]
    solution = _solution(spec, parts, checkers) if worked else []
    hint = " ".join(filter(None, [spec.hint, _rule_hint(steps, spec), _rule0_hint(parts, spec)]))
    return Exercise(number, topic, template, seed, level, f"{template}-{seed:04x}", spec.title, spec.prompt,
                    spec.loss, _loss_latex(spec), dict(spec.shapes), dict(spec.assume), parts, hint, solution,
                    spec.graph, spec.mode)


def _checker(spec: Spec, wrt: str):
    from .answers import checker
    return checker(spec.loss, wrt, spec.shapes or None, spec.assume or None, at=spec.at, order=spec.order)


def _part(spec: Spec, c) -> Part:
    """A part: its key in the matcalc language (a number to two decimals at given inputs)."""
    if spec.at is not None:
        return Part(c.wrt, _decimal(c.key_values[0][0]), "scalar", 1, tuple(spec.at.items()), None)
    latex = None if c.display else _latex(c.key)
    return Part(c.wrt, c.key_text(), c.expected_shape, spec.order, None, latex)


def _solution(spec: Spec, parts: list, checkers: list) -> list:
    """The worked solution: the graph with its numbers, the second walk of a Hessian, or the
    backward pass of the gradients."""
    if spec.at is not None:
        return _graph_solution(spec) + [f"∂f/∂{p.wrt} = {c.key_text()} = {p.key}" for p, c in zip(parts, checkers)]
    if spec.order == 2:
        return [line for c in checkers for line in _hessian_solution(c)]
    return _gradient_solution(spec, parts)


def _graph_solution(spec: Spec) -> list:
    """The graph with its numbers: forward values, then the backward (or forward) pass."""
    from .api import graph
    from .render import compact
    g = graph(spec.loss, at=spec.at, mode="reverse")
    names = {}
    lines = ["forward pass:"]
    for (name, definition, value, _), node in zip(spec.graph, [n for n in g.nodes if n.kind == "operation"]):
        names[node.index] = name
        lines.append(f"  {name} = {definition} = {compact(value)}")
    for n in g.nodes:
        names.setdefault(n.index, n.label)
    if spec.mode == "reverse":
        lines.append("backward pass (∂f/∂node: each node's upstream gradient times its local gradient):")
        lines += [f"  ∂f/∂{names[n.index]} = {compact(n.grad)}" for n in reversed(g.nodes) if n.grad is not None
                  and n.kind != "constant"]
    for wrt in spec.wrts if spec.mode != "reverse" else ():
        g = graph(spec.loss, at=spec.at, mode=spec.mode, wrt=wrt)
        if spec.mode == "forward":
            lines.append(f"forward mode (∂node/∂{wrt}, in one pass from the inputs):")
            lines += [f"  ∂{names[n.index]}/∂{wrt} = {compact(n.tangent)}" for n in g.nodes if n.kind != "constant"]
            continue
        lines.append(f"paths from {wrt} to f, each the product of its edge derivatives:")
        lines += [f"  {' → '.join(names[i] for i in path)}: {compact(product)}" for path, product in g.paths]
        lines.append(f"  sum over {len(g.paths)} path{'s' if len(g.paths) > 1 else ''}: ∂f/∂{wrt} = "
                     f"{compact(g.path_sum)}")
    return lines


def _decimal(x) -> str:
    """A number to two decimals, without trailing zeros (−4, 0.39, 1.5)."""
    text = f"{float(x):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _latex(e) -> str:
    from .printing import to_latex
    return to_latex(e)


def _loss_latex(spec: Spec) -> str | None:
    from .program import is_program
    if is_program(spec.loss):
        return None
    from .dag import build
    from .printing import to_latex
    from .syntax import parse
    shapes = spec.shapes or ({k: () for k in spec.at} if spec.at else None)
    return to_latex(build(parse(spec.loss), shapes, assume=spec.assume or None).root.expr)


def _gradient_solution(spec: Spec, parts: list) -> list:
    """One backward pass for every part: the steps of the reverse walk (with the backprop
    program's names), the program, each gradient with its Rule 0 check, and the exact check."""
    from .api import grad
    from .backprop import backprop_program
    derivations = grad(spec.loss, wrt=list(spec.wrts), shapes=spec.shapes or None, assume=spec.assume or None)
    program = backprop_program(list(derivations.values()))
    steps = list(program.steps)
    lines = ["the reverse walk, step by step (G is the upstream gradient ∂l/∂node):"]
    for i, s in enumerate(steps[:STEPS_SHOWN], 1):
        if s.is_fan_out:
            lines.append(f"  {i}. fan-out at {program.show(s.target)}: its {len(s.parts)} contributions add up")
            continue
        lines.append(f"  {i}. [{s.rule_id}] at {_clip(program.show(s.node))}, G = {_clip(program.show(s.upstream))}: "
                     f"∂l/∂{_operand(program.show(s.target))} = {_clip(program.show(s.result))}")
    if len(steps) > STEPS_SHOWN:
        lines.append(f"  … {len(steps) - STEPS_SHOWN} more steps")
    text = program.text(rules=True).splitlines()
    if text and "=" not in text[-1]:
        text.pop()
    lines += ["as a backprop program:"] + [f"  {line}" for line in text]
    for part in parts:
        lines.append(f"{part.label} = {part.key}")
        lines.append(f"  Rule 0: {_shape_words(part.shape)}, the shape of {part.wrt} ✓")
        lines += [f"  {line}" for line in derivations[part.wrt].verify(numeric=False).lines()]
    return lines


def _shape_words(shape: str) -> str:
    return "a scalar" if shape == "1×1" else shape


def _operand(text: str) -> str:
    import re
    return text if re.fullmatch(r"[A-Za-z_\u0370-\u03ff][A-Za-z0-9_\u0370-\u03ff]*", text) else f"({_clip(text)})"


STEPS_SHOWN = 16


def _hessian_solution(c) -> list:
    h = c.hessian
    report = h.verify(numeric=False)
    return ([f"{c.what}: the gradient ∂l/∂{c.wrt} = {c.derivation}",
             f"  differentiate ⟨∂l/∂{c.wrt}, V⟩ again (a second reverse walk): H[V] = {h.hvp_text()}",
             f"  read off the matrix: {c.what} = {c.key_text()}   ({c.expected_shape}, symmetric)"]
            + [f"  {line}" for line in report.lines()])


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _rule_hint(steps: list, spec: Spec) -> str:
    """The rules the derivation uses, stated in general (in terms of G, never the key)."""
    if spec.order == 2:
        return "H[V] is the gradient of ⟨∂l/∂x, V⟩ with the direction V held constant; read the matrix off it."
    if spec.at is not None:
        return ""
    from .answers import rule_statements
    names = rule_statements(steps)
    return ("Rules: " + "; ".join(names) + ".") if names else ""


def _rule0_hint(parts: list, spec: Spec) -> str:
    if spec.at is not None or spec.order == 2:
        return ""
    return "Rule 0: " + "; ".join(f"{p.label} has the shape of {p.wrt}, {_shape_words(p.shape)}"
                                  for p in parts) + "."


# -- the self-test -------------------------------------------------------------------------------

def self_test(exercise: Exercise, stats: dict | None = None) -> list:
    """Everything that must hold before an exercise is written; the failures, in words (empty: it
    passed).  ``stats`` counts what ran: keys verified, equal forms and mutants checked."""
    stats = {"keys": 0, "forms": 0, "mutants": 0} if stats is None else stats
    failures = []
    for part in exercise.parts:
        failures += _test_part(exercise, part, stats)
    return failures


def _test_part(exercise: Exercise, part: Part, stats: dict) -> list:
    from .answers import checker
    args = exercise.check_args(part)
    c = checker(args.pop("expr"), args.pop("wrt"), args.get("shapes"), args.get("assume"),
                at=args.get("at"), order=args.get("order", 1))
    out = []
    report = c.hessian.verify(numeric=False) if part.order == 2 else c.derivation.verify(numeric=False)
    stats["keys"] += 1
    if not report.ok:
        out.append(f"{part.label}: the key does not verify ({report})")
    for k, form in enumerate([part.key, *equivalent_forms(c, part)]):
        stats["forms"] += k > 0
        r = c.check(form)
        if not r.correct:
            out.append(f"{part.label}: the equal form {form!r} was rejected ({r.mistake})")
    for mutant in c.mutants():
        stats["mutants"] += 1
        text = _mutant_text(c, mutant, part)
        r = c.check(text)
        if r.correct or r.mistake != mutant.kind:
            out.append(f"{part.label}: the {mutant.kind} mutant {text!r} was diagnosed {r.mistake or 'correct'}")
    return out


def _mutant_text(c, mutant, part: Part) -> str:
    if part.at is None:
        return c.text(mutant.expr)
    return _decimal(c.mutant_values(mutant)[0][0])


def equivalent_forms(c, part: Part) -> list:
    """Two spellings of the key that are equal to it but written differently: a rewrite of
    the key's terms (scalars moved, a product spread over a sum, terms reordered) and the
    transpose of its transpose, written out."""
    if part.at is not None:
        return [c.key_text(), _long_decimal(c.key_values[0][0])]
    from .syntax import parse, to_text
    key = parse(part.key)
    shape_of = _shapes_of(c, key)
    forms = []
    for rewrite in (lambda t: _distribute(t, shape_of), _scalar_last, _commute):
        t = rewrite(key)
        if t is not None and to_text(t) != part.key and to_text(t) not in forms:
            forms.append(to_text(t))
            break
    forms.append(to_text(_double_transpose(key)))
    while len(forms) < 2:
        forms.append(f"({part.key})*1")
    return forms[:2]


def _long_decimal(x) -> str:
    return f"{float(x):.4f}"


def _term(op, *args, value=None):
    from .syntax import Term
    return Term(op, tuple(args), value)


def _double_transpose(t):
    """(tᵀ)ᵀ, with the inner transpose pushed down to the leaves: (A·B)ᵀ = Bᵀ·Aᵀ."""
    return _term("'", _push_transpose(t))


def _push_transpose(t):
    from .registry import load
    if t.op == "'":
        return t.args[0]
    if t.op in ("name", "num"):
        return t if t.op == "num" else _term("'", t)
    if t.op == "*":
        return _term("*", _push_transpose(t.args[1]), _push_transpose(t.args[0]))
    if t.op in ("+", "-", ".*", "./"):
        return _term(t.op, _push_transpose(t.args[0]), _push_transpose(t.args[1]))
    if t.op in ("/", ".^", "^"):
        return _term(t.op, _push_transpose(t.args[0]), t.args[1])
    if t.op == "neg":
        return _term("neg", _push_transpose(t.args[0]))
    if t.op == "call":
        record = next(iter(load().overloads(t.value, len(t.args))), None)
        if record is not None and record.elementwise:
            return _term("call", _push_transpose(t.args[0]), value=t.value)
    return _term("'", t)


def _shapes_of(c, key):
    """The shape of each sub-term of the key as written (a program's names standing for themselves)."""
    from .dag import build
    shapes = {**c.variables, **{n: c.graph.intermediates[n].shape for n in c.names}}
    graph = build(key, shapes, raw_shapes=True)
    return lambda t: graph.node_of(t).shape


def _distribute(t, shape_of):
    """The first product of a sum by a factor, spread out: A*(B - C) → A*B - A*C (where no
    term of the sum is broadcast)."""
    def plain(s):
        return all(shape_of(a) == shape_of(s) for a in s.args)
    if t.op == "*" and t.args[1].op in ("+", "-") and plain(t.args[1]) and _small(t):
        left, (b, c) = t.args[0], t.args[1].args
        return _term(t.args[1].op, _term("*", left, b), _term("*", left, c))
    if t.op == "*" and t.args[0].op in ("+", "-") and plain(t.args[0]) and _small(t):
        (a, b), right = t.args[0].args, t.args[1]
        return _term(t.args[0].op, _term("*", a, right), _term("*", b, right))
    for i, a in enumerate(t.args):
        inner = _distribute(a, shape_of)
        if inner is not None:
            args = list(t.args)
            args[i] = inner
            return _term(t.op, *args, value=t.value)
    return None


def _small(t) -> bool:
    from .syntax import to_text
    return len(to_text(t)) < 400


def _scalar_last(t):
    """A leading number moved to the end: 2*A → A*2."""
    if t.op == "*" and t.args[0].op == "num":
        return _term("*", t.args[1], t.args[0])
    if t.op in ("*", "/") and t.args[0].op == "*" and t.args[0].args[0].op == "num":
        inner = _scalar_last(t.args[0])
        return _term(t.op, inner, t.args[1])
    return None


def _commute(t):
    """The two terms of a sum swapped: A + B → B + A, A - B → -B + A."""
    if t.op == "+":
        return _term("+", t.args[1], t.args[0])
    if t.op == "-":
        return _term("+", _term("neg", t.args[1]), t.args[0])
    return None


# -- templates -----------------------------------------------------------------------------------

def _dims(rng: random.Random, square: bool = False) -> tuple:
    n, d, m = rng.choice(DIMENSIONS)
    return (n, n, m) if square else (n, d, m)


def _square(rng: random.Random, level: str) -> bool:
    """Square matrices (so a transposed factor keeps its shape) at a rate that grows with the level."""
    return rng.random() < {"intro": 0.2, "standard": 0.35, "advanced": 0.5}[level]


def _function(rng: random.Random, level: str, avoid: str | None = None) -> str:
    """An element-wise function of the rule table (a level draws from its own list)."""
    choices = [f for f in FUNCTIONS[level] if f != avoid and f in _elementwise()]
    return rng.choice(choices)


def _elementwise() -> set:
    from .registry import load
    return {op.op for op in load().ops if op.elementwise and op.derivative is not None and op.domain is None}


def _function_fact(name: str) -> str:
    """f′ as the rule table writes it (the derivative field of the function's record)."""
    from .registry import load
    from .syntax import to_text
    record = next((op for op in load().ops if op.elementwise and op.op == name), None)
    if record is None or record.derivative is None:
        return ""
    return f"From the rule table: {name}′(x) = {to_text(record.derivative)}."


def _coefficient(rng: random.Random, level: str):
    """A number in front of a loss, as written: ("", 1), ("3*", 3), ("", "/2")."""
    if level == "intro":
        return rng.choice([("", ""), ("", "/2")])
    return rng.choice([("", ""), ("", "/2"), ("3*", ""), ("2*", ""), ("", "/(2*m)")])


# shapes: Rule 0 drills — the answer is fixed by the shapes alone

def t_outer(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    transposed = rng.random() < 0.5
    loss = "u'*W'*v" if transposed else "u'*W*v"
    shapes = {"u": (d,) if transposed else (n,), "v": (n,) if transposed else (d,), "W": (n, d)}
    return Spec("Rule 0: a bilinear form", "A bilinear form of two vectors through a matrix. What shape is ∂l/∂W "
                "(Rule 0)? Let the shapes place the factors.", loss, shapes, ["W"],
                hint="Write the shape of every factor; only one outer product of the two vectors has the shape of W.")


def t_sandwich(rng, level):
    n, d, m = _dims(rng, _square(rng, level))
    p = "q" if "q" not in (n, d, m) else "r"
    loss = "tr(A*W*B)" if level != "advanced" or rng.random() < 0.5 else "tr(B'*W'*A')"
    return Spec("Rule 0: a matrix between two others", "A trace of a product with W in the middle. What shape is "
                "∂l/∂W (Rule 0)? Let the shapes place the factors.", loss,
                {"A": (p, n), "W": (n, d), "B": (d, p)}, ["W"],
                hint="tr(M) = sum of the diagonal; each of A and B must stand on the side where its shape fits.")


def t_column(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    wrt = rng.choice(["x", "W"]) if level != "intro" else "x"
    return Spec("Rule 0: a least-squares fit", "A residual of a linear model, squared. What shape is the answer "
                "(Rule 0)? Let the shapes place the factors.",
                "sum((W*x - y).^2)", {"W": (n, d), "x": (d,), "y": (n,)}, [wrt],
                hint="First decide the shape of the answer, then place Wᵀ or xᵀ so that it comes out.")


# rules: the eight rules

def t_rule_column(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    wrt = rng.choice(["W", "x"])
    loss = "a'*(W*x)" if level == "intro" else rng.choice(["a'*(W*x)", "a'*W*x + c'*x"])
    shapes = {"a": (n,), "W": (n, d), "x": (d,)}
    if "c'" in loss:
        shapes["c"] = (d,)
    return Spec("Rules 1 and 3: y = W·x with column vectors", "A linear layer y = W·x on a column vector x, "
                "scored by a fixed vector a.", loss, shapes, [wrt])


def t_rule_row(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    wrt = rng.choice(["W", "x"])
    return Spec("Rules 2 and 4: y = x·W with row vectors", "A linear layer y = x·W on a row vector x "
                "(1×n), scored by a fixed column b.", "x*W*b", {"x": (1, n), "W": (n, d), "b": (d,)}, [wrt])


def t_rule_matrix(rng, level):
    n, d, m = _dims(rng, _square(rng, level))
    wrt = rng.choice(["W", "X"])
    loss = rng.choice(["sum(C .* (W*X))", "tr(C'*W*X)"]) if level != "intro" else "sum(C .* (W*X))"
    return Spec("Rules 5 and 6: Y = W·X", "A matrix product Y = W·X, weighted entry by entry by a fixed C.",
                loss, {"W": (n, d), "X": (d, m), "C": (n, m)}, [wrt])


def t_rule_chain(rng, level):
    n, d, m = _dims(rng, _square(rng, level))
    k = "q" if "q" not in (n, d, m) else "r"
    wrt = rng.choice(["U", "V", "X"]) if level == "advanced" else "V"
    return Spec("Rules 5 and 6 in a chain: U·V·X", "Two linear maps in a row.", "sum(C .* (U*V*X))",
                {"U": (n, k), "V": (k, d), "X": (d, m), "C": (n, m)}, [wrt])


def t_rule_mse(rng, level):
    n, d, m = _dims(rng, _square(rng, level))
    wrt = rng.choice(["W", "X"])
    front, back = _coefficient(rng, level)
    back = back.replace("m", m)
    return Spec("Rule 5 or 6 after a squared error", "A linear model W·X fitted to targets Y by squared error.",
                f"{front}sum((W*X - Y).^2){back}", {"W": (n, d), "X": (d, m), "Y": (n, m)}, [wrt])


# elementwise: Rule 7

def t_activation(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    f = _function(rng, level)
    wrt = rng.choice(["W", "b", "x"])
    return Spec(f"Rule 7: the activation {f}", f"A layer with the activation {f} applied entry by entry, summed.",
                f"sum({f}(W*x + b))", {"W": (n, d), "x": (d,), "b": (n,)}, [wrt], hint=_function_fact(f))


def t_weighted_activation(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    f = _function(rng, level)
    return Spec(f"Rule 7 then Rule 3: a'·{f}(W·x)", f"An activation {f}, read out by a fixed vector a.",
                f"a'*{f}(W*x)", {"a": (n,), "W": (n, d), "x": (d,)}, [rng.choice(["W", "x"])],
                hint=_function_fact(f))


def t_entrywise(rng, level):
    n, d, _ = _dims(rng, _square(rng, level))
    f = _function(rng, level)
    return Spec(f"Rule 7 on a matrix: {f}(X)", f"{f} applied to every entry of X, weighted by a fixed C.",
                f"sum(C .* {f}(X))", {"C": (n, d), "X": (n, d)}, ["X"], hint=_function_fact(f))


def t_composition(rng, level):
    n, d, _ = _dims(rng, False)
    f = _function(rng, level, avoid="relu")
    g = _function(rng, level, avoid=f)
    return Spec(f"Rule 7 twice: {f}({g}(·))", f"Two activations in a row, {g} then {f}.",
                f"sum({f}({g}(W*x)))", {"W": (n, d), "x": (d,)}, ["W"],
                hint=" ".join(filter(None, [_function_fact(f), _function_fact(g)])))


# losses: MSE, BCE, softmax CE and the (A − Y)/m shortcut

def t_mse(rng, level):
    k, d, m = _dims(rng, False)
    wrt = rng.choice(["W", "b"])
    return Spec("Mean squared error of a linear layer", "A linear layer Z = W·X + b·1ᵀ fitted to targets Y with "
                "the article's mean squared error 1/(2m)·Σ‖A − Y‖².",
                f"sum((W*X + b*ones({m})' - Y).^2)/(2*{m})", {"W": (k, d), "X": (d, m), "b": (k,), "Y": (k, m)},
                [wrt], hint="With the identity output, ∂l/∂Z = (A − Y)/m.")


def t_bce(rng, level):
    k, d, m = _dims(rng, False)
    wrt = rng.choice(["W", "b"])
    z = f"W*X + b*ones({m})'"
    return Spec("Binary cross-entropy with a sigmoid output", "A sigmoid layer A = σ(W·X + b·1ᵀ) scored by binary "
                "cross-entropy against labels Y.",
                f"-sum(Y .* log(sigmoid({z})) + (1 - Y) .* log(1 - sigmoid({z})))/{m}",
                {"W": (k, d), "X": (d, m), "b": (k,), "Y": (k, m)}, [wrt],
                hint="With a sigmoid output and binary cross-entropy, ∂l/∂Z = (A − Y)/m.")


def t_softmax(rng, level):
    k, d, m = _dims(rng, False)
    wrt = rng.choice(["W", "b"])
    return Spec("Softmax and cross-entropy, one-hot labels", "A softmax layer scored by cross-entropy against "
                "one-hot labels Y (each column of Y sums to 1).",
                f"-sum(Y .* log(softmax(W*X + b*ones({m})')))/{m}",
                {"W": (k, d), "X": (d, m), "b": (k,), "Y": (k, m)}, [wrt], assume={"Y": "onehot"},
                hint="For softmax with cross-entropy and one-hot labels, ∂l/∂Z = (A − Y)/m.")


def t_shortcut(rng, level):
    k, _, m = _dims(rng, False)
    kind = rng.choice(["softmax", "sigmoid", "identity"])
    if kind == "softmax":
        loss, assume = f"-sum(Y .* log(softmax(Z)))/{m}", {"Y": "onehot"}
    elif kind == "sigmoid":
        loss, assume = f"-sum(Y .* log(sigmoid(Z)) + (1 - Y) .* log(1 - sigmoid(Z)))/{m}", {}
    else:
        loss, assume = f"sum((Z - Y).^2)/(2*{m})", {}
    return Spec(f"The (A − Y)/m shortcut: {kind} output", f"The {kind} output layer A of a network and its "
                "matching loss, as a function of the pre-activation Z.", loss, {"Z": (k, m), "Y": (k, m)}, ["Z"],
                assume=assume, hint="The article derives one shortcut for all three matching pairs.")


# networks: the article's networks I, II and III, as programs

def t_network_one(rng, level):
    f = _function(rng, level)
    wrts = ["w2", "b2"] if level == "intro" else ["w1", "b1", "w2", "b2"]
    loss = f"z1 = w1*x + b1\na1 = {f}(z1)\nz2 = w2*a1 + b2\nl = (z2 - y)^2/2"
    return Spec(f"Network I: one data point, one feature ({f})", "Network I of the article: every quantity a "
                "scalar, a regression loss. Your answers may use z1, a1 and z2.", loss,
                {k: () for k in ("w1", "x", "b1", "w2", "b2", "y")}, wrts, hint=_function_fact(f))


def t_network_two(rng, level):
    f = _function(rng, level)
    wrts = ["w2", "b2"] if level == "intro" else ["W1", "b1", "w2", "b2"]
    loss = (f"z1 = W1*x + b1\na1 = {f}(z1)\nz2 = w2'*a1 + b2\na2 = sigmoid(z2)\n"
            "l = -(y*log(a2) + (1 - y)*log(1 - a2))")
    return Spec(f"Network II: one data point, binary classification ({f})", "Network II of the article: one "
                "data point x, a hidden layer, a sigmoid output and binary cross-entropy. Your answers may use "
                "z1, a1, z2 and a2.", loss,
                {"x": ("d",), "W1": ("h", "d"), "b1": ("h",), "w2": ("h",), "b2": (), "y": ()}, wrts,
                hint=_function_fact(f))


def t_network_three(rng, level):
    f = _function(rng, level)
    wrts = ["W2", "b2"] if level == "intro" else ["W1", "b1", "W2", "b2"]
    loss = (f"Z1 = W1*X + b1*ones(m)'\nA1 = {f}(Z1)\nZ2 = W2*A1 + b2*ones(m)'\nA2 = softmax(Z2)\n"
            "l = -sum(Y .* log(A2))/m")
    return Spec(f"Network III: m data points, softmax output ({f})", "Network III of the article: m data points "
                "in the columns of X, one-hot labels Y, biases broadcast across the columns. Your answers may use "
                "Z1, A1, Z2 and A2.", loss,
                {"X": ("d", "m"), "W1": ("h", "d"), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",), "Y": ("k", "m")},
                wrts, assume={"Y": "onehot"}, hint=_function_fact(f))


# graph: numeric computational graphs (articles 001 and 004)

def _ints(rng, k, low=-5, high=5) -> list:
    out = []
    while len(out) < k:
        v = rng.randint(low, high)
        if v != 0 and v not in out:
            out.append(v)
    return out


def _graph_spec(title, prompt, loss, draw, wrts, mode, hint):
    """A numeric graph at inputs ``draw()`` gives, redrawn until every node and every gradient asked
    for is clearly non-zero and the gradients differ (so no slip can land on the key by chance)."""
    from .api import graph
    for _ in range(50):
        values = draw()
        g = graph(loss, at=values, mode="reverse")
        grads = [g.grad(w) for w in wrts]
        nodes = [n.value for n in g.nodes if n.kind == "operation"]
        if all(abs(v) >= 0.05 for v in grads + nodes):
            return Spec(title, prompt, loss, {}, wrts, at=values, mode=mode, hint=hint, graph=_graph_lines(g))
    raise MatcalcError(f"no inputs for {loss} give clear gradients")


def _graph_lines(g) -> list:
    """(name, definition, forward value, input names) of every operation node, in topological
    order, the way the articles draw a graph; the inputs are the leaves' names or earlier nodes'."""
    names, out, k = {}, [], 0
    for n in g.nodes:
        if n.kind != "operation":
            names[n.index] = n.label
            continue
        k += 1
        names[n.index] = "f" if n is g.nodes[-1] else f"q{k}"
        out.append((names[n.index], _node_definition(n, names), float(n.value),
                    tuple(names[i] for i in dict.fromkeys(n.inputs))))
    return out


def _node_definition(node, names) -> str:
    inputs = [names[i] for i in node.inputs]
    if node.op in ("+", "-", "*", "/", "^") and len(inputs) == 2:
        return f"{inputs[0]} {node.op} {inputs[1]}"
    if node.op == "neg":
        return f"-{inputs[0]}"
    return f"{node.op}({', '.join(inputs)})"


def t_add_multiply(rng, level):
    return _graph_spec("A computational graph: (x + y)·z", "The first graph of article 004.", "(x + y)*z",
                       lambda: dict(zip("xyz", _ints(rng, 3))), ["x", "y", "z"], "reverse",
                       "An add gate passes the upstream gradient to both inputs; a multiply gate swaps its inputs.")


def t_paths(rng, level):
    return _graph_spec("Path sums: b feeds two nodes", "Article 001's graph f = (a + b)(b + c): b reaches f along "
                       "two paths.", "(a + b)*(b + c)", lambda: dict(zip("abc", _ints(rng, 3))), ["b", "a"], "paths",
                       "∂e/∂b is the sum over every path from b to e of the product of the edge derivatives.")


def t_gates(rng, level):
    k = rng.choice([2, 3])
    return _graph_spec("Gate patterns: add, multiply, max", "CS231n's gate patterns in one graph.",
                       f"{k}*(x*y + max(z, w))", lambda: dict(zip("xyzw", _ints(rng, 4))), ["x", "y", "z"],
                       "reverse",
                       "Add distributes, multiply swaps, max routes the gradient to the larger input only.")


def t_neuron(rng, level):
    return _graph_spec("The sigmoid neuron", "Article 004's neuron f = σ(w0·x0 + w1·x1 + w2), node by node.",
                       "1/(1 + exp(-(w0*x0 + w1*x1 + w2)))",
                       lambda: dict(zip(("w0", "x0", "w1", "x1", "w2"), _ints(rng, 5, -3, 3))), ["w0", "x0", "w2"],
                       "reverse",
                       "As one sigmoid gate, the local gradient is σ(1 − σ).")


def t_forward_mode(rng, level):
    loss = rng.choice(["(a*b + b)*(b - c)", "(a + b*b)*c + b", "max(a, b)*(b + c)"])
    return _graph_spec("Forward mode: one input, every node", "Forward mode carries ∂node/∂b from the inputs to "
                       "the output in one pass.", loss, lambda: dict(zip("abc", _ints(rng, 3, -4, 4))), ["b"],
                       "forward",
                       "Seed ∂b/∂b = 1 and ∂a/∂b = ∂c/∂b = 0, then each node combines its inputs' tangents "
                       "with its local gradients.")


# cookbook: trace, det, inv, quadratic forms

def t_trace(rng, level):
    n = rng.choice(["n", "k", "p"])
    loss = rng.choice(["tr(A*X)", "tr(X*A)", "tr(A*X')"] if level == "intro" else
                      ["tr(A*X)", "tr(X*A)", "tr(A*X')", "tr(A*X*B)", "tr(X'*A*X)", "tr(X*A*X')"])
    shapes = {"A": (n, n), "X": (n, n)}
    if "B" in loss:
        shapes["B"] = (n, n)
    return Spec("Matrix Cookbook: traces", "A trace of products of square matrices.", loss, shapes, ["X"],
                hint="Write the trace entry by entry, tr(M) = Σᵢ M_ii, or walk back from G = I at the trace.")


def t_determinant(rng, level):
    n = rng.choice(["n", "k", "p"])
    loss = rng.choice(["logdet(X)", "det(X)"] if level == "intro" else
                      ["logdet(X)", "det(X)", "logdet(A*X)", "det(X)^2", "logdet(X'*X)"])
    shapes = {"X": (n, n)}
    if "A" in loss:
        shapes["A"] = (n, n)
    return Spec("Matrix Cookbook: determinants", "A determinant of a square (invertible) matrix.", loss, shapes,
                ["X"], hint="Jacobi's formula: d det(X) = det(X)·tr(X⁻¹·dX); match it with dl = tr(Gᵀ·dX).")


def t_inverse(rng, level):
    n = rng.choice(["n", "k", "p"])
    loss = rng.choice(["a'*inv(X)*b", "tr(inv(X)*A)"] if level != "advanced" else
                      ["a'*inv(X)*b", "tr(inv(X)*A)", "tr(A*inv(X)*B)"])
    shapes = {"X": (n, n), "a": (n,), "b": (n,)} if "a'" in loss else {"X": (n, n), "A": (n, n)}
    if "B" in loss:
        shapes["B"] = (n, n)
    return Spec("Matrix Cookbook: the inverse", "A scalar through the inverse of a square matrix.", loss, shapes,
                ["X"], hint="d(X⁻¹) = −X⁻¹·dX·X⁻¹.")


def t_quadratic(rng, level):
    n = rng.choice(["n", "k", "p"])
    loss = rng.choice(["x'*A*x", "x'*A*x + b'*x"] if level == "intro" else
                      ["x'*A*x", "x'*A*x + b'*x", "(x - c)'*A*(x - c)", "x'*A'*A*x"])
    shapes = {"x": (n,), "A": (n, n)}
    for v in ("b", "c"):
        if f"{v}'" in loss or f"- {v})" in loss:
            shapes[v] = (n,)
    return Spec("Matrix Cookbook: quadratic forms", "A quadratic form in x (A is not assumed symmetric).", loss,
                shapes, ["x"], hint="x appears twice in a quadratic form: both occurrences contribute.")


# hessians

def t_hessian_quadratic(rng, level):
    n = rng.choice(["n", "k", "p"])
    loss = rng.choice(["x'*A*x", "x'*A*x/2 + b'*x", "x'*A*x + c*x'*x"])
    shapes = {"x": (n,), "A": (n, n)}
    if "b'" in loss:
        shapes["b"] = (n,)
    if "c*" in loss:
        shapes["c"] = ()
    return Spec("Hessian of a quadratic form", "The curvature of a quadratic form.", loss, shapes, ["x"], order=2,
                hint="The Hessian of x'·A·x is symmetric even when A is not.")


def t_hessian_least_squares(rng, level):
    n, d, _ = _dims(rng, False)
    ridge = level != "intro" and rng.random() < 0.5
    loss = "sum((A*x - b).^2)" + (" + c*x'*x" if ridge else "")
    shapes = {"A": (n, d), "x": (d,), "b": (n,)}
    if ridge:
        shapes["c"] = ()
    return Spec("Hessian of least squares" + (" with a ridge" if ridge else ""), "The curvature of a linear "
                "least-squares fit (the normal equations' matrix).", loss, shapes, ["x"], order=2,
                hint="Differentiate the gradient 2·Aᵀ(A·x − b) once more.")


def t_hessian_logistic(rng, level):
    n, d, _ = _dims(rng, False)
    return Spec("Hessian of logistic regression", "Logistic regression's loss in the weights w (the data in the "
                "columns of X, labels y).", "sum(softplus(X'*w)) - y'*X'*w", {"X": (d, n), "w": (d,), "y": (n,)},
                ["w"], order=2, hint="softplus′ = σ and σ′ = σ(1 − σ); the gradient is X·(σ(Xᵀw) − y).")


TEMPLATES = {
    "shapes": {"s-outer": t_outer, "s-sandwich": t_sandwich, "s-column": t_column},
    "rules": {"r-column": t_rule_column, "r-row": t_rule_row, "r-matrix": t_rule_matrix, "r-chain": t_rule_chain,
              "r-mse": t_rule_mse},
    "elementwise": {"e-layer": t_activation, "e-readout": t_weighted_activation, "e-matrix": t_entrywise,
                    "e-twice": t_composition},
    "losses": {"l-mse": t_mse, "l-bce": t_bce, "l-ce": t_softmax, "l-shortcut": t_shortcut},
    "networks": {"n-one": t_network_one, "n-two": t_network_two, "n-three": t_network_three},
    "graph": {"g-addmul": t_add_multiply, "g-paths": t_paths, "g-gates": t_gates, "g-neuron": t_neuron,
              "g-forward": t_forward_mode},
    "cookbook": {"c-trace": t_trace, "c-det": t_determinant, "c-inv": t_inverse, "c-quad": t_quadratic},
    "hessians": {"h-quad": t_hessian_quadratic, "h-lsq": t_hessian_least_squares, "h-logistic": t_hessian_logistic},
}


def exercise_from_note(note: str, level: str, number: int = 1) -> Exercise:
    """The exercise a note names ("r-matrix-07c3"): its template and sub-seed regenerate it."""
    template, _, hexseed = note.rpartition("-")
    topic = next((t for t, names in TEMPLATES.items() if template in names), None)
    try:
        seed = int(hexseed, 16)
    except ValueError:
        seed = None
    if topic is None or seed is None:
        raise MatcalcError(f"expected an exercise note such as 'r-matrix-07c3', got {note[:40]!r}")
    return make_exercise(topic, seed, level, number, template)


__all__ = ["worksheet", "Worksheet", "Exercise", "Part", "make_exercise", "self_test", "exercise_from_note",
           "equivalent_forms", "TOPICS", "LEVELS"]
