"""Stacked convolutions, transposed convolutions and 2-d batch norm: each member against ``torch.nn``'s layer alone,
forward and backward (inputs, weights, biases, running statistics), with both mechanisms: ``loop`` bit for bit (the
same call per member), ``grouped`` to rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebgan_core.stacked_conv import MECHANISMS, StackedBatchNorm2d, StackedConv2d

MEMBERS, COUNT = 3, 4


def assert_same(ours: torch.Tensor, theirs: torch.Tensor, mechanism: str, dtype: torch.dtype, what: str) -> None:
    if mechanism == "loop":
        assert torch.equal(ours, theirs), what
    else:
        tolerance = 1e-12 if dtype == torch.float64 else 1e-5  # sums in another order: relative to the largest value
        torch.testing.assert_close(ours, theirs, rtol=tolerance, atol=tolerance * theirs.abs().max().item(), msg=what)


def forward_backward(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = layer(x)
    (y * upstream).sum().backward()
    return y.detach(), x.grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize(("transposed", "stride", "padding"), [(False, 2, 1), (True, 2, 1), (False, 1, 0)])
def test_each_member_of_a_stacked_convolution_is_torch_nns_alone(transposed, stride, padding, mechanism, dtype):
    generator = torch.Generator().manual_seed(0)
    stacked = StackedConv2d(MEMBERS, 3, 5, 4, stride, padding, transposed=transposed, mechanism=mechanism).to(dtype)
    with torch.no_grad():
        stacked.weight.normal_(generator=generator)
        stacked.bias.normal_(generator=generator)
    x = torch.randn(MEMBERS, COUNT, 3, 8, 8, generator=generator, dtype=dtype)
    y, x_grad = forward_backward(stacked, x, torch.ones(1, dtype=dtype))
    upstream = torch.randn(y.shape, generator=generator, dtype=dtype)
    stacked.zero_grad()
    y, x_grad = forward_backward(stacked, x, upstream)
    for m in range(MEMBERS):
        kind = nn.ConvTranspose2d if transposed else nn.Conv2d
        plain = kind(3, 5, 4, stride, padding, dtype=dtype)
        with torch.no_grad():
            plain.weight.copy_(stacked.weight[m])
            plain.bias.copy_(stacked.bias[m])
        y_m, x_grad_m = forward_backward(plain, x[m], upstream[m])
        assert_same(y[m], y_m, mechanism, dtype, f"output of member {m}")
        assert_same(x_grad[m], x_grad_m, mechanism, dtype, f"input gradient of member {m}")
        assert_same(stacked.weight.grad[m], plain.weight.grad, mechanism, dtype, f"weight gradient of member {m}")
        assert_same(stacked.bias.grad[m], plain.bias.grad, mechanism, dtype, f"bias gradient of member {m}")


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_each_member_of_a_stacked_batch_norm_is_torch_nns_alone(mechanism, dtype):
    generator = torch.Generator().manual_seed(1)
    stacked = StackedBatchNorm2d(MEMBERS, 5, mechanism=mechanism).to(dtype)
    with torch.no_grad():
        stacked.weight.normal_(1.0, 0.2, generator=generator)
        stacked.bias.normal_(generator=generator)
    plains = []
    for m in range(MEMBERS):
        plain = nn.BatchNorm2d(5, dtype=dtype)
        with torch.no_grad():
            plain.weight.copy_(stacked.weight[m])
            plain.bias.copy_(stacked.bias[m])
        plains.append(plain)
    for _ in range(2):  # two training batches move the running statistics
        x = torch.randn(MEMBERS, COUNT, 5, 6, 6, generator=generator, dtype=dtype) * 3 + 1
        upstream = torch.randn(x.shape, generator=generator, dtype=dtype)
        stacked.zero_grad()
        y, x_grad = forward_backward(stacked, x, upstream)
        for m, plain in enumerate(plains):
            plain.zero_grad()
            y_m, x_grad_m = forward_backward(plain, x[m], upstream[m])
            assert_same(y[m], y_m, mechanism, dtype, f"output of member {m}")
            assert_same(x_grad[m], x_grad_m, mechanism, dtype, f"input gradient of member {m}")
            assert_same(stacked.weight.grad[m], plain.weight.grad, mechanism, dtype, f"weight gradient of member {m}")
            assert_same(stacked.running_mean[m], plain.running_mean, mechanism, dtype, f"running mean of member {m}")
            assert_same(stacked.running_var[m], plain.running_var, mechanism, dtype, f"running var of member {m}")
    stacked.eval()
    x = torch.randn(MEMBERS, COUNT, 5, 6, 6, generator=generator, dtype=dtype)
    for m, plain in enumerate(plains):
        assert_same(stacked(x)[m].detach(), plain.eval()(x[m]).detach(), mechanism, dtype, f"eval output of member {m}")


def test_an_unknown_mechanism_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown stacking mechanism 'vmap'; use one of loop, grouped"):
        StackedConv2d(2, 3, 5, 4, mechanism="vmap")


def converters(member: int):
    """Functions making member ``member``'s plain ``torch.nn`` layer of a stacked convolution and of a stacked batch
    norm (identity for anything else)."""
    def conv(layer: StackedConv2d) -> nn.Module:
        kind = nn.ConvTranspose2d if layer.transposed else nn.Conv2d
        in_channels, out_channels = layer.weight.shape[1:3] if layer.transposed else layer.weight.shape[2:0:-1]
        plain = kind(in_channels, out_channels, layer.weight.shape[-1], layer.stride, layer.padding,
                     bias=layer.bias is not None, dtype=layer.weight.dtype)
        with torch.no_grad():
            plain.weight.copy_(layer.weight[member])
            if layer.bias is not None:
                plain.bias.copy_(layer.bias[member])
        return plain

    def norm(layer: nn.Module) -> nn.Module:
        if not isinstance(layer, StackedBatchNorm2d):
            return nn.Identity()
        plain = nn.BatchNorm2d(layer.weight.shape[1], dtype=layer.weight.dtype)
        with torch.no_grad():
            plain.weight.copy_(layer.weight[member])
            plain.bias.copy_(layer.bias[member])
            plain.running_mean.copy_(layer.running_mean[member])
            plain.running_var.copy_(layer.running_var[member])
        return plain

    return conv, norm


class PlainNoiseFedGenerator(nn.Module):
    """Section 4.4's generator written out with torch.nn layers: its first block on z's first ``noise_dim`` values as
    a 1x1 map, then before each further block the next values of z as planes of the maps' size, concatenated to them
    (as many planes as the block takes inputs beyond the maps before it), and the output convolution + tanh."""

    def __init__(self, noise_dim: int, blocks: list[nn.Sequential], output: nn.Module) -> None:
        super().__init__()
        self.noise_dim, self.blocks, self.output = noise_dim, nn.ModuleList(blocks), output

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0](z[:, :self.noise_dim].reshape(len(z), self.noise_dim, 1, 1))
        used = self.noise_dim
        for block in self.blocks[1:]:
            planes, side = block[0].in_channels - x.shape[1], x.shape[-1]
            noise = z[:, used:used + planes * side * side].reshape(len(z), planes, side, side)
            x = block(torch.cat([x, noise], dim=1))
            used += planes * side * side
        assert used == z.shape[1], "z holds as many values as the planes take"
        return torch.tanh(self.output(x)).flatten(1)


def plain_conv_nets(model) -> dict[str, nn.Module]:
    """Member 0 of a convolutional ``StackedGan`` as plain ``torch.nn`` networks on flattened images, as
    ``test_train.plain_nets`` gives a fully connected one: G, and D or Enc and Dec."""
    from ebgan_core.conv.models import LEAK, DcganDiscriminator, NoiseFedGenerator

    conv, norm = converters(0)
    g = model.generator.network
    if isinstance(g, NoiseFedGenerator):
        blocks = [nn.Sequential(conv(c), norm(n), nn.ReLU()) for c, n in zip(g.convs, g.norms, strict=True)]
        nets = {"G": PlainNoiseFedGenerator(g.convs[0].weight.shape[1], blocks, conv(g.output))}
    else:
        layers = [nn.Unflatten(1, (g.convs[0].weight.shape[1], 1, 1))]
        for c, n in zip(g.convs[:-1], g.norms, strict=True):
            layers += [conv(c), norm(n), nn.ReLU()]
        nets = {"G": nn.Sequential(*layers, conv(g.convs[-1]), nn.Tanh(), nn.Flatten())}
    d, image = model.discriminator.network, nn.Unflatten(1, model.discriminator.image_shape)
    leaky = nn.LeakyReLU(LEAK)
    if isinstance(d, DcganDiscriminator):
        layers = [module for c, n in zip(d.convs, d.norms, strict=True) for module in (conv(c), norm(n), leaky)]
        nets["D"] = nn.Sequential(image, *layers, conv(d.output), nn.Flatten())
        return nets
    layers = [module for c, n in zip(d.encoder, d.encoder_norms, strict=True) for module in (conv(c), norm(n), leaky)]
    nets["Enc"] = nn.Sequential(image, *layers, nn.Flatten())
    code_maps = d.encoder[-1].weight.shape[1]
    layers = [module for c, n in zip(d.decoder[:-1], d.decoder_norms, strict=True)
              for module in (conv(c), norm(n), nn.ReLU())]
    nets["Dec"] = nn.Sequential(nn.Unflatten(1, (code_maps, 8, 8)), *layers, conv(d.decoder[-1]), nn.Flatten())
    return nets


def test_the_paper_networks_stack_members_that_are_plain_torch_nn_networks_alone():
    """DCGAN's generator and discriminator and EBGAN's convolutional auto-encoder (Appendix C), 32x32, float64: each
    member equals the same network of torch.nn layers run alone, bit for bit (the loop mechanism)."""
    from ebgan_core.conv.models import LEAK, ConvAutoEncoderDiscriminator, DcganDiscriminator, DcganGenerator
    from ebgan_core.losses import energy

    generator = torch.Generator().manual_seed(2)
    nets = {"G": DcganGenerator(MEMBERS, 10, 32, 1, 4), "D": DcganDiscriminator(MEMBERS, 32, 1, 4),
            "AE": ConvAutoEncoderDiscriminator(MEMBERS, 32, 1, 4)}
    for net in nets.values():
        net.double()
        for param in net.parameters():
            with torch.no_grad():
                param.normal_(0.0, 0.3, generator=generator)
    z = torch.randn(MEMBERS, COUNT, 10, generator=generator, dtype=torch.float64)
    images = nets["G"](z)
    on_images, encoded = nets["D"](images).value, nets["AE"](images)
    leaky = nn.LeakyReLU(LEAK)
    for m in range(MEMBERS):
        conv, norm = converters(m)
        g = nets["G"]
        layers = [nn.Unflatten(1, (10, 1, 1))]
        for c, n in zip(g.convs[:-1], g.norms, strict=True):
            layers += [conv(c), norm(n), nn.ReLU()]
        plain_g = nn.Sequential(*layers, conv(g.convs[-1]), nn.Tanh())
        assert torch.equal(plain_g(z[m]), images[m])
        d = nets["D"]
        layers = [module for c, n in zip(d.convs, d.norms, strict=True) for module in (conv(c), norm(n), leaky)]
        plain_d = nn.Sequential(*layers, conv(d.output), nn.Flatten())
        assert torch.equal(plain_d(images[m]).squeeze(1), on_images[m])
        a = nets["AE"]
        encoder = nn.Sequential(*[module for c, n in zip(a.encoder, a.encoder_norms, strict=True)
                                  for module in (conv(c), norm(n), leaky)])
        decoder = nn.Sequential(*[module for c, n in zip(a.decoder[:-1], a.decoder_norms, strict=True)
                                  for module in (conv(c), norm(n), nn.ReLU())], conv(a.decoder[-1]))
        code = encoder(images[m])
        assert torch.equal(code.flatten(1), encoded.code[m])
        assert torch.equal(energy(images[m].flatten(1), decoder(code).flatten(1)), encoded.value[m])
