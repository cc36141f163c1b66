"""Input encoders: channel counts, what each sends, scale handling, previews and saved state."""

from __future__ import annotations

import pytest
import torch

from partialface.encoders import (
    encoder_from_state,
    estimate_frequency_scale,
    get_encoder,
    list_encoders,
)
from partialface.frequency import to_frequency
from partialface.plan import ChannelPlan


@pytest.fixture(scope="module")
def faces():
    return torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.mark.parametrize("name, channels", [("rgb", 3), ("partialface", 27), ("fixed", 27), ("pruned", 162), ("frequency", 192)])
def test_output_channels(faces, name, channels):
    enc = get_encoder(name)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4)
    assert enc.out_channels == channels
    assert enc.encode_train(faces, labels, g).shape == (4, channels, 16, 16)
    assert enc.encode_query(faces, g).shape == (4, channels, 16, 16)


def test_partialface_query_sends_one_rank_per_sample(faces):
    plan = ChannelPlan.tface()
    enc = get_encoder("partialface", plan=plan)
    g = torch.Generator().manual_seed(5)
    sent = enc.encode_query(faces, g)
    subset, permutation = plan.sample_query_ranks(4, torch.Generator().manual_seed(5))
    assert torch.allclose(sent, plan.protect(faces, subset, permutation))
    assert torch.allclose(enc.encode_rank(faces, 2, 1), plan.protect(faces, 2, 1))


def test_fixed_and_pruned_send_the_documented_channels(faces):
    plan = ChannelPlan.tface()
    full = to_frequency(faces)
    assert torch.allclose(get_encoder("fixed", plan=plan).encode_query(faces), plan.protect(faces, 0, 0))
    pruned = get_encoder("pruned", plan=plan).encode_query(faces)
    assert torch.allclose(pruned, full[:, plan.all_channels()])
    low = {c * 64 + f for c in range(3) for f in plan.pruned}
    assert low.isdisjoint(plan.all_channels().tolist())


def test_frequency_scale_divides_and_preview_undoes_it(faces):
    scale = estimate_frequency_scale(faces)
    assert scale.shape == (192,) and (scale > 0).all()
    enc = get_encoder("pruned", frequency_scale=scale)
    plain = get_encoder("pruned")
    encoded = enc.encode_query(faces)
    kept = enc.fixed_channels
    assert torch.allclose(encoded * scale[kept][:, None, None], plain.encode_query(faces), rtol=1e-5, atol=1e-4)
    assert torch.allclose(enc.to_preview(encoded, kept), plain.to_preview(plain.encode_query(faces), kept), atol=1e-5)
    # scaled channels are near unit RMS
    rms = encoded.pow(2).mean(dim=(0, 2, 3)).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-3)


def test_preview_of_all_channels_is_the_face_and_of_partialface_is_not(faces):
    smooth = torch.nn.functional.avg_pool2d(faces, 3, 1, 1)
    freq_enc = get_encoder("frequency")
    everything = freq_enc.to_preview(freq_enc.encode_query(smooth), freq_enc.fixed_channels)
    assert (everything - (smooth * 0.5 + 0.5)).abs().mean() < 0.03
    pf = get_encoder("partialface")
    channels = pf.channels_for_query(4, torch.Generator().manual_seed(0))
    view = pf.to_preview(pf.encode(smooth, channels), channels)
    # what PartialFace sends shows almost nothing: a flat grey with a faint texture
    assert (view - 0.5).abs().mean() < 0.1 * (smooth * 0.5).abs().mean()
    rgb = get_encoder("rgb")
    assert torch.allclose(rgb.to_preview(rgb.encode_query(faces), None), faces * 0.5 + 0.5)


@pytest.mark.parametrize("name", ["rgb", "partialface", "fixed", "pruned", "frequency"])
def test_state_round_trip(faces, name):
    kwargs = {} if name == "rgb" else {"frequency_scale": torch.linspace(0.5, 2, 192)}
    if name == "partialface":
        kwargs["train_repeats"] = 4
    enc = get_encoder(name, plan=ChannelPlan.generate(2), **kwargs)
    again = encoder_from_state(enc.state_dict())
    assert again.name == name and again.out_channels == enc.out_channels
    assert again.train_repeats == enc.train_repeats
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.allclose(enc.encode_query(faces, g1), again.encode_query(faces, g2))


def test_unknown_encoder_lists_known_ones():
    with pytest.raises(ValueError, match="partialface"):
        get_encoder("dct")
    assert list_encoders() == ["fixed", "frequency", "partialface", "pruned", "rgb"]


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match="unknown option"):
        get_encoder("partialface", repeats=3)
