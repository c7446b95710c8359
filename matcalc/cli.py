"""The ``matcalc`` command: a thin view of the API.  It parses arguments, calls
the API, renders, and maps MatcalcError to exit code 2 with no traceback."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import List, Optional

import typer
from typer.core import TyperGroup

try:                                                # typer 0.26-0.28 vendor click as typer._click
    from typer._click import exceptions as _usage
except ImportError:                                 # pragma: no cover - a typer that uses click itself
    from click import exceptions as _usage

from . import __version__
from .errors import MatcalcError, OracleLimitError, ShapeError


class _Commands(TyperGroup):
    """matcalc's command group: a usage mistake (an unknown option, a missing --wrt, a bad
    --seed) is reported like every other bad input, as one 'error:' line, a hint and exit 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = _expression_last(list(sys.argv[1:] if args is None else args))
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _usage.NoArgsIsHelpError as e:
            typer.echo(e.ctx.get_help() if e.ctx else "matcalc: see --help")
            sys.exit(0)
        except _usage.UsageError as e:
            _usage_error(e)
            sys.exit(2)
        except _ABORT:
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


_ABORT = tuple(c for c in (getattr(_usage, "Abort", None), KeyboardInterrupt, BrokenPipeError) if c)


_OPTION = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*(=.*)?$")


def _expression_last(args: list) -> list:
    """A loss that starts with a minus sign ("-sum(...)/m") is no option: put it after '--', so that
    the option parser does not read it as a cluster of short options."""
    if "--" in args:
        return args
    for i, arg in enumerate(args):
        if arg.startswith("-") and len(arg) > 1 and not _OPTION.match(arg) and not _is_option_value(args, i):
            return args[:i] + args[i + 1:] + ["--", arg]
    return args


def _is_option_value(args: list, i: int) -> bool:
    """args[i] is the value of the option before it (--shape W=-1 is not a loss)."""
    return i > 0 and args[i - 1].startswith("-") and _OPTION.match(args[i - 1]) is not None \
        and "=" not in args[i - 1] and args[i - 1] not in _FLAGS


_FLAGS = {"--hessian", "--steps", "--no-steps", "--verify", "--no-verify", "--explain", "--program", "--expand", "--help",
          "--version", "--answers", "--no-answers"}


def _usage_error(e: _usage.UsageError) -> None:
    from .render import console, error_view
    command = e.ctx.command_path if e.ctx is not None else "matcalc"
    error = MatcalcError(" ".join(e.format_message().split()),
                         hint=f"run '{command.replace('root', 'matcalc')} --help' for the options and an example")
    console(stderr=True).print(error_view(error), soft_wrap=True)


app = typer.Typer(cls=_Commands, add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Symbolic matrix calculus that shows its work: ∂l/∂W in closed form, "
                       "with the rules used, checked against the element-wise Jacobian.")

JSON_SCHEMA = "matcalc.derivation/1"


def _version(value: bool):
    if value:
        typer.echo(f"matcalc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")):
    """matcalc: derive, explain and verify matrix gradients."""


def parse_shapes(specs: List[str], scalars: List[str]) -> dict:
    """``W=n,d``, ``x=3`` (a column), ``lam=`` (a scalar) -> the API's shapes dict."""
    shapes = {}
    for spec in specs:
        name, eq, dims = spec.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ShapeError(f"expected --shape NAME=ROWS,COLS, got {_clip(spec)!r}",
                             hint="for example --shape W=n,d, --shape x=3 or --shape lam=")
        parts = [d.strip() for d in dims.replace("×", ",").split(",")] if dims.strip() else []
        if len(parts) > 2 or any(not p for p in parts):
            raise ShapeError(f"expected at most two dimensions for {_clip(name)}, got {_clip(dims)!r}",
                             hint="write --shape W=n,d")
        if name in shapes:
            raise ShapeError(f"expected one --shape for {_clip(name)}, got two",
                             hint="give each variable's shape once")
        shapes[name] = tuple(_dimension(p, name) for p in parts)
    for name in scalars:
        if name in shapes and shapes[name] != ():
            raise ShapeError(f"{_clip(name)} is given a shape with --shape and declared a scalar with --scalar",
                             hint="keep one of the two")
        shapes[name] = ()
    return shapes


