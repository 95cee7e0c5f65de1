"""The model split at the cut point: a deterministic prefix that can run anywhere (an inference
runtime, batched, cached) and a torch suffix that runs the passes.

torch.fx traces the model with the cut module, the target layer and every dropout module the
engine samples (:func:`~app.explain.cut.find_dropouts`) kept as module calls, so the suffix
calls the model's own submodules and every forward hook on them (dropout masks, the target
capture) still fires. A split is exact by construction when no node after the cut
reads anything before it but the cut tensor itself; a skip connection across the cut is
refused.

Tracing is safe while other threads run models: torch.fx patches ``nn.Module.__call__`` and
``__getattr__`` process-wide while it traces, so :class:`_ThreadSafeTracer` hands calls from any
other thread straight to the module, and one lock keeps two traces from patching over each
other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import torch.fx as fx
from torch import Tensor, nn

from app.explain.cut import ROOT, CutPoint, PassPlanError, SkipConnectionError, find_dropouts

_TRACING = threading.Lock()


class _ThreadSafeTracer(fx.Tracer):
    """A symbolic tracer that keeps ``leaves`` as module calls and leaves other threads alone.

    While it traces, every thread's ``nn.Module.__call__`` and ``__getattr__`` go through it
    (torch.fx patches the class); calls from a thread other than the tracing one run the module
    as if nothing were patched. Traces run one at a time, so patches never interleave.
    """

    def __init__(self, leaves: Collection[str]) -> None:
        super().__init__()
        self._leaves = frozenset(leaves)
        self._thread: int | None = None

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        self._thread = threading.get_ident()
        with _TRACING:
            return super().trace(root, concrete_args)

    def _elsewhere(self) -> bool:
        return threading.get_ident() != self._thread

    def is_leaf_module(self, module: nn.Module, name: str) -> bool:
        return name in self._leaves or super().is_leaf_module(module, name)

    def call_module(
        self,
        m: nn.Module,
        forward: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        if self._elsewhere():
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._elsewhere():
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


def split_at(
    model: nn.Module, cut: CutPoint, target: str, keep: Collection[str] = ()
) -> tuple[fx.GraphModule, fx.GraphModule]:
    """(prefix, suffix) GraphModules with ``suffix(prefix(x)) == model(x)``.

    The suffix calls the model's own submodules, so forward hooks on them (dropout masks, the
    target capture) still fire.

    Args:
        model: the network (its submodules are shared, not copied).
        cut: where to split, e.g. from :meth:`PassBatcher.cut_point`.
        target: qualified name of the target layer, kept a module call.
        keep: more module names to keep as module calls (e.g. the pass cut when splitting
            elsewhere, so a hook on it fires in the suffix).

    Raises:
        SkipConnectionError: a skip connection spans the cut.
        PassPlanError: the cut is the model input, torch.fx cannot trace the model, or the
            model has alpha dropout.
    """
    if cut.module == ROOT:
        raise PassPlanError("the cut is the model input: there is no prefix to move")
    leaves = {cut.module, target, *keep, *find_dropouts(model)}
    try:
        nodes = list(_ThreadSafeTracer(leaves).trace(model).nodes)
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
            raise SkipConnectionError(
                f"a skip connection spans the {cut.describe()}: {node.name} reads {names}"
            )
        env[node] = suffix.node_copy(node, env.__getitem__)
    parts = fx.GraphModule(model, prefix), fx.GraphModule(model, suffix)
    for part in parts:
        part.graph.eliminate_dead_code()
        part.recompile()
    return parts


@dataclass(frozen=True)
class PrefixSplit:
    """The model split where the engine's deterministic part ends, for one input shape.

    The boundary is the earlier of the pass cut and the target layer's output: everything
    before it is the same for every pass and needs no gradient, so it can run on an inference
    runtime; the suffix runs in torch with the engine's hooks.

    Attributes:
        prefix: rows (N, C, H, W) -> the boundary activation, in torch.
        suffix: the boundary activation -> (N, K) logits, calling the model's own modules.
        boundary: where the split is.
        repeat_at_boundary: the pass cut is the boundary: rows are repeated for the passes on
            the prefix output (otherwise the cut, when there is one, is in the suffix).
        target_at_boundary: the boundary is the target layer's output: the target capture
            runs on the prefix output (otherwise the target layer is called in the suffix).
        run_prefix: what computes the prefix: ``prefix`` itself, or a runtime's session.
        backend: the name of what ``run_prefix`` runs on.
    """

    prefix: fx.GraphModule
    suffix: fx.GraphModule
    boundary: CutPoint
    repeat_at_boundary: bool
    target_at_boundary: bool
    run_prefix: Callable[[Tensor], Tensor] = field(repr=False)
    backend: str = "torch"


def split_for_passes(model: nn.Module, cut: CutPoint, target: str) -> PrefixSplit:
    """Split at the earlier of ``cut`` and the output of ``target`` (see :class:`PrefixSplit`).

    Args:
        model: the network, as for :func:`split_at`.
        cut: the engine's pass cut for this input shape (the model input when nothing is
            repeated: original mode, or no dropout).
        target: qualified name of the target layer.

    Raises:
        PassPlanError: as :func:`split_at`, at the cut or at the target's output.
    """
    at_target = CutPoint(target, "output")
    if cut not in (CutPoint(ROOT, "input"), at_target):
        prefix, suffix = split_at(model, cut, target)
        if any(n.op == "call_module" and n.target == target for n in suffix.graph.nodes):
            return PrefixSplit(prefix, suffix, cut, True, False, prefix)
    keep = () if cut.module == ROOT else (cut.module,)
    prefix, suffix = split_at(model, at_target, target, keep)
    return PrefixSplit(prefix, suffix, at_target, cut == at_target, True, prefix)
