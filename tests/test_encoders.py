"""Input encoders: channel counts, what each sends, scale handling, previews and saved state."""

from __future__ import annotations

import ast

import pytest
import torch

from partialface.api import load_model, shipped_models
from partialface.encoders import (
    ENCODERS,
    InputEncoder,
    encoder_from_state,
    estimate_frequency_scale,
    get_encoder,
    list_encoders,
    register_encoder,
)
from partialface.errors import PartialFaceError
from partialface.frequency import to_frequency
from partialface.plan import ChannelPlan

from .conftest import REPO_ROOT, load_script

shipped_pins = load_script(REPO_ROOT / "experiments" / "shipped_pins.py")


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
    with pytest.raises(PartialFaceError, match="partialface"):
        get_encoder("dct")
    with pytest.raises(PartialFaceError, match="unknown encoder 'dct'; known encoders: fixed, frequency"):
        encoder_from_state({"name": "dct", "plan": None})
    assert list_encoders() == ["fixed", "frequency", "partialface", "pruned", "rgb"]


def test_unknown_options_are_rejected():
    with pytest.raises(PartialFaceError, match="unknown option"):
        get_encoder("partialface", repeats=3)
    # each encoder declares its own options: a rank index means nothing to PartialFace
    with pytest.raises(PartialFaceError, match="subset for encoder 'partialface'"):
        get_encoder("partialface", subset=1)
    with pytest.raises(PartialFaceError, match="fixed encoder subset must be an integer in 0..5"):
        get_encoder("fixed", subset=6)
    # the pipeline's options reach every encoder; those without frequencies or ranks ignore them
    assert get_encoder("rgb", frequency_scale=torch.ones(192), train_repeats=3).train_repeats == 1


class _NegatedFaces(InputEncoder):
    """A new encoder defined outside the package: the negated face, with a gain option."""

    name = "negated"
    options = frozenset({"gain"})

    def __init__(self, gain: float):
        self.gain = gain

    @classmethod
    def build(cls, plan=None, frequency_scale=None, train_repeats=1, gain=1.0):
        return cls(gain)

    @classmethod
    def from_state(cls, state):
        return cls(state["gain"])

    def channels_for_query(self, batch, generator):
        return None

    def encode(self, x, channels=None):
        return -self.gain * x

    def state_dict(self):
        return {**super().state_dict(), "gain": self.gain}


def test_a_newly_registered_encoder_round_trips_through_its_state(faces):
    register_encoder(_NegatedFaces)
    try:
        assert "negated" in list_encoders()
        enc = get_encoder("negated", gain=2.0)
        again = encoder_from_state(enc.state_dict())
        assert isinstance(again, _NegatedFaces) and again.gain == 2.0
        assert torch.equal(again.encode_query(faces), -2 * faces)
        with pytest.raises(ValueError, match="already registered"):
            register_encoder(_NegatedFaces)
    finally:
        ENCODERS.unregister("negated")
    assert "negated" not in list_encoders()


def test_states_saved_before_the_encoder_classes_still_load(faces):
    """State shapes written by earlier versions: fixed sets store their channels, PartialFace its
    train_repeats (or, older still, nothing beyond plan and scale) and no channels."""
    plan = ChannelPlan.generate(2)
    scale = torch.linspace(0.5, 2, 192)
    channels = plan.channels(1, 1).tolist()
    fixed = encoder_from_state({"name": "fixed", "plan": plan.to_dict(), "channels": channels,
                                "frequency_scale": scale.tolist()})
    assert fixed.fixed_channels.tolist() == channels and torch.equal(fixed.frequency_scale, scale)
    assert torch.allclose(fixed.encode_query(faces), plan.protect(faces, 1, 1) / scale[channels][:, None, None])
    pruned = encoder_from_state({"name": "pruned", "plan": plan.to_dict(), "channels": plan.all_channels().tolist(),
                                 "frequency_scale": [1.0] * 192})
    assert pruned.out_channels == 162 and pruned.plan == plan
    everything = encoder_from_state({"name": "frequency", "plan": None, "channels": list(range(192)),
                                     "frequency_scale": [1.0] * 192})
    assert everything.plan is None and everything.out_channels == 192
    old_partialface = {"name": "partialface", "plan": plan.to_dict(), "frequency_scale": scale.tolist()}
    assert encoder_from_state(old_partialface).train_repeats == 1
    assert encoder_from_state({**old_partialface, "train_repeats": 3}).train_repeats == 3
    with pytest.raises(PartialFaceError, match="saved encoder 'fixed' lacks 'channels'"):
        encoder_from_state({"name": "fixed", "plan": plan.to_dict()})


