"""K members of one MLP architecture trained as one network (a pack).

Every member's parameters are one row of a single tensor `flat` of shape [K, P]: each linear layer's weight
and bias are views of it ([K, out, in] and [K, 1, out]), so a forward pass is one batched matmul per layer
and the optimizer updates every member with a handful of elementwise operations on one tensor. Member k is
initialised as `MLP(...)` would be under `torch.manual_seed(seeds[k])`, draws its dropout masks from its
own generator, and normalises batches with its own statistics: its arithmetic is the same whether it
trains alone (K = 1, the ordinary fit) or beside others.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.mlp import MLP

ACTIVATION_FUNCTIONS = {
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "gelu": F.gelu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


# gradient_leaves' gradients are views of flat.grad, as strided as their parameters: torch notes once that
# this layout is not the one it would choose (it matters to DDP's buckets, and those never see these).
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")


class PackedMLP(nn.Module):
    """`len(seeds)` members of `MLP(input_dim, output_dim, hidden_dims, activation, dropout, batch_norm, init)`;
    `dropout` is one probability or one per member.

    forward(x, counts, members): x is [K, B, in] (or [B, in], shared by every member); `counts` [K], when
    given, says how many leading rows of each member's batch are real (the rest is padding, ignored by batch
    norm). Returns logits [K, B, out]. With `members` (indices), only those members run: x, counts and the
    result hold their rows only, in that order (a pack whose other members stopped trains at their cost)."""

    def __init__(
        self,
        seeds: list[int],
        input_dim: int,
        output_dim: int,
        hidden_dims: list[int],
        activation: str = "relu",
        dropout: float | list[float] = 0.0,
        batch_norm: bool = False,
        init: str = "default",
    ):
        super().__init__()
        self.members = len(seeds)
        self.activation = ACTIVATION_FUNCTIONS[activation]
        rows = []
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                member = MLP(input_dim, output_dim, hidden_dims, activation, 0.0, batch_norm, init)
            rows.append(torch.cat([p.detach().flatten() for p in member.parameters()]))
        self.flat = nn.Parameter(torch.stack(rows))
        # The layout of a row: per hidden layer (linear, [batch norm]); then the output layer.
        self.layers: list[dict] = []
        weight_mask = torch.zeros(self.flat.shape[1], dtype=torch.bool)
        offset, width = 0, input_dim
        for index, out in enumerate([*hidden_dims, output_dim]):
            layer = {"in": width, "out": out, "weight": offset, "bias": offset + out * width}
            weight_mask[offset : offset + out * width] = True
            offset += out * width + out
            hidden = index < len(hidden_dims)
            if hidden and batch_norm:
                layer["norm"] = (offset, offset + out, len([x for x in self.layers if "norm" in x]))
                offset += 2 * out
                self.register_buffer(f"running_mean{index}", torch.zeros(self.members, 1, out))
                self.register_buffer(f"running_var{index}", torch.ones(self.members, 1, out))
            layer["hidden"] = hidden
            self.layers.append(layer)
            width = out
        assert offset == self.flat.shape[1]
        self.register_buffer("weight_mask", weight_mask, persistent=False)  # the L1 penalty's entries
        rates = dropout if isinstance(dropout, list) else [dropout] * self.members  # one per member
        self.register_buffer("dropout", torch.tensor(rates, dtype=torch.float32))
        self.drops = any(rate > 0 for rate in rates)  # a plain flag: a tensor's any() per layer and step costs
        self.generators = [torch.Generator().manual_seed(seed + 7919) for seed in seeds]  # dropout masks
        self.resting = [False] * self.members  # members that no longer train (stopped): no dropout masks drawn
        self.momentum = 0.1  # batch norm's running statistics, as nn.BatchNorm1d
        self.eps = 1e-5
        # Set by the module when one device trains without step hooks (models/lean_step.py): the training
        # forward then runs through gradient_leaves(), and gradients are zeroed in place, never set to None.
        self.write_gradients_in_place = False
        self._leaves: list | None = None
        self._leaf_key: tuple | None = None

    def weight(self, index: int, source: torch.Tensor | None = None) -> torch.Tensor:
        """Layer `index`'s weights [K, out, in], a view of `flat` (or of `source`, its gradient say)."""
        layer, source = self.layers[index], self.flat if source is None else source
        # narrow: a tensor's [:, a:b] indexing costs several microseconds, and forward takes these every step
        return source.narrow(1, layer["weight"], layer["out"] * layer["in"]).view(-1, layer["out"], layer["in"])

    def parts(self, source: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per layer, the tensors forward uses, as views of `source` ([K, P]: flat, some of its rows, or a
        gradient): "weight" transposed [K, in, out], "bias" [K, 1, out], with batch norm "gamma", "beta"."""
        parts = []
        for index, layer in enumerate(self.layers):
            out = layer["out"]
            part = {
                "weight": self.weight(index, source).transpose(1, 2),
                "bias": source.narrow(1, layer["bias"], out).unsqueeze(1),
            }
            if "norm" in layer:
                gamma_at, beta_at, _ = layer["norm"]
                part["gamma"] = source.narrow(1, gamma_at, out).unsqueeze(1)
                part["beta"] = source.narrow(1, beta_at, out).unsqueeze(1)
            parts.append(part)
        return parts

    def gradient_leaves(self) -> list[dict[str, torch.Tensor]]:
        """parts(flat) as leaf tensors over flat's storage whose gradients are views of flat.grad: a
        backward through them writes flat.grad in place, without the slicing nodes that views of flat
        cost in the graph (a third of the chapter model's step). For one-device training only (see
        `write_gradients_in_place`): flat itself is not in the graph, so hooks on it would not fire."""
        flat = self.flat
        if flat.grad is None:
            flat.grad = torch.zeros_like(flat)
        key = (flat.data_ptr(), flat.grad.data_ptr())  # rebuilt when either is replaced (moved to a device, say)
        if key != self._leaf_key:
            leaves = self.parts(flat.detach())
            for part, grads in zip(leaves, self.parts(flat.grad), strict=True):
                for name, leaf in part.items():
                    leaf.requires_grad_()
                    leaf.grad = grads[name]
            self._leaves, self._leaf_key = leaves, key
        return self._leaves

    def __getstate__(self):
        state = super().__getstate__()
        return {**state, "_leaves": None, "_leaf_key": None}  # views of this process's tensors: rebuilt

    def forward(
        self, x: torch.Tensor, counts: torch.Tensor | None = None, members: torch.Tensor | None = None
    ) -> torch.Tensor:
        if members is None and self.write_gradients_in_place and self.training and torch.is_grad_enabled():
            parts = self.gradient_leaves()
        else:  # some members: their rows of flat, laid out as the whole pack's (the same arithmetic)
            parts = self.parts(self.flat if members is None else self.flat.index_select(0, members))
        if x.dim() == 2:
            x = x.expand(parts[0]["weight"].shape[0], -1, -1)
        h, mask = x, None
        if counts is not None:
            mask = (torch.arange(x.shape[1], device=x.device) < counts[:, None]).unsqueeze(-1).to(x.dtype)
        for index, (layer, part) in enumerate(zip(self.layers, parts, strict=True)):
            h = torch.baddbmm(part["bias"], h, part["weight"])
            if not layer["hidden"]:
                return h
            if "norm" in layer:
                h = self._normalise(h, part, index, mask, counts, members)
            h = self.activation(h)
            if self.training and self.drops:
                h = self._dropout(h, counts, members)
        raise AssertionError("unreachable")

    def _normalise(self, h, part, index, mask, counts, members):
        gamma, beta = part["gamma"], part["beta"]
        running_mean, running_var = getattr(self, f"running_mean{index}"), getattr(self, f"running_var{index}")
        if members is not None:  # the running members' statistics (copies; written back below)
            running_mean, running_var = running_mean.index_select(0, members), running_var.index_select(0, members)
        if not self.training:
            return (h - running_mean) / torch.sqrt(running_var + self.eps) * gamma + beta
        if mask is None:
            n = torch.full((h.shape[0], 1, 1), h.shape[1], dtype=h.dtype, device=h.device)
            mean = h.mean(1, keepdim=True)
            var = (h - mean).pow(2).mean(1, keepdim=True)
        else:
            n = counts.to(h.dtype).clamp(min=1).view(-1, 1, 1)
            mean = (h * mask).sum(1, keepdim=True) / n
            var = ((h - mean).pow(2) * mask).sum(1, keepdim=True) / n
        with torch.no_grad():  # running statistics (unbiased variance), members with rows only
            unbiased = var * n / (n - 1).clamp(min=1)
            moving = n > 1
            running_mean.copy_(torch.where(moving, running_mean.lerp(mean, self.momentum), running_mean))
            running_var.copy_(torch.where(moving, running_var.lerp(unbiased, self.momentum), running_var))
            if members is not None:
                getattr(self, f"running_mean{index}").index_copy_(0, members, running_mean)
                getattr(self, f"running_var{index}").index_copy_(0, members, running_var)
        return (h - mean) / torch.sqrt(var + self.eps) * gamma + beta

    def _dropout(self, h: torch.Tensor, counts: torch.Tensor | None, members: torch.Tensor | None) -> torch.Tensor:
        """Each member's mask from its own generator, drawn for its real rows only: its stream of draws is
        the one it would consume training alone."""
        running = range(self.members) if members is None else members.tolist()
        p = self.dropout.view(-1, 1, 1).to(h.dtype)
        p = p if members is None else p.index_select(0, members)
        rows, width = h.shape[1], h.shape[2]
        real = [rows] * len(running) if counts is None else counts.tolist()
        draws = torch.ones(len(running), rows, width)
        for row, member in enumerate(running):
            if not self.resting[member]:
                torch.rand(real[row], width, generator=self.generators[member], out=draws[row, : real[row]])
        return h * (draws.to(h.device) >= p).to(h.dtype) / (1 - p)

    def l1_norms(self, members: torch.Tensor | None = None) -> torch.Tensor:
        """Per member (or of `members`), the L1 norm of the linear layers' weights (not biases, not batch norm)."""
        flat = self.flat if members is None else self.flat.index_select(0, members)
        return (flat.abs() * self.weight_mask).sum(1)

    # The dropout generators' states travel with checkpoints, so a resumed fit draws the same masks.
    def generator_states(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def set_generator_states(self, states: list[torch.Tensor]) -> None:
        for generator, state in zip(self.generators, states, strict=True):
            generator.set_state(state)

    def member_state(self, members: list[int]) -> dict[str, torch.Tensor]:
        """This pack's state_dict restricted to `members`, in that order (a smaller pack's state)."""
        index = torch.tensor(members, device=self.flat.device)
        return {name: value.index_select(0, index).clone() for name, value in self.state_dict().items()}
