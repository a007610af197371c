"""One optimizer for a pack's [K, P] parameter: torch's SGD, Adam, AdamW and RMSprop, member by member.

Each member (a row of the parameter) has its own hyperparameters (lr, weight_decay, momentum), its own
optimizer state and step count, and only the members asked to move do: a member that has stopped (early
stopping) or that has no rows in a step keeps its weights and state exactly. The arithmetic is torch's
own: its functional implementations (`torch.optim.adam.adam`, ...) applied to the rows, fused kernels
where torch has them on the device, members with equal hyperparameters in one call. A row is updated the
same way whatever the other rows hold, so a member trains in a pack exactly as it trains alone.

The param group's `lr` is a multiplier (1.0 at the start) that learning-rate schedulers change: member
k's rate is `param_groups[0]["lr"] * lr[k]`.
"""

import torch
from torch.optim import adam, adamw, rmsprop, sgd

ALGORITHMS = ("sgd", "adam", "adamw", "rmsprop")
FUSED = ("sgd", "adam", "adamw")  # torch has fused kernels for these on the CPU and CUDA


class PackedOptimizer(torch.optim.Optimizer):
    def __init__(
        self,
        param: torch.nn.Parameter,
        algorithm: str,
        lr: list[float],
        weight_decay: list[float],
        momentum: list[float],
        nesterov: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        alpha: float = 0.99,
    ):
        assert algorithm in ALGORITHMS and param.dim() == 2 and len(lr) == len(weight_decay) == len(momentum)
        super().__init__([param], {"lr": 1.0})
        self.algorithm = algorithm
        self.member_lr, self.weight_decay, self.momentum = list(lr), list(weight_decay), list(momentum)
        self.nesterov, self.betas, self.eps, self.alpha = nesterov, betas, eps, alpha
        self.fused = algorithm in FUSED and param.device.type in ("cpu", "cuda")
        self.active: list[int] | None = None  # the members step() moves; None: all

    @property
    def param(self) -> torch.nn.Parameter:
        return self.param_groups[0]["params"][0]

    def rates(self) -> list[float]:
        """Each member's learning rate now."""
        return [self.param_groups[0]["lr"] * lr for lr in self.member_lr]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.update(self.active)
        return loss

    @torch.no_grad()
    def update(self, members: list[int] | None = None) -> None:
        """One step of `members` (None: all). The step itself, without torch's per-call profiling wrapper
        around `step`: on a small model that wrapper costs as much as the arithmetic."""
        self._opt_called = True  # what torch's step wrapper tells a scheduler (else it warns of a wrong order)
        p = self.param
        if p.grad is None:
            return
        state = self.state[p]
        if not state:
            self._init_state(state, p)
        rates = self.rates()
        groups: dict[tuple, list[int]] = {}
        for k in range(p.shape[0]) if members is None else members:
            groups.setdefault((rates[k], self.weight_decay[k], self.momentum[k]), []).append(k)
        for (lr, weight_decay, momentum), rows in groups.items():
            self._step(p, state, rows, lr, weight_decay, momentum)

    def _init_state(self, state: dict, p: torch.Tensor) -> None:
        steps = torch.zeros(p.shape[0], dtype=torch.float32, device=p.device if self.fused else "cpu")
        if self.algorithm in ("adam", "adamw"):
            state.update(step=steps, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        elif self.algorithm == "rmsprop":
            state.update(step=steps, square_avg=torch.zeros_like(p), momentum_buffer=torch.zeros_like(p))
        else:  # torch starts the buffer as the first gradient: 0 x momentum + gradient is exactly that
            state.update(momentum_buffer=torch.zeros_like(p))

    def _step(self, p, state, rows: list[int], lr: float, weight_decay: float, momentum: float) -> None:
        params, grads = [p[k] for k in rows], [p.grad[k] for k in rows]
        beta1, beta2 = self.betas
        if self.algorithm in ("adam", "adamw"):
            function = adam.adam if self.algorithm == "adam" else adamw.adamw
            function(
                params,
                grads,
                [state["exp_avg"][k] for k in rows],
                [state["exp_avg_sq"][k] for k in rows],
                [],
                [state["step"][k] for k in rows],
                foreach=not self.fused,
                fused=self.fused or None,
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=lr,
                weight_decay=weight_decay,
                eps=self.eps,
                maximize=False,
            )
        elif self.algorithm == "rmsprop":
            rmsprop.rmsprop(
                params,
                grads,
                [state["square_avg"][k] for k in rows],
                [],
                [state["momentum_buffer"][k] for k in rows] if momentum > 0 else [],
                [state["step"][k] for k in rows],
                foreach=True,
                lr=lr,
                alpha=self.alpha,
                eps=self.eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=False,
            )
        else:
            buffers = [state["momentum_buffer"][k] for k in rows] if momentum > 0 else [None] * len(rows)
            sgd.sgd(
                params,
                grads,
                buffers,
                foreach=not self.fused,
                fused=self.fused or None,
                weight_decay=weight_decay,
                momentum=momentum,
                lr=lr,
                dampening=0.0,
                nesterov=self.nesterov,
                maximize=False,
            )


def clip_gradients(grad: torch.Tensor, clip: torch.Tensor, algorithm: str) -> None:
    """Per member (rows of `grad`): clip to the L2 norm `clip[k]` (torch.nn.utils.clip_grad_norm_'s rule) or
    each element to [-clip[k], clip[k]]; inf leaves a member unclipped."""
    clip = clip.view(-1, 1).to(grad.device, grad.dtype)
    if algorithm == "value":
        torch.minimum(torch.maximum(grad, -clip), clip, out=grad)
        return
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_(torch.clamp(clip / (norm + 1e-6), max=1.0))
