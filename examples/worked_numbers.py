"""The worked numbers of articles 001 and 004, reproduced by evaluating closed forms."""

import numpy as np

import matcalc


def at(loss, values):
    ds = matcalc.grad(loss, wrt=list(values), shapes={k: () for k in values})
    return {k: round(float(d.evaluate(values)), 2) for k, d in ds.items()}


print("(x + y)·z at x=-2, y=5, z=-4:", g1 := at("(x + y)*z", {"x": -2, "y": 5, "z": -4}))
assert g1 == {"x": -4, "y": -4, "z": 3}
print("(a + b)(b + 1) at a=2, b=1:", g2 := at("(a + b)*(b + 1)", {"a": 2, "b": 1}))
assert g2 == {"a": 2, "b": 5}
neuron = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
print("sigmoid neuron:", g3 := at("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", neuron))
assert g3 == {"w0": -0.2, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.2}
print("2(xy + max(z, w)):", g5 := at("2*(x*y + max(z, w))", {"x": 3, "y": -4, "z": 2, "w": -1}))
assert g5 == {"x": -8, "y": 6, "z": 2, "w": 0}

W, x = np.array([[0.1, 0.5], [-0.3, 0.8]]), np.array([[0.2], [0.4]])
ds = matcalc.grad("norm2(W*x)^2", wrt=["W", "x"], shapes={"W": (2, 2), "x": (2, 1)})
print("‖Wx‖²: ∂/∂W =", ds["W"], "=", ds["W"].evaluate({"W": W, "x": x}).round(3).tolist())
print("       ∂/∂x =", ds["x"], "=", ds["x"].evaluate({"W": W, "x": x}).round(3).ravel().tolist())
assert np.allclose(ds["W"].evaluate({"W": W, "x": x}), [[0.088, 0.176], [0.104, 0.208]])
assert np.allclose(ds["x"].evaluate({"W": W, "x": x}), [[-0.112], [0.636]])

U = np.array([[0.2, 0.8], [0.5, 0.5], [0.7, 0.3], [0.9, 0.1]])
Wp = np.array([[1, 2, 3], [4, 5, 6]])
J = matcalc.jacobian("U*(W*S)", wrt="S", shapes={"U": (4, 2), "W": (2, 3), "S": (3, 1)})
value = J.evaluate({"U": U, "W": Wp, "S": np.ones((3, 1))})
print("portfolio: ∂F/∂S =", J, "=\n", value)
assert str(J) == "U*W" and np.isclose(value[0, 0], 3.4)
