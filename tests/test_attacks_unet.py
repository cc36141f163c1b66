"""The attacker network and its loss."""

from __future__ import annotations

import pytest
import torch

from partialface.attacks.losses import ReconstructionLoss, ssim_torch
from partialface.attacks.quality import ssim_per_image
from partialface.attacks.unet import ReconstructionUNet, estimate_memory_bytes

from ._attack_fixtures import smooth_faces


@pytest.mark.parametrize("in_channels,size,depth", [(27, 32, 3), (3, 8, 2), (192, 16, 1)])
def test_unet_output_shape_and_range(in_channels: int, size: int, depth: int) -> None:
    model = ReconstructionUNet(in_channels, 3, width=4, depth=depth)
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, size, size) * 50)
    assert out.shape == (2, 3, size, size)
    assert float(out.abs().max()) <= 1.0


def test_unet_rejects_bad_inputs() -> None:
    model = ReconstructionUNet(27, 3, width=4, depth=3)
    with pytest.raises(ValueError, match="expected input of shape"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="not a multiple of 16"):
        model(torch.zeros(1, 27, 24, 24))
    with pytest.raises(ValueError, match="width"):
        ReconstructionUNet(27, 3, width=0)


def test_input_statistics_standardise_each_channel() -> None:
    model = ReconstructionUNet(2, 3, width=4, depth=1)
    sample = torch.stack([torch.randn(64, 8, 8) * 300 + 40, torch.randn(64, 8, 8) * 0.01 - 2], dim=1)
    model.fit_input_statistics(sample)
    standardised = (sample - model.input_mean.view(1, -1, 1, 1)) / model.input_std.view(1, -1, 1, 1)
    assert torch.allclose(standardised.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(standardised.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-3)


def test_unet_learns_to_invert_a_fixed_encoding() -> None:
    torch.manual_seed(0)
    faces = smooth_faces(8, 16)
    encoded = torch.cat([faces * 100.0, -faces], dim=1)  # a trivially invertible "encoder"
    model = ReconstructionUNet(6, 3, width=4, depth=1)
    model.fit_input_statistics(encoded)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    loss_fn = ReconstructionLoss()
    with torch.no_grad():
        first = float(loss_fn(model(encoded), faces))
    for _ in range(25):
        loss = loss_fn(model(encoded), faces)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first


def test_torch_ssim_matches_scikit_image() -> None:
    original = smooth_faces(3, 32, seed=4)
    noisy = (original + 0.2 * torch.randn(original.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    ours = ssim_torch(noisy.double() * 0.5 + 0.5, original.double() * 0.5 + 0.5).numpy()
    assert ours == pytest.approx(ssim_per_image(noisy, original), abs=1e-10)


def test_loss_adds_the_ssim_term() -> None:
    faces = smooth_faces(2, 16)
    shifted = (faces + 0.1).clamp(-1, 1)
    plain = float(ReconstructionLoss()(shifted, faces))
    with_ssim = float(ReconstructionLoss(ssim_weight=2.0)(shifted, faces))
    expected_ssim = float(ssim_torch(shifted * 0.5 + 0.5, faces * 0.5 + 0.5).mean())
    assert with_ssim == pytest.approx(plain + 2.0 * (1 - expected_ssim), rel=1e-5)
    with pytest.raises(ValueError, match="ssim_weight"):
        ReconstructionLoss(-1.0)


@pytest.mark.parametrize("in_channels,width,depth,batch,size", [(27, 16, 3, 4, 112), (192, 8, 2, 2, 64), (3, 4, 0, 3, 32)])
def test_memory_estimate_counts_the_weights_and_bounds_the_saved_activations(in_channels, width, depth, batch,
                                                                             size) -> None:
    model = ReconstructionUNet(in_channels, 3, width=width, depth=depth)
    parameters = sum(p.numel() for p in model.parameters())
    weights_only = estimate_memory_bytes(in_channels, 3, width, depth, size, size, batch_size=0)
    assert weights_only == 4 * 4 * parameters  # weights, gradients and two Adam moments, float32
    saved: dict[int, int] = {}
    weight_pointers = {p.data_ptr() for p in model.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() not in weight_pointers:
            saved[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(torch.randn(batch, in_channels, size, size))
    activations = estimate_memory_bytes(in_channels, 3, width, depth, size, size, batch) - weights_only
    # the estimate holds every tensor autograd keeps and its gradient, and overestimates them by < 60 %
    assert 2 * sum(saved.values()) <= activations <= 2 * 1.6 * sum(saved.values())


def test_memory_estimate_of_absurd_sizes_allocates_nothing() -> None:
    assert estimate_memory_bytes(192, 3, 16, 99, 112, 112, 16) > 2**100
