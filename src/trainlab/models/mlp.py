"""A plain multilayer perceptron: nothing Lightning about it."""

from torch import nn

from trainlab.rules import Activation, Init

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class MLP(nn.Sequential):
    """Linear layers of `hidden_dims` widths, each followed by [BatchNorm], activation, [Dropout]; then a
    linear output layer. `MLP(2, 1, [10])` is the chapter's SimpleClassifier: 2-10-ReLU-1.

    A Sequential itself (not a module holding one): one module call per forward, which matters when a
    step takes a fraction of a millisecond."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        hidden_dims: list[int],
        activation: Activation = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        init: Init = "default",
    ):
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, output_dim))
        super().__init__(*layers)
        if init != "default":
            self._initialise(init, activation)

    def _initialise(self, init: str, activation: str) -> None:
        for layer in self:
            if isinstance(layer, nn.Linear):
                if init == "xavier":
                    nn.init.xavier_uniform_(layer.weight)
                else:  # kaiming, for the rectifier family; tanh and sigmoid fall back to its linear gain
                    relu_like = activation in ("relu", "leaky_relu", "gelu")
                    nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu" if relu_like else "linear")
                nn.init.zeros_(layer.bias)
