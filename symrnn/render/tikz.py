"""The unrolled graph of a cell as TikZ data: nodes placed by step and depth, the
parameter copies written beside the edges that they multiply, the shared parameters
feeding their copies, and the loss of the sequence collecting the losses of the steps.

``unrolled_figure`` returns plain data (positions, labels printed by the
sheet's printer, edge labels); the template ``derivation.tex.j2`` draws it.
"""
from types import SimpleNamespace

from sympy import Eq, MatAdd, MatrixSymbol

from ..graph.unroll import T as T_symbol, UnrolledGraph, t
from ..model.nodes import Elementwise, StepVar, SumOverTime

__all__ = ["unrolled_figure"]

COLUMN = 3.3   # cm between steps
ROW = 1.35     # cm between levels
SIDE = 1.2     # cm between nodes on the same level of one step


def _node_id(var):
    return f"{var.name}{int(var.time)}"


def _terms(rhs):
    """The terms of a right-hand side, inside an entry-wise function: W h + U x + b."""
    while isinstance(rhs, Elementwise):
        rhs = rhs.arg
    return rhs.args if isinstance(rhs, MatAdd) else (rhs,)


def _read(equations, rhs):
    """``rhs`` as drawn: a function of a value that an equation has already named reads
    that variable (the loss's log softmax(o) = log yhat reads yhat = softmax(o)), so the
    named value is not a dead end in the picture."""
    named = {(type(e), e.arg): lhs for lhs, e in equations if isinstance(e, Elementwise)}

    def source(e):
        for kind in (type(e), type(e).log_of):
            if (kind, e.arg) in named:
                return named[kind, e.arg]
        return None

    return rhs.replace(lambda e: isinstance(e, Elementwise) and e is not rhs
                       and source(e) is not None, source)


def _levels(cell):
    """Depth of each variable within one step: inputs at 0, each equation one above
    the deepest of its inputs; a state carried in from the step before does not count
    (its edge goes back one column). Targets sit on the level of their consumer."""
    params = {p.name for p in cell.params + cell.fixed_values}
    inputs = {x.name for x in cell.inputs}
    targets = {y.name for y in cell.targets}
    level = {x: 0 for x in inputs}
    for lhs, rhs in cell.equations:
        rhs = _read(cell.equations, rhs) if lhs == cell.loss_var else rhs
        deps = [s.name for s in rhs.atoms(type(lhs)) if s.name not in params | targets]
        level[lhs.name] = 1 + max([level[n] for n in deps if n in level], default=0)
    # the loss of a step sits on top of the step (above any state it does not read)
    loss = cell.loss_var.name
    level[loss] = 1 + max(v for n, v in level.items() if n != loss)
    for y in targets:
        users = [lhs.name for lhs, rhs in cell.equations
                 if lhs.name not in targets
                 and y in {s.name for s in rhs.atoms(type(lhs))}]
        level[y] = max(level[u] for u in users) if users else 0
    return level


def _near(a, b, p, radius=0.55):
    """Does the segment a-b pass within ``radius`` cm of the point p (not at its ends)?"""
    (ax, ay), (bx, by), (px, py) = a, b, p
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return False
    u = ((px - ax) * dx + (py - ay) * dy) / length2
    if not 0.05 < u < 0.95:
        return False
    cx, cy = ax + u * dx, ay + u * dy
    return (px - cx) ** 2 + (py - cy) ** 2 < radius ** 2


def _label_width(label):
    """The width of an edge's label in cm (\\footnotesize: 8 pt of the 11 pt model)."""
    from .width import tex_width
    return tex_width(label, display=False) * 8 / 10.95 / 28.45 + 0.1


def _side(a, b, p):
    """> 0 when p lies left of the direction a -> b, < 0 when right."""
    (ax, ay), (bx, by), (px, py) = a, b, p
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


BEND = 35  # degrees: TikZ's "bend left=35" leaves a and enters b at 35 degrees


def _arc(a, b, side, angle=BEND, steps=9):
    """Points of the arc TikZ draws for ``bend <side>=<angle>`` from a to b (a quadratic
    Bezier curve with the same tangents at its ends)."""
    import math
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    sign = 1 if side == "left" else -1
    lift = 0.5 * math.tan(math.radians(angle)) * sign  # of the chord's length
    px, py = ax + dx / 2 - dy * lift, ay + dy / 2 + dx * lift
    return [((1 - u) ** 2 * ax + 2 * u * (1 - u) * px + u ** 2 * bx,
             (1 - u) ** 2 * ay + 2 * u * (1 - u) * py + u ** 2 * by)
            for u in (k / (steps + 1) for k in range(1, steps + 1))]


def _clearance(points, others):
    return min((((x - ox) ** 2 + (y - oy) ** 2) ** 0.5 for x, y in points for ox, oy in others),
               default=float("inf"))


