"""PackedOptimizer: torch's algorithms member by member, and gradient clipping that bounds every step."""

import pytest
import torch

from tests.models.helpers import fit
from trainlab.models import MLPModule
from trainlab.models.optim import PackedOptimizer


@pytest.mark.parametrize(
    "algorithm, options",
    [
        ("sgd", {}),
        ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        ("adam", {"weight_decay": 0.01}),
        ("adamw", {"weight_decay": 0.01}),
        ("rmsprop", {}),
        ("rmsprop", {"momentum": 0.5, "weight_decay": 0.01}),
    ],
)
def test_the_packed_optimizer_is_torchs_algorithm_member_by_member(algorithm, options):
    torch.manual_seed(0)
    start = torch.randn(3, 40)
    ours = torch.nn.Parameter(start.clone())
    rates = [0.01, 0.03, 0.001]
    packed = PackedOptimizer(
        ours,
        algorithm,
        lr=rates,
        weight_decay=[options.get("weight_decay", 0.0)] * 3,
        momentum=[options.get("momentum", 0.0)] * 3,
        nesterov=options.get("nesterov", False),
    )
    torch_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    torch_class["rmsprop"] = torch.optim.RMSprop
    references = [torch.nn.Parameter(start[k].clone()) for k in range(3)]
    fused = {"fused": True} if algorithm != "rmsprop" else {}  # torch's fused kernels, as ours on the CPU
    optimizers = [torch_class[algorithm]([p], lr=rates[k], **options, **fused) for k, p in enumerate(references)]
    for step in range(30):
        grads = torch.randn(3, 40)
        ours.grad = grads.clone()
        packed.active = [0, 1, 2] if step < 10 else [0, 2]  # member 1 stops after 10 steps
        packed.step()
        for k, (p, optimizer) in enumerate(zip(references, optimizers, strict=True)):
            if k == 1 and step >= 10:
                continue
            p.grad = grads[k].clone()
            optimizer.step()
    for k in range(3):
        torch.testing.assert_close(ours[k], references[k], rtol=0, atol=0)  # torch's own arithmetic


def test_gradient_clipping_bounds_every_step():
    torch.manual_seed(0)
    module = MLPModule(input_dim=4, task="binary", hidden_dims=[16], optimizer="sgd", lr=1.0, gradient_clip_val=1e-3)
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    trainer = fit(module, {"batch_size": 32}, max_epochs=1)
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    steps = trainer.global_step
    assert steps == 8  # 240 training samples in batches of 32: one optimizer step per mini-batch
    assert (after - before).norm() <= steps * 1e-3 * 1.0001  # each SGD step moves at most lr * clip
