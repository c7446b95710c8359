"""Article 000's rules R0-R7, each on the smallest expression that shows it."""

import matcalc

CASES = [
    # (rule, loss, wrt, shapes, expected closed form)
    ("R1", "sum(tanh(W*x))", "x", {}, "W.T*(1 - tanh(W*x).^2)"),
    ("R2", "sum(tanh(x*W))", "x", {"x": (1, "n")}, "(1 - tanh(x*W).^2)*W.T"),
    ("R3", "sum(tanh(W*x))", "W", {}, "(1 - tanh(W*x).^2)*x.T"),
    ("R4", "sum(tanh(x*W))", "W", {"x": (1, "n")}, "x.T*(1 - tanh(x*W).^2)"),
    ("R5", "sum(exp(W*X))", "W", {}, "exp(W*X)*X.T"),
    ("R6", "sum(exp(W*X))", "X", {}, "W.T*exp(W*X)"),
    ("R7", "sum(sigmoid(X))", "X", {}, "sigmoid(X).*(1 - sigmoid(X))"),
]

print("Rule 1 as a Jacobian: ∂(Wx)/∂x =", matcalc.jacobian("W*x", wrt="x"))
print("Rule 2 as a Jacobian: ∂(xW)/∂x =", matcalc.jacobian("x*W", wrt="x", shapes={"x": (1, "n")}))
for rule, loss, wrt, shapes, expected in CASES:
    d = matcalc.grad(loss, wrt=wrt, shapes=shapes)
    ids = [s.rule_id for s in d.steps]
    ok = d.verify().ok
    print(f"{rule}: ∂({loss})/∂{wrt} = {d}   rules used: {' '.join(ids)}   verified: {ok}")
    assert rule in ids and str(d) == expected and ok
    assert d.shape == d.graph.variables[wrt].shape   # R0: the gradient has the variable's shape
print("R0: every gradient above has its variable's shape")
