"""Generalisation protocols: sample selection, and the runner on synthetic scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facelive.datasets import Sample
from facelive.errors import DatasetError
from facelive.evaluation.protocols import (
    PROTOCOLS,
    Universe,
    expand_protocols,
    protocol_split,
    session_of,
    subject_halves,
)


def _nuaa() -> list[Sample]:
    out = []
    for subj in range(1, 10):
        for sess in ("01", "02"):
            for label, folder in (("live", "ClientRaw"), ("spoof", "ImposterRaw")):
                for n in range(3):
                    name = f"{subj:04d}_00_00_{sess}_{n}.jpg"
                    out.append(Sample(f"{folder}/{subj:04d}/{name}", label,
                                      None if label == "live" else "print", f"{subj:04d}",
                                      f"{folder}/{subj:04d}/{name}", "train",
                                      meta=(("session", sess),)))
    return out


def _ra(split: str, clients: range) -> list[Sample]:
    out = []
    for c in clients:
        for label, typ in (("live", None), ("spoof", "print"), ("spoof", "mobile")):
            g = f"{split}/{label}/client{c:03d}_{typ}"
            out += [Sample(f"{g}/frame_{i:05d}.jpg", label, typ, f"client{c:03d}", g, split)
                    for i in range(3)]
    return out


@pytest.fixture
def universe() -> Universe:
    return Universe.from_parts(_nuaa(), _ra("train", range(1, 5)), _ra("devel", range(5, 9)))


def test_sessions_and_protocol_names() -> None:
    s = _nuaa()[0]
    assert session_of(s) == "01"
    bare = Sample("ClientRaw/0001/0001_00_00_02_7.jpg", "live", None, "0001", "g", "train")
    assert session_of(bare) == "02"
    assert expand_protocols("all") == list(PROTOCOLS)
    assert expand_protocols("ra-to-nuaa,cross-session") == ["cross-session", "ra-to-nuaa"]
    with pytest.raises(DatasetError):
        expand_protocols("nuaa-to-casia")


def test_protocol_splits_are_disjoint_and_honest(universe: Universe) -> None:
    nuaa = universe.part == "nuaa"
    for name in PROTOCOLS:
        sp = protocol_split(name, universe)
        assert not (sp.train & sp.devel).any() and not (sp.train & sp.target).any()
        assert not (sp.devel & sp.target).any()
        # the threshold part never shares a subject with the train part
        assert not set(universe.subject[sp.train]) & set(universe.subject[sp.devel])
    cs = protocol_split("cross-session", universe)
    assert set(universe.domain[cs.train | cs.devel]) == {"nuaa-s01"}
    assert set(universe.domain[cs.target]) == {"nuaa-s02"} and cs.target.sum() == 9 * 6
    assert set(universe.subject[cs.devel]) == {"nuaa/0003", "nuaa/0006", "nuaa/0009"}
    n2r = protocol_split("nuaa-to-ra", universe)
    assert (n2r.train | n2r.devel).sum() == nuaa.sum()
    assert set(universe.part[n2r.target]) == {"ra-devel"}
    r2n = protocol_split("ra-to-nuaa", universe)
    assert set(universe.part[r2n.train]) == {"ra-train"}
    assert set(universe.part[r2n.devel]) == {"ra-devel"} and (r2n.target == nuaa).all()
    with pytest.raises(DatasetError):
        protocol_split("held-out-subjects", universe)


def test_subject_halves(universe: Universe) -> None:
    sp = protocol_split("nuaa-to-ra", universe)
    a, b = subject_halves(universe, sp.target)
    assert not (a & b).any() and ((a | b) == sp.target).all()
    assert not set(universe.subject[a]) & set(universe.subject[b])
    assert len(set(universe.subject[a])) == 2 and len(set(universe.subject[b])) == 2


def _fake_data(universe: Universe, rng: np.random.Generator):
    """Per-sample inputs with a signal that differs by database (quality features shifted by
    database and session, as real measures are)."""
    from facelive.training.generalisation import UniverseData

    y = universe.is_live
    n = len(universe)
    feats = rng.normal(0, 1, (n, 25))
    feats[:, :5] += np.where(y, 1.0, -1.0)[:, None]
    shift = np.select([universe.domain == "nuaa-s01", universe.domain == "nuaa-s02"], [0, 3], 8)
    feats += shift[:, None]
    verts = np.zeros((n, 468, 3), np.float32)
    return UniverseData(feats, None, verts, np.zeros((n, 468), np.float32), np.ones(n, bool),
                        np.full(n, np.nan))


def _face3d(universe: Universe, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = universe.is_live
    return 1 / (1 + np.exp(-(np.where(y, 1.0, -1.0) + rng.normal(0, 1.0, len(y)))))


def _fake_probe(universe: Universe, monkeypatch) -> list[int]:
    """Replace the probe's per-source fit by synthetic scores; returns the training sizes seen."""
    pytest.importorskip("torch")
    from facelive.training import probe

    seen: list[int] = []

    def fake(u, train_mask, recipe=probe.SHIPPED):
        seen.append(int(np.sum(train_mask)))
        return _face3d(universe, 10 + len(seen))

    monkeypatch.setattr(probe, "protocol_scores", fake)
    return seen


