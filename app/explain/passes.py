"""Batched Monte Carlo Dropout passes that never recompute what Dropout cannot change.

A forward call receives rows laid out ``(frame b, copy m)``: a copy is whatever one pass
evaluates several times (a SmoothGrad noise sample, a Score-CAM masked input, a Recipro-CAM
mosaic row); a plain frame has one copy. Everything upstream of the *cut point* is
deterministic, so it runs once on those rows. At the cut point each row is repeated for the
T passes, giving rows ``(b, t, m)``, and from there on every dropout module multiplies all rows
of pass ``(b, t)`` by the one mask drawn for that pass in the current session: one pass is one
sampled sub-network, whatever it computes inside.

The cut point is the latest place, at or before the first dropout module (and, for gradient
methods, at or before the target layer's output, so that each pass has its own activation to
differentiate), where the whole state of the forward is one tensor. Candidates are the inputs
of the dropout module's ancestors (innermost first) and, for gradient methods, the target
layer's output and the inputs of its ancestors. A candidate that a skip connection spans is
refused from the torch.fx graph where the model traces; every other one must pass a trial run
with two frames and three passes (the prefix once, the rest twice), compared against the plain
forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from app.explain.cut import ROOT, CutPoint, PassPlanError, SkipConnectionError
from app.explain.split import PrefixSplit, split_at


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def _ancestor_inputs(name: str) -> list[CutPoint]:
    chain = [CutPoint(name, "input")]
    while name:
        name = _parent(name)
        chain.append(CutPoint(name, "input"))
    return chain


def _repeat_for_passes(rows: Tensor, frames: int, passes: int) -> Tensor:
    """(b, m) rows -> (b, t, m) rows, each row repeated for the T passes."""
    n = rows.shape[0]
    if n % frames:
        raise PassPlanError(f"{n} rows at the cut point do not split into {frames} frames")
    shape = rows.shape[1:]
    grouped = rows.reshape(frames, 1, n // frames, *shape)
    return grouped.expand(frames, passes, n // frames, *shape).reshape(-1, *shape)


class PassBatcher:
    """Runs a model on batched MC Dropout passes (see the module docstring).

    The caller puts the model in eval mode for the duration (dropout modules included: the
    masks are applied here) and restores it; this class only adds and removes hooks.

    Args:
        model: the network, in eval mode while this is used.
        target_layer: qualified name of the layer whose output is explained.
        dropouts: the dropout modules to sample, by name (empty in original mode).
        passes: T, the number of passes per frame (1 in original mode).
    """

    def __init__(
        self, model: nn.Module, target_layer: str, dropouts: dict[str, nn.Module], passes: int
    ) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.target_layer = target_layer
        self.target = self.modules[target_layer]
        self.dropouts = dropouts
        self.passes = passes
        self._cuts: dict[tuple[tuple[int, ...], bool, str], CutPoint] = {}
        self._groups = 0
        self._masks: dict[nn.Module, Tensor] = {}

    # -- planning ---------------------------------------------------------------------------

    def cut_point(self, example: Tensor, needs_grad: bool) -> CutPoint:
        """The cut point for inputs shaped like ``example`` (cached per shape and method kind)."""
        key = (tuple(example.shape[1:]), needs_grad, str(example.device))
        if key not in self._cuts:
            self._cuts[key] = self._find_cut(example, needs_grad)
        return self._cuts[key]

    def _trace(self, example: Tensor) -> list[tuple[str, str]]:
        """Order in which modules start ("pre") and finish ("post") in one forward."""
        events: list[tuple[str, str]] = []
        handles = []
        for name, module in self.modules.items():
            handles.append(
                module.register_forward_pre_hook(
                    lambda _m, _a, name=name: events.append((name, "pre"))
                )
            )
            handles.append(
                module.register_forward_hook(
                    lambda _m, _a, _o, name=name: events.append((name, "post"))
                )
            )
        try:
            with torch.no_grad():
                self.model(example[:1])
        finally:
            for handle in handles:
                handle.remove()
        return events

    def _find_cut(self, example: Tensor, needs_grad: bool) -> CutPoint:
        groups, self._groups = self._groups, 0  # trial forwards run without pass masks
        try:
            return self._cut_from_trace(self._trace(example), example, needs_grad)
        finally:
            self._groups = groups

    def _cut_from_trace(
        self, events: list[tuple[str, str]], example: Tensor, needs_grad: bool
    ) -> CutPoint:
        target_posts = [i for i, e in enumerate(events) if e == (self.target_layer, "post")]
        if not target_posts:
            raise PassPlanError(f"target layer {self.target_layer!r} is not used by the forward")
        if len(target_posts) > 1:
            raise PassPlanError(
                f"target layer {self.target_layer!r} runs {len(target_posts)} times per forward; "
                "choose a layer that runs once"
            )
        target_post = target_posts[0]
        first_dropout = min(
            (i for i, (name, kind) in enumerate(events) if kind == "pre" and name in self.dropouts),
            default=None,
        )
        if self.passes == 1 or first_dropout is None:
            # Nothing to repeat: the cut is irrelevant, rows are never expanded.
            return CutPoint(ROOT, "input")

        first_name = events[first_dropout][0]
        if needs_grad and target_post < first_dropout:
            candidates = [
                CutPoint(self.target_layer, "output"),
                *_ancestor_inputs(self.target_layer),
            ]
        else:
            candidates = _ancestor_inputs(first_name)
        for cut in candidates:
            if cut.module == ROOT or self._cut_is_exact(example, cut):
                return cut
        raise AssertionError("the model input is always a valid cut point")  # pragma: no cover

    def _cut_is_exact(self, example: Tensor, cut: CutPoint) -> bool:
        """Whether repeating rows at ``cut`` reproduces the plain forward (dropout off).

        Where torch.fx splits the model there (:func:`~app.explain.split.split_at`), a skip
        connection across the cut is refused without running anything, and the trial runs the
        prefix once and only the suffix twice; otherwise the whole model runs twice.
        """
        generator = torch.Generator(device=example.device).manual_seed(0)
        probe = torch.randn(
            (2, *example.shape[1:]), generator=generator, device=example.device, dtype=example.dtype
        )
        try:
            prefix, rest = split_at(self.model, cut, self.target_layer)
        except SkipConnectionError:
            return False
        except PassPlanError:
            prefix, rest = None, self.model  # not traceable: the trial runs the whole model
        with torch.no_grad():
            start = probe if prefix is None else prefix(probe)
            reference = rest(start)
            try:
                if prefix is None:
                    with self._hook_cut(cut, frames=2, passes=3):
                        repeated = rest(start)
                else:
                    repeated = rest(_repeat_for_passes(start, frames=2, passes=3))
            except (RuntimeError, PassPlanError):
                return False
        if not isinstance(repeated, Tensor) or repeated.shape[0] != 6:
            return False
        expected = reference.unsqueeze(1).expand(2, 3, *reference.shape[1:])
        scale = float(reference.abs().max()) + 1e-6
        return torch.allclose(
            repeated.reshape(expected.shape), expected, rtol=1e-3, atol=1e-4 * scale
        )

    @contextlib.contextmanager
    def _hook_cut(self, cut: CutPoint, frames: int, passes: int) -> Iterator[None]:
        module = self.modules[cut.module]
        if cut.position == "output":

            def post(_m: nn.Module, _a: tuple, out: Tensor) -> Tensor:
                return _repeat_for_passes(out, frames, passes)

            handle = module.register_forward_hook(post)
        else:

            def pre(_m: nn.Module, args: tuple) -> tuple:
                if len(args) != 1 or not isinstance(args[0], Tensor):
                    raise PassPlanError(f"{cut.describe()} is not a single tensor")
                return (_repeat_for_passes(args[0], frames, passes),)

            handle = module.register_forward_pre_hook(pre)
        try:
            yield
        finally:
            handle.remove()

    # -- sessions and forwards ---------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, frames: int) -> Iterator[None]:
        """One explanation call: every forward inside shares one dropout mask per (frame, pass).

        Masks are drawn lazily, from the global torch RNG, the first time each dropout module
        runs in the session, by calling that module's own ``forward`` in train mode on ones
        shaped (frames * passes, *features): so any multiplicative dropout module, including
        a custom subclass of ``nn.Dropout``, defines its own masks. Row g of that probe is the
        mask of frame ``g // passes``, pass ``g % passes``.
        """
        self._groups = frames * self.passes
        self._masks = {}
        handles = [m.register_forward_hook(self._apply_pass_mask) for m in self.dropouts.values()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            self._masks = {}
            self._groups = 0

    def _apply_pass_mask(self, module: nn.Module, _args: tuple, output: Tensor) -> Tensor:
        groups = self._groups
        if not groups:
            return output
        rows = output.shape[0]
        if rows % groups:
            raise PassPlanError(
                f"dropout module received {rows} rows, not a multiple of {groups} passes; "
                "it runs before the cut point"
            )
        mask = self._masks.get(module)
        if mask is None:
            ones = torch.ones((groups, *output.shape[1:]), dtype=output.dtype, device=output.device)
            with torch.no_grad():
                module.train()
                try:
                    mask = module.forward(ones)
                finally:
                    module.eval()
            self._masks[module] = mask
        per_group = output.reshape(groups, rows // groups, *output.shape[1:])
        return (per_group * mask.unsqueeze(1)).reshape(output.shape)

    def forward(
        self,
        rows: Tensor,
        *,
        frames: int,
        cut: CutPoint,
        expand: bool = True,
        grad_at_target: bool = False,
        transform_target: Callable[[Tensor], Tensor] | None = None,
        split: PrefixSplit | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One forward over ``rows`` inside a session.

        Args:
            rows: (frames * M, C, H, W) input rows, ordered (frame, copy).
            frames: B, the number of frames in the call.
            cut: from :meth:`cut_point`.
            expand: repeat rows for the passes at the cut point. False when the rows already
                carry the pass axis, ordered (frame, pass, copy).
            grad_at_target: record autograd from the target activation on (and only from
                there: the trunk runs without a graph) so its gradient can be taken.
            transform_target: replaces the target activation downstream (its rows may grow,
                as ``(row, copy)``); the untransformed activation is still returned.
            split: run the deterministic prefix with ``split.run_prefix`` (e.g. an inference
                runtime) and the rest as ``split.suffix``; None runs the whole model in torch.

        Returns:
            (logits, activation): logits (rows after expansion, K) and the target layer's
            output (rows at the target, C, h, w).
        """
        captured: list[Tensor] = []

        def on_target(_m: nn.Module, _a: tuple, out: Tensor) -> Tensor:
            if not isinstance(out, Tensor) or out.ndim != 4:
                shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise PassPlanError(
                    f"target layer {self.target_layer!r} outputs {shape}, not a (N, C, h, w) "
                    "feature map; choose a convolutional layer"
                )
            if out.shape[-2] * out.shape[-1] < 2:
                raise PassPlanError(
                    f"target layer {self.target_layer!r} has no spatial size (its output is "
                    f"{tuple(out.shape[1:])}); choose an earlier convolutional layer"
                )
            if grad_at_target:
                torch.set_grad_enabled(True)  # the enclosing no_grad() restores the mode
                out = out.detach().requires_grad_(True)
            captured.append(out)
            return transform_target(out) if transform_target is not None else out

        repeat = bool(expand and self.passes > 1 and self.dropouts)
        with torch.no_grad():
            if split is None:
                logits = self._hooked(self.model, rows, cut if repeat else None, on_target, frames)
            else:
                logits = self._split_forward(split, rows, cut, repeat, on_target, frames)
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            raise PassPlanError("the model must return a (N, K) tensor of class scores")
        return logits, captured[0]

    def _hooked(
        self,
        module: nn.Module,
        rows: Tensor,
        cut: CutPoint | None,
        on_target: Callable[[nn.Module, tuple, Tensor], Tensor] | None,
        frames: int,
    ) -> Tensor:
        """``module(rows)`` with the rows repeated at ``cut`` and ``on_target`` on the target."""
        repeating = self._hook_cut(cut, frames, self.passes) if cut else contextlib.nullcontext()
        with repeating:  # registered first: at the target's output it must run before on_target
            handle = self.target.register_forward_hook(on_target) if on_target else None
            try:
                return module(rows)
            finally:
                if handle is not None:
                    handle.remove()

    def _split_forward(
        self,
        split: PrefixSplit,
        rows: Tensor,
        cut: CutPoint,
        repeat: bool,
        on_target: Callable[[nn.Module, tuple, Tensor], Tensor],
        frames: int,
    ) -> Tensor:
        """The prefix on ``split.run_prefix``, then the suffix with the same hooks as a whole
        forward: where a hooked place is the boundary, its hook runs on the prefix output."""
        activation = split.run_prefix(rows).to(rows.device)
        if repeat and split.repeat_at_boundary:
            activation = _repeat_for_passes(activation, frames, self.passes)
        if split.target_at_boundary:
            activation = on_target(self.target, (), activation)
        suffix_cut = cut if repeat and not split.repeat_at_boundary else None
        suffix_target = None if split.target_at_boundary else on_target
        return self._hooked(split.suffix, activation, suffix_cut, suffix_target, frames)