def _dimension(text: str, name: str):
    """A dimension as typed: a positive whole number (ASCII digits) or a name."""
    if text.isascii() and text.isdigit():
        if len(text) > 10 or int(text) < 1:
            raise ShapeError(f"expected a dimension between 1 and 1,000,000,000 for {_clip(name)}, "
                             f"got {_clip(text)}", hint="write --shape W=3,4 or --shape W=n,d")
        return int(text)
    return text


def parse_assume(specs: List[str]) -> dict:
    """``Y=onehot``, ``S=symmetric`` -> the API's assume dict."""
    out = {}
    for spec in specs:
        name, eq, kind = spec.partition("=")
        if not eq or not name.strip() or not kind.strip():
            raise MatcalcError(f"expected --assume NAME=KIND, got {_clip(spec)!r}",
                               hint="for example --assume Y=onehot or --assume S=symmetric")
        out[name.strip()] = kind.strip()
    return out


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def parse_sizes(text: Optional[str]) -> Optional[dict]:
    if not text:
        return None
    sizes = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        value = value.strip()
        if not eq or not value.isascii() or not value.isdigit() or len(value) > 12 or int(value) < 1:
            raise MatcalcError(f"expected --sizes like n=3,d=2, got {_clip(text)!r}",
                               hint="give each dimension a positive whole size")
        sizes[name.strip()] = int(value)
    return sizes


def _run(action):
    """Run a command; a MatcalcError becomes a clear message and exit code 2."""
    try:
        return action()
    except MatcalcError as error:
        from .render import console, error_view
        console(stderr=True).print(error_view(error), soft_wrap=True)
        raise typer.Exit(2)
    except RecursionError:
        from .render import console
        console(stderr=True).print("error: the expression is nested too deeply to process\n"
                                   "hint: simplify the expression", style="mc.bad", markup=False)
        raise typer.Exit(2)


ShapeOpt = typer.Option(None, "--shape", help="A variable's shape: W=n,d, x=3 (column), lam= (scalar).")
ScalarOpt = typer.Option(None, "--scalar", help="Declare a scalar variable.")
AssumeOpt = typer.Option(None, "--assume", help="Declare what a variable is: Y=onehot, S=symmetric, S=spd.")


# A loss may start with a minus sign ("-sum(...)/m"): let it through as the expression.
EXPR_COMMAND = {"context_settings": {"ignore_unknown_options": True}}


FORMATS = ("text", "latex", "tex", "numpy", "json")


FileOpt = typer.Option(None, "-f", "--file", help="Read the loss (an expression or a program) from a file; - is stdin.")


def read_loss(expr: Optional[str], file: Optional[str]) -> str:
    """The loss as typed, or read from a file or stdin (a program with one statement a line)."""
    from .program import MAX_PROGRAM
    if file is None:
        if expr is None:
            raise MatcalcError("expected a loss: an expression, or -f FILE with a program",
                               hint='for example matcalc grad "sum((W*X - Y).^2)" --wrt W, or matcalc grad -f net.mc --wrt W1')
        return expr
    if expr is not None:
        raise MatcalcError("expected the loss once: as an argument or with -f, not both", hint="drop one of them")
    try:
        if file == "-":
            text = sys.stdin.read(MAX_PROGRAM + 1)
        else:
            with open(file, encoding="utf-8") as handle:
                text = handle.read(MAX_PROGRAM + 1)
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise MatcalcError(f"cannot read the loss from {_clip(file)!r}: {reason}",
                           hint="give a readable text file, or - for stdin") from None
    return text


