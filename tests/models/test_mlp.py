"""The plain MLP: the chapter's classifier, the layers its options name, its weight initialisation."""

import pytest
import torch
from torch import nn

from trainlab.models import MLP


def test_mlp_with_one_hidden_layer_is_the_chapters_simple_classifier():
    mlp = MLP(2, 1, [10])
    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear]
    assert (mlp[0].in_features, mlp[0].out_features, mlp[2].out_features) == (2, 10, 1)
    assert sum(p.numel() for p in mlp.parameters()) == 41  # 2*10 + 10 + 10*1 + 1


def test_mlp_options_build_the_layers_they_name():
    mlp = MLP(4, 3, [8, 6], activation="tanh", dropout=0.2, batch_norm=True)
    kinds = [type(layer) for layer in mlp]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout] * 2 + [nn.Linear]
    assert mlp(torch.randn(5, 4)).shape == (5, 3)


@pytest.mark.parametrize("init", ["xavier", "kaiming"])
def test_weight_init_options(init):
    torch.manual_seed(0)
    default = MLP(50, 1, [200])
    torch.manual_seed(0)
    custom = MLP(50, 1, [200], init=init)
    first = custom[0]
    assert torch.count_nonzero(first.bias) == 0
    bound = (6 / (50 + 200)) ** 0.5 if init == "xavier" else (6 / 50) ** 0.5
    assert first.weight.abs().max() <= bound
    assert first.weight.abs().max() > 0.9 * bound  # uses its range, unlike PyTorch's default 1/sqrt(50)
    assert not torch.equal(default[0].weight, first.weight)
