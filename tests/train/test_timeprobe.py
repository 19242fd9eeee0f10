"""Time probe: its targets are the digits of each audio row's time, its loss reads audio positions
only, it sees what the probed layer is given, it leaves the checkpoint and the initial weights
alone, and a recipe with it on learns it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.train.conftest import small_model


def test_targets_are_the_digits_of_each_rows_centre():
    """Rows come at 12.5 a second (80 ms), so row r's centre is 0.08 r + 0.04 s."""
    from train.timeprobe import SECONDS, row_time_digits

    got = row_time_digits(torch.tensor([0, 1, 12, 29, 187, 10_000]), tokens_per_second=12.5)
    # 0.04 s, 0.12 s, 1.00 s, 2.36 s, 15.00 s, and 800.04 s counted as the last second class
    assert got.tolist() == [[0, 0, 4], [0, 1, 2], [1, 0, 0], [2, 3, 6], [15, 0, 0], [SECONDS - 1, 0, 4]]


def test_the_loss_is_the_digits_cross_entropy_at_audio_positions_only():
    from train.timeprobe import CLASSES, time_probe_loss

    torch.manual_seed(0)
    head = torch.nn.Linear(8, sum(CLASSES))
    hidden = torch.randn(1, 5, 8)
    audio_rows = torch.tensor([[-1, 0, 1, -1, 12]])
    got = time_probe_loss(head, hidden, audio_rows, tokens_per_second=12.5)
    logits = head(hidden[0, [1, 2, 4]]).split(CLASSES, dim=-1)
    digits = torch.tensor([[0, 0, 4], [0, 1, 2], [1, 0, 0]])
    want = sum(F.cross_entropy(lg, digits[:, k]) for k, lg in enumerate(logits)) / 3
    torch.testing.assert_close(got, want)
    hidden[0, [0, 3]] = float("nan")  # token positions never reach the head
    torch.testing.assert_close(time_probe_loss(head, hidden, audio_rows, 12.5), want)


def test_the_probe_sees_the_layer_below_with_its_deepstack_part_added():
    from export.reference import layer_outputs_changed
    from train.timeprobe import layer_input

    model = small_model(4).eval()
    layers = model.language_model.layers
    x = torch.randn(2, 7, model.config.text.hidden_size)
    raw = []
    handle = layers[0].register_forward_hook(lambda m, a, out: raw.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad(), layer_outputs_changed(layers, [lambda hs: hs + 1.0]), layer_input(layers, 1) as seen:
        model.language_model(inputs_embeds=x, use_cache=False)
    handle.remove()
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], raw[0] + 1.0, rtol=0, atol=0)


def test_without_it_every_weight_starts_as_before_and_it_never_reaches_the_checkpoint():
    torch.manual_seed(0)
    plain = small_model(4)
    torch.manual_seed(0)
    probed = small_model(4, time_layer=1)
    assert plain.time_head is None and probed.time_head is not None
    a, b = plain.checkpoint_state(), probed.checkpoint_state()
    assert a.keys() == b.keys() and not any("time" in k for k in b)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("layer", [0, 2])
def test_a_layer_it_cannot_probe_is_refused(layer):
    """Layer 0's input is the embeddings (no decoder layer has worked on it yet); the small model has layers 0..1."""
    with pytest.raises(ValueError, match="time_layer"):
        small_model(4, time_layer=layer)


def test_a_recipe_with_it_logs_it_in_the_joint_phase_and_learns_it(trained):
    _, info = trained
    joint = [h for h in info["history"] if h["phase"] == "joint"]
    assert joint and all("time" in h for h in joint)
    assert not any("time" in h for h in info["history"] if h["phase"] == "acoustic")
    first, last = joint[0]["time"], joint[-1]["time"]
    # measured (small recipe, seed 3, 40 joint steps): 2.91 at the first log, 1.30 at the last (0.45 of
    # it); 0.8 leaves room for other CPUs, and a probe that learned nothing would stay near the first
    assert last < 0.8 * first, (first, last)