def _bend_away(a, b, blocking, others=()):
    """``(side, angle)`` of the arc TikZ draws for the edge a -> b: of the sides and
    angles whose arcs keep clear of the other nodes (0.6 cm from their centres), the one
    away from the nodes in its way, with the smallest angle; else the clearest."""
    away = "right" if sum(_side(a, b, p) for p in blocking) > 0 else "left"
    other = "left" if away == "right" else "right"
    if not others:
        return away, BEND
    options = [(side, angle) for angle in range(20, 80, 5) for side in (away, other)]
    clear = [o for o in options if _clearance(_arc(a, b, *o), others) >= 0.6]
    if clear:
        return clear[0]
    return max(options, key=lambda o: _clearance(_arc(a, b, *o), others))


def _label_place(a, b, pos):
    """Where an edge's label goes, and its centre: beside a vertical edge (a short edge
    stays visible), on a slanted one (long enough to show on both sides of it)."""
    (ax, ay), (bx, by) = a, b
    x, y = ax + pos * (bx - ax), ay + pos * (by - ay)
    if abs(bx - ax) < 0.01:
        return "left=1pt", (x - 0.45, y)
    return "fill=white", (x, y)


def _free_place(target, nodes, side, row):
    """Where a parameter's node beside ``target`` goes: below right, else below left,
    above right or above left, whichever first keeps clear of the other nodes."""
    spots = [(1.2 * side, -0.55 * row), (-1.2 * side, -0.55 * row),
             (1.2 * side, 0.55 * row), (-1.2 * side, 0.55 * row)]
    places = [(round(target.x + dx, 3), round(target.y + dy, 3)) for dx, dy in spots]

    def room(xy):
        return min((((xy[0] - n.x) ** 2 + (xy[1] - n.y) ** 2) ** 0.5 for n in nodes),
                   default=float("inf"))
    return next((xy for xy in places if room(xy) >= 1.0), max(places, key=room))


