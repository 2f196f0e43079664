import pytest


@pytest.fixture
def tiny_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()


PLUGIN_GROUPS = {"hwprof.devices": "device", "hwprof.exporters": "exporter"}


def declared_entry_points() -> dict[tuple[str, str], str]:
    """(kind, name) -> "module:attribute" of the device and exporter entry points this checkout's pyproject.toml declares."""
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    groups = data["project"]["entry-points"]
    return {(kind, name): target for group, kind in PLUGIN_GROUPS.items() for name, target in groups.get(group, {}).items()}


@pytest.fixture(autouse=True, scope="session")
def plugins_of_this_checkout():
    """Register the devices/exporters pyproject.toml declares but the installed metadata lacks (an install older than the checkout)."""
    from hwprof import registry

    added = []
    for (kind, name), target in declared_entry_points().items():
        if name not in registry.names(kind):
            registry.register(kind, name, target)
            added.append((kind, name))
    yield
    for kind, name in added:
        registry.unregister(kind, name)
