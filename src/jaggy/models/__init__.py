"""Model specs -> LoadedModel (module, preprocessing, class names); embedded offline weights."""

from ._classes import imagenet_class_names
from ._embedded import embedded_names
from ._load import load_model
from ._loaded import LoadedModel, Preprocessing

__all__ = ["LoadedModel", "Preprocessing", "embedded_names", "imagenet_class_names", "load_model"]
