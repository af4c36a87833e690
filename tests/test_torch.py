"""d.torch(): an nn.Module whose backward is the derived BPTT. Checked by
torch.autograd.gradcheck (finite differences of the module's own forward), by
torch.nn.RNN / torch.nn.LSTM with the same weights (PyTorch's own autograd
through its own kernels), and by a few SGD steps on a text-syntax cell."""
import functools
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.autograd import gradcheck  # noqa: E402
from torch.func import functional_call  # noqa: E402

import symrnn  # noqa: E402

pytestmark = pytest.mark.torch

F64 = torch.float64

# a cell no preset covers (a learned scalar rate), shared with test_jax.py and
# benchmarks/bench_frameworks.py
TEXT = (pathlib.Path(__file__).parents[1] / "examples" / "rate.cell").read_text()

# two states, a 1x1 rate, a 1x1 parameter scaling a column and a row, mse
TWO_STATES = """
params: W[D,D] U[D,N] A[D,D] w[1,D] alpha[1] V[M,D] c[M]
input:  x[N]
target: y[M]
state:  h[D] m[D]
k = sigmoid(w @ prev(m))
h = tanh(W @ prev(h) + U @ x + A @ prev(m)) * sigmoid(prev(m))
m = prev(m) + k * (h - prev(m))
o = V @ (h - alpha * m) + c
loss = 0.5 * (o - y).T @ (o - y) + (alpha * h.T) @ m
"""

CELLS = {
    "elman": lambda: symrnn.ElmanRNN(),
    "elman-sigmoid-mse-bias": lambda: symrnn.ElmanRNN("sigmoid", "mse", bias=True),
    "elman-relu-ce-bias": lambda: symrnn.ElmanRNN("relu", "softmax_ce", bias=True),
    "elman-tanh-upstream": lambda: symrnn.ElmanRNN("tanh", "upstream"),
    "lstm": symrnn.LSTM,
    "gru": symrnn.GRU,
    "text": lambda: symrnn.parse_cell(TEXT, name="rate cell"),
    "text-two-states": lambda: symrnn.parse_cell(TWO_STATES, name="two states"),
}


@functools.lru_cache(maxsize=None)
def derivation(name):
    return symrnn.derive(CELLS[name]())


def module(name, D=3, N=2, M=3, seed=0, **options):
    torch.manual_seed(seed)
    return derivation(name).torch(D=D, N=N, M=M, dtype=F64, **options)


def targets(m, T, B, M, gen):
    if m._cell.targets_are_distributions:
        return torch.randint(0, M, (T, B), generator=gen)
    return torch.randn(T, B, M, generator=gen, dtype=F64)


@pytest.mark.parametrize("name", list(CELLS))
def test_gradcheck(name):
    T, B, D, N, M = 3, 2, 3, 2, 3
    m = module(name, D, N, M)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, N, generator=gen, dtype=F64, requires_grad=True)
    y = targets(m, T, B, M, gen)
    if y.is_floating_point():
        y.requires_grad_()
    starts = {f"{s.name}0": torch.randn(B, D, generator=gen, dtype=F64, requires_grad=True)
              for s in m._cell.states}
    keys = [k for k, _ in m.named_parameters()]
    values = [p.detach().clone().requires_grad_() for p in m.parameters()]
    n = len(starts)

    def loss(x, y, *rest):
        return functional_call(m, dict(zip(keys, rest[n:])), (x, y),
                               dict(zip(starts, rest[:n])))

    assert gradcheck(loss, (x, y, *starts.values(), *values), eps=1e-6, atol=1e-7)


def test_agrees_with_torch_nn_rnn():
    T, B, D, N, M = 5, 3, 4, 3, 5
    m = module("elman", D, N, M)
    rnn = torch.nn.RNN(N, D, bias=False, nonlinearity="tanh", dtype=F64)
    V = m.V.detach().clone().requires_grad_()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(m.U)
        rnn.weight_hh_l0.copy_(m.W)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(T, B, N, generator=gen, dtype=F64)
    y = torch.randint(0, M, (T, B), generator=gen)
    h0 = torch.randn(B, D, generator=gen, dtype=F64)
    h0_a, h0_b = h0.clone().requires_grad_(), h0.clone().requires_grad_()

    out, _ = rnn(x, h0_b[None])
    o = out @ V.T
    ref = torch.nn.functional.cross_entropy(o.reshape(-1, M), y.reshape(-1), reduction="sum")
    ref.backward()
    loss = m(x, y, h0=h0_a)
    loss.backward()
    assert abs(loss.item() - ref.item()) <= 1e-10 * abs(ref.item())
    for mine, theirs in ((m.W.grad, rnn.weight_hh_l0.grad), (m.U.grad, rnn.weight_ih_l0.grad),
                         (m.V.grad, V.grad), (h0_a.grad, h0_b.grad)):
        assert torch.allclose(mine, theirs, rtol=0, atol=1e-10)


