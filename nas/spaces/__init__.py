"""Search spaces: the ``SearchSpace`` contract and its implementations."""

from hwprof.spaces import SearchSpace
from nas.spaces.fbnet import FBNetSpace
from nas.spaces.nb201 import NB201Space

__all__ = ["FBNetSpace", "NB201Space", "SearchSpace"]
