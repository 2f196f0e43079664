import math

import pytest

from hwprof.errors import ConfigError

from hwprof.errors import ModelRunError
from hwprof.profiling import Profiler, parse_indices, read_arch_file
from hwprof.store import Store
from hwprof.errors import HwprofError, InvalidArchitecture

from .conftest import FAST, ScriptedDevice


def _profiler(tmp_path, space, **kwargs):
    store = Store(tmp_path / "p.db")
    return Profiler(ScriptedDevice(**kwargs), space, store, protocol=FAST, cache_dir=tmp_path / "cache", drift_every=0)


def test_profile_stores_and_resumes(tmp_path, toy_space):
    archs = list(toy_space.enumerate())
    p = _profiler(tmp_path, toy_space)
    s = p.profile(archs)
    assert (s.n_measured, s.n_skipped, s.status) == (6, 0, "completed")
    assert len(p.store.measurements()) == 6
    assert {r.spec for r in p.store.measurements()} == {a.spec for a in archs}
    # resume: same device+settings -> nothing re-measured
    s2 = p.profile(archs)
    assert (s2.n_measured, s2.n_skipped) == (0, 6)
    # --again appends (append-only), never overwrites
    s3 = p.profile(archs[:2], again=True)
    assert s3.n_measured == 2 and len(p.store.measurements()) == 8
    p.close()
    # other settings are another measurement context
    p2 = _profiler(tmp_path, toy_space, base_ms=3.0)
    assert p2.profile(archs[:3]).n_measured == 3
    p2.close()


def test_measurement_values_come_from_the_device(tmp_path, toy_space):
    p = _profiler(tmp_path, toy_space, base_ms=2.5)
    m = p.measure(toy_space.parse("w8-d2"))
    assert m.latency_ms == pytest.approx(2.5)
    assert p.cached_latency_ms(toy_space.parse("w8-d2")) == pytest.approx(2.5)
    assert p.cached_latency_ms(toy_space.parse("w4-d1")) is None
    p.close()


def test_failure_leaves_completed_rows_and_no_partial_rows(tmp_path, toy_space):
    archs = list(toy_space.enumerate())
    p = _profiler(tmp_path, toy_space, fail_on=3)
    with pytest.raises(ModelRunError, match="scripted failure"):
        p.profile(archs)
    rows = p.store.measurements()
    assert len(rows) == 2
    stored_archs = {r.arch_id for r in rows}
    assert archs[2].arch_id not in stored_archs
    assert p.store.summary().counts["architectures"] == 2
    assert p.store.runs()[-1].status == "failed"
    p.close()


def test_ctrl_c_keeps_completed_measurements(tmp_path, toy_space):
    archs = list(toy_space.enumerate())
    p = _profiler(tmp_path, toy_space, interrupt_on=4)
    with pytest.raises(KeyboardInterrupt):
        p.profile(archs)
    assert len(p.store.measurements()) == 3
    assert p.store.runs()[-1].status == "interrupted"
    p.close()
    # resuming measures only the rest
    p2 = _profiler(tmp_path, toy_space)
    s = p2.profile(archs)
    assert (s.n_measured, s.n_skipped) == (3, 3)
    p2.close()


def test_drift_detected_and_recorded(tmp_path, toy_space):
    store = Store(tmp_path / "d.db")
    dev = ScriptedDevice(drift_per_model=0.02)  # every prepared model runs 2% slower than the previous
    p = Profiler(dev, toy_space, store, protocol=FAST, cache_dir=tmp_path / "c", drift_every=2, drift_threshold_rel=0.05)
    s = p.profile(list(toy_space.enumerate()))
    assert len(s.drift_checks) == 3
    assert s.drift_checks[-1].drift_rel > 0.05 and s.drift_checks[-1].exceeded
    assert any("drift" in w for w in s.warnings)
    assert len(store.drift_checks()) == 3
    p.close()


def test_no_drift_when_stable(tmp_path, toy_space):
    store = Store(tmp_path / "d.db")
    p = Profiler(ScriptedDevice(), toy_space, store, protocol=FAST, cache_dir=tmp_path / "c", drift_every=2)
    s = p.profile(list(toy_space.enumerate()))
    assert s.drift_checks and all(not c.exceeded and abs(c.drift_rel) < 1e-9 for c in s.drift_checks)
    p.close()


def test_parse_indices():
    assert parse_indices("0-3,7", 10) == [0, 1, 2, 3, 7]
    with pytest.raises(HwprofError, match="out of range"):
        parse_indices("5-12", 10)
    with pytest.raises(HwprofError, match="bad index range"):
        parse_indices("3-1", 10)


def test_read_arch_file(tmp_path, toy_space):
    f = tmp_path / "a.txt"
    f.write_text("# comment\nw4-d1\n\nw8-d2\n")
    assert [a.spec for a in read_arch_file(f, toy_space)] == ["w4-d1", "w8-d2"]
    f.write_text("w4-d1\nbogus\n")
    with pytest.raises(InvalidArchitecture, match=r"a.txt:2"):
        read_arch_file(f, toy_space)