@app.command(**EXPR_COMMAND)
def grad(expr: Optional[str] = typer.Argument(None, help="The scalar loss, e.g. \"sum((W*X - Y).^2)\", or a program."),
         wrt: List[str] = typer.Option(..., "--wrt", help="Variable(s), or a program's intermediates (Z1), to differentiate by."),
         file: Optional[str] = FileOpt,
         shape: Optional[List[str]] = ShapeOpt, scalar: Optional[List[str]] = ScalarOpt,
         assume: Optional[List[str]] = AssumeOpt,
         format: str = typer.Option("text", "--format", help="text, latex, tex (a standalone document), numpy or json."),
         steps: bool = typer.Option(True, "--steps/--no-steps", help="Show the derivation steps."),
         explain: bool = typer.Option(False, "--explain", help="Explain every step's rule, with its source."),
         program: Optional[bool] = typer.Option(None, "--program/--expand",
                                                help="Show the backprop program, or the expanded closed form "
                                                     "(default: the program when a closed form is long)."),
         verify: bool = typer.Option(True, "--verify/--no-verify",
                                     help="Check against the element-wise Jacobian (exact, small sizes; "
                                          "numeric where that is too big). A failed check exits 1.")):
    """Print ∂l/∂W in closed form, with the steps that derive it, checked.

    Example: matcalc grad "sum((W*X - Y).^2)" --wrt W

    A program (statements Z1 = W1*X + b1*ones(m)', one a line or separated by ;) works too:
    matcalc grad -f net.mc --wrt W1 --wrt b1
    """
    def action():
        from .api import grad as derive
        if format not in FORMATS:
            raise MatcalcError(f"expected --format {', '.join(FORMATS)}, got {_clip(format)!r}",
                               hint="for example --format latex")
        loss = read_loss(expr, file)
        shapes = parse_shapes(shape or [], scalar or [])
        derivations = list(derive(loss, wrt=list(wrt), shapes=shapes, assume=parse_assume(assume or [])).values())
        reports = {d.wrt: d.verify(numeric=False) for d in derivations} if verify else {}
        failed = [r for r in reports.values() if r.failed]
        if failed and format != "text":
            _fail(failed)
        view = "auto" if program is None else ("program" if program else "expand")
        _emit(format, derivations, reports, steps, view, explain)
        if failed:
            _fail(failed)
    _run(action)


def _fail(reports: list, echo: bool = True) -> None:
    """A failed check: its line on stderr, exit code 1, and nothing else emitted."""
    from .render import console
    if echo:
        err = console(stderr=True)
        for report in reports:
            for check in report.checks:
                if not check.ok:
                    what = report.wrt if report.wrt.startswith("∂") else f"∂l/∂{report.wrt}"
                    err.print(f"{what}: {check.line()}", style="mc.bad", markup=False)
    raise typer.Exit(1)


def _emit(format: str, derivations: list, reports: dict, steps: bool, view: str = "auto",
          explain: bool = False) -> None:
    if format in ("latex", "tex"):
        from .latexdoc import latex_block, latex_document
        typer.echo(latex_document(derivations, reports) if format == "tex" else latex_block(derivations))
    elif format == "json":
        typer.echo(json.dumps(derivations_json(derivations, reports), indent=2, ensure_ascii=False))
    elif format == "numpy":
        from .codegen import numpy_code
        typer.echo(numpy_code(derivations))
    else:
        from .render import console, derivation_view
        console().print(derivation_view(derivations, steps=steps, report=reports, view=view, explain=explain))


def derivations_json(derivations: list, reports: dict) -> dict:
    from .printing import shape_text, to_latex, to_text
    first = derivations[0]
    return {
        "schema": JSON_SCHEMA,
        "expression": first.source,
        "loss": to_text(first.loss),
        "loss_latex": to_latex(first.loss),
        "shapes": {name: {"shape": [shape_text((d,)) for d in shp], "inferred": inferred}
                   for name, (shp, inferred) in first.shapes.items()},
        "notices": list(first.graph.notices),
        "gradients": {d.wrt: d.to_dict() for d in derivations},
        "verification": {name: r.to_dict() for name, r in reports.items()},
    }


