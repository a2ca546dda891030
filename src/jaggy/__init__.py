"""jaggy: measure, explain and reduce how image classifiers change their answer under tiny
image transformations (Azulay & Weiss, JMLR 2019)."""

__version__ = "0.1.0"

from .errors import JaggyError  # noqa: E402
from .models import LoadedModel, Preprocessing, load_model  # noqa: E402

__all__ = ["JaggyError", "LoadedModel", "Preprocessing", "__version__", "load_model"]
