"""Image sources (folders, file lists, sample photos) and robust decoding in workers."""

from ._items import IMAGE_EXTENSIONS, SAMPLE_NAMES, ImageItem, discover_images, sample_paths
from ._video import VIDEO_EXTENSIONS, discover_videos

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAMPLE_NAMES",
    "VIDEO_EXTENSIONS",
    "ImageItem",
    "discover_images",
    "discover_videos",
    "sample_paths",
]
