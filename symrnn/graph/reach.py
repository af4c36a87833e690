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
