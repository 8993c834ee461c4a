"""Which models the server offers: registry names, each at the scales it has weights for.

A client names a model only by its registry name and a scale; the catalog turns that into
what the inference layer loads (the name of a parameter-free model, or the path of a weight
file that the server found itself). No path ever comes from a client.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path


from superres.inference.autopick import AUTO, CLEAN, LIGHT, REAL
from superres.models import CheckpointError, get_spec, has_parameters, list_specs, pretrained_path, read_metadata, weights_file_name
from superres.models.checkpoint import tensor_shapes
from superres.models.summary import model_summary

__all__ = ["Offer", "Blend", "Catalog", "build_catalog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """One model at one scale that the server can run."""

    name: str
    scale: int
    parameters: int
    weights: Path | None  # None for a parameter-free model (bicubic)
    quality: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def load_reference(self) -> str:
        """What :func:`superres.load` is given: the weight file, or the name of a parameter-free model."""
        return self.name if self.weights is None else str(self.weights)


@dataclass(frozen=True)
class Blend:
    """A perceptual model's weights blended toward its fidelity partner's (``--strength``)."""

    strength: float  # 1: the perceptual model, 0: the partner
    partner: Offer  # the fidelity model at the same scale


@dataclass(frozen=True)
class Catalog:
    """The offers, by name then scale, in registry order."""

    papers: dict[str, str]
    offers: dict[str, dict[int, Offer]]

    def names(self) -> list[str]:
        return list(self.offers)

    def find(self, name: str, scale: int) -> Offer:
        """The offer for ``name`` at ``scale`` (``auto``'s: its flagship's, which runs what is not
        chosen per image); a ``LookupError`` with a one-line reason otherwise."""
        scales = self.offered(name) or None
        if scales is None:
            raise LookupError(f"unknown model {name!r}; this server offers: {', '.join(self.names())}")
        if scale not in scales:
            available = ", ".join(str(s) for s in scales)
            raise LookupError(f"model {name!r} is not available at scale {scale} on this server (scales: {available})")
        return scales[scale]

    def partner(self, name: str) -> str | None:
        """The fidelity partner that ``name`` blends with, if the registry names one."""
        return get_spec(name).fidelity

    def blend(self, offer: Offer, strength: float) -> Blend:
        """``offer`` at ``strength``; a ``LookupError`` with a one-line reason when the model has
        no fidelity partner, or this server lacks the partner at the offer's scale."""
        partner = self.partner(offer.name)
        if partner is None:
            with_partner = [n for n in self.offers if self.partner(n) in self.offers]
            raise LookupError(
                f"model {offer.name!r} has no strength control; it applies to {', '.join(with_partner) or 'perceptual models'}"
            )
        if offer.scale not in self.offers.get(partner, {}):
            raise LookupError(f"strength needs {partner!r} at scale {offer.scale}, which this server lacks")
        return Blend(float(strength), self.offers[partner][offer.scale])

    def offered(self, name: str) -> dict[int, Offer]:
        """The offers of ``name`` by scale ({} when it is not offered); ``auto``'s are its
        flagship's, whose scales it covers."""
        return self.offers.get(CLEAN if name == AUTO else name) or {}

    def auto_json(self) -> list[dict]:
        """``auto`` as GET /v1/models lists it, where its flagship is offered: a choice per image
        among the fidelity models offered, at the flagship's scales."""
        if CLEAN not in self.offers:
            return []
        chosen = [n for n in (CLEAN, LIGHT, REAL) if n in self.offers]
        return [{
            "name": AUTO,
            "paper": "chosen per image from its JPEG quality, noise and blur: " + ", ".join(chosen),
            "learned": True,
            "trained_for": "auto",
            "fidelity": None,
            "scales": [{"scale": o.scale, "parameters": o.parameters, "quality": None} for o in self.offers[CLEAN].values()],
        }]

    def to_json(self) -> list[dict]:
        return [
            {
                "name": name,
                "paper": self.papers[name],
                "learned": any(o.weights is not None for o in scales.values()),
                # what its weights learnt to undo: "bicubic" (clean downscales) or "real" (photos as they are)
                "trained_for": get_spec(name).trained_for,
                # the model its strength blends with (the page's slider), when offered too
                "fidelity": self.partner(name) if self.partner(name) in self.offers else None,
                "scales": [
                    {"scale": o.scale, "parameters": o.parameters, "quality": o.quality or None}
                    for o in scales.values()
                ],
            }
            for name, scales in self.offers.items()
        ]


def _clean_quality(raw) -> dict[str, dict[str, float]]:
    """The measured quality from a weight file's metadata, keeping only finite numbers."""
    if not isinstance(raw, dict):
        return {}
    out = {}
    for dataset, scores in raw.items():
        if not isinstance(scores, dict):
            continue
        numbers = {
            str(metric): float(value)
            for metric, value in scores.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        }
        if numbers:
            out[str(dataset)] = numbers
    return out


def _count_parameters(path: Path) -> int:
    return sum(math.prod(shape.shape) for shape in tensor_shapes(path).values())


def _weights_offer(name: str, scale: int, path: Path) -> Offer | None:
    """The offer a weight file makes, or None (logged) if it is not ``name`` at ``scale``."""
    try:
        meta = read_metadata(path)
        parameters = _count_parameters(path)
    except (CheckpointError, OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None
    if meta.get("arch") != name or meta.get("scale") != scale:
        log.warning("ignoring %s: it holds %s x%s, not %s x%s", path, meta.get("arch"), meta.get("scale"), name, scale)
        return None
    return Offer(name, scale, parameters, path, _clean_quality(meta.get("quality")))


def build_catalog(weights_dirs: tuple[Path, ...] = ()) -> Catalog:
    """What can be served now: parameter-free models at all their scales, learned ones where
    a weight file exists (in ``weights_dirs`` first, then the shipped weights), and reference
    models whose package is installed (``superres[realesrgan]``).

    Cheap enough to call per request (file look-ups and safetensors headers), so weights
    that appear while the server runs are offered without a restart.
    """
    papers: dict[str, str] = {}
    offers: dict[str, dict[int, Offer]] = {}
    for spec in list_specs(generators_only=True):
        found: dict[int, Offer] = {}
        if not has_parameters(spec.name):
            found = {s: Offer(spec.name, s, 0, None) for s in spec.scales}
        else:
            for scale in spec.scales:
                if spec.external is not None:  # another project's file, when its extra is installed
                    if (path := spec.external.path(scale)) is not None and path.is_file():
                        found[scale] = Offer(spec.name, scale, model_summary(spec.name, scale).parameters, path)
                    continue
                candidates = [Path(d) / weights_file_name(spec.name, scale) for d in weights_dirs]
                candidates.append(pretrained_path(spec.name, scale))
                for path in candidates:
                    if path.is_file() and (offer := _weights_offer(spec.name, scale, path)) is not None:
                        found[scale] = offer
                        break
        if found:
            papers[spec.name] = spec.paper
            offers[spec.name] = found
    return Catalog(papers, offers)