def test_run_protocols_on_synthetic_scores(universe: Universe, monkeypatch, tmp_path: Path,
                                           capsys) -> None:
    from facelive.cli import main
    from facelive.evaluation import protocols
    from facelive.training import generalisation as gen

    rng = np.random.default_rng(0)
    data = _fake_data(universe, rng)
    monkeypatch.setattr(protocols.Universe, "load", classmethod(lambda cls, a, b: universe))
    monkeypatch.setattr(gen, "load_data", lambda u, **kw: data)
    monkeypatch.setattr(gen, "shipped_face3d_scores", lambda v, i, ok: _face3d(universe, 1))
    monkeypatch.setattr(gen, "face3d_scores", lambda u, d, m, **kw: _face3d(universe, 2))
    _fake_probe(universe, monkeypatch)
    report = gen.run_protocols("N", "R", list(PROTOCOLS), epochs=1,
                               recipes=("before", "after", "after-2d"))
    assert list(report["splits"]) == list(PROTOCOLS)
    assert report["tests"] == ["quality", "probe", "face3d"]
    for name, e in report["splits"].items():
        assert set(e["recipes"]) == {"before", "after", "after-2d"}
        after = e["recipes"]["after"]
        assert set(after["fused"]["weights"]) == {"quality", "probe", "face3d"}
        # without face3d in the fusion, but its per-test row still reported
        assert set(e["recipes"]["after-2d"]["fused"]["weights"]) == {"quality", "probe"}
        assert "face3d" in e["recipes"]["after-2d"]["tests"]
        assert set(e["recipes"]["before"]["fused"]["weights"]) == {"quality", "face3d"}
        assert all(w >= 0 for w in after["fused"]["weights"].values())
        assert after["tests"]["quality"]["target"]["frame"]["AUC"] is not None
        assert ("calibration" in after) == (name != "cross-session")
    cal = report["splits"]["nuaa-to-ra"]["recipes"]["after"]["calibration"]
    assert cal["calibrated"]["fused"]["frame"]["n_live"] > 0
    assert not set(cal["calibration_subjects"]) & set(cal["evaluation_subjects"])
    md = gen.report_markdown(report, "cmd")
    assert "| nuaa-to-ra | quality+probe+face3d (fused) | after |" in md
    assert "| nuaa-to-ra | quality+face3d (fused) | before |" in md
    assert "| nuaa-to-ra | quality+probe (fused) | after-2d |" in md
    assert "Calibration on the target" in md
    # the command: report.json, report.md, protocols.png
    out = tmp_path / "out"
    rc = main(["evaluate", "--protocol", "all", "--nuaa", "N", "--replay-attack", "R",
               "--out", str(out), "--epochs", "1"])
    assert rc == 0
    command = json.loads((out / "report.json").read_text())["command"]
    assert command.startswith("facelive evaluate --protocol all")
    assert "--recipes before,after" in command
    assert (out / "protocols.png").stat().st_size > 0 and (out / "report.md").exists()
    capsys.readouterr()
    assert main(["evaluate", "--protocol", "all", "--out", str(out)]) == 2
    assert main(["evaluate", "--protocol", "cross-session", "--nuaa", "N", "--replay-attack",
                 "R", "--recipes", "later", "--out", str(out)]) == 2
    assert main(["evaluate", "--protocol", "cross-session", "--nuaa", "N", "--replay-attack",
                 "R", "--cnn-recipe", "gpu", "--out", str(out)]) == 2


def test_run_protocols_with_the_cnn_trained_per_source(universe: Universe, monkeypatch) -> None:
    from facelive.evaluation import protocols
    from facelive.training import generalisation as gen
    from facelive.training.cnn import protocol as cnn_protocol

    data = _fake_data(universe, np.random.default_rng(0))
    monkeypatch.setattr(protocols.Universe, "load", classmethod(lambda cls, a, b: universe))
    monkeypatch.setattr(gen, "load_data", lambda u, **kw: data)
    monkeypatch.setattr(gen, "shipped_face3d_scores", lambda v, i, ok: _face3d(universe, 1))
    monkeypatch.setattr(gen, "face3d_scores", lambda u, d, m, **kw: _face3d(universe, 2))
    trained_on: list[int] = []

    def fake_cnn(u, train_mask, **kw):
        trained_on.append(int(train_mask.sum()))
        return _face3d(universe, 3 + len(trained_on))

    monkeypatch.setattr(cnn_protocol, "protocol_scores", fake_cnn)
    _fake_probe(universe, monkeypatch)
    report = gen.run_protocols("N", "R", ["cross-session", "ra-to-nuaa"], recipes=["after"],
                               epochs=1, cnn_recipe="cpu")
    assert trained_on == [int(protocol_split(n, universe).train.sum())
                          for n in ("cross-session", "ra-to-nuaa")]
    assert report["tests"] == ["quality", "cnn", "probe", "face3d"]
    assert not report["not_applicable"]
    after = report["splits"]["ra-to-nuaa"]["recipes"]["after"]
    assert set(after["tests"]) == {"quality", "cnn", "probe", "face3d"}
    assert set(after["fused"]["weights"]) == {"quality", "cnn", "probe", "face3d"}
    assert "cnn" in after["calibration"]["calibrated"]
    md = gen.report_markdown(report)
    assert "| ra-to-nuaa | quality+cnn+probe+face3d (fused) | after |" in md
    assert "trained per source with the `cpu` recipe" in md