@app.command(**EXPR_COMMAND)
def jacobian(expr: str = typer.Argument(..., help="A vector or matrix expression, e.g. \"W*x\"."),
             wrt: str = typer.Option(..., "--wrt", help="The variable."),
             shape: Optional[List[str]] = ShapeOpt, scalar: Optional[List[str]] = ScalarOpt,
             assume: Optional[List[str]] = AssumeOpt,
             sizes: Optional[str] = typer.Option(None, "--sizes", help="Concrete sizes for a tensor, e.g. n=2,d=3.")):
    """∂y/∂x in numerator layout (rows follow y): a closed form for vectors (with diag for
    element-wise parts), the explicit Jacobian tensor at small sizes when a matrix is involved.

    Example: matcalc jacobian "softmax(z)" --wrt z
    """
    def action():
        from .api import jacobian as jac
        from .printing import shape_text
        from .render import console
        result = jac(expr, wrt=wrt, shapes=parse_shapes(shape or [], scalar or []), sizes=parse_sizes(sizes),
                     assume=parse_assume(assume or []))
        out = console()
        out.print(f"∂({result.y})/∂{wrt}: y is {shape_text(result.y_shape)}, {wrt} is {shape_text(result.x_shape)}",
                  markup=False)
        if result.expr is not None:
            out.print(f"J = {result}   (numerator layout: rows follow y, columns follow {wrt})", markup=False,
                      style="mc.grad")
        else:
            at = ", ".join(f"{k}={v}" for k, v in result.sizes.items())
            out.print(f"Jacobian tensor of shape {result.tensor.shape} at {at}:", markup=False)
            out.print(_tensor_text(result.tensor), markup=False)
            out.print(result.note, style="mc.muted", markup=False)
    _run(action)


@app.command(**EXPR_COMMAND)
def hessian(expr: Optional[str] = typer.Argument(None, help="The scalar loss, e.g. \"x'*A*x\", or a program."),
            wrt: List[str] = typer.Option(..., "--wrt", help="The variable (∂²l/∂x²), or two of them (∂²l/∂x∂y)."),
            file: Optional[str] = FileOpt,
            shape: Optional[List[str]] = ShapeOpt, scalar: Optional[List[str]] = ScalarOpt,
            assume: Optional[List[str]] = AssumeOpt,
            format: str = typer.Option("text", "--format", help="text, latex, numpy or json."),
            sizes: Optional[str] = typer.Option(None, "--sizes", help="Also show the index form at these sizes, "
                                                                      "e.g. n=2."),
            steps: bool = typer.Option(False, "--steps/--no-steps", help="Show the second walk's steps."),
            verify: bool = typer.Option(True, "--verify/--no-verify",
                                        help="Check against the element-wise second derivatives (exact, small "
                                             "sizes; numeric where that is too big). A failed check exits 1.")):
    """Print the Hessian: as a matrix (vector variables) or a Kronecker/vec form (matrix
    variables) where one exists, and always as the Hessian-vector product H[V], checked.

    Example: matcalc hessian "x'*A*x" --wrt x

    Two variables give the mixed second derivative: matcalc hessian "sum((W*X - Y).^2)" --wrt W --wrt X
    """
    def action():
        from .api import hessian as second
        if format not in HESSIAN_FORMATS:
            raise MatcalcError(f"expected --format {', '.join(HESSIAN_FORMATS)}, got {_clip(format)!r}",
                               hint="for example --format latex")
        loss = read_loss(expr, file)
        h = second(loss, wrt=list(wrt), shapes=parse_shapes(shape or [], scalar or []),
                   assume=parse_assume(assume or []))
        index = h.index(parse_sizes(sizes)) if sizes is not None else None
        report = h.verify(numeric=False) if verify else None
        if report is not None and report.failed:
            _fail([report])
        _emit_hessian(format, h, report, steps, index)
    _run(action)


