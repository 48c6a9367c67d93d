"""CNN training helpers: data listing, crop re-cutting and batch augmentation (torch optional)."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.training.data import list_items, subsample_nuaa


def test_listing_of_the_shared_data(shared_data):
    ra = list_items(None, shared_data / "replay-attack", ra_splits=("devel",))
    assert len(ra) == 1800 and sum(it.label for it in ra) == 300
    assert len({it.group for it in ra}) == 360  # fixed and hand videos share names
    assert {it.attack_type for it in ra} == {"live", "print", "mobile", "highdef"}
    nuaa = list_items(shared_data / "nuaa", None)
    assert len(nuaa) == 1743 + 1748
    half = subsample_nuaa(nuaa, 2)
    assert 0.45 * len(nuaa) < len(half) < 0.55 * len(nuaa)
    assert {it.group for it in half} == {it.group for it in nuaa}


def test_recrop_centre_crops_to_a_smaller_context():
    pytest.importorskip("torch")
    from facelive.training.train_cnn import recrop

    crops = np.zeros((2, 200, 200, 3), np.uint8)
    crops[:, 50:150, 50:150] = 255  # the central half
    out = recrop(crops, 2.0, 1.0, 64)
    assert out.shape == (2, 64, 64, 3) and out.min() == 255
    assert recrop(crops, 2.0, 2.0, 200) is crops
    with pytest.raises(ValueError):
        recrop(crops, 2.0, 2.5, 64)


def test_augment_shapes_and_identity_at_strength_zero(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.augment import augment, jpeg_copies, to_input

    batch = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    t = torch.from_numpy(batch)
    gen = torch.Generator().manual_seed(0)
    ref = to_input(t)
    plain = augment(t, 0.0, gen)
    assert plain.shape == (6, 3, 64, 64)
    for i in range(6):  # strength 0: each sample is the input or its mirror image
        assert torch.allclose(plain[i], ref[i]) or torch.allclose(plain[i], ref[i].flip(-1))
    strong = augment(t, 2.0, gen, torch.from_numpy(jpeg_copies(batch)))
    assert strong.shape == (6, 3, 64, 64) and torch.isfinite(strong).all()
    assert strong.min() >= -1.0 - 1e-6 and strong.max() <= 1.0 + 1e-6
    assert not torch.allclose(strong, ref)
