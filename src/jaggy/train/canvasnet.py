"""The small CNN of the built-in canvas experiment, loadable as the model spec
`py:jaggy.train.canvasnet:canvas_net`.

Four 3x3 convolutions, each followed by batch norm and ReLU; the last three have stride 2,
so the total stride is 8 (the study's point: such a network is exactly shift-invariant only
for shifts that are multiples of 8). Global average pooling and a linear layer give the
logits. The network is fully convolutional: it runs at any canvas size, and the canvas size
it was trained for travels in its checkpoint's preprocessing.
"""

from __future__ import annotations

from torch import nn

CANVAS_SPEC = "py:jaggy.train.canvasnet:canvas_net"
WIDTHS = (8, 16, 32, 64)
DEFAULT_CANVAS = 40  # px
# Grey digits on a black canvas; mean and std of 0.5 put black at -1 after normalisation, so
# the zero padding of the convolutions differs from the background (as for natural images).
CANVAS_PREPROCESSING = {
    "input_size": DEFAULT_CANVAS,
    "crop_pct": 1.0,
    "interpolation": "bilinear",
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "source": "jaggy canvas experiment",
}


class CanvasNet(nn.Module):
    """conv3x3(s1) -> 3 x conv3x3(s2), each with BN + ReLU; global average pool; linear.

    `features` is an nn.Sequential so that remedies find each strided convolution's norm and
    activation (blurpool subsamples after them, as Zhang placed it).
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)
        self.jaggy_preprocessing = dict(CANVAS_PREPROCESSING)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))


def canvas_net() -> CanvasNet:
    """The experiment's network with 10 classes (digits) for a 40 px canvas."""
    return CanvasNet()