HESSIAN_FORMATS = ("text", "latex", "numpy", "json")


def _emit_hessian(format: str, h, report, steps: bool, index) -> None:
    if format == "latex":
        typer.echo(h.latex())
    elif format == "json":
        out = {"schema": JSON_SCHEMA, "expression": h.source, **h.to_dict(),
               "verification": report.to_dict() if report is not None else None}
        if index is not None:
            out["index"] = {"sizes": index[1], "shape": list(index[0].shape), "entries": str(index[0].tolist())}
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
    elif format == "numpy":
        from .codegen import hessian_code
        typer.echo(hessian_code([h]))
    else:
        from .render import console, hessian_view
        console().print(hessian_view(h, steps=steps, report=report, index=index))


def _tensor_text(tensor) -> str:
    import sympy as sp
    return sp.pretty(tensor, use_unicode=True) if tensor.rank() <= 2 else str(tensor.tolist())


@app.command(**EXPR_COMMAND)
def verify(expr: str = typer.Argument(..., help="The scalar loss."),
           wrt: List[str] = typer.Option(..., "--wrt", help="Variable(s)."),
           shape: Optional[List[str]] = ShapeOpt, scalar: Optional[List[str]] = ScalarOpt,
           assume: Optional[List[str]] = AssumeOpt,
           sizes: Optional[str] = typer.Option(None, "--sizes", help="Sizes for the exact check, e.g. n=3,d=2."),
           seed: int = typer.Option(0, "--seed", help="Seed of the random points.")):
    """Cross-validate ∂l/∂W against the element-wise Jacobian; exit 1 on a mismatch.

    Example: matcalc verify "x'*A*x" --wrt x --sizes n=4
    """
    def action():
        from .api import grad as derive
        from .render import assumptions_line, console, gradient_line, notices_lines, report_lines
        derivations = derive(expr, wrt=list(wrt), shapes=parse_shapes(shape or [], scalar or []),
                             assume=parse_assume(assume or []))
        out, ok = console(), True
        for d in derivations.values():
            report = d.verify(parse_sizes(sizes), seed=seed)
            if not report.checks:
                raise OracleLimitError(f"no check of ∂l/∂{d.wrt} could run: {report.skipped[-1][1]}",
                                       hint="give smaller sizes with --sizes")
            out.print(gradient_line(d))
            for extra in (notices_lines(d.notices), assumptions_line(d)):
                if extra is not None:
                    out.print(extra)
            out.print(report_lines(report))
            ok = ok and report.ok
        return ok
    if not _run(action):
        raise typer.Exit(1)


@app.command()
def rules(rule_id: Optional[str] = typer.Argument(None, help="Show one operator or rule, with its explanation.")):
    """List the operators (spelling, shape, meaning, gradient) and the fused rules.

    Example: matcalc rules R5     (or: matcalc rules softmax)
    """
    def action():
        from .registry import load
        from .render import console, record_view, rules_view
        table, out = load(), console()
        if rule_id:
            record = table.by_id(rule_id) or next((op for op in table.ops if op.op == rule_id or
                                                   rule_id in op.aliases), None)
            if record is None:
                raise MatcalcError(f"there is no operator or rule {_clip(rule_id)!r}",
                                   hint="run 'matcalc rules' to list them")
            out.print(record_view(record, table))
            return
        out.print(rules_view(table))
    _run(action)


def _number_text(text: str):
    if len(text.lstrip("-").replace(".", "").split("e")[0].split("E")[0]) > 40:
        raise ValueError("too many digits")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _no_constants(text: str):
    raise ValueError(f"{text} is not a number")


