"""The study's inpainting (InpaintingFunction.py, Azulay & Weiss 2019), computed round by round
only where a round can change a pixel.

A round blurs the masked image and the mask with the separable 12-tap binomial and sets every
pixel outside the mask to blurred image / blurred mask (0 where the blurred mask is 0). Only
pixels outside the mask within the filter's reach of it can change: they lie in the mask's
bounding box C (the image's black pixels, from the second round on) or in the band of 5 px
before and 6 px after C. So a round blurs just those windows of each view (the band's four
sides and the box of C's holes), each with its own 6/5 px margins, stacked over the views.
Every output is the same chain of multiply-adds, in the same order, as in a blur of the whole
canvas (terms whose inputs lie outside C are left out: they would add exact zeros), so the
numbers are those of rounds over whole canvases, bit for bit.
"""

from __future__ import annotations

import math

import torch

# [0.5, 0.5] convolved with itself 10 times: C(11, k) / 2048. scipy's `convolve2d(..., 'same')`
# puts an even filter's window 6 px before the output pixel and 5 after.
TAPS = [math.comb(11, k) / 2048 for k in range(12)]
BEFORE, AFTER = 6, 5
HALO = BEFORE + AFTER
MAX_ROUNDS = 80
ZEROS_LEFT = 200

Box = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1 of a canvas
NO_BOX = (0, 0, 0, 0)


