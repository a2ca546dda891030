"""Model specs -> LoadedModel (module, preprocessing, class names); embedded offline weights."""

from ._classes import imagenet_class_index, imagenet_class_names, imagenet_synsets
from ._embedded import embedded_names
from ._head import classifier_layer, replace_head
from ._load import ModelSpec, load_model, parse_model_spec
from ._loaded import LoadedModel, Preprocessing

__all__ = [
    "LoadedModel",
    "ModelSpec",
    "Preprocessing",
    "classifier_layer",
    "embedded_names",
    "imagenet_class_index",
    "imagenet_class_names",
    "imagenet_synsets",
    "load_model",
    "parse_model_spec",
    "replace_head",
]