def parse_at(items: List[str]) -> dict:
    """``x=-2,y=5`` and ``W=[[0.1,0.5],[-0.3,0.8]]``: numbers, or JSON lists (never eval)."""
    values, parts = {}, []
    for item in items:
        depth, start = 0, 0
        for i, ch in enumerate(item + ","):
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                parts.append(item[start:i])
                start = i + 1
    for part in filter(None, (p.strip() for p in parts)):
        name, eq, text = part.partition("=")
        try:
            value = json.loads(text, parse_int=_number_text, parse_float=_number_text,
                               parse_constant=_no_constants)
            if not isinstance(value, (int, float, list)) or isinstance(value, bool):
                raise ValueError
        except (ValueError, RecursionError):
            raise MatcalcError(f"expected --at NAME=NUMBER or NAME=[[...]] with finite numbers, got {_clip(part)!r}",
                               hint="for example --at x=-2,y=5 or --at 'W=[[0.1,0.5],[-0.3,0.8]]'") from None
        if not eq or not name.strip():
            raise MatcalcError(f"expected --at NAME=VALUE, got {_clip(part)!r}", hint="for example --at x=-2,y=5")
        if name.strip() in values:
            raise MatcalcError(f"expected one value for {_clip(name.strip())}, got two",
                               hint="give each variable once in --at")
        values[name.strip()] = value
    return values


@app.command(name="graph", **EXPR_COMMAND)
def graph_command(expr: str = typer.Argument(..., help="A scalar expression, e.g. \"(x + y)*z\"."),
                  at: List[str] = typer.Option(..., "--at", help="Values: x=-2,y=5,z=-4 or W=[[1,2],[3,4]]."),
                  mode: str = typer.Option("reverse", "--mode", help="reverse, forward or paths."),
                  wrt: Optional[str] = typer.Option(None, "--wrt", help="The input for forward and paths modes."),
                  fuse: Optional[List[str]] = typer.Option(None, "--fuse", help="Merge a gate, e.g. sigmoid."),
                  format: str = typer.Option("text", "--format", help="text, dot, svg or json."),
                  shape: Optional[List[str]] = ShapeOpt):
    """The computational graph with forward values and gradients (articles 001 and 004).

    Example: matcalc graph "(a + b)*(b + 1)" --at a=2,b=1 --mode paths --wrt b
    """
    def action():
        from .api import graph as compute
        from .render import console, graph_dot, graph_view, paths_view
        if format not in ("text", "dot", "svg", "json"):
            raise MatcalcError(f"expected --format text, dot, svg or json, got {format!r}")
        g = compute(expr, parse_at(at), parse_shapes(shape or [], []), mode, wrt, fuse or ())
        if format == "json":
            typer.echo(json.dumps(g.to_dict(), indent=2))
        elif format == "dot":
            typer.echo(graph_dot(g))
        elif format == "svg":
            typer.echo(_svg(graph_dot(g)))
        else:
            out = console()
            out.print(graph_view(g))
            if g.mode == "paths":
                out.print(paths_view(g))
    _run(action)


def _svg(source: str) -> str:
    import graphviz
    try:
        return graphviz.Source(source).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise MatcalcError("--format svg needs the Graphviz 'dot' program, which is not installed",
                           hint="install it (Debian: apt-get install graphviz), or use --format dot") from None


def main() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))
    for stream in (sys.stdout, sys.stderr):      # a terminal that cannot show ∂ gets \u2202, not a crash
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    app(prog_name="matcalc")


# -- teaching: the answer checker, worksheets and grading ----------------------------------------