class Canvases:
    """Views being inpainted, in one zero-padded buffer [V, C + 1, H + 11, W + 11]: channels
    0..C-1 the image, zero outside the mask, channel C the 0/1 mask; canvas pixel (y, x) at
    (y + 6, x + 6). Each view's mask bounding box and mask pixel count are kept up to date,
    and `zeros` holds its pixels summing to zero before the first round."""

    def __init__(self, work: torch.Tensor, boxes: list[Box], counts: list[int], zeros: list[int]):
        self.work = work
        self.channels = work.shape[1] - 1
        self.height, self.width = work.shape[2] - HALO, work.shape[3] - HALO
        self.boxes, self.counts, self.zeros = boxes, counts, zeros
        self.pasted_image: torch.Tensor | None = None  # set by `pasted`

    @classmethod
    def from_canvas(cls, canvas: torch.Tensor, mask: torch.Tensor) -> Canvases:
        """Canvases [N, C, H, W] and 0/1 masks [N, 1, H, W]. Pixels outside the mask are
        replaced in the first round whatever they hold, so they start at zero here."""
        n, c, h, w = canvas.shape
        work = canvas.new_zeros(n, c + 1, h + HALO, w + HALO)
        inner = work[..., BEFORE : BEFORE + h, BEFORE : BEFORE + w]
        binary = mask.to(canvas.dtype)
        torch.mul(canvas, binary, out=inner[:, :c])
        inner[:, c:] = binary
        on = binary[:, 0] != 0
        zeros = (canvas.sum(dim=1) == 0).flatten(1).sum(dim=1).tolist()
        return cls(work, _boxes(on), on.flatten(1).sum(dim=1).tolist(), zeros)

    @classmethod
    def pasted(
        cls, image: torch.Tensor, origins: list[tuple[int, int]], height: int, width: int
    ) -> Canvases:
        """The image [C, S, S'] pasted at each (x, y) of `origins` on a black height x width
        canvas and masked where it was pasted; it must lie inside the canvas."""
        c, s_h, s_w = image.shape
        work = image.new_zeros(len(origins), c + 1, height + HALO, width + HALO)
        for v, (x, y) in enumerate(origins):
            window = work[v, :, BEFORE + y : BEFORE + y + s_h, BEFORE + x : BEFORE + x + s_w]
            window[:c] = image
            window[c] = 1
        black = int((image.sum(dim=0) == 0).sum())
        zeros = height * width - s_h * s_w + black
        boxes = [(y, y + s_h, x, x + s_w) for x, y in origins]
        views = cls(work, boxes, [s_h * s_w] * len(origins), [zeros] * len(origins))
        views.pasted_image = image
        return views

    def image(self) -> torch.Tensor:
        """The canvases [V, C, H, W] (a view of the buffer)."""
        h, w = self.height, self.width
        return self.work[:, : self.channels, BEFORE : BEFORE + h, BEFORE : BEFORE + w]

    def inpaint(self) -> Canvases:
        """The study's rounds on every view while more than 200 of its pixels sum to zero, at
        most 80; a view also stops after a round that changed nothing (every later round would
        do the same)."""
        views = [v for v, z in enumerate(self.zeros) if z > ZEROS_LEFT]
        start = list(self.boxes)
        for round_ in range(1, MAX_ROUNDS + 1):
            if not views:
                break
            first = round_ == 1
            added = self._round(views, count_holes=not first)
            if first:
                self._mask_nonzero(views, start, added)
            else:
                for v, (n_added, box) in added.items():
                    self.counts[v] += n_added
                    self.boxes[v] = _union(self.boxes[v], box)
                views = [v for v in views if added[v][0] > 0]
            views = [v for v in views if self.height * self.width - self.counts[v] > ZEROS_LEFT]
        return self

    def _mask_nonzero(self, views: list[int], start: list[Box], ring: dict) -> None:
        """After the first round the mask is every pixel whose channels do not sum to zero.
        Outside each view's first box C the round wrote that mask already; inside C it is
        the image's non-black pixels."""
        c = self.channels
        known = None
        if self.pasted_image is not None:
            on = self.pasted_image.sum(dim=0) != 0
            known = int(on.sum()), _boxes(on[None])[0]
        for v in views:
            r0, r1, c0, c1 = start[v]
            region = self.work[v, :, BEFORE + r0 : BEFORE + r1, BEFORE + c0 : BEFORE + c1]
            if known is None:
                on = region[:c].sum(dim=0) != 0
                count, box = int(on.sum()), _boxes(on[None])[0]
            else:
                count, box = known
            if count < (r1 - r0) * (c1 - c0) or known is None:
                region[c] = on
            inside = (r0 + box[0], r0 + box[1], c0 + box[2], c0 + box[3]) if count else NO_BOX
            self.counts[v] = count + ring[v][0]
            self.boxes[v] = _union(inside, ring[v][1])

    def _windows(self, v: int) -> list[tuple[str, Box]]:
        """The windows of view v that hold every pixel the next round can change."""
        r0, r1, c0, c1 = self.boxes[v]
        if r1 <= r0:
            return []
        o_r0, o_r1 = max(r0 - AFTER, 0), min(r1 + BEFORE, self.height)
        o_c0, o_c1 = max(c0 - AFTER, 0), min(c1 + BEFORE, self.width)
        sides = [
            ("top", (o_r0, r0, o_c0, o_c1)),
            ("bottom", (r1, o_r1, o_c0, o_c1)),
            ("left", (r0, r1, o_c0, c0)),
            ("right", (r0, r1, c1, o_c1)),
        ]
        wins = [(kind, b) for kind, b in sides if b[0] < b[1] and b[2] < b[3]]
        if self.counts[v] < (r1 - r0) * (c1 - c0):  # C holds pixels outside the mask
            y0, x0 = BEFORE + r0, BEFORE + c0
            holes = self.work[v, self.channels, y0 : y0 + r1 - r0, x0 : x0 + c1 - c0] == 0
            a, b, p, q = _boxes(holes[None])[0]
            wins.append(("holes", (r0 + a, r0 + b, c0 + p, c0 + q)))
        return wins

    def _round(self, views: list[int], count_holes: bool) -> dict[int, tuple[int, Box]]:
        """One round on `views`: every window is computed from the buffer as it was, then
        written back. Returns the pixels each view added to its mask and their box (those of
        the holes only if `count_holes`)."""
        kinds: dict[str, list[tuple[int, Box]]] = {}
        for v in views:
            for kind, box in self._windows(v):
                kinds.setdefault(kind, []).append((v, box))
        results = {kind: self._blur_kind(wins, kind) for kind, wins in kinds.items()}
        added = {v: (0, NO_BOX) for v in views}
        for kind, (placed, values, news) in results.items():
            for (v, (a, b, p, q)), (pa, pp), value in zip(kinds[kind], placed, values, strict=True):
                region = value[:, a - pa : b - pa, p - pp : q - pp]
                self.work[v, :, BEFORE + a : BEFORE + b, BEFORE + p : BEFORE + q] = region
            if kind == "holes" and not count_holes:
                continue
            for (v, _), (pa, pp), (n_new, box) in zip(kinds[kind], placed, news(), strict=True):
                if n_new:
                    r0, r1, c0, c1 = box
                    box = (pa + r0, pa + r1, pp + c0, pp + c1)
                    added[v] = (added[v][0] + n_new, _union(added[v][1], box))
        return added

    def _blur_kind(self, wins: list[tuple[int, Box]], kind: str):
        """One round on windows of one kind, padded to one shape and stacked: their placed
        origins, the new values [K, C + 1, h, w] (image, then mask: channels not summing to
        zero), and a function giving each window's added mask pixels and their box."""
        hh = max(b - a for _, (a, b, _, _) in wins)
        ww = max(q - p for _, (_, _, p, q) in wins)
        placed = [(min(a, self.height - hh), min(p, self.width - ww)) for _, (a, _, p, _) in wins]
        tall = hh > ww  # blurred transposed, so that the long side is the contiguous one
        x = torch.stack(
            [
                _maybe_t(self.work[v, :, pa : pa + hh + HALO, pp : pp + ww + HALO], tall)
                for (v, _), (pa, pp) in zip(wins, placed, strict=True)
            ]
        )
        # window rows and columns inside the masks' boxes: outside them every input is zero
        spans = [
            (self._span(self.boxes[v][:2], pa, hh), self._span(self.boxes[v][2:], pp, ww))
            for (v, _), (pa, pp) in zip(wins, placed, strict=True)
        ]
        rows = (min(s[0][0] for s in spans), max(s[0][1] for s in spans))
        cols = (min(s[1][0] for s in spans), max(s[1][1] for s in spans))
        blurred = _blur_windows(x, hh, ww, rows, cols, tall)
        x = _maybe_t(x, tall)
        c = self.channels
        old = x[..., BEFORE : BEFORE + hh, BEFORE : BEFORE + ww]
        mask, image = old[:, c:], old[:, :c]
        weight = blurred[:, c:]
        filled = blurred[:, :c] / (weight + (weight == 0).to(weight.dtype))
        step = mask * image + (1 - mask) * filled
        on = step.sum(dim=1, keepdim=True) != 0
        values = torch.cat([step, on.to(step.dtype)], dim=1)

        def news():
            device = x.device
            own = torch.tensor(
                [
                    [a - pa, b - pa, p - pp, q - pp]
                    for (_, (a, b, p, q)), (pa, pp) in zip(wins, placed, strict=True)
                ],
                device=device,
            )
            r, k = torch.arange(hh, device=device), torch.arange(ww, device=device)
            in_rows = (r >= own[:, :1]) & (r < own[:, 1:2])
            in_cols = (k >= own[:, 2:3]) & (k < own[:, 3:4])
            new = on[:, 0] & (mask[:, 0] == 0) & in_rows[:, :, None] & in_cols[:, None, :]
            return zip(new.flatten(1).sum(dim=1).tolist(), _boxes(new), strict=True)

        return placed, values, news

    @staticmethod
    def _span(box: tuple[int, int], origin: int, size: int) -> tuple[int, int]:
        """Where canvas range box[0]:box[1] falls among the inputs of a window of `size`
        outputs from `origin` (its inputs start 6 px before)."""
        return max(box[0] - origin + BEFORE, 0), min(box[1] - origin + BEFORE, size + HALO)