def test_interleaved_groups_store_everything_and_resume(tmp_path, toy_space):
    from dataclasses import replace

    archs = list(toy_space.enumerate())
    store = Store(tmp_path / "i.db")
    dev = ScriptedDevice()
    p = Profiler(dev, toy_space, store, protocol=replace(FAST, rounds=3, round_min_s=0.0), cache_dir=tmp_path / "c",
                 drift_every=0, interleave=4, calibrate=False)
    events = []
    s = p.profile(archs, on_progress=events.append)
    assert (s.n_measured, s.status) == (6, "completed")
    assert [e.n_done for e in events] == [1, 2, 3, 4, 5, 6]
    assert dev.n_prepared == 6  # each model loaded once for all of its rounds
    rows = store.measurements()
    assert len(rows) == 6 and all(r.median_ms == pytest.approx(2.0) for r in rows)
    assert all(r.n_runs >= FAST.min_runs for r in rows)
    assert p.profile(archs).n_skipped == 6
    p.close()


def test_interrupt_inside_a_group_keeps_the_finished_groups(tmp_path, toy_space):
    from dataclasses import replace

    archs = list(toy_space.enumerate())
    store = Store(tmp_path / "g.db")
    p = Profiler(ScriptedDevice(interrupt_on=5), toy_space, store, protocol=replace(FAST, rounds=2),
                 cache_dir=tmp_path / "c", drift_every=0, interleave=3, calibrate=False)
    with pytest.raises(KeyboardInterrupt):
        p.profile(archs)
    assert len(store.measurements()) == 3  # first group committed, second lost as a whole
    assert store.runs()[-1].status == "interrupted"
    store.close()


def test_interleave_must_be_positive(tmp_path, toy_space):
    with pytest.raises(HwprofError, match="interleave"):
        Profiler(ScriptedDevice(), toy_space, Store(tmp_path / "x.db"), protocol=FAST, interleave=0)


def test_calibrated_groups_record_the_reference_and_the_store_corrects_with_it(tmp_path, toy_space):
    from dataclasses import replace

    archs = [a for a in toy_space.enumerate() if a.arch_id != toy_space.reference_architecture().arch_id]
    store = Store(tmp_path / "cal.db")
    # every model prepared later runs 10% slower: the reference of the second group is slower too
    dev = ScriptedDevice(drift_per_model=0.10)
    p = Profiler(dev, toy_space, store, protocol=replace(FAST, rounds=2, round_min_s=0.0), cache_dir=tmp_path / "c",
                 drift_every=0, interleave=2, calibrate=True, references=1)
    p.profile(archs[:4])
    rows = store.measurements()
    assert len(rows) == 4  # the reference was measured but not stored (not asked for)
    assert dev.n_prepared == 6  # two groups of 2 + the reference in each
    refs = [r.reference_ms for r in rows]
    assert refs[0] == refs[1] and refs[2] == refs[3] and refs[2] > refs[0]
    assert refs == pytest.approx([r.estimates["reference_min"] for r in rows])  # the level in the primary (min)
    base = refs[0]
    for r in rows:
        assert r.estimator == "min" and r.corrected_ms == pytest.approx(r.latency_ms * base / r.reference_ms)
    corrected = store.latencies("scripted", corrected=True)
    assert corrected[rows[2].spec] == pytest.approx(rows[2].corrected_ms)
    assert store.latencies("scripted")[rows[2].spec] == pytest.approx(rows[2].latency_ms)
    p.close()
    # without interleaving there is nothing to calibrate with
    q = Profiler(ScriptedDevice(), toy_space, Store(tmp_path / "raw.db"), protocol=FAST, drift_every=0)
    assert q.calibrate is False
    q.profile(archs[:1])
    assert q.store.measurements()[0].reference_ms is None and q.store.measurements()[0].corrected_ms is None
    q.close()


def test_calibration_uses_the_geometric_mean_of_several_references(tmp_path, toy_space):
    from dataclasses import replace

    refs = toy_space.calibration_architectures(3)
    assert len(refs) == 3 and refs[0].arch_id == toy_space.reference_architecture().arch_id
    assert len({r.arch_id for r in refs}) == 3
    ref_ids = {r.arch_id for r in refs}
    archs = [a for a in toy_space.enumerate() if a.arch_id not in ref_ids][:2]
    store = Store(tmp_path / "cal3.db")
    dev = ScriptedDevice(drift_per_model=0.10)  # the k-th prepared model takes 2 ms x (1 + 0.1 (k - 1))
    p = Profiler(dev, toy_space, store, protocol=replace(FAST, rounds=2, round_min_s=0.0), cache_dir=tmp_path / "c",
                 drift_every=0, interleave=2, calibrate=True, references=3)
    p.profile(archs)
    assert dev.n_prepared == 5  # the group of 2 + 3 calibration models, none stored
    rows = store.measurements()
    assert len(rows) == 2
    expected = math.exp(sum(math.log(2.0 * (1 + 0.1 * k)) for k in (2, 3, 4)) / 3)  # models 3..5 are the references
    assert rows[0].reference_ms == pytest.approx(expected) and rows[1].reference_ms == rows[0].reference_ms
    assert rows[0].estimates["reference_p10"] == pytest.approx(expected)
    with pytest.raises(ConfigError, match="references"):
        Profiler(dev, toy_space, store, protocol=FAST, references=0)
    p.close()
