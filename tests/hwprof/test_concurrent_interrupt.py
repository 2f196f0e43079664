"""Ctrl-C during a concurrent (fleet) profile: groups that had finished when the runner was stopped are stored
whole, not dropped with the cancelled ones."""

from __future__ import annotations

import pytest

from hwprof.artifacts import ArtifactCache
from hwprof.profiling import ProfileInterrupted, Profiler
from hwprof.protocol import ProtocolSettings
from hwprof.registry import get_device, get_space
from hwprof.runners import ConcurrentRunner, GroupDone
from hwprof.store import Store
from hwprof.worker import WorkRequest, run_in_process

PROTOCOL = ProtocolSettings(min_warmup=1, max_warmup=3, warmup_window=2, min_runs=5, max_runs=10, max_time_s=0.2,
                            check_every=5, rounds=2, visit_runs=5, stop_quantile=0.5)  # fmt: skip


class FinishedAtOnce(ConcurrentRunner):
    """Every group is exported and measured here when it is started; ``wait`` hands back one at a time,
    ``cancel`` the rest, as a fleet does for the groups whose replies arrived before the interrupt."""

    def __init__(self, cache):
        super().__init__("ort-cpu", {})
        self.device, self.cache, self.done = get_device("ort-cpu"), ArtifactCache(cache), []
        self.number = 0

    def start(self, job):
        self.number += 1
        artifacts = job.export(self.cache)
        result = run_in_process(WorkRequest("ort-cpu", {}, tuple(artifacts), job.protocol, True), self.device)
        self.done.append(GroupDone(self.number, tuple(artifacts), result=result))
        return self.number

    @property
    def pending(self):
        return len(self.done)

    def wait(self):
        return [self.done.pop(0)]

    def cancel(self):
        rest, self.done = self.done, []
        return rest

    def submit(self, request):
        return run_in_process(request, self.device)


def test_groups_finished_before_the_interrupt_are_stored_whole(tmp_path):
    space = get_space("nb201")
    archs = [space.from_index(i) for i in (11, 222, 3333, 4444)]
    runner = FinishedAtOnce(tmp_path / "cache")
    profiler = Profiler(get_device("ort-cpu"), space, Store(tmp_path / "p.db"), protocol=PROTOCOL, cache_dir=tmp_path / "cache",
                        interleave=2, references=1, drift_every=0, runner=runner)  # fmt: skip

    def stop_after_the_first_group(ev):
        if ev.n_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(ProfileInterrupted) as info:
        profiler.profile(archs, on_progress=stop_after_the_first_group)
    # the second group had finished too (its reply was in): stored, not thrown away with the cancelled ones
    stored = {r.arch_id for r in profiler.store.measurements(device="ort-cpu")}
    assert stored == {a.arch_id for a in archs} and info.value.summary.n_measured == 4
    profiler.close()
