"""Reachability in the dependency graph of a step's equations."""


def reachable(start, edges):
    """Everything reachable from ``start`` along ``edges`` (a dict of sets), ``start`` included."""
    seen, todo = set(), list(start)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return seen


def components(nodes, edges):
    """The strongly connected components of the graph on ``nodes`` (``edges``: a
    dict of sets, ``a -> b`` when ``a`` reads ``b``; edges leaving ``nodes`` are
    ignored), each a list in the order of ``nodes``, ordered so that every
    component comes after the components it reads (Tarjan's order). Iterative,
    so that a long chain of equations does not reach Python's recursion limit."""
    order = {n: i for i, n in enumerate(nodes)}
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted((m for m in edges.get(root, ()) if m in order),
                                   key=order.get)))]
        while work:
            n, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted((m for m in edges.get(child, ())
                                                     if m in order), key=order.get))))
                elif child in on_stack:
                    low[n] = min(low[n], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[n])
            if low[n] == index[n]:
                part = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    part.append(m)
                    if m == n:
                        break
                out.append(sorted(part, key=order.get))
    return out
