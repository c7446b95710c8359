"""The computational-graph examples of articles 001 and 004, with their published numbers."""

import numpy as np

import matcalc
from matcalc.render import compact


def show(g):
    for n in g.nodes:
        print(f"  #{n.index:<2} {n.label:<38} value {compact(n.value):<24} ∇ {compact(n.grad)}")


print("(x + y)·z at x=-2, y=5, z=-4 (article 004)")
g = matcalc.graph("(x + y)*z", at={"x": -2, "y": 5, "z": -4})
show(g)
assert (g.output, g.grad("x"), g.grad("y"), g.grad("z")) == (-12, -4, -4, 3)

print("e = (a + b)(b + 1) at a=2, b=1 (article 001): two paths from b")
p = matcalc.graph("(a + b)*(b + 1)", at={"a": 2, "b": 1}, mode="paths", wrt="b")
for path, product in p.paths:
    print("  path", " → ".join(p.nodes_by_index()[i].label for i in path), "product", product)
assert p.path_sum == 5 == matcalc.graph("(a + b)*(b + 1)", at={"a": 2, "b": 1}).grad("b")

neuron = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
print("sigmoid neuron, fine-grained (article 004)")
g = matcalc.graph("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", at=neuron)
show(g)
assert round(g.output, 2) == 0.73 and round(g.grad("x0"), 2) == 0.39 and round(g.grad("w0"), 2) == -0.20
print("the same neuron with --fuse sigmoid: one gate, local gradient σ(1 − σ)")
fused = matcalc.graph("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", at=neuron, fuse=["sigmoid"])
assert round(list(fused.nodes[-1].local.values())[0], 2) == 0.20

print("‖W·x‖² (article 004)")
g = matcalc.graph("norm2(W*x)^2", at={"W": [[0.1, 0.5], [-0.3, 0.8]], "x": [0.2, 0.4]})
show(g)
assert np.allclose(g.grad("W"), [[0.088, 0.176], [0.104, 0.208]]) and np.allclose(g.grad("x"), [[-0.112], [0.636]])

print("gate patterns 2(xy + max(z, w)) (CS231n)")
g = matcalc.graph("2*(x*y + max(z, w))", at={"x": 3, "y": -4, "z": 2, "w": -1})
show(g)
assert g.output == -20 and [g.grad(v) for v in "xyzw"] == [-8, 6, 2, 0]