@app.command(**EXPR_COMMAND)
def check(expr: Optional[str] = typer.Argument(None, help="The scalar loss (an expression, or a program with ;)."),
          wrt: str = typer.Option(..., "--wrt", help="The variable the answer is the gradient for."),
          file: Optional[str] = FileOpt,
          answer: str = typer.Option(..., "--answer", help="The answer, in the matcalc language."),
          shape: Optional[List[str]] = ShapeOpt, scalar: Optional[List[str]] = ScalarOpt,
          assume: Optional[List[str]] = AssumeOpt,
          at: Optional[List[str]] = typer.Option(None, "--at", help="Inputs of a numeric exercise: x=-2,y=5."),
          hessian: bool = typer.Option(False, "--hessian", help="The answer is the Hessian ∂²l/∂wrt²."),
          format: str = typer.Option("text", "--format", help="text or json.")):
    """Check an answer for ∂l/∂W and name the mistake: exit 0 when right, 1 when wrong, 2 when
    the answer (or the loss) cannot be read.

    Example: matcalc check "sum((W*X - Y).^2)" --wrt W --answer "2*(W*X - Y)*X'"

    A network written as a program: matcalc check -f net.mc --wrt W2 --answer "(softmax(Z2) - Y)*A1'/m"
    (the answer may use the program's names Z1, A1, ...).
    """
    def action():
        from .answers import check_answer
        from .render import console
        if format not in ("text", "json"):
            raise MatcalcError(f"expected --format text or json, got {_clip(format)!r}", hint="for example --format json")
        result = check_answer(read_loss(expr, file), wrt, answer,
                              shapes=parse_shapes(shape or [], scalar or []) or None,
                              assume=parse_assume(assume or []) or None, at=parse_at(at) if at else None,
                              order=2 if hessian else 1)
        if format == "json":
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            out = console()
            out.print(result.feedback, style="mc.ok" if result.correct else "mc.bad", markup=False)
            if not result.correct:
                given = result.given_shape or "shapes that do not fit"
                out.print(f"mistake: {result.mistake} · expected {result.expected_shape}, given {given}",
                          style="mc.muted", markup=False)
        return result.correct
    if not _run(action):
        raise typer.Exit(1)


SHEET_FORMATS = ("md", "tex", "pdf", "html", "ipynb")


@app.command(name="worksheet")
def worksheet_command(topic: Optional[List[str]] = typer.Option(None, "--topic",
                                                                help="shapes, rules, elementwise, losses, networks, "
                                                                     "graph, cookbook or hessians (repeatable)."),
                      count: int = typer.Option(10, "--count", help="How many exercises."),
                      seed: int = typer.Option(0, "--seed", help="The sheet's seed: the same seed, the same sheet."),
                      level: str = typer.Option("standard", "--level", help="intro, standard or advanced."),
                      format: str = typer.Option("md", "--format", help="md, tex, pdf, html or ipynb."),
                      answers: bool = typer.Option(False, "--answers/--no-answers",
                                                   help="The teacher edition (keys and worked solutions)."),
                      output: Optional[str] = typer.Option(None, "-o", "--output",
                                                           help="The file to write (a folder with --students)."),
                      students: Optional[str] = typer.Option(None, "--students",
                                                             help="A roster CSV (a column 'id'): one variant each.")):
    """Write a worksheet of generated exercises, every one self-tested (its key verified, equal
    forms accepted, every mutant diagnosed) before it is written.

    Example: matcalc worksheet --topic rules --topic networks --count 10 --seed 3 --format md -o sheet.md
    """
    def action():
        from .worksheets import worksheet
        if format not in SHEET_FORMATS:
            raise MatcalcError(f"expected --format {', '.join(SHEET_FORMATS)}, got {_clip(format)!r}",
                               hint="for example --format md")
        topics = list(topic or ["rules"])
        if students is None:
            sheet = worksheet(topics, count, seed, level)
            _write_sheet(sheet, format, answers, output)
            return
        if output is None:
            raise MatcalcError("expected -o FOLDER with --students (one file per student)",
                               hint="for example --students roster.csv -o sheets/")
        import os
        try:
            os.makedirs(output, exist_ok=True)
        except OSError as e:
            raise MatcalcError(f"expected -o to name a folder for the students' sheets, got {_clip(output)!r}: "
                               f"{e.strerror or e}", hint="for example -o sheets/") from None
        for student, filename in read_roster(students):
            sheet = worksheet(topics, count, seed, level, student)
            _write_sheet(sheet, format, answers, os.path.join(output, f"{filename}.{format}"))
    _run(action)


