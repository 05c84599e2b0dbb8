"""Parameter and FLOP budget: count a model's size and cost two ways and refuse oversized models.

The multimedia competition limits models to 200M parameters as counted by `thop`. thop only
hooks modules whose exact type it knows, so it silently under-counts subclasses (torchvision's
Conv3DSimple, timm's BatchNormAct2d, nn.MultiheadAttention's projections): r3d_18 reads 0.4M
parameters instead of 33.4M. We therefore report the true count (sum of parameter sizes) and
torch.utils.flop_counter's MACs next to thop's, and flag every disagreement.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from fakelens.errors import BudgetError

DEFAULT_MAX_PARAMS = 200_000_000
PARAM_TOLERANCE = 0.0  # any parameter thop does not see is reported
MAC_TOLERANCE = 0.05  # thop and flop_counter differ by design on norms/activations: flag > 5 %


@dataclass
class ModelCost:
    """Size and cost of one forward pass on `input_shapes` (batch 1 unless counted otherwise)."""

    params: int  # true count: every parameter tensor, shared ones once
    trainable_params: int
    flops: int  # torch.utils.flop_counter (matmuls/convolutions), FLOPs = 2 x MACs
    macs: int
    thop_params: int  # what thop.profile reports (the competition's counter)
    thop_macs: int
    disagreement: list[str] = field(default_factory=list)  # thop vs true count, human-readable
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    thop_missed: dict[str, int] = field(default_factory=dict)  # module types with parameters thop skips -> count
    counted_on: str = "cpu"  # "meta" when counted without allocating the weights
    notes: list[str] = field(default_factory=list)  # explicit fallbacks taken while counting


def human(n: float) -> str:
    """12_345_678 -> '12.3M'."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + unit
    return f"{n:.0f}"


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters); works on meta-device models."""
    params = list(model.parameters())  # unique tensors: shared weights count once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


class _KeywordCall(nn.Module):
    """Adapter: thop calls model(*inputs); our models take keyword tensors."""

    def __init__(self, model: nn.Module, keys: list[str]):
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *args: torch.Tensor) -> Any:
        return self.model(**dict(zip(self.keys, args)))


def _thop_missed(model: nn.Module) -> dict[str, int]:
    """Module types holding parameters directly that thop has no rule for (exact type match)."""
    from thop.profile import register_hooks

    missed: Counter[str] = Counter()
    for mod in model.modules():
        if type(mod) in register_hooks:
            continue
        if any(True for _ in mod.parameters(recurse=False)):
            missed[type(mod).__name__] += 1
    return dict(missed)


def _thop_profile(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """thop.profile's (MACs, params), leaving the model as it was: thop leaves `total_ops`/
    `total_params` buffers on the modules it did not hook, which would pollute state_dict."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # thop imports distutils
        import thop

    for mod in model.modules():
        if "total_ops" in mod._buffers or "total_params" in mod._buffers:
            raise RuntimeError(f"{type(mod).__name__} already has a total_ops/total_params buffer; thop would clobber it")
    wrapper = _KeywordCall(model, list(inputs))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # thop prints per-type notices
            macs, params = thop.profile(wrapper, tuple(inputs.values()), verbose=False)
    finally:
        for mod in wrapper.modules():
            mod._buffers.pop("total_ops", None)
            mod._buffers.pop("total_params", None)
    return int(macs), int(params)


