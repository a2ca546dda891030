"""Image sources (folders, file lists, sample photos) and robust decoding in workers."""

from ._dataset import DecodedImage, SourceDataset, load_source
from ._decode import ImageDecodeError, decode_image, decode_sources, prepare_source
from ._items import (
    IMAGE_EXTENSIONS,
    SAMPLE_NAMES,
    ImageItem,
    ImageSet,
    discover_images,
    find_images,
    sample_paths,
)
from ._video import (
    VIDEO_EXTENSIONS,
    FrameSelection,
    VideoDataset,
    VideoDecodeError,
    decoder_description,
    discover_videos,
    natural_key,
    read_sequence,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_NAMES",
    "VIDEO_EXTENSIONS",
    "DecodedImage",
    "FrameSelection",
    "ImageDecodeError",
    "ImageItem",
    "ImageSet",
    "SourceDataset",
    "VideoDataset",
    "VideoDecodeError",
    "decode_image",
    "decode_sources",
    "decoder_description",
    "discover_images",
    "find_images",
    "discover_videos",
    "natural_key",
    "load_source",
    "prepare_source",
    "read_sequence",
    "sample_paths",
]