# Templates of the shipped models for three synthetic faces, computed when the weights were shipped (the
# first pins, before encoders became registered classes, were commit 284caee's): per face, the sum of the
# template, its index-weighted sum and its first four values (experiments/shipped_pins.py). A template
# depends on the restored encoder's plan, scale and rank draw, so any change in how the shipped states are
# read shows here; new weights get new pins (`python experiments/shipped_pins.py NAME` prints them).
SHIPPED_TEMPLATES = {
    "default": (
        [2.501547336578369, 1.5871975421905518, 0.9421851634979248],
        [601.4921875, 526.537353515625, 344.081298828125],
        [[0.04169812798500061, 0.0650540366768837, -0.01869969256222248, -0.011385465040802956],
         [0.03675077110528946, 0.14292317628860474, 0.009591825306415558, -0.018863782286643982],
         [0.060350850224494934, 0.0699177011847496, -0.02051503024995327, -0.02499186247587204]],
    ),
    "rgb-baseline": (
        [0.6022685766220093, 0.7046651244163513, 0.2762264013290405],
        [-91.90958404541016, -69.83161926269531, -107.23542785644531],
        [[0.07731670141220093, -0.006315956357866526, 0.010203312151134014, 0.056465037167072296],
         [0.039877597242593765, -0.0035160579718649387, -0.017977725714445114, 0.020027097314596176],
         [0.040751781314611435, -0.0028021754696965218, -0.023210465908050537, 0.05164528638124466]],
    ),
    "private": (  # the private plan's model (docs/frontier.md), default's recipe
        [-0.35087212920188904, -0.2816160321235657, -0.2442353516817093],
        [-73.58427429199219, -67.74861145019531, -64.06350708007812],
        [[-0.04815445840358734, -0.009886084124445915, 0.007940616458654404, -0.047581542283296585],
         [-0.050496578216552734, -0.006297394633293152, 0.009022850543260574, -0.04667707532644272],
         [-0.04701251536607742, -0.03541680425405502, 0.006794007029384375, -0.04560230299830437]],
    ),
}


def test_every_shipped_model_is_pinned():
    assert set(shipped_models()) == set(SHIPPED_TEMPLATES)


@pytest.mark.parametrize("name", sorted(SHIPPED_TEMPLATES))
def test_shipped_models_give_the_templates_they_gave_before(name):
    model = load_model(name)
    assert model.encoder.name == ("rgb" if name == "rgb-baseline" else "partialface")
    sums, weighted, first = shipped_pins.template_pins(model)
    expected_sums, expected_weighted, expected_first = (torch.tensor(values) for values in SHIPPED_TEMPLATES[name])
    assert torch.allclose(sums, expected_sums, atol=1e-4)
    assert torch.allclose(weighted, expected_weighted, rtol=1e-4, atol=1e-3)
    assert torch.allclose(first, expected_first, atol=1e-5)


def test_shipped_pins_prints_entries_the_test_reads():
    """What the script prints for a model parses back to that model's pins (the paste after shipping)."""
    pins = shipped_pins.template_pins(load_model("private"))
    entry = shipped_pins.format_pins("private", pins)
    parsed = ast.literal_eval("{" + entry + "}")["private"]
    for values, expected in zip(pins, parsed):
        assert values.tolist() == expected