def unrolled_figure(cell, T=3, ts=None):
    """Nodes and labelled edges of the first ``T`` steps, for the TikZ template."""
    graph = UnrolledGraph(cell, T)
    # the named matrices of the parameters (Ab = A - A^T) have copies per step, as the
    # parameters have: drawn as parameters
    shared_values = {p.name: p for p in cell.params + cell.fixed_values}
    params = set(shared_values)
    kinds = {**{x.name: "input" for x in cell.inputs}, **{y.name: "target" for y in cell.targets},
             **{s.name: "state" for s in cell.states}, cell.loss_var.name: "loss"}
    level = _levels(cell)
    order = [x.name for x in cell.inputs] + [lhs.name for lhs, _ in cell.equations] \
        + [y.name for y in cell.targets]
    label = (lambda e: ts(e, inline=True)) if ts is not None else str

    nodes, edges, seen, omitted = [], [], set(), []
    copied = {v.name for step in graph.steps for _, rhs in step for v in rhs.atoms(StepVar)}
    # a level with many nodes (the gates of an LSTM) gets more room
    crowd = max(sum(1 for n in order if level[n] == lv) for lv in set(level.values()))
    side = SIDE if crowd <= 3 else 1.4
    # more than two biases (a gated cell): named in the caption instead of drawn
    biases = {p.name for lhs, rhs in cell.equations for term in _terms(rhs)
              for p in term.atoms(type(lhs)) if p.name in params
              and not any(a.name not in params for a in term.atoms(type(lhs)))}
    crowded = crowd > 3 or len(biases) > 2
    if crowded:  # a gated cell: two steps, no copies written on the edges
        graph = UnrolledGraph(cell, min(T, 2))
        T = graph.T
    column_width = max(COLUMN, crowd * side + 1.0)
    row = ROW if not crowded else 1.15  # a gated cell's figure is tall: levels closer

    def add(var, column):
        key = _node_id(var)
        if key in seen:
            return key
        seen.add(key)
        same = sorted((n for n in order if level[n] == level[var.name]), key=order.index)
        offset = (same.index(var.name) - (len(same) - 1) / 2) * side if var.name in same else 0
        nodes.append(SimpleNamespace(id=key, x=round(column * column_width + offset, 3),
                                     y=round(level[var.name] * row, 3), label=label(var),
                                     kind=kinds.get(var.name, "value")))
        return key

    for s in graph.initial_states:
        add(s, 0)
    for k, step in enumerate(graph.steps, start=1):
        for name in order:
            var = next((v for eq in step for v in [eq[0]] + sorted(eq[1].atoms(StepVar), key=str)
                        if v.name == name and v.time == k), None)
            if var is not None and name not in params:
                add(var, k)
        for lhs, rhs in step:
            if lhs.name == cell.loss_var.name:
                rhs = _read(step, rhs)
            for term in _terms(rhs):
                atoms = sorted(term.atoms(StepVar), key=str)
                copies = [v for v in atoms if v.name in params]
                sources = [v for v in atoms if v.name not in params]
                for src in sources:
                    edges.append(SimpleNamespace(
                        source=add(src, int(src.time)), target=_node_id(lhs),
                        label=None if crowded else " ".join(label(c) for c in copies) or None,
                        params=[] if crowded else [c.name for c in copies],
                        recurrent=int(src.time) != k))
                if not sources and crowded:  # no room: the biases are only named
                    omitted.extend(c.name for c in copies if c.name not in omitted)
                elif not sources:  # a bias, a term of parameters alone: a node of its own
                    key = "".join(c.name for c in copies) + str(k)
                    if key not in seen:
                        seen.add(key)
                        target = next(n for n in nodes if n.id == _node_id(lhs))
                        x, y = _free_place(target, nodes, side, row)
                        nodes.append(SimpleNamespace(
                            id=key, x=x, y=y, label=" ".join(label(c) for c in copies),
                            kind="param"))
                    edges.append(SimpleNamespace(source=key, target=_node_id(lhs),
                                                 label=None, params=[], recurrent=False))
    # merge parallel edges (the same source in two terms)
    merged = {}
    for e in edges:
        key = (e.source, e.target)
        if key in merged and e.label:
            old = merged[key]
            old.label = f"{old.label}, {e.label}" if old.label else e.label
            old.params = old.params + e.params
        else:
            merged.setdefault(key, e)
    # labels of edges fanning out of one node sit nearer their targets
    fan = {}
    for e in merged.values():
        if e.label:
            fan[e.source] = fan.get(e.source, 0) + 1
    where = {n.id: (n.x, n.y) for n in nodes}
    for i, e in enumerate(merged.values()):
        e.pos = 0.75 if fan.get(e.source, 0) > 2 else 0.5
        e.label_id = f"copy{i}"
        e.side, e.label_at = _label_place(where[e.source], where[e.target], e.pos)
    # an edge that would pass through another node is drawn as an arc
    for e in merged.values():  # (only within a step: a long edge across steps stays straight)
        blocking = [xy for key, xy in where.items() if key not in (e.source, e.target)
                    and _near(where[e.source], where[e.target], xy)]
        others = [xy for key, xy in where.items() if key not in (e.source, e.target)]
        e.bend, e.angle = _bend_away(where[e.source], where[e.target], blocking, others) \
            if blocking and not e.recurrent else (None, None)

    # labels that would collide with each other or ride on an arc: no labels at all
    # (the caption says the copies are not written)
    labelled = [e for e in merged.values() if e.label]
    half = {id(e): _label_width(e.label) / 2 for e in labelled}
    clash = any(e.bend for e in labelled) or any(
        abs(a.label_at[0] - b.label_at[0]) < half[id(a)] + half[id(b)] + 0.1
        and abs(a.label_at[1] - b.label_at[1]) < 0.4
        for i, a in enumerate(labelled) for b in labelled[i + 1:])
    if clash:
        crowded = True
        for e in labelled:
            e.label, e.params = None, []
    # the shared parameters, left of the first column, each on a dashed line that runs
    # through its copies (all at one height); biases and crowded cells: named only
    shared_nodes, not_drawn = [], []
    if not crowded:
        heights = {}
        for e in merged.values():
            for name in e.params:
                heights.setdefault(name, []).append(e.label_at)
        left = min(n.x for n in nodes) - 1.7
        taken = []
        read_once = {v.name for _, rhs in cell.fixed for v in rhs.atoms(MatrixSymbol)}
        for p in shared_values.values():
            at = heights.get(p.name, [])
            if not at and p.name in read_once and p.name not in copied:
                continue  # read by the named matrices only: it has no copies to draw
            ys = {round(y, 2) for _, y in at}
            if len(ys) != 1 \
                    or any(abs(next(iter(ys)) - u) < 0.4 for u in taken):
                not_drawn.append(p.name)
                continue
            y = next(iter(ys))
            end = max(x for x, _ in at)
            if any(abs(n.y - y) < 0.5 and left < n.x < end + 0.5 for n in nodes):
                not_drawn.append(p.name)  # its line would run through a node or along an edge
                continue
            taken.append(y)
            shared_nodes.append(SimpleNamespace(
                id=f"shared{p.name}", x=round(left, 3), y=y, end=round(max(x for x, _ in at), 3),
                label=label(p)))

    # the loss of the sequence above the losses of the steps
    losses = [n for n in nodes if n.kind == "loss"]
    total = None
    if losses:
        L = MatrixSymbol(cell.loss_var.name, 1, 1)
        step_loss = StepVar(cell.loss_var.name, t, 1, 1)
        total = SimpleNamespace(
            id="total", x=round(sum(n.x for n in losses) / len(losses), 3),
            y=round(max(n.y for n in nodes) + row, 3),
            label=label(Eq(L, SumOverTime(step_loss, t, 1, T_symbol), evaluate=False)),
            sources=[n.id for n in losses])
    xs = [n.x for n in nodes + shared_nodes]
    return SimpleNamespace(T=T, nodes=nodes, labelled=not crowded, edges=list(merged.values()),
                           shared=shared_nodes, total=total,
                           not_drawn=[label(shared_values[n]) for n in not_drawn
                                      if n not in omitted],
                           width=max(xs) - min(xs) + 2.0,
                           omitted=[label(StepVar(n, t, *shared_values[n].shape))
                                    for n in omitted],
                           copies=sorted({e.label for e in merged.values() if e.label}))
