"""ImageNet-1k class names and synsets, from timm's bundled tables (offline)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_synsets() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(info.num_classes())]


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """Human-readable names, e.g. 'tabby, tabby cat' for class 281."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(info.num_classes())]


def imagenet_class_index(name: str) -> int | None:
    """Index of an ImageNet class given its synset id ('n02123045'), its full name or any of
    its comma-separated names ('tabby'), case-insensitive; None when unknown."""
    key = name.strip().lower().replace("_", " ")
    if key in _synset_index():
        return _synset_index()[key]
    return _name_index().get(key)


@lru_cache(maxsize=1)
def _synset_index() -> dict[str, int]:
    return {s.lower(): i for i, s in enumerate(imagenet_synsets())}


@lru_cache(maxsize=1)
def _name_index() -> dict[str, int]:
    index: dict[str, int] = {}
    names = imagenet_class_names()
    for i, full in enumerate(names):
        index.setdefault(full.lower(), i)
    for i, full in enumerate(names):
        for part in full.split(","):
            index.setdefault(part.strip().lower(), i)
    return index