def test_agrees_with_torch_nn_lstm():
    # torch's gate rows i, f, g, o are symrnn.LSTM()'s input gate g, forget gate
    # f, candidate a (W, U, b) and output gate q; torch's cell state c is s
    T, B, D, N, M = 4, 2, 3, 2, 4
    m = module("lstm", D, N, M)
    rows = ["_g", "_f", "", "_q"]
    lstm = torch.nn.LSTM(N, D, dtype=F64)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.cat([getattr(m, "U" + r) for r in rows]))
        lstm.weight_hh_l0.copy_(torch.cat([getattr(m, "W" + r) for r in rows]))
        b = torch.cat([getattr(m, "b" + r) for r in rows])
        split = torch.rand(4 * D, generator=gen, dtype=F64)
        lstm.bias_ih_l0.copy_(split * b)
        lstm.bias_hh_l0.copy_((1 - split) * b)
    V = m.V.detach().clone().requires_grad_()
    x = torch.randn(T, B, N, generator=gen, dtype=F64)
    y = torch.randint(0, M, (T, B), generator=gen)
    h0, s0 = torch.randn(2, B, D, generator=gen, dtype=F64)

    out, _ = lstm(x, (h0[None], s0[None]))
    ref = torch.nn.functional.cross_entropy((out @ V.T).reshape(-1, M), y.reshape(-1),
                                            reduction="sum")
    ref.backward()
    loss = m(x, y, h0=h0, s0=s0)
    loss.backward()
    assert abs(loss.item() - ref.item()) <= 1e-10 * abs(ref.item())
    for i, r in enumerate(rows):
        part = slice(i * D, (i + 1) * D)
        for name, theirs in (("W", lstm.weight_hh_l0), ("U", lstm.weight_ih_l0),
                             ("b", lstm.bias_ih_l0), ("b", lstm.bias_hh_l0)):
            assert torch.allclose(getattr(m, name + r).grad, theirs.grad[part],
                                  rtol=0, atol=1e-10), name + r
    assert torch.allclose(m.V.grad, V.grad, rtol=0, atol=1e-10)


def test_layouts_give_the_same_loss_and_gradients():
    T, B, D, N, M = 4, 3, 3, 2, 3
    m = module("text", D, N, M)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(T, B, N, generator=gen, dtype=F64)
    y = torch.randint(0, M, (T, B), generator=gen)
    h0 = torch.randn(D, generator=gen, dtype=F64)

    def run(model, *args, **kw):
        model.zero_grad()
        loss = model(*args, **kw)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    base = run(m, x, y, h0=h0)
    first = module("text", D, N, M, batch_first=True)
    first.load_state_dict(m.state_dict())
    for other in (run(first, x.transpose(0, 1), y.transpose(0, 1), h0),        # (B, T, N)
                  run(m, x, y, h0.expand(B, D)),                                # h0 (B, D)
                  run(m, x, torch.nn.functional.one_hot(y, M).to(F64), h0)):    # one-hot y
        assert other[0] == pytest.approx(base[0], rel=1e-12)
        for a, b in zip(other[1], base[1]):
            assert torch.allclose(a, b, rtol=0, atol=1e-12)
    # one sequence (T, N) is the batch of one
    single = run(m, x[:, 0], y[:, 0])
    batch_of_one = run(m, x[:, :1], y[:, :1])
    assert single[0] == pytest.approx(batch_of_one[0], rel=1e-12)
    for a, b in zip(single[1], batch_of_one[1]):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_agrees_with_the_numpy_function():
    T, B, D, N, M = 4, 2, 3, 2, 3
    m = module("elman-sigmoid-mse-bias", D, N, M)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, N, generator=gen, dtype=F64)
    y = torch.randn(T, B, M, generator=gen, dtype=F64)
    loss = m(x, y)
    loss.backward()
    params = {k: p.detach().numpy() for k, p in m.named_parameters()}
    ref_loss, ref = derivation("elman-sigmoid-mse-bias").lambdify()(
        params, x.numpy().transpose(0, 2, 1), y.numpy().transpose(0, 2, 1))
    assert loss.item() == pytest.approx(ref_loss, rel=1e-12)
    for k, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref[k], rtol=0, atol=1e-12)


def test_a_text_cell_trains_with_sgd():
    T, B, D, N, M = 8, 4, 5, 3, 3
    m = derivation("text").torch(D=D, N=N, M=M)   # float32, torch's default
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(T, B, N, generator=gen)
    y = (x[..., 0] > 0).long() + (x[..., 1] > 0).long()   # a label each step
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = m(x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m(x[..., :1], y), r"^x: shape \(4, 2, 1\) does not fit \(T, B, N\): "
                                        r"N = 1 here but N = 2 from params\['U'\]"),
    (lambda m, x, y: m(x[0, 0], y), r"^x: expected shape"),
    (lambda m, x, y: m(x, y[:3]), r"^y: shape \(3, 2\) does not fit \(T, B\)"),
    (lambda m, x, y: m(x, y + 3),
     r"^y: label 3 at index \(0, 0\) is not a class in 0..2 \(M = 3\)"),
    (lambda m, x, y: m(x, y.double()), r"^y: expected shape .* \(class labels must be integers\)"),
    (lambda m, x, y: m(x, y, h0=torch.zeros(5, dtype=F64)), r"^h0: shape \(5,\) does not fit"),
    (lambda m, x, y: m(x.numpy(), y), r"^x: expected a torch.Tensor, got a ndarray"),
])
def test_bad_arguments_raise_one_value_error(call, message):
    m = module("elman")
    x, y = torch.zeros(4, 2, 2, dtype=F64), torch.zeros(4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=message):
        call(m, x, y)


def test_bad_sizes_and_state_names():
    d = derivation("elman")
    with pytest.raises(ValueError, match="^sizes: missing 'M'"):
        d.torch(D=3, N=2)
    with pytest.raises(ValueError, match="^sizes: unknown size 'K'"):
        d.torch(D=3, N=2, M=2, K=4)
    with pytest.raises(ValueError, match="^sizes: D must be a positive integer"):
        d.torch(D=0, N=2, M=2)
    m = module("elman")
    with pytest.raises(TypeError, match="unexpected keyword argument 's0'"):
        m(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), s0=None)
