"""Image sources (folders, file lists, sample photos) and robust decoding in workers."""

from ._dataset import DecodedImage, SourceDataset, load_source
from ._decode import ImageDecodeError, decode_image, prepare_source
from ._items import (
    IMAGE_EXTENSIONS,
    SAMPLE_NAMES,
    ImageItem,
    ImageSet,
    discover_images,
    find_images,
    sample_paths,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_NAMES",
    "DecodedImage",
    "ImageDecodeError",
    "ImageItem",
    "ImageSet",
    "SourceDataset",
    "decode_image",
    "discover_images",
    "find_images",
    "load_source",
    "prepare_source",
    "sample_paths",
]
