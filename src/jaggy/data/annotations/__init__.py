"""Annotation files -> boxes in image pixels (`Annotations`), one reader per format.

| format | what | sizes from |
| --- | --- | --- |
| `coco` | COCO instances JSON (`bbox` = [x, y, w, h]) | the file |
| `voc` | Pascal VOC / ImageNet localisation XML, one file or a folder | the file |
| `imagenet-csv` | ImageNet `LOC_val_solution.csv` | the image headers (`images=`) |
| `yolo` | a folder of YOLO `.txt` files (normalised `class cx cy w h`) | the image headers |

Bad boxes (non-positive size, outside the image, unknown image size, image or class) are
skipped and counted by reason (`Annotations.skipped`); a file that cannot be parsed raises
AnnotationError naming the file and the line or record.
"""

from ._read import FORMATS, guess_format, read_annotations
from ._table import AnnotationError, Annotations

__all__ = ["FORMATS", "AnnotationError", "Annotations", "guess_format", "read_annotations"]
