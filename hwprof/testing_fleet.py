"""A throwaway Ray cluster on this machine whose nodes are device nodes: for tests and benchmarks of the fleet.

Each node is a real raylet (``ray.cluster_utils.Cluster``) started with the
same environment ``hwprof worker`` gives a node (:func:`hwprof.fleet.node_environment`),
so the fleet code runs exactly as on separate hosts. The first node is the
head; the others can be removed (killed) mid-run to simulate a lost host.
Ray's token authentication is disabled for this loopback-only cluster
(``RAY_AUTH_MODE=disabled``), the dashboard is not started.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from hwprof.fleet import NodeDevice, import_ray, node_environment, node_resources

OBJECT_STORE_BYTES = 100 * 1024 * 1024  # Ray's minimum is 75 MiB; CI containers have a small /dev/shm


class LocalFleet:
    """The running cluster: ``address`` to connect to, ``nodes`` (the head first) to remove one."""

    def __init__(self, cluster: Any, cache_root: Path) -> None:
        self.cluster = cluster
        self.cache_root = cache_root
        self.nodes: list[Any] = []

    @property
    def address(self) -> str:
        return self.cluster.address

    def add(self, devices: Sequence[NodeDevice]) -> int:
        """Start one more node driving ``devices``; its index (for :meth:`kill`)."""
        self.nodes.append(self.cluster.add_node(**node_args(len(self.nodes), devices, self.cache_root)))
        self.cluster.wait_for_nodes()
        return len(self.nodes) - 1

    def kill(self, index: int) -> None:
        """Kill node ``index`` (not the head, 0) as a host that lost power would go: no graceful shutdown."""
        if index == 0:
            raise ValueError("the head node cannot be killed without ending the cluster")
        self.cluster.remove_node(self.nodes[index], allow_graceful=False)


def node_args(index: int, devices: Sequence[NodeDevice], cache_root: Path) -> dict[str, Any]:
    """A node like ``hwprof worker`` makes: no CPUs for other tasks, one resource per device, its own cache."""
    return {
        "num_cpus": 0, "resources": node_resources(devices), "object_store_memory": OBJECT_STORE_BYTES,
        "env_vars": node_environment(devices, cache_root / f"node{index}"),
    }  # fmt: skip


@contextlib.contextmanager
def local_fleet(nodes: Sequence[Sequence[NodeDevice]], cache_root: str | Path, connect: bool = True) -> Iterator[LocalFleet]:
    """Start one node per entry of ``nodes`` (its devices), each with its own export cache under ``cache_root``.

    With ``connect`` this process joins the cluster (``ray.init``) and leaves it afterwards.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = import_ray()
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**node_args(0, nodes[0], Path(cache_root)), "include_dashboard": False})
    fleet = LocalFleet(cluster, Path(cache_root))
    try:
        fleet.nodes.append(cluster.head_node)
        for devices in nodes[1:]:
            fleet.add(devices)
        if connect:
            ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        yield fleet
    finally:
        if connect and ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