def test_transfer_recipe_fits_the_fusion_on_the_other_direction(universe: Universe,
                                                                  monkeypatch) -> None:
    from facelive.evaluation import protocols
    from facelive.training import generalisation as gen

    data = _fake_data(universe, np.random.default_rng(0))
    asked: dict = {}

    def load(u, **kw):
        asked.update(kw)
        return data

    monkeypatch.setattr(protocols.Universe, "load", classmethod(lambda cls, a, b: universe))
    monkeypatch.setattr(gen, "load_data", load)
    monkeypatch.setattr(gen, "minifas_scores", lambda u: _face3d(universe, 7))

    def no_face3d(*a, **kw):
        raise AssertionError("face3d is not part of the transfer recipe")

    monkeypatch.setattr(gen, "face3d_scores", no_face3d)
    seen = _fake_probe(universe, monkeypatch)
    report = gen.run_protocols("N", "R", ["nuaa-to-ra", "cross-session"], recipes=["transfer"],
                               epochs=1)
    assert asked["meshes"] is False
    assert list(report["splits"]) == ["nuaa-to-ra", "cross-session"]  # ra-to-nuaa: fitting only
    assert len(seen) == 3  # the probe trained on all three sources
    assert report["tests"] == ["quality", "probe", "minifas"]
    nr = report["splits"]["nuaa-to-ra"]["recipes"]["transfer"]
    assert nr["fusion_fitted_on"].startswith("ra-to-nuaa target")
    assert report["splits"]["cross-session"]["recipes"]["transfer"][
        "fusion_fitted_on"].startswith("nuaa-to-ra target")
    assert set(nr["fused"]["weights"]) == {"probe", "minifas"}  # quality: reported, not fused
    assert "quality" in nr["tests"]
    assert all(w >= 0 for w in nr["fused"]["weights"].values())
    # the threshold holds APCER <= 5% on the frames the fusion was fitted on (out of fold)
    assert nr["fused"]["devel_out_of_fold"]["APCER"]["print"] <= 0.05 + 1e-9
    assert "calibration" in nr
    md = gen.report_markdown(report)
    assert "| nuaa-to-ra | probe+minifas (fused) | transfer |" in md


@pytest.mark.data
def test_cnn_protocol_scores_train_and_score_real_crops(shared_data: Path, tmp_path: Path,
                                                        monkeypatch) -> None:
    pytest.importorskip("torch")
    import dataclasses

    from facelive.training.cnn import protocol as cnn_protocol

    monkeypatch.setenv("FACELIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(cnn_protocol.RECIPES, "tiny", dataclasses.replace(
        cnn_protocol.CPU_RECIPE, epochs=1, steps_per_epoch=2, batch_size=8, input_size=64,
        synth=0.5, rescale=0.5))
    full = Universe.load(shared_data / "nuaa", shared_data / "replay-attack")
    pick = np.zeros(len(full), bool)
    for part in ("nuaa", "ra-train", "ra-devel"):  # a few live and attack frames of each part
        for live in (True, False):
            pick[np.flatnonzero((full.part == part) & (full.is_live == live))[::300][:3]] = True
    u = Universe.from_parts(*(full.select(pick & (full.part == p)) for p in
                              ("nuaa", "ra-train", "ra-devel")))
    train = u.part == "ra-train"
    p = cnn_protocol.protocol_scores(u, train, recipe="tiny", cache=tmp_path / "crops")
    assert p.shape == (len(u),) and np.isfinite(p).sum() >= len(u) - 1
    assert np.all((p[np.isfinite(p)] >= 0) & (p[np.isfinite(p)] <= 1))
    assert (tmp_path / "crops" / "manifest.json").is_file()
    again = cnn_protocol.protocol_scores(u, train, recipe="tiny", cache=tmp_path / "crops")
    assert np.array_equal(p, again, equal_nan=True)  # the cached scores
    assert len(list((tmp_path / "cache").glob("cnn-protocol-tiny-*.npz"))) == 1


@pytest.mark.data
def test_protocol_counts_on_shared_data(shared_data: Path) -> None:
    u = Universe.load(shared_data / "nuaa", shared_data / "replay-attack")
    cs = protocol_split("cross-session", u)
    assert cs.target.sum() == 854 + 893  # NUAA s02: live + print
    assert (cs.train | cs.devel).sum() == 889 + 855
    r2n = protocol_split("ra-to-nuaa", u)
    assert r2n.target.sum() == 3491 and r2n.train.sum() == 1800
