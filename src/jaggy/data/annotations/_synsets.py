"""Class names that look like WordNet synset ids (`n01440764`) must be ImageNet's."""

from __future__ import annotations

import re

from ...models._classes import imagenet_class_index

_SYNSET = re.compile(r"n\d{8}")


def looks_like_synset(name: str) -> bool:
    return _SYNSET.fullmatch(name) is not None


def check_synset(name: str) -> bool:
    """False for a synset-like name that is not one of ImageNet-1k's classes (an unknown
    class); True for every other name (VOC and COCO names are free text)."""
    return not looks_like_synset(name) or imagenet_class_index(name) is not None


def imagenet_label(name: str) -> int:
    """The ImageNet class index of a synset name, -1 for any other name."""
    if not looks_like_synset(name):
        return -1
    index = imagenet_class_index(name)
    return -1 if index is None else int(index)
