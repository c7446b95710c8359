"""Newton's method for logistic regression, with the gradient and the Hessian that
matcalc derives, checks and compiles to NumPy.

    l(w) = −Σ [y log σ(Xw) + (1 − y) log(1 − σ(Xw))]
    ∂l/∂w   = Xᵀ(σ(Xw) − y)
    ∂²l/∂w² = Xᵀ diag(σ(Xw) ⊙ (1 − σ(Xw))) X

A Newton step solves H·Δ = ∇l and moves w to w − Δ; near the optimum the error
squares every step (quadratic convergence), which the printed gradient norms show.
The same problem by gradient descent needs thousands of steps.
"""

import numpy as np

import matcalc
from matcalc.codegen import hessian_code

LOSS = "-sum(y.*log(sigmoid(X*w)) + (1-y).*log(1-sigmoid(X*w)))"

h = matcalc.hessian(LOSS, wrt="w")
assert str(h) == "X.T*diag(sigmoid(X*w).*(1 - sigmoid(X*w)))*X"
assert h.verify().ok and h.first.verify().ok
print(f"∂l/∂w   = {h.first}")
print(f"∂²l/∂w² = {h}")

module: dict = {}
exec(compile(hessian_code([h]), "<matcalc hessian_code>", "exec"), module)
f_and_grad, hessian = module["f_and_grad"], module["hessian"]

# Overlapping classes (so the optimum is finite): 400 samples, 5 features and a bias column.
rng = np.random.default_rng(0)
m, d = 400, 6
X = np.hstack([rng.standard_normal((m, d - 1)), np.ones((m, 1))])
w_true = rng.standard_normal((d, 1))
y = (rng.random((m, 1)) < 1 / (1 + np.exp(-X @ w_true))).astype(float)

errors = module["check_hessian"](X=X, w=np.zeros((d, 1)), y=y)
assert max(errors.values()) < 1e-5, errors

w = np.zeros((d, 1))
norms = []
for step in range(8):
    value, grads = f_and_grad(X=X, w=w, y=y)
    g = grads["w"]
    norms.append(float(np.linalg.norm(g)))
    print(f"step {step}: l = {value:.10f}   |∂l/∂w| = {norms[-1]:.3e}")
    if norms[-1] < 1e-10:
        break
    w = w - np.linalg.solve(hessian(X=X, w=w, y=y), g)

assert norms[-1] < 1e-10, "Newton's method converges in a handful of steps"
close = [(a, b) for a, b in zip(norms, norms[1:]) if a < 1 and b > 1e-12]
assert close and all(b < a * a for a, b in close), "near the optimum each step squares the error"

# The optimum agrees with an independent NumPy Newton iteration written from the formulas above.
v = np.zeros((d, 1))
for _ in range(25):
    s = 1 / (1 + np.exp(-X @ v))
    v -= np.linalg.solve(X.T @ (s * (1 - s) * X), X.T @ (s - y))
assert np.allclose(w, v, atol=1e-8)
print(f"w = {np.round(w.ravel(), 4)} (an independent NumPy Newton iteration agrees)")
