"""Feature extractors for the distribution metrics (FID, KID, precision/recall, density/coverage).

Every extractor is an ``nn.Module`` whose ``forward`` maps uint8 images ``(N, 3, H, W)`` to
features ``(N, D)``, so it can be handed to torchmetrics' ``FrechetInceptionDistance`` /
``KernelInceptionDistance`` as their ``feature`` module, and says how its numbers were made
(:meth:`FeatureExtractor.info`: the extractor, its weights file and sha256, the resize rule).
Nothing is ever downloaded: a missing weights file is an error naming where to put it.

Extractors (:func:`build_extractor` specs)
    ``inception``
        The standard FID network: the TF-Inception-v3 port of torch-fidelity (the weights file
        ``weights-inception-2015-12-05-6726825d.pth`` that torch-fidelity and torchmetrics
        download on first use), 2048-d pool3 features, images resized to 299x299 with
        torch-fidelity's TensorFlow-1.x-compatible bilinear resize (no antialiasing) and scaled
        by ``(x - 128) / 128``: the protocol of published FID. Weights from ``--weights FILE``
        or the libraries' cache (:func:`inception_cache_path`, ``$TORCH_HOME/hub/checkpoints``).
        Needs ``torch-fidelity`` (``pip install 'gbench[fid]'``).
    ``timm:NAME``
        Any timm backbone (e.g. a pathology encoder) with a local weights file (``--weights``,
        a timm-format state dict, ``.pth``/``.bin``/``.safetensors``); the classifier is removed
        (``num_classes=0``: pooled pre-logit features) and the rest must load strictly.
        Images are resized to the model's ``input_size`` with its interpolation (antialiased,
        the whole tile, no centre crop), scaled to [0, 1] and normalised with its mean / std
        (``timm.data.resolve_model_data_config``). Needs ``timm`` (``pip install 'gbench[timm]'``).
    ``random-conv``
        The offline extractor: a fixed, randomly initialised 3-layer conv net (widths 16/32/64,
        kernel 3, stride 2, LeakyReLU 0.2, He-normal weights from ``seed``), input resized to
        64x64 (bilinear, antialiased) and scaled to [-1, 1], features the spatial means of each
        layer (112-d). Deterministic and weight-free, but **not comparable with published FID**.
"""
from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gbench.core.errors import DataError
from gbench.core.registry import Registry

__all__ = ["FeatureExtractor", "RandomConvExtractor", "InceptionExtractor", "TimmExtractor", "build_extractor",
           "inception_cache_path", "INCEPTION_FILE", "INCEPTION_URL", "NOT_COMPARABLE", "EXTRACTORS", "file_sha256",
           "MissingWeightsError", "EXTRACTOR_REGISTRY"]

#: The file name of torch-fidelity's TF-Inception-v3 weights (also used by torchmetrics).
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
#: The note carried by every value computed on the offline extractor.
NOT_COMPARABLE = "not comparable with published FID (offline random-conv features, not Inception-v3)"
#: Extractor specs accepted by :func:`build_extractor` (``timm:NAME`` with any timm model name).
EXTRACTORS: tuple[str, ...] = ("inception", "timm:NAME", "random-conv")
#: Feature extractors added by plugins (``gbench.api.register_extractor``, entry points
#: ``gbench.extractors``): name -> ``factory(weights, *, seed, device) -> FeatureExtractor``.
#: The built-in specs above are listed with source ``built-in``; their names cannot be taken.
EXTRACTOR_REGISTRY: Registry[Any] = Registry("feature extractor", group="gbench.extractors")


