"""MODNAS (Sukthanker et al., arXiv 2402.18213): one hypernetwork search for many devices and trade-offs.

``train_modnas(ModnasConfig(...))`` trains a hypernetwork H(device embedding,
preference) -> architecture logits; ``ModnasModel.load(dir)`` answers any
device — including one known only by its latencies on the reference
architectures — with ``front`` (24 preference rays) or ``pick``. A device
profiled into the store: ``read_store_device`` -> ``store_device_embedding``
(reference latencies, profiled when asked) -> ``front`` -> ``check_front``
(the front measured, both hypervolumes).
"""

from nas.search.modnas.config import ModnasConfig
from nas.search.modnas.decode import ARGMAX, DecodeSettings, SurrogateSelector
from nas.search.modnas.hypernet import HyperNetwork
from nas.search.modnas.mgd import min_norm_2, min_norm_point, min_norm_weights
from nas.search.modnas.model import FrontEntry, ModnasModel, check_preference, preference_rays
from nas.search.modnas.refs import ReferenceSet, device_embedding, nb201_references, select_references
from nas.search.modnas.sampling import TemperatureSchedule, gumbel_st, reinmax
from nas.search.modnas.store_devices import StoreDevice, profile_networks, read_store_device
from nas.search.modnas.store_front import CheckedNetwork, FrontCheck, check_front, store_device_embedding
from nas.search.modnas.supernet import NB201Supernet
from nas.search.modnas.trainer import ModnasProgress, train_modnas

__all__ = [
    "ARGMAX",
    "CheckedNetwork",
    "FrontCheck",
    "DecodeSettings",
    "FrontEntry",
    "HyperNetwork",
    "ModnasConfig",
    "ModnasModel",
    "ModnasProgress",
    "NB201Supernet",
    "ReferenceSet",
    "StoreDevice",
    "SurrogateSelector",
    "TemperatureSchedule",
    "check_front",
    "check_preference",
    "device_embedding",
    "gumbel_st",
    "min_norm_2",
    "min_norm_point",
    "min_norm_weights",
    "nb201_references",
    "preference_rays",
    "profile_networks",
    "read_store_device",
    "reinmax",
    "select_references",
    "store_device_embedding",
    "train_modnas",
]
