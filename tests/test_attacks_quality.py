"""SSIM and PSNR helpers against known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from partialface.attacks.quality import DEFAULT_MAX_PSNR, psnr_per_image, ssim_per_image

from ._attack_fixtures import smooth_faces


def test_identical_images_score_perfectly() -> None:
    faces = smooth_faces(3, 32)
    assert ssim_per_image(faces, faces) == pytest.approx(np.ones(3))
    assert np.all(psnr_per_image(faces, faces) == DEFAULT_MAX_PSNR)
    assert np.all(psnr_per_image(faces, faces, max_psnr=60.0) == 60.0)


def test_psnr_of_a_uniform_offset() -> None:
    # In [0, 1] units an offset of 0.1 everywhere gives MSE 0.01, i.e. PSNR = 10 log10(1 / 0.01) = 20 dB.
    original = torch.full((2, 3, 16, 16), -0.5)
    assert psnr_per_image(original + 0.2, original) == pytest.approx([20.0, 20.0])


def test_ssim_of_two_constant_images() -> None:
    # Constant images: variances and covariance vanish, SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    first, second = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.2)  # 0.5 and 0.6 in [0, 1]
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
    assert ssim_per_image(second, first) == pytest.approx([expected], abs=1e-9)


def test_quality_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_per_image(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 12))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_per_image(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr_per_image(torch.zeros(3, 16, 16), torch.zeros(3, 16, 16))
