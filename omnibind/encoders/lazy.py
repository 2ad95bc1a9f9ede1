"""A model's encoders, built on first use: a text question never loads the image or audio network.

``LazyEncoders`` is the ``nn.ModuleDict`` of an ``OmnibindModel``: membership, iteration and
``feature_dims`` answer from the config (``Encoder.declared_dims``), ``enc[m]`` builds the encoder
the first time it is asked for (thread-safe: two requests never build it twice) and registers it as
a submodule on the model's device. Identical configs share one instance (one EfficientNet-Lite0 for
images, video frames, depth, thermal and point views). Encoders whose widths only a built instance
knows, and trainable ones (their weights are in the checkpoint), are built at once.

``OMNIBIND_EAGER_ENCODERS=1`` (or ``eager=True``) builds every encoder at construction, as before
lazy building existed (``omnibind bench coldstart --eager`` compares the two).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from omnibind.encoders.base import ENCODERS, Encoder, FeatureDims
from omnibind.errors import ConfigError
from omnibind.hashing import digest

EAGER_ENV = "OMNIBIND_EAGER_ENCODERS"


def eager_from_env() -> bool:
    """Whether ``OMNIBIND_EAGER_ENCODERS`` asks for every encoder to be built at construction."""
    return os.environ.get(EAGER_ENV, "") not in ("", "0")


def encoder_key(cfg: dict[str, Any]) -> str:
    """The identity of an encoder config (name + params): equal keys share one instance (and one sizing
    in ``omnibind plan``)."""
    return json.dumps({"name": cfg["name"], "params": dict(cfg.get("params") or {})}, sort_keys=True, default=str)


class LazyEncoders(nn.ModuleDict):
    """Modality → encoder, each built on first access (see the module docstring).

    ``configs`` maps modality → ``{"name": ..., "params": {...}}``. ``values()``/``items()`` build
    every encoder (introspection, saving a checkpoint); ``built()`` gives only those built so far.
    """

    def __init__(
        self, configs: Mapping[str, dict[str, Any]], *, device: str | torch.device = "cpu", eager: bool = False
    ):
        super().__init__()
        # plain attributes set through object.__setattr__: nn.Module would otherwise try to register them
        object.__setattr__(self, "_configs", {m: dict(c) for m, c in configs.items()})
        object.__setattr__(self, "_shared", {})
        object.__setattr__(self, "_lock", threading.RLock())
        object.__setattr__(self, "_device", torch.device(device))
        object.__setattr__(self, "_declared", {})
        object.__setattr__(self, "_depth", 0)
        object.__setattr__(self, "build_seconds", 0.0)  # time spent building encoders (bench coldstart)
        for m, cfg in self._configs.items():
            cls = ENCODERS.get(cfg["name"])  # unknown names fail at construction, not on first use
            dims = None if eager else cls.declared_dims(dict(cfg.get("params") or {}))
            if dims is None:
                self._build(m)
            else:
                self._declared[m] = dims

    # --- building -------------------------------------------------------------------------
    def _build_shared(self, cfg: dict[str, Any]) -> Encoder:
        """Build (or reuse) the encoder of ``cfg``; also the ``build`` callback of wrapper encoders."""
        key = encoder_key(cfg)
        with self._lock:
            if key not in self._shared:
                outer = self._depth == 0  # a wrapper's inner build lies inside its own time: count it once
                start = time.perf_counter()
                object.__setattr__(self, "_depth", self._depth + 1)
                try:
                    cls = ENCODERS.get(cfg["name"])
                    params = dict(cfg.get("params") or {})
                    if cls.declared_dims(params) is not None:
                        # one that may be built late draws its random init (layers its weights then
                        # replace) from its own config-keyed seed, not the model's stream: heads and
                        # projectors come out the same whether it is built now, later or never
                        with torch.random.fork_rng(devices=[]):
                            torch.manual_seed(int(digest(key, 8), 16))
                            enc = cls.from_config(params, self._build_shared)
                    else:  # built at construction in config order, on the model's stream, as always
                        enc = cls.from_config(params, self._build_shared)
                finally:
                    object.__setattr__(self, "_depth", self._depth - 1)
                if not enc.trainable:
                    enc.requires_grad_(False)
                    enc.eval()
                self._shared[key] = enc.to(self._device)
                if outer:
                    object.__setattr__(self, "build_seconds", self.build_seconds + time.perf_counter() - start)
            return self._shared[key]

    def _build(self, modality: str) -> Encoder:
        with self._lock:
            if modality in self._modules:
                return self._modules[modality]  # type: ignore[return-value]
            enc = self._build_shared(self._configs[modality])
            declared = self._declared.get(modality)
            if declared is not None and enc.feature_dims() != declared:
                # the heads and projectors were sized from the declaration: a mismatch would fail later, deep inside
                raise ConfigError(
                    f"encoders.{modality}: {type(enc).__name__} declares {declared} but built {enc.feature_dims()}; "
                    "fix its declared_dims"
                )
            self._modules[modality] = enc
            return enc

    def build_all(self) -> None:
        """Build every encoder now (a server warming up before its first request)."""
        for m in self._configs:
            self._build(m)

    def built(self) -> dict[str, Encoder]:
        """The encoders built so far, by modality (nothing is built by asking)."""
        return dict(self._modules)  # type: ignore[arg-type]

    def is_built(self, modality: str) -> bool:
        return modality in self._modules

    def feature_dims(self, modality: str) -> FeatureDims:
        """The widths ``modality``'s encoder gives, without building it when they are declared."""
        if modality in self._modules:
            return self._modules[modality].feature_dims()  # type: ignore[operator]
        return self._declared[modality]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> LazyEncoders:
        """``model.to(device)`` moves the built encoders; those built later follow to the same
        device (the conversion applied to an empty probe tensor says where it goes)."""
        out = super()._apply(fn, *args, **kwargs)
        object.__setattr__(self, "_device", fn(torch.empty(0, device=self._device)).device)
        return out

    # --- mapping ---------------------------------------------------------------------------
    def __getitem__(self, modality: str) -> Encoder:  # type: ignore[override]
        if modality not in self._configs:
            raise KeyError(modality)
        return self._build(modality)

    def __contains__(self, modality: object) -> bool:
        return modality in self._configs

    def __iter__(self) -> Iterator[str]:
        return iter(self._configs)

    def __len__(self) -> int:
        return len(self._configs)

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(self._configs)

    def values(self) -> list[Encoder]:  # type: ignore[override]
        return [self[m] for m in self._configs]

    def items(self) -> list[tuple[str, Encoder]]:  # type: ignore[override]
        return [(m, self[m]) for m in self._configs]
