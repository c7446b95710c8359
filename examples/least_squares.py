"""Least squares: ∂/∂W ‖WX − Y‖², derived, explained, verified and evaluated."""

import numpy as np

import matcalc

d = matcalc.grad("sum((W*X - Y).^2)", wrt="W", shapes={"W": ("n", "d"), "X": ("d", "m"), "Y": ("n", "m")})
print("∂l/∂W =", d)
for step in d.steps:
    print(f"  {step.rule_id:>4}  {step.rule_name:<28} G = {step.upstream}")
report = d.verify()
print(report)
assert report.ok and str(d) == "2*(W*X - Y)*X.T"

rng = np.random.default_rng(0)
W, X, Y = rng.standard_normal((2, 3)), rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
value = d.evaluate({"W": W, "X": X, "Y": Y})
assert np.allclose(value, 2 * (W @ X - Y) @ X.T)
print("evaluated at random 2×3, 3×5, 2×5 values: matches NumPy")
