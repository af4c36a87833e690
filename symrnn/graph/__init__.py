from .unroll import T, UnrolledGraph, step_equations, t