def _write_sheet(sheet, format: str, answers: bool, output: Optional[str]) -> None:
    from .render import console
    checked = sheet.checked
    summary = (f"{len(sheet.exercises)} exercises, {sheet.points} points, seed {sheet.seed}"
               + (f", student {sheet.student}" if sheet.student is not None else "")
               + f"; self-tested: {checked.get('keys', 0)} keys verified, {checked.get('forms', 0)} equal forms "
                 f"accepted, {checked.get('mutants', 0)} mutants diagnosed")
    if format == "pdf":
        from .sheets import build_pdf
        if output is None:
            raise MatcalcError("expected -o FILE.pdf with --format pdf", hint="for example -o sheet.pdf")
        build_pdf(sheet.render("tex", answers), output)
    elif output is None:
        typer.echo(sheet.render(format, answers), nl=False)
        return
    else:
        try:
            with open(output, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(sheet.render(format, answers))
        except OSError as e:
            raise MatcalcError(f"cannot write {_clip(output)!r}: {e.strerror}", hint="give a writable path") from None
    console(stderr=True).print(f"wrote {output}: {summary}", style="mc.muted", markup=False)


def read_roster(path: str) -> list:
    """(student id, file name) for each row of a roster CSV: the column 'id' (or 'student',
    'student_id'), else the first column."""
    import csv
    from .grading import safe_filename
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MatcalcError(f"cannot read the roster {_clip(path)!r}: {getattr(e, 'strerror', None) or e}",
                           hint="give a CSV file with a column 'id'") from None
    if not rows:
        raise MatcalcError(f"the roster {_clip(path)!r} is empty", hint="give a CSV file with a column 'id'")
    header = [c.strip().lower() for c in rows[0]]
    column = next((header.index(k) for k in ("id", "student_id", "student") if k in header), None)
    body = rows[1:] if column is not None else rows
    column = column or 0
    out, files = [], set()
    for row in body:
        student = row[column].strip() if column < len(row) else ""
        if not student or len(student) > 100:
            raise MatcalcError(f"expected a student id (1-100 characters) in every row of the roster, got {student[:40]!r}")
        filename = safe_filename(student)
        if filename in files:
            raise MatcalcError(f"two students of the roster share the id {student!r} (or its file name)",
                               hint="give each student a distinct id")
        files.add(filename)
        out.append((student, filename))
    return out


@app.command(name="grade")
def grade_command(folder: str = typer.Argument(..., help="A folder of completed worksheet notebooks."),
                  output: Optional[str] = typer.Option(None, "-o", "--output", help="The CSV of scores."),
                  feedback: Optional[str] = typer.Option(None, "--feedback",
                                                         help="The folder of per-student feedback files.")):
    """Grade completed worksheet notebooks: keys re-derived from each notebook's metadata, answers
    read (never run) and checked, edited locked cells reported; writes a CSV and feedback files.

    Example: matcalc grade submissions/ -o grades.csv
    """
    def action():
        import os
        from .grading import grade
        from .render import console
        output_, feedback_ = output or os.path.join(folder, "grades.csv"), feedback or os.path.join(folder, "feedback")
        results = grade(folder, output_, feedback_)
        out = console()
        for r in results:
            flags = (f"   locked cells edited: {', '.join(r.edited)}" if r.edited else "") + \
                    (f"   {'; '.join(r.problems)}" if r.problems else "")
            out.print(f"{r.student}: {r.score:g} / {r.points}{flags}", markup=False)
        out.print(f"wrote {output_} and {len(results)} feedback files in {feedback_}", style="mc.muted", markup=False)
    _run(action)


if __name__ == "__main__":
    main()
