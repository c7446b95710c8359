"""Article 000's networks I, II and III: every gradient in closed form, checked."""

import matcalc

NETWORKS = {
    "I (scalars, regression)": (
        "(w2*relu(w1*x + b1) + b2 - y)^2/2",
        {n: () for n in ("w1", "b1", "w2", "b2", "x", "y")}),
    "II (one point, sigmoid output, BCE)": (
        "-sum(y .* log(sigmoid(w2'*tanh(W1*x + b1) + b2)) + (1 - y) .* log(1 - sigmoid(w2'*tanh(W1*x + b1) + b2)))",
        {"x": ("nx",), "W1": ("h", "nx"), "y": ()}),
    "III (m points, softmax output, cross-entropy)": (
        "-sum(Y .* log(softmax(W2*relu(W1*X + b1*ones(m)') + b2*ones(m)')))/m",
        {"X": ("nx", "m"), "W1": ("h", "nx"), "W2": ("K", "h")}),
}

for title, (loss, shapes) in NETWORKS.items():
    print(f"Network {title}\n  l = {loss}")
    wrt = [n for n in ("w1", "W1", "b1", "w2", "W2", "b2") if n in loss.replace("'", " ")]
    for name, d in matcalc.grad(loss, wrt=wrt, shapes=shapes).items():
        report = d.verify()
        print(f"  ∂l/∂{name} = {d}\n      {' → '.join(s.rule_id for s in d.steps)}   verified: {report.ok}")
        assert report.ok, str(report)
