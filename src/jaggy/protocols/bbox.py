"""`bbox`: the crop protocol on a square around each annotated object (`--annotations`)."""

from __future__ import annotations

from ._base import SourceRequest
from ._registry import register_protocol
from .crop import CropProtocol

DEFAULT_MARGIN = 0.1


@register_protocol
class BoxProtocol(CropProtocol):
    """One sequence per annotated object: a square around the object (its larger side plus
    `bbox_margin` of it on each side, moved inside the image; see `jaggy.data._box_source`)
    is resized to R + steps, and R x R windows 1 px apart move along the path exactly as in
    `crop` (dx = -k: the window moves right, the content left). It separates the object's own
    instability from artefacts of resizing a whole scene or of embedding it in a canvas."""

    name = "bbox"
    description = "crop around each annotated object (margin), R x R windows 1 px apart"

    @property
    def margin(self) -> float:
        return float(self.options.extra.get("bbox_margin", DEFAULT_MARGIN))

    def source(self) -> SourceRequest:
        # Full resolution: a reduced JPEG decoding would blur small objects before the crop.
        return SourceRequest("box", self.side, full_decode=True, margin=self.margin)

    def params(self) -> dict:
        return {**super().params(), "bbox_margin": self.margin}
