"""The one KEY=VALUE parser of the CLI (``--set`` of devices, ``--param`` of predictors and searches).

Values are decoded the same way everywhere: ``true/false/yes/no/on/off`` are
booleans, ``none``/``null`` is None, numbers are int or float, and a value with
commas is a tuple of decoded parts (``hidden_sizes=64,64`` -> ``(64, 64)``,
``hidden_sizes=64,`` -> ``(64,)``). Anything else stays a string; the
receiving object validates types and ranges and says what it expected.
"""

from __future__ import annotations

from typing import Any, Iterable

from hwprof.errors import ConfigError

TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")
NONE_WORDS = ("none", "null")


def decode_scalar(text: str) -> Any:
    text = text.strip()
    low = text.lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    if low in NONE_WORDS or low == "":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def decode_value(text: str) -> Any:
    """One value as written after ``=``; commas make a tuple."""
    if "," in text:
        return tuple(decode_scalar(part) for part in text.split(",") if part.strip())
    return decode_scalar(text)


def parse_key_values(pairs: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """['intra_op_threads=2', 'cpu_affinity=0,2-3'] -> {'intra_op_threads': 2, 'cpu_affinity': (0, '2-3')}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option} expects KEY=VALUE, got {pair!r}")
        if key in out:
            raise ConfigError(f"{option} gives {key!r} twice")
        out[key] = decode_value(value)
    return out
