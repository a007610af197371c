"""PackedMLP: member k is the MLP its seed builds; members that run alone run as in the whole pack; gradients
written in place are the graph's own."""

import copy

import pytest
import torch

from trainlab.models.packed import PackedMLP


def test_each_member_is_the_mlp_its_seed_builds_and_batch_norm_ignores_padding():
    from trainlab.models import MLP

    pack = PackedMLP([5, 6], 3, 2, [8, 4], activation="tanh", batch_norm=True)
    torch.manual_seed(6)
    alone = MLP(3, 2, [8, 4], activation="tanh", batch_norm=True).eval()
    x = torch.randn(10, 3)
    torch.testing.assert_close(pack.eval()(x)[1], alone(x), rtol=0, atol=1e-6)
    # training: member 0's batch has 4 real rows of 10; its statistics are those of the 4 rows alone
    pack.train()
    padded = torch.stack([torch.cat([x[:4], torch.full((6, 3), 1e3)]), x])
    out = pack(padded, counts=torch.tensor([4, 10]))
    torch.testing.assert_close(out[0, :4], pack(x[:4])[0], rtol=0, atol=1e-5)


def test_some_members_run_alone_as_they_run_in_the_whole_pack():
    """A pack whose other members stopped runs only the moving ones (forward(..., members)): their outputs,
    dropout masks, batch statistics and gradients are those they get in the whole pack; the others' running
    statistics and dropout streams stay untouched."""
    x = torch.randn(3, 16, 5)
    counts = torch.tensor([16, 9, 12])
    whole = PackedMLP([1, 2, 3], 5, 1, [8, 4], dropout=[0.2, 0.3, 0.1], batch_norm=True).train()
    part = copy.deepcopy(whole)
    part.resting = [True, False, False]  # member 0 stopped: no masks drawn for it
    before = part.generators[0].get_state()
    out = whole(x, counts)
    moving = torch.tensor([1, 2])
    out_part = part(x.index_select(0, moving), counts.index_select(0, moving), moving)
    torch.testing.assert_close(out_part, out[1:], rtol=0, atol=0)
    out[1:].sum().backward()
    out_part.sum().backward()
    torch.testing.assert_close(part.flat.grad[1:], whole.flat.grad[1:], rtol=0, atol=0)
    assert part.flat.grad[0].abs().sum() == 0 and torch.equal(part.generators[0].get_state(), before)
    for name in ("running_mean0", "running_var0", "running_mean1", "running_var1"):
        moved, kept = getattr(part, name), getattr(PackedMLP([1, 2, 3], 5, 1, [8, 4], batch_norm=True), name)
        torch.testing.assert_close(moved[1:], getattr(whole, name)[1:], rtol=0, atol=0)
        torch.testing.assert_close(moved[0], kept[0], rtol=0, atol=0)
    l1 = whole.l1_norms()
    torch.testing.assert_close(part.l1_norms(moving), l1[1:], rtol=0, atol=0)


@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.0), (False, 0.3)])
def test_gradients_written_in_place_are_the_graphs_own(batch_norm, dropout):
    """One-device training runs the forward through leaves over flat's storage whose gradients are views of
    flat.grad: the same gradients, bit for bit, as the graph through flat, written into one buffer that
    stays (zeroed in place, never replaced); a later move of flat rebuilds the leaves."""
    x, y = torch.randn(2, 12, 4), torch.randn(2, 12, 1)
    nets = [PackedMLP([1, 2], 4, 1, [6, 5], "gelu", dropout, batch_norm).train() for _ in range(2)]
    nets[1].write_gradients_in_place = True
    through_flat = [0, 0]  # flat's own gradient hook fires only where flat is in the graph
    for index, net in enumerate(nets):
        net.flat.register_hook(lambda grad, index=index: through_flat.__setitem__(index, through_flat[index] + 1))
        for _ in range(2):  # the second backward accumulates onto the first, as torch does
            ((net(x) - y) ** 2).mean().backward()
    assert through_flat == [2, 0]
    torch.testing.assert_close(nets[1].flat.grad, nets[0].flat.grad, rtol=0, atol=0)
    buffer = nets[1].flat.grad
    buffer.zero_()
    masks = nets[1].generator_states()  # the next two forwards draw the same dropout masks
    ((nets[1](x) - y) ** 2).mean().backward()
    assert nets[1].flat.grad is buffer and buffer.abs().sum() > 0
    nets[1].flat.grad = None  # a new buffer (Lightning's set_to_none, a move to another device): new leaves
    nets[1].set_generator_states(masks)
    ((nets[1](x) - y) ** 2).mean().backward()
    torch.testing.assert_close(nets[1].flat.grad, buffer, rtol=0, atol=0)
    assert nets[1].flat.grad is not buffer
    with torch.no_grad():  # evaluation builds no graph and touches no gradient
        nets[1].eval()(x)