def _maybe_t(x: torch.Tensor, transpose: bool) -> torch.Tensor:
    return x.transpose(-1, -2) if transpose else x


def _blur_windows(
    x: torch.Tensor,
    h: int,
    w: int,
    rows: tuple[int, int],
    cols: tuple[int, int],
    transposed: bool = False,
) -> torch.Tensor:
    """The study's blur, rows then columns, of windows [K, C, h + 11, w + 11] that carry their
    6/5 px margins (`transposed`: given as [K, C, w + 11, h + 11]): [K, C, h, w]. Each output
    is the same chain of multiply-adds as in scipy's `convolve2d(..., 'same')` order over the
    whole canvas. Inputs outside rows[0]:rows[1] and columns cols[0]:cols[1] (window
    coordinates) are zero: the terms they would add, exact zeros before or after the others,
    are left out."""
    n, c = x.shape[:2]
    ra, rb = rows
    k0, k1 = max(0, cols[0] - w + 1), min(12, cols[1])
    j0, j1 = max(0, ra - h + 1), min(12, rb)
    if transposed:  # the same sums, with rows and columns swapped in memory
        blurred_rows = x.new_zeros(n, c, w, h + HALO)
        part, src = blurred_rows[..., ra:rb], x[..., ra:rb]
        torch.mul(src[:, :, k0 : k0 + w], TAPS[k0], out=part)
        for k in range(k0 + 1, k1):
            part.add_(src[:, :, k : k + w], alpha=TAPS[k])
        out = blurred_rows[..., j0 : j0 + h] * TAPS[j0]
        for j in range(j0 + 1, j1):
            out.add_(blurred_rows[..., j : j + h], alpha=TAPS[j])
        return out.transpose(-1, -2)
    blurred_rows = x.new_zeros(n, c, h + HALO, w)
    part, src = blurred_rows[:, :, ra:rb], x[:, :, ra:rb]
    torch.mul(src[..., k0 : k0 + w], TAPS[k0], out=part)
    for k in range(k0 + 1, k1):
        part.add_(src[..., k : k + w], alpha=TAPS[k])
    out = blurred_rows[..., j0 : j0 + h, :] * TAPS[j0]
    for j in range(j0 + 1, j1):
        out.add_(blurred_rows[..., j : j + h, :], alpha=TAPS[j])
    return out


