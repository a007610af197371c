"""One optimizer for a pack's [K, P] parameter: torch's SGD, Adam, AdamW and RMSprop, member by member.

Each member has its own hyperparameters (a [K] tensor each: lr, weight_decay, momentum) and its own step
count, and only the `active` members move: a member that has stopped (early stopping) or that has no rows
in this step keeps its weights and optimizer state exactly. The arithmetic is torch's single-tensor
implementation of each algorithm (tested against torch.optim), so a pack of one trains as torch would.

The param group's `lr` is a multiplier (1.0 at the start) for learning-rate schedulers: member k's rate
is `param_groups[0]["lr"] * lr[k]`.
"""

import torch

ALGORITHMS = ("sgd", "adam", "adamw", "rmsprop")


class PackedOptimizer(torch.optim.Optimizer):
    def __init__(
        self,
        param: torch.nn.Parameter,
        algorithm: str,
        lr: torch.Tensor,
        weight_decay: torch.Tensor,
        momentum: torch.Tensor,
        nesterov: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        alpha: float = 0.99,
    ):
        assert algorithm in ALGORITHMS and param.dim() == 2
        super().__init__([param], {"lr": 1.0})
        column = {"device": param.device, "dtype": param.dtype}
        self.algorithm = algorithm
        self.member_lr = lr.to(**column).view(-1, 1)
        self.weight_decay = weight_decay.to(**column).view(-1, 1)
        self.momentum = momentum.to(**column).view(-1, 1)
        self.nesterov, self.betas, self.eps, self.alpha = nesterov, betas, eps, alpha
        self.active: torch.Tensor | None = None  # [K] bool; None: every member moves

    @property
    def param(self) -> torch.nn.Parameter:
        return self.param_groups[0]["params"][0]

    def rates(self) -> torch.Tensor:
        """Each member's learning rate now: [K]."""
        return self.member_lr.view(-1) * self.param_groups[0]["lr"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        p = self.param
        if p.grad is None:
            return loss
        state = self.state[p]
        active = self.active
        if active is not None and bool(active.all()):
            active = None
        if active is not None:  # frozen members: remember their weights and state, put them back after
            keep = active.view(-1, 1)
            before = {"param": p.clone(), **{k: v.clone() for k, v in state.items()}}
        getattr(self, f"_{self.algorithm}")(p, p.grad, state, self.member_lr * self.param_groups[0]["lr"])
        if active is not None:
            p.copy_(torch.where(keep, p, before["param"]))
            for key, value in state.items():
                if key in before:
                    value.copy_(torch.where(keep, value, before[key]))
                else:  # created by this step: a frozen member's starts as if it had not been
                    value.masked_fill_(~keep, 0)
        return loss

    def _sgd(self, p, grad, state, lr):
        d_p = grad + self.weight_decay * p
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = state["momentum_buffer"] = d_p.clone()
        else:
            buffer.mul_(self.momentum).add_(d_p)
        d_p = d_p + self.momentum * buffer if self.nesterov else buffer
        p.sub_(lr * d_p)

    def _adam(self, p, grad, state, lr, decoupled: bool = False):
        if not state:
            state["step"] = torch.zeros(p.shape[0], 1, dtype=p.dtype, device=p.device)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = self.betas
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        step.add_(1)
        if decoupled:
            p.mul_(1 - lr * self.weight_decay)
        else:
            grad = grad + self.weight_decay * p
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr / (1 - beta1**step)
        denominator = (exp_avg_sq.sqrt() / (1 - beta2**step).sqrt()).add_(self.eps)
        p.sub_(step_size * (exp_avg / denominator))

    def _adamw(self, p, grad, state, lr):
        self._adam(p, grad, state, lr, decoupled=True)

    def _rmsprop(self, p, grad, state, lr):
        if not state:
            state["square_avg"] = torch.zeros_like(p)
            state["momentum_buffer"] = torch.zeros_like(p)
        grad = grad + self.weight_decay * p
        square_avg = state["square_avg"]
        square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        average = square_avg.sqrt().add_(self.eps)
        buffer = state["momentum_buffer"]
        buffer.mul_(self.momentum).addcdiv_(grad, average)
        p.sub_(lr * buffer)


def clip_gradients(grad: torch.Tensor, clip: torch.Tensor, algorithm: str) -> None:
    """Per member (rows of `grad`): clip to the L2 norm `clip[k]` (torch.nn.utils.clip_grad_norm_'s rule) or
    each element to [-clip[k], clip[k]]; inf leaves a member unclipped."""
    clip = clip.view(-1, 1).to(grad.dtype)
    if algorithm == "value":
        torch.minimum(torch.maximum(grad, -clip), clip, out=grad)
        return
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_(torch.clamp(clip / (norm + 1e-6), max=1.0))
