"""The norms of dL/dh^(t) against the distance T - t, from the generated gradients
(the numbers of the sheet's plot of vanishing and exploding gradients).

The loss is read at the last step only, through a fixed upstream gradient g of the
output (the linear surrogate of Problem 3: L = g^T o^(T)), so that dL/dh^(t) is what
step T sends back over T - t steps. It is computed for each distance k as dL/dh^(0)
of the first k steps (the generated ``grads["h0"]``); W = rho Q for a random
orthogonal Q has spectral radius rho.
"""
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

__all__ = ["NORMS", "NormCurves", "gradient_norms"]

NORMS = dict(rhos=(0.8, 1.25), steps=25, sizes=(8, 3, 3), input_scale=1e-3, seed=1)


@dataclass
class NormCurves:
    """The curves, and the experiment that made them."""
    curves: list          # [SimpleNamespace(rho, points=[(k, ||dL/dh^(T-k)||), ...]), ...]
    steps: int
    sizes: dict           # the cell's size symbol -> its value
    input_scale: float
    recurrent: str        # the name of the state-to-state matrix

    def __iter__(self):
        return iter(self.curves)

    def __len__(self):
        return len(self.curves)

    def __getitem__(self, k):
        return self.curves[k]


def problem(cell, rho, steps, sizes, input_scale, seed, recurrent="W"):
    """The parameters, inputs and upstream gradient of the experiment (one seed)."""
    dims = dict(zip(cell.sizes, sizes))
    rng = np.random.default_rng(seed)
    shape = lambda sym: tuple(int(d.subs(dims)) for d in (sym.shape[:1] if sym.shape[1] == 1
                                                          else sym.shape))
    params = {p.name: rng.normal(size=shape(p)) / np.sqrt(shape(p)[-1]) for p in cell.params}
    q, _ = np.linalg.qr(rng.normal(size=shape(cell.param(recurrent))))
    params[recurrent] = rho * q
    x = input_scale * rng.normal(size=(steps,) + shape(cell.inputs[0]))
    g = rng.normal(size=shape(cell.targets[0]))
    return params, x, g / np.linalg.norm(g)


def gradient_norms(derivation, rhos=NORMS["rhos"], steps=NORMS["steps"], sizes=NORMS["sizes"],
                   input_scale=NORMS["input_scale"], seed=NORMS["seed"], recurrent="W"):
    """:class:`NormCurves`: a sequence of ``SimpleNamespace(rho, points=[(k,
    ||dL/dh^(T-k)||), ...])``, one per rho, with the experiment's settings.

    ``derivation`` is of a cell with one state whose loss is g^T o, g its target
    (``ElmanRNN(output="upstream")``); ``recurrent`` names the state-to-state matrix.
    """
    cell = derivation.cell
    f = derivation.lambdify()
    (state,) = [s for s in cell.states]
    curves = []
    for rho in rhos:
        params, x, g = problem(cell, rho, steps, sizes, input_scale, seed, recurrent)
        h0 = np.zeros(params[recurrent].shape[0])
        points = []
        for k in range(1, steps + 1):
            upstream = np.zeros((k, g.size))
            upstream[-1] = g
            _, grads = f(params, x[:k], upstream, **{f"{state.name}0": h0})
            points.append((k, float(np.linalg.norm(grads[f"{state.name}0"]))))
        curves.append(SimpleNamespace(rho=rho, points=points))
    return NormCurves(curves, steps, dict(zip(cell.sizes, sizes)), input_scale, recurrent)