def _flop_count(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        # Grad mode stays on so fused inference fast paths (which the counter cannot see
        # into, e.g. nn.TransformerEncoderLayer's) are not taken; no backward is run.
        with FlopCounterMode(display=False) as counter:
            model(**inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _disagreements(cost: ModelCost) -> list[str]:
    out = []
    if abs(cost.thop_params - cost.params) > PARAM_TOLERANCE * cost.params:
        missed = ", ".join(f"{k} x{v}" for k, v in sorted(cost.thop_missed.items())) or "modules it does not hook"
        out.append(
            f"thop counts {cost.thop_params:,} parameters but the model has {cost.params:,} "
            f"({(cost.params - cost.thop_params) / max(cost.params, 1):.1%} unseen; thop skips {missed}): a "
            "thop-based budget check, as the multimedia competition uses, misjudges this model")
    if cost.macs and abs(cost.thop_macs - cost.macs) > MAC_TOLERANCE * cost.macs:
        out.append(f"thop counts {human(cost.thop_macs)} MACs but torch.utils.flop_counter counts "
                   f"{human(cost.macs)} ({(cost.thop_macs - cost.macs) / cost.macs:+.0%})")
    return out


def count(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> ModelCost:
    """Parameters and MACs of `model(**inputs)`, true and by thop, with their disagreements.
    Works on CPU, GPU or meta-device models (meta: shapes only, nothing computed)."""
    params, trainable = count_params(model)
    flops = _flop_count(model, inputs)
    thop_macs, thop_params = _thop_profile(model, inputs)
    device = next((p.device.type for p in model.parameters()), "cpu")
    cost = ModelCost(params=params, trainable_params=trainable, flops=flops, macs=flops // 2,
                     thop_params=thop_params, thop_macs=thop_macs,
                     input_shapes={k: list(v.shape) for k, v in inputs.items()},
                     thop_missed=_thop_missed(model), counted_on=device)
    cost.disagreement = _disagreements(cost)
    return cost


def _counting_config(cfg: Any) -> Any:
    """The model's config with weights switched off: sizes do not depend on them, and counting
    must never download or read weight files."""
    from fakelens.models import resolve_config

    cfg = resolve_config(cfg)
    return dataclasses.replace(cfg, pretrained=False, audio_pretrained=None)


def build_meta(cfg: Any) -> nn.Module:
    """Build a model on the meta device: parameters have shapes but no storage, so a 1B-parameter
    model is counted in a second without allocating memory."""
    from fakelens.models import create_model

    with torch.device("meta"):
        return create_model(_counting_config(cfg))


def count_config(cfg: Any, batch: int = 1) -> ModelCost:
    """Count a model from its config (or name) on its configured input, on the meta device. If a
    model cannot run on meta, it is counted on CPU instead and `notes` says so."""
    from fakelens.models import create_model, example_inputs

    model = build_meta(cfg)
    try:
        return count(model, example_inputs(model, batch=batch, device="meta"))
    except (NotImplementedError, RuntimeError) as e:
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    model = create_model(_counting_config(cfg))
    cost = count(model, example_inputs(model, batch=batch))
    cost.notes.append(f"counted on CPU because the meta-device forward failed ({reason})")
    return cost


def describe(cfg: Any) -> str:
    """"model 'frame' (backbone efficientnet_b7)" for messages."""
    parts = []
    if getattr(cfg, "backbone", None):
        parts.append(f"backbone {cfg.backbone}")
    if getattr(cfg, "audio_backbone", None):
        parts.append(f"audio backbone {cfg.audio_backbone}")
    return f"model {cfg.name!r}" + (f" ({', '.join(parts)})" if parts else "")


def check_budget(model_or_cfg: nn.Module | Any, max_params: int = DEFAULT_MAX_PARAMS) -> int:
    """Return the true parameter count, or raise BudgetError if it is over `max_params`. A config
    or name is built on the meta device, so this is fast and runs before any training starts."""
    if isinstance(model_or_cfg, nn.Module):
        model = model_or_cfg
        cfg = getattr(model, "cfg", None)
        what = describe(cfg) if cfg is not None else f"model {type(model).__name__}"
    else:
        model = build_meta(model_or_cfg)
        what = describe(model.cfg)
    params, _ = count_params(model)
    if params > max_params:
        raise BudgetError(f"{what} has {params / 1e6:.1f}M parameters, over the budget of "
                          f"{human(max_params)}; choose a smaller backbone or raise train.max_params")
    return params
