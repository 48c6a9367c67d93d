"""CNN training helpers: data selection, end-to-end report, crop re-cutting and batch
augmentation (torch optional)."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.datasets import Sample, nuaa_subject_split
from facelive.training.cnn.data import (
    NUAA_TRAIN_SUBJECTS,
    crop_record,
    dataset_of,
    list_samples,
    nuaa_heldout_subjects,
    subsample_nuaa,
)
from facelive.training.cnn.evaluate import report


def test_listing_of_the_shared_data(shared_data):
    ra = list_samples(None, shared_data / "replay-attack", ra_splits=("devel",))
    assert len(ra) == 1800 and sum(s.is_live for s in ra) == 300
    assert len({s.group for s in ra}) == 360  # fixed and hand videos share names
    assert {s.attack_type for s in ra} == {None, "print", "mobile", "highdef"}
    assert {dataset_of(s) for s in ra} == {"replay-attack"} and {s.split for s in ra} == {"devel"}
    nuaa = list_samples(shared_data / "nuaa", None)
    assert len(nuaa) == 1743 + 1748 and {dataset_of(s) for s in nuaa} == {"nuaa"}
    assert len({s.group for s in nuaa}) == 33  # captures: subject x session x label
    half = subsample_nuaa(nuaa, 2)
    assert 0.45 * len(nuaa) < len(half) < 0.55 * len(nuaa)
    assert {s.group for s in half} == {s.group for s in nuaa}
    held = list_samples(shared_data / "nuaa", None, nuaa_subjects=nuaa_heldout_subjects())
    assert {s.subject for s in held} == {"0003", "0006", "0009"} and len(held) == 564 + 568
    rec = crop_record(held[0])
    assert rec["dataset"] == "nuaa" and rec["label"] == 1 and rec["attack_type"] == "live"


def test_heldout_subjects_follow_the_shared_split():
    assert nuaa_heldout_subjects() == tuple(nuaa_subject_split(NUAA_TRAIN_SUBJECTS)[1])


def test_subsampling_keeps_every_second_frame_of_a_capture():
    def smp(n: int, session: str) -> Sample:
        return Sample(key=f"ClientRaw/0001/0001_00_00_{session}_{n}.jpg", label="live",
                      attack_type=None, subject="0001", group=f"nuaa/0001/{session}/live",
                      split="train", meta=(("session", session), ("dataset", "nuaa")))

    other = Sample(key="x.jpg", label="spoof", attack_type="print", subject="1", group="v",
                   split="train", meta=(("dataset", "replay-attack"),))
    items = [smp(n, "01") for n in (3, 0, 2, 1, 10)] + [smp(0, "02"), other]
    kept = {s.key.split("/")[-1] for s in subsample_nuaa(items, 2)}
    assert kept == {"0001_00_00_01_0.jpg", "0001_00_00_01_2.jpg", "0001_00_00_01_10.jpg",
                    "0001_00_00_02_0.jpg", "x.jpg"}


def test_report_counts_no_face_frames_as_rejected():
    def smp(i: int, live: bool, group: str) -> Sample:
        return Sample(key=f"{i}", label="live" if live else "spoof",
                      attack_type=None if live else "print", subject="s", group=group,
                      split="devel")

    samples = [smp(0, True, "a"), smp(1, True, "a"), smp(2, True, "b"),
               smp(3, False, "c"), smp(4, False, "c"), smp(5, False, "d")]
    scores = np.array([0.9, 0.8, np.nan, 0.1, np.nan, 0.2])
    rep = report(samples, scores, threshold=0.5)
    assert rep["no_face"] == 2
    assert rep["frame"]["BPCER"] == pytest.approx(1 / 3)  # the live frame without a face
    assert rep["frame"]["APCER_max"] == 0.0 and rep["frame"]["n_no_decision"] == 0
    assert rep["video"]["n_live"] == 2 and rep["video"]["BPCER"] == 0.5
    auto = report(samples, scores)  # EER threshold: live 0.9, 0.8, 0 vs attack 0.1, 0, 0.2
    assert auto["threshold"] == pytest.approx(0.15)
    assert auto["frame"]["APCER_max"] == auto["frame"]["BPCER"] == pytest.approx(1 / 3)


def test_recrop_centre_crops_to_a_smaller_context():
    pytest.importorskip("torch")
    from facelive.training.cnn.train import recrop

    crops = np.zeros((2, 200, 200, 3), np.uint8)
    crops[:, 50:150, 50:150] = 255  # the central half
    out = recrop(crops, 2.0, 1.0, 64)
    assert out.shape == (2, 64, 64, 3) and out.min() == 255
    assert recrop(crops, 2.0, 2.0, 200) is crops
    with pytest.raises(ValueError):
        recrop(crops, 2.0, 2.5, 64)


def test_augment_shapes_and_identity_at_strength_zero(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.augment import augment, jpeg_copies, to_input

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


def test_synthesised_attacks_relabel_only_live_crops(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.augment import augment, augment_with_attacks
    from facelive.training.cnn.synth import synth_print, synth_screen, synthesise

    batch = rng.integers(0, 256, (8, 48, 48, 3), dtype=np.uint8)
    t = torch.from_numpy(batch)
    labels = torch.tensor([1, 0, 1, 0, 1, 1, 0, 1])
    # probability 0: exactly augment(), labels unchanged
    x0, y0 = augment_with_attacks(t, labels, 1.0, torch.Generator().manual_seed(3),
                                  rescale=0.5)
    assert torch.equal(x0, augment(t, 1.0, torch.Generator().manual_seed(3), rescale=0.5))
    assert torch.equal(y0, labels)
    # probability 1: every live crop becomes an attack, attacks stay attacks and untouched
    x = t.permute(0, 3, 1, 2).float() / 255
    out, y = synthesise(x, labels, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(y, torch.zeros_like(labels))
    assert torch.equal(out[labels == 0], x[labels == 0])
    assert not torch.allclose(out[labels == 1], x[labels == 1])
    for f in (synth_print, synth_screen):
        s = f(x, torch.Generator().manual_seed(1))
        assert s.shape == x.shape and s.min() >= 0 and s.max() <= 1
    # a print loses contrast: its spread of grey values is smaller than the live crop's
    live = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(2, 3, 48, 48).contiguous()
    assert synth_print(live, torch.Generator().manual_seed(2)).std() < live.std()


def test_pseudo_depth_of_a_real_face():
    from pathlib import Path

    from facelive.face.detection import FaceDetector, square_crop
    from facelive.imageio import load_image
    from facelive.training.cnn.depth import depth_map, depth_targets

    img = load_image(Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg")
    with FaceDetector() as det:
        box = det.detect(img)
    crop = square_crop(img, box, 2.0, 224)
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    crops = np.stack([crop, crop, noise])
    maps, valid = depth_targets(crops, np.array([1, 0, 1]))
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32
    assert valid.tolist() == [True, True, False]  # no face in noise: no depth loss
    assert not maps[1].any() and not maps[2].any()  # attacks (and failures) are flat
    face = maps[0]
    assert 0 <= face.min() and 0.9 < face.max() <= 1
    # the face sits in the middle half of a context-2 crop; the border is background
    assert not face[:4].any() and not face[:, :4].any()
    assert 0.1 < (face > 0).mean() < 0.5
    # the nose tip (vertex 1) is the nearest point: its cell is among the deepest values
    from facelive.face.mesh import FaceMesher

    with FaceMesher() as m:
        v = m.reconstruct_crop(crop)
    x, y = (v[1, :2] * 32 / 224).astype(int)
    assert face[y, x] > np.quantile(face[face > 0], 0.8)
    assert np.array_equal(depth_map(v, 224), face)
    flat = v.copy()
    flat[:, 2] = 0  # no depth: an all-zero map, not a division by zero
    assert not depth_map(flat, 224).any()


def test_depth_maps_follow_the_augmentation_geometry(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.augment import augment_with_attacks, augment_with_depth

    batch = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    t = torch.from_numpy(batch)
    labels = torch.tensor([1, 0, 1, 0, 1, 1, 0, 1])
    # the depth map is the image's own left half marker: after the same flips/zooms/shifts
    # the map must still mark the same pixels as the image's marker channel
    marker = torch.zeros(8, 1, 64, 64)
    marker[..., :, :20] = 1.0
    t[..., :20, :] = 255  # bright left band in every colour channel
    t[..., 20:, :] = 0
    x, y, d = augment_with_depth(t, labels, marker * labels.view(-1, 1, 1, 1), 0.5,
                                 torch.Generator().manual_seed(4), synth=0.5)
    x1, y1 = augment_with_attacks(t, labels, 0.5, torch.Generator().manual_seed(4), synth=0.5)
    assert torch.equal(x, x1) and torch.equal(y, y1)  # images and labels unchanged
    assert d.shape == (8, 1, 64, 64)
    assert not d[y == 0].any()  # attacks, synthesised ones included, have flat maps
    for i in torch.nonzero(y == 1).flatten():
        band = x[i].mean(0) > x[i].mean()  # where the bright band went
        agree = (band == (d[i, 0] > 0.5)).float().mean()
        assert agree > 0.95


def test_depth_head_trains_and_leaves_the_exported_output_alone(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.train import TrainConfig, predict, train_model

    crops = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    maps = rng.random((16, 32, 32)).astype(np.float32) * y[:, None, None]
    cfg = TrainConfig(epochs=1, batch_size=8, input_size=64, depth=1.0, steps_per_epoch=2)
    with pytest.raises(ValueError, match="depth targets"):
        train_model(crops, y, y.astype(str), cfg, log=lambda s: None)
    net, hist = train_model(crops, y, y.astype(str), cfg, depth=maps, log=lambda s: None)
    assert net.depth is not None and np.isfinite(hist[0]["loss"])
    logits, depth = net.forward_with_depth(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, 2) and depth.shape == (2, 1, 4, 4)
    assert torch.allclose(net(torch.zeros(2, 3, 64, 64)), logits)
    p = predict(net, crops[:3])
    assert p.shape == (3,) and np.all((0 <= p) & (p <= 1))


def test_frozen_batch_norm_keeps_the_imagenet_statistics(rng):
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.model import build_model
    from facelive.training.cnn.train import TrainConfig, train_model

    crops = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    ref = build_model(image_size=64).backbone.state_dict()
    cfg = TrainConfig(epochs=1, batch_size=8, input_size=64, freeze_bn=True, steps_per_epoch=2)
    net, _ = train_model(crops, y, y.astype(str), cfg, log=lambda s: None)
    bn = [k for k in ref if "_bn" in k]
    conv = [k for k in ref if "_conv" in k and k.endswith("weight")]
    assert bn and conv
    state = net.backbone.state_dict()
    assert all(torch.equal(state[k], ref[k]) for k in bn)  # statistics, scales and shifts
    assert any(not torch.equal(state[k], ref[k]) for k in conv)  # the convolutions learn


def test_lp_ft_head_starts_as_the_linear_probe(rng):
    """LP-FT: before any fine-tuning step the network's P(live) is the linear probe's."""
    torch = pytest.importorskip("torch")
    from facelive.training.cnn.augment import to_input
    from facelive.training.cnn.model import build_model
    from facelive.training.cnn.train import TrainConfig, linear_probe_head, train_model
    from facelive.training.linear_probe import fit_linear, predict_linear

    crops = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    strata = y.astype(str)
    net = build_model(image_size=64).eval()
    net.head = linear_probe_head(net, crops, y, strata, C=0.1)
    with torch.no_grad():
        x = to_input(torch.from_numpy(crops))
        feats = net.pool(net.backbone.extract_features(x)).flatten(1).numpy()
        p = torch.softmax(net(x), 1)[:, 1].numpy()
    np.testing.assert_allclose(p, predict_linear(feats, *fit_linear(feats, y, strata, 0.1)),
                               atol=1e-5)
    cfg = TrainConfig(epochs=1, batch_size=8, input_size=64, lp_init=0.1, steps_per_epoch=1)
    trained, hist = train_model(crops, y, strata, cfg, log=lambda s: None)
    assert isinstance(trained.head, torch.nn.Linear) and np.isfinite(hist[0]["loss"])