class MissingWeightsError(DataError):
    """A feature extractor's weights file is not where it was looked for (one line: where to put it)."""


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class FeatureExtractor(nn.Module):
    """Base class: ``forward(uint8 (N, 3, H, W)) -> (N, D)`` plus a description of the protocol.

    Attributes:
        spec: the :func:`build_extractor` spec (``inception``, ``timm:NAME``, ``random-conv``).
        num_features: ``D`` (read by torchmetrics instead of a dummy forward pass).
        resize: the resize / normalisation rule, in words.
        weights: the weights file (None for ``random-conv``); weights_sha256 its sha256.
        comparable_with_published_fid: True only for ``inception``.
        note: what a reader must know about the numbers (empty when nothing).
    """

    spec: str = ""
    num_features: int = 0
    resize: str = ""
    weights: Path | None = None
    weights_sha256: str = ""
    comparable_with_published_fid: bool = False
    note: str = ""

    def describe(self) -> str:
        """Short label: ``inception(weights-...pth)``, ``timm:resnet50(file.pth)``, ``random-conv(seed=0)``."""
        return f"{self.spec}({self.weights.name})" if self.weights is not None else self.spec

    def info(self) -> dict[str, Any]:
        """The extractor's protocol, recorded with every number computed on its features."""
        return {"extractor": self.spec, "weights": self.weights.name if self.weights is not None else "",
                "weights_sha256": self.weights_sha256, "resize": self.resize, "num_features": int(self.num_features),
                "comparable_with_published_fid": bool(self.comparable_with_published_fid), "note": self.note}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def features(self, images: np.ndarray | Iterable[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Features of uint8 images ``(N, H, W, 3)`` (or an iterable of such batches), float64 ``(N, D)``."""
        batches = [images] if isinstance(images, np.ndarray) else images
        out = []
        with torch.inference_mode():
            for batch in batches:
                arr = np.asarray(batch)
                if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                    raise ValueError(f"features need uint8 images (N, H, W, 3), got {arr.shape} {arr.dtype}")
                for i in range(0, len(arr), batch_size):
                    x = torch.from_numpy(np.ascontiguousarray(arr[i:i + batch_size])).permute(0, 3, 1, 2)
                    out.append(self(x.to(self.device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_features))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.spec}: expected uint8 images (N, 3, H, W), got {tuple(x.shape)} {x.dtype}")


class RandomConvExtractor(FeatureExtractor):
    """The offline extractor (see the module docstring).

    Args:
        seed: weight seed (the same seed gives the same features everywhere).
        widths: channels of the three conv layers.
        input_size: side images are resized to.
        device: where to run (None: CUDA when available).
    """

    spec = "random-conv"
    comparable_with_published_fid = False
    note = NOT_COMPARABLE

    def __init__(self, seed: int = 0, widths: tuple[int, ...] = (16, 32, 64), input_size: int = 64,
                 device: str | torch.device | None = None) -> None:
        super().__init__()
        self.seed = int(seed)
        self.input_size = int(input_size)
        self.num_features = int(sum(widths))
        self.resize = (f"bilinear (antialiased) to {self.input_size}x{self.input_size}, scaled to [-1, 1]; "
                       f"weights He-normal from seed {self.seed}, widths {'/'.join(map(str, widths))}")
        gen = torch.Generator().manual_seed(self.seed)
        layers = []
        cin = 3
        for w in widths:
            conv = nn.Conv2d(cin, w, 3, 2, 1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (cin * 9)) ** 0.5)
                conv.bias.zero_()
            layers.append(conv)
            cin = w
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False)
        self.to(_device(device)).eval()

    def describe(self) -> str:
        return f"random-conv(seed={self.seed}, dim={self.num_features})"

    def info(self) -> dict[str, Any]:
        return {**super().info(), "seed": self.seed}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = x.float().div(127.5).sub(1.0)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        feats = []
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2)
            feats.append(x.mean(dim=(2, 3)))
        return torch.cat(feats, 1)


def inception_cache_path() -> Path:
    """Where torch-fidelity and torchmetrics keep the FID Inception weights once downloaded:
    ``torch.hub.get_dir()/checkpoints/weights-inception-2015-12-05-6726825d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _missing_inception(path: Path, given: bool) -> MissingWeightsError:
    where = "" if given else " (the torch-fidelity / torchmetrics cache)"
    return MissingWeightsError(path, f"FID Inception-v3 weights not found{where}: put {INCEPTION_FILE} "
                                     f"(torch-fidelity release v0.2.0, {INCEPTION_URL}) at {inception_cache_path()} "
                                     f"or pass --weights FILE; gbench downloads nothing")


class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's TF-Inception-v3 (the FID network), pool3 features, from a local weights file.

    Args:
        weights: the weights file; None: :func:`inception_cache_path`.
        device: where to run (None: CUDA when available).

    Raises:
        MissingWeightsError: no file there (the message says where to put it).
        DataError: the file cannot be read or does not fit the network.
        ValueError: torch-fidelity is not installed.
    """

    spec = "inception"
    comparable_with_published_fid = True
    resize = ("TF-1.x-compatible bilinear (torch-fidelity, no antialiasing) to 299x299, (x - 128) / 128; "
              "2048-d pool3 features")
    note = "torch-fidelity TF-Inception-v3 pool3: the protocol of published FID"
    num_features = 2048

    def __init__(self, weights: str | Path | None = None, device: str | torch.device | None = None) -> None:
        super().__init__()
        path = Path(weights).expanduser() if weights is not None else inception_cache_path()
        if not path.is_file():
            raise _missing_inception(path, weights is not None)
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import (
                FeatureExtractorInceptionV3,  # lazy: optional dependency (gbench[fid])
            )
        except ImportError:
            raise ValueError("the inception extractor needs torch-fidelity: pip install 'gbench[fid]' "
                             "(or pip install torch-fidelity)") from None
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        except (RuntimeError, KeyError, TypeError) as exc:
            raise DataError(path, f"weights do not fit torch-fidelity's Inception-v3 ({str(exc).splitlines()[0]})") \
                from None
        except Exception as exc:  # unpickling errors of arbitrary type
            raise DataError(path, f"cannot read Inception-v3 weights ({type(exc).__name__}: {exc})") from None
        self.net = net
        self.weights = path
        self.weights_sha256 = file_sha256(path)
        self.to(_device(device)).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.net(x)[0].reshape(x.shape[0], -1)


class TimmExtractor(FeatureExtractor):
    """A timm backbone's pooled pre-logit features, weights from a local file.

    Args:
        name: timm model name (``resnet50``, ``vit_base_patch16_224`` ...).
        weights: timm-format state dict (``.pth``, ``.bin``, ``.safetensors``; a checkpoint holding
            ``state_dict`` / ``model`` works too). Classifier weights in the file are dropped; every
            other parameter must be there.
        device: where to run (None: CUDA when available).

    Raises:
        DataError: missing file, unreadable file, or weights that do not fit ``name``.
        ValueError: unknown timm model.
    """

    comparable_with_published_fid = False

    def __init__(self, name: str, weights: str | Path | None, device: str | torch.device | None = None) -> None:
        super().__init__()
        try:
            import timm  # lazy: optional dependency (gbench[timm])
            from timm.data import resolve_model_data_config  # lazy: optional dependency (gbench[timm])
            from timm.models import load_state_dict  # lazy: optional dependency (gbench[timm])
        except ImportError:
            raise ValueError("the timm extractor needs timm: pip install 'gbench[timm]'") from None
        self.spec = f"timm:{name}"
        if weights is None:
            raise ValueError(f"--extractor timm:{name} needs --weights FILE (a local timm state dict; gbench "
                             "downloads nothing)")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingWeightsError(path, f"weights file for timm:{name} not found (pass a local timm state dict "
                                            "with --weights; gbench downloads nothing)")
        if not timm.is_model(name):
            hint = difflib.get_close_matches(name, timm.list_models(), n=3)
            raise ValueError(f"unknown timm model {name!r}" + (f"; did you mean {', '.join(hint)}?" if hint else ""))
        model = timm.create_model(name, pretrained=False, num_classes=0)
        try:
            state = load_state_dict(str(path), device="cpu")
        except Exception as exc:
            raise DataError(path, f"cannot read timm weights ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
                from None
        if isinstance(state, dict) and not any(torch.is_tensor(v) for v in state.values()):
            for key in ("state_dict", "model"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        classifiers = model.pretrained_cfg.get("classifier") or ()
        classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
        own = set(model.state_dict())
        state = {k: v for k, v in state.items()
                 if k in own or not any(k == c or k.startswith(c + ".") for c in classifiers)}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise DataError(path, f"weights do not fit timm:{name} ({' '.join(lines[1:3])[:300]})") from None
        cfg = resolve_model_data_config(model)
        _, h, w = cfg["input_size"]
        self.size = (int(h), int(w))
        self.interpolation = str(cfg.get("interpolation", "bilinear"))
        self.register_buffer("mean", torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1))
        self.resize = (f"{self.interpolation} (antialiased) to {h}x{w}, whole image (no centre crop), [0, 1] then "
                       f"mean {tuple(round(v, 4) for v in cfg['mean'])} / std {tuple(round(v, 4) for v in cfg['std'])}")
        self.model = model
        self.num_features = int(model.num_features)
        self.weights = path
        self.weights_sha256 = file_sha256(path)
        self.note = f"timm {name} features: comparable only with values on the same encoder and weights"
        self.requires_grad_(False)
        self.to(_device(device)).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = x.float().div(255.0)
        if tuple(x.shape[-2:]) != self.size:
            mode = self.interpolation if self.interpolation in ("bilinear", "bicubic") else "bilinear"
            x = F.interpolate(x, size=self.size, mode=mode, align_corners=False, antialias=True).clamp(0, 1)
        return self.model((x - self.mean) / self.std).reshape(x.shape[0], -1)


def build_extractor(spec: str, weights: str | Path | None = None, *, seed: int = 0,
                    device: str | torch.device | None = None) -> FeatureExtractor:
    """The extractor a spec names: ``inception``, ``timm:NAME`` or ``random-conv``.

    Args:
        spec: see :data:`EXTRACTORS`.
        weights: local weights file (``inception``: default the libraries' cache; ``timm:NAME``:
            required; ``random-conv``: must be None).
        seed: weight seed of ``random-conv``.
        device: where to run (None: CUDA when available).

    Raises:
        ValueError: unknown spec, or weights given to ``random-conv``.
        MissingWeightsError / DataError: see the extractors.
    """
    if spec == "random-conv":
        if weights is not None:
            raise ValueError("--weights is not used by the random-conv extractor (it has no weights file)")
        return RandomConvExtractor(seed=seed, device=device)
    if spec in ("inception", "inception-v3-compat"):
        return InceptionExtractor(weights, device=device)
    if spec.startswith("timm:") and len(spec) > 5:
        return TimmExtractor(spec[5:], weights, device=device)
    if spec in EXTRACTOR_REGISTRY and EXTRACTOR_REGISTRY.source(spec) != "built-in":
        return _plugin_extractor(spec, weights, seed, device)
    raise ValueError(f"unknown feature extractor {spec!r} (known: {', '.join([*EXTRACTORS, *_plugin_names()])})")


def _plugin_names() -> list[str]:
    return [n for n, src in EXTRACTOR_REGISTRY.sources().items() if src != "built-in"]


def _plugin_extractor(spec: str, weights: str | Path | None, seed: int,
                      device: str | torch.device | None) -> FeatureExtractor:
    """A plugin's extractor, checked: a :class:`FeatureExtractor` with ``num_features`` (one line naming it otherwise)."""
    source = EXTRACTOR_REGISTRY.source(spec)
    path = None if weights is None else Path(weights).expanduser()
    if path is not None and not path.is_file():
        raise MissingWeightsError(path, f"weights file of feature extractor {spec!r} not found")
    try:
        ext = EXTRACTOR_REGISTRY.get(spec)(path, seed=seed, device=_device(device))
    except (DataError, ValueError):
        raise
    except Exception as exc:  # the plugin's own code
        first = (str(exc).strip().splitlines() or ["(no message)"])[0]
        raise ValueError(f"feature extractor {spec!r} ({source}) could not be built: {type(exc).__name__}: {first}") \
            from None
    if not isinstance(ext, FeatureExtractor) or int(getattr(ext, "num_features", 0)) <= 0:
        raise ValueError(f"feature extractor {spec!r} ({source}) built a {type(ext).__qualname__}: expected a "
                         "gbench.api.FeatureExtractor with num_features > 0")
    if not ext.spec:
        ext.spec = spec
    if path is not None and not ext.weights_sha256:
        ext.weights, ext.weights_sha256 = path, file_sha256(path)
    ext.requires_grad_(False)
    return ext.to(_device(device)).eval()


def extract(extractor: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray) -> np.ndarray:
    """Features of one uint8 ``(N, H, W, 3)`` batch with any extractor (float64 ``(N, D)``)."""
    if isinstance(extractor, FeatureExtractor):
        return extractor.features(images)
    return np.asarray(extractor(images), dtype=np.float64)


for _name in ("inception", "random-conv"):  # built-in specs: listed, and their names cannot be taken by a plugin
    EXTRACTOR_REGISTRY.register(_name, build_extractor, source="built-in")