def _boxes(on: torch.Tensor) -> list[Box]:
    """Bounding boxes (r0, r1, c0, c1) of the True pixels of maps [N, H, W]; (0, 0, 0, 0) for
    a map with none."""
    rows, cols = on.any(dim=2), on.any(dim=1)
    h, w = rows.shape[1], cols.shape[1]
    r0 = rows.to(torch.uint8).argmax(dim=1)
    r1 = h - rows.flip(1).to(torch.uint8).argmax(dim=1)
    c0 = cols.to(torch.uint8).argmax(dim=1)
    c1 = w - cols.flip(1).to(torch.uint8).argmax(dim=1)
    found = rows.any(dim=1)
    return [
        tuple(b) if f else NO_BOX
        for b, f in zip(torch.stack([r0, r1, c0, c1], 1).tolist(), found.tolist(), strict=True)
    ]


def _union(a: Box, b: Box) -> Box:
    if a[1] <= a[0]:
        return b
    if b[1] <= b[0]:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def inpaint(canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The study's inpainting of canvases [N, C, H, W] with 0/1 masks [N, 1, H, W]; see
    `jaggy.protocols.embed.inpaint`. Views that start with 200 or fewer zero pixels are
    returned as they are."""
    views = Canvases.from_canvas(canvas, mask).inpaint()
    out = views.image().clone()
    untouched = torch.tensor([z <= ZEROS_LEFT for z in views.zeros], device=canvas.device)
    if bool(untouched.any()):
        out[untouched] = canvas[untouched]
    return out
