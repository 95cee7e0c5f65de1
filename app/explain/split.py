"""The model split at the cut point: a deterministic prefix that can run anywhere (an inference
runtime, batched, cached) and a torch suffix that runs the passes.

torch.fx traces the model with the cut module, the target layer and every dropout module the
engine samples (:func:`~app.explain.passes.find_dropouts`) kept as module calls, so the suffix
calls the model's own submodules and every forward hook on them (dropout masks, the target
capture) still fires. A split is exact by construction when no node after the cut
reads anything before it but the cut tensor itself; a skip connection across the cut is
refused.
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn

from app.explain.passes import ROOT, CutPoint, PassPlanError, find_dropouts


def split_at(model: nn.Module, cut: CutPoint, target: str) -> tuple[fx.GraphModule, fx.GraphModule]:
    """(prefix, suffix) GraphModules with ``suffix(prefix(x)) == model(x)``.

    The suffix calls the model's own submodules, so forward hooks on them (dropout masks, the
    target capture) still fire.

    Args:
        model: the network (its submodules are shared, not copied).
        cut: from :meth:`PassBatcher.cut_point`.
        target: qualified name of the target layer, kept a module call in the suffix.

    Raises:
        PassPlanError: the cut is the model input, torch.fx cannot trace the model, a
            skip connection spans the cut, or the model has alpha dropout.
    """
    if cut.module == ROOT:
        raise PassPlanError("the cut is the model input: there is no prefix to move")
    leaves = {cut.module, target, *find_dropouts(model)}

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, module: nn.Module, name: str) -> bool:
            return name in leaves or super().is_leaf_module(module, name)

    try:
        nodes = list(_Tracer().trace(model).nodes)
    except Exception as error:  # fx raises TraceError, TypeError, ... on dynamic control flow
        raise PassPlanError(f"torch.fx cannot trace the model: {error}") from error
    at = next((n for n in nodes if n.op == "call_module" and n.target == cut.module), None)
    if at is None:
        raise PassPlanError(f"{cut.module!r} is not called as a module by the traced forward")
    boundary = at if cut.position == "output" else at.args[0]
    if not isinstance(boundary, fx.Node) or boundary.op == "placeholder":
        raise PassPlanError(f"{cut.describe()} is not an intermediate tensor")
    stop = nodes.index(boundary) + 1

    prefix, env = fx.Graph(), {}
    for node in nodes[:stop]:
        env[node] = prefix.node_copy(node, env.__getitem__)
    prefix.output(env[boundary])

    upstream = set(nodes[:stop]) - {boundary}
    suffix = fx.Graph()
    env = {boundary: suffix.placeholder("activation")}
    for node in nodes[stop:]:
        spanning = upstream.intersection(node.all_input_nodes)
        if spanning:
            names = ", ".join(sorted(n.name for n in spanning))
            raise PassPlanError(
                f"a skip connection spans the {cut.describe()}: {node.name} reads {names}"
            )
        env[node] = suffix.node_copy(node, env.__getitem__)
    parts = fx.GraphModule(model, prefix), fx.GraphModule(model, suffix)
    for part in parts:
        part.graph.eliminate_dead_code()
        part.recompile()
    return parts
