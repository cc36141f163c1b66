"""The direct transform against independent slow references (scipy's DCT, an explicit pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from partialface.frequency import (
    NUM_CHANNELS,
    channel_index,
    dct_matrix,
    scatter_channels,
    to_frequency,
    to_image,
)
from partialface.reference import reference_to_frequency, reference_to_image

from .conftest import load_lfw_faces


def slow_reference(x: np.ndarray) -> np.ndarray:
    """The published pipeline in float64 numpy/scipy, one block at a time: (B,3,H,W) -> (B,192,H,W)."""
    t = torch.from_numpy(x * 0.5 + 0.5)
    up = F.interpolate(t, scale_factor=8, mode="bilinear", align_corners=True).numpy() * 255.0
    r, g, b = up[:, 0], up[:, 1], up[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    ycc = np.stack([y, cb, cr], axis=1) - 128.0
    n, _, hh, ww = ycc.shape
    h, w = hh // 8, ww // 8
    out = np.zeros((n, 192, h, w))
    for p in range(h):
        for q in range(w):
            block = ycc[:, :, 8 * p : 8 * p + 8, 8 * q : 8 * q + 8]
            coeffs = scipy.fft.dctn(block, type=2, norm="ortho", axes=(2, 3))  # (n,3,8,8)
            out[:, :, p, q] = coeffs.reshape(n, 192)
    return out


def rel_err(a: torch.Tensor, b) -> float:
    b = torch.as_tensor(b, dtype=torch.float64)
    return float((a.double() - b).norm() / b.norm())


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 9, 13), (3, 3, 24, 8), (1, 3, 1, 5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scipy_reference_float64(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=shape)
    ref = slow_reference(x)
    assert rel_err(to_frequency(torch.from_numpy(x)), ref) < 1e-10


def test_float32_within_1e5_of_float64_reference():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    ref = slow_reference(x.numpy())
    out = to_frequency(x.float())
    assert out.dtype == torch.float32
    assert rel_err(out, ref) < 1e-5


def test_dct_matrix_is_scipys_orthonormal_dct():
    np.testing.assert_allclose(dct_matrix(), scipy.fft.dct(np.eye(8), norm="ortho", axis=0), atol=1e-14)


@pytest.mark.lfw
def test_real_faces_match_reference_pipeline():
    faces = load_lfw_faces(6)  # (6,3,112,112) float32 in [-1,1]
    ref = reference_to_frequency(faces.double())
    assert rel_err(to_frequency(faces.double()), ref) < 1e-10
    assert rel_err(to_frequency(faces), ref) < 1e-5
    # and the explicit per-block scipy reference on one face
    assert rel_err(to_frequency(faces[:1].double()), slow_reference(faces[:1].double().numpy())) < 1e-10


def test_channel_selection_order_and_per_sample():
    x = torch.rand(3, 3, 16, 24, dtype=torch.float64) * 2 - 1
    full = to_frequency(x)
    chosen = [191, 0, 64, 77, 5]
    assert torch.allclose(to_frequency(x, chosen), full[:, chosen], atol=1e-12, rtol=0)
    per_sample = torch.tensor([[1, 2, 3], [100, 3, 64], [190, 191, 0]])
    expected = torch.stack([full[i, per_sample[i]] for i in range(3)])
    assert torch.allclose(to_frequency(x, per_sample), expected, atol=1e-12, rtol=0)
    # the PartialFace layout (same frequencies in Y, Cb, Cr), shared and per sample
    layout = torch.tensor([c * 64 + f for c in range(3) for f in (63, 4, 27)])
    assert torch.allclose(to_frequency(x, layout), full[:, layout], atol=1e-12, rtol=0)
    rows = torch.stack([layout, layout.roll(1), layout.flip(0)])
    expected = torch.stack([full[i, rows[i]] for i in range(3)])
    assert torch.allclose(to_frequency(x, rows), expected, atol=1e-12, rtol=0)


def test_out_buffer_is_filled_and_returned():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = torch.full((2, 4, 16, 16), float("nan"))
    res = to_frequency(x, [1, 2, 3, 4], out=out)
    assert res is out and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="out must be"):
        to_frequency(x, [1, 2, 3], out=out)


def test_linearity_of_the_centred_transform():
    # F(x) is affine in x: F(a x1 + b x2) - F(0) = a (F(x1) - F(0)) + b (F(x2) - F(0))
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) - 0.5
    x2 = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) - 0.5
    f0 = to_frequency(torch.zeros_like(x1))
    lhs = to_frequency(0.7 * x1 + 0.9 * x2) - f0
    rhs = 0.7 * (to_frequency(x1) - f0) + 0.9 * (to_frequency(x2) - f0)
    assert torch.allclose(lhs, rhs, atol=1e-10)


def test_constant_grey_face_has_only_dc():
    x = torch.zeros(1, 3, 16, 16, dtype=torch.float64)  # mid grey 127.5
    f = to_frequency(x)
    dc_y = channel_index(0, 0, 0)
    assert torch.allclose(f[:, dc_y], torch.full((1, 16, 16), -0.5 * 8, dtype=torch.float64))
    f[:, dc_y] = 0
    assert f.abs().max() < 1e-10


def test_horizontal_flip_is_sign_rule_on_v_up_to_drift():
    # Mirroring the input mirrors the blocks and flips the sign of odd horizontal frequencies.
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64) * 2 - 1
    f = to_frequency(x).view(1, 3, 8, 8, 8, 8)
    g = to_frequency(x.flip(-1)).view(1, 3, 8, 8, 8, 8)
    sign = torch.tensor([(-1.0) ** v for v in range(8)], dtype=torch.float64)
    assert torch.allclose(g, (f * sign[None, None, None, :, None, None]).flip(-1), atol=1e-10)


def test_to_image_matches_reference_inverse_and_scatter():
    x = torch.rand(2, 3, 16, 12, dtype=torch.float64) * 2 - 1
    freq = to_frequency(x)
    assert torch.allclose(to_image(freq), reference_to_image(freq), atol=1e-12)
    kept = torch.arange(20, 192)
    sparse = scatter_channels(freq[:, kept], kept)
    assert sparse.shape == freq.shape and (sparse[:, :20] == 0).all()
    assert torch.allclose(to_image(sparse), reference_to_image(sparse), atol=1e-12)
    per_sample = torch.stack([kept, kept.flip(0)])
    values = torch.stack([freq[0, kept], freq[1, kept.flip(0)]])
    assert torch.allclose(scatter_channels(values, per_sample), sparse)


def test_to_image_round_trip_is_close_to_the_face():
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64) * 2 - 1
    x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)  # smooth like a photo
    img = to_image(to_frequency(x))
    assert (img - (x * 0.5 + 0.5)).abs().mean() < 0.02


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.zeros(2, 4, 16, 16), r"\(B,3,H,W\)"),
        (torch.zeros(3, 16, 16), r"\(B,3,H,W\)"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.int64), "dtype"),
        (torch.full((1, 3, 16, 16), float("nan")), "NaN"),
        (torch.full((1, 3, 16, 16), float("inf")), "NaN or inf"),
        (torch.full((1, 3, 16, 16), 3.0), r"\[-1,1\]"),
        (torch.zeros(0, 3, 16, 16), "empty"),
        (np.zeros((1, 3, 16, 16)), "torch.Tensor"),
    ],
)
def test_bad_input_names_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        to_frequency(bad)


@pytest.mark.parametrize(
    "channels, message",
    [([192], "0..191"), ([-1], "0..191"), ([], "J >= 1"), (torch.tensor([0.5]), "integer"), (torch.zeros(3, 2, dtype=torch.long), "rows")],
)
def test_bad_channels_name_the_problem(channels, message):
    with pytest.raises(ValueError, match=message):
        to_frequency(torch.zeros(2, 3, 8, 8), channels)


def test_to_image_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=f"{NUM_CHANNELS}"):
        to_image(torch.zeros(1, 27, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(to_frequency(x.cuda()).cpu(), to_frequency(x), atol=1e-3)


# --------------------------------------------------------------------------- the two CPU paths
from partialface import frequency_kernel  # noqa: E402


def _torch_path(monkeypatch, fn, *args, **kwargs):
    with monkeypatch.context() as m:
        m.setenv("PARTIALFACE_TRANSFORM", "torch")
        assert not frequency_kernel.available()
        return fn(*args, **kwargs)


needs_kernel = pytest.mark.skipif(
    frequency_kernel._stencil is None, reason="the compiled kernel is not built (no C compiler at install time)"
)


@needs_kernel
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("shape", [(3, 3, 16, 24), (1, 3, 1, 5), (2, 3, 9, 13), (5, 3, 112, 112)])
def test_compiled_kernel_matches_torch_path(monkeypatch, shape, dtype, tol):
    g = torch.Generator().manual_seed(sum(shape))
    x = (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    b = shape[0]
    layout = torch.tensor([c * 64 + f for c in range(3) for f in (63, 4, 27, 9)])
    cases = [None, [191, 0, 64, 77, 5], layout, torch.randint(192, (b, 7), generator=g),
             torch.stack([layout.roll(i) for i in range(b)])]
    for channels in cases:
        fast = to_frequency(x, channels)
        slow = _torch_path(monkeypatch, to_frequency, x, channels)
        assert fast.dtype == dtype and fast.shape == slow.shape
        assert rel_err(fast, slow.double()) < tol, channels


@needs_kernel
def test_compiled_kernel_float32_exactness_against_float64():
    x = torch.rand(4, 3, 112, 112, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
    assert rel_err(to_frequency(x.float()), reference_to_frequency(x)) < 1e-5


def test_frequency_scale_divides_each_channel(monkeypatch):
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64) * 2 - 1
    scale = torch.rand(192, dtype=torch.float64) + 0.5
    per_sample = torch.randint(192, (3, 5))
    expected = to_frequency(x, per_sample) / scale[per_sample][..., None, None]
    assert torch.allclose(to_frequency(x, per_sample, frequency_scale=scale), expected, atol=1e-12, rtol=1e-12)
    slow = _torch_path(monkeypatch, to_frequency, x, per_sample, frequency_scale=scale)
    assert torch.allclose(slow, expected, atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match="frequency_scale"):
        to_frequency(x, per_sample, frequency_scale=torch.zeros(192))


def test_without_the_compiled_kernel_the_torch_path_runs(monkeypatch):
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    expected = to_frequency(x, [3, 70, 150])
    monkeypatch.setattr(frequency_kernel, "_stencil", None)
    assert not frequency_kernel.available()
    assert torch.allclose(to_frequency(x, [3, 70, 150]), expected, atol=1e-12)


def test_non_contiguous_out_buffer_is_filled():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = torch.empty(2, 16, 16, 3).permute(0, 3, 1, 2)  # (2,3,16,16), channels last
    res = to_frequency(x, [1, 2, 3], out=out)
    assert res is out and torch.allclose(out, to_frequency(x, [1, 2, 3]), atol=1e-4)


def test_large_outputs_are_ordinary_tensors():
    # large outputs live in a huge-page mapping; they must behave like any tensor
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    out = to_frequency(x)  # 9.6 MB: above the huge-page threshold
    assert out.shape == (2, 192, 112, 112) and out.is_contiguous()
    shared = out.clone().share_memory_()
    assert torch.equal(shared, out)
    out.mul_(2).add_(1)
    assert torch.isfinite(out).all()
