"""The study's inpainting (InpaintingFunction.py, Azulay & Weiss 2019), computed round by round
only where a round can change a pixel.

A round blurs the masked image and the mask with the separable 12-tap binomial and sets every
pixel outside the mask to blurred image / blurred mask (0 where the blurred mask is 0). Only
pixels outside the mask within the filter's reach of it can change: they lie in the mask's
bounding box (the image's black pixels, from the second round on) or in the band of 5 px
before and 6 px after it. The views of one call are stacked with their masks aligned (a view
of the demo's path is its neighbour moved by a pixel), so one set of windows serves all of
them: the four sides of the band around the union U of their masks' boxes, and the box of
U's pixels outside a mask. Each window is blurred with its own 6/5 px margins; pixels outside
a view's canvas stay zero, and a view that has stopped is left as it is. Every output is the
same chain of multiply-adds, in the same order, as in a blur of the whole canvas (terms whose
inputs lie outside U are left out: they would add exact zeros), so the numbers are those of
rounds over whole canvases, bit for bit. The views of one pasted image start equal and come to
differ only where a window crosses some view's canvas edge (and then where the blur carries
that): a window whose inputs lie outside every such place is blurred once, for all views.
"""

from __future__ import annotations

import math
import threading

import torch

# [0.5, 0.5] convolved with itself 10 times: C(11, k) / 2048. scipy's `convolve2d(..., 'same')`
# puts an even filter's window 6 px before the output pixel and 5 after.
TAPS = [math.comb(11, k) / 2048 for k in range(12)]
BEFORE, AFTER = 6, 5
HALO = BEFORE + AFTER
MAX_ROUNDS = 80
ZEROS_LEFT = 200
# the blurred mask is a multiple of 2^-22 (dyadic taps on a 0/1 mask), so a floor far below
# it changes no quotient and turns 0 / 0 into the study's 0 / (0 + 1) = 0
WEIGHT_FLOOR = 2.0**-60
CHUNK = 16  # views inpainted together: each operation of a round serves all of them

Box = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1
NO_BOX = (0, 0, 0, 0)

# Buffers kept between calls, per thread: a fresh buffer of the demo's size (19 MB) costs its
# page faults on every call, 4x the time of zeroing a kept one. Larger ones are not kept.
KEEP_BYTES = 64 * 2**20
_kept = threading.local()


def _reused(name: str, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A buffer of `shape` (contents undefined) like `like`, kept for the calling thread's
    next call under `name` when small enough (see KEEP_BYTES)."""
    numel = math.prod(shape)
    pool = getattr(_kept, "pool", None)
    if pool is None:
        pool = _kept.pool = {}
    key = (name, like.device, like.dtype)
    buffer = pool.get(key)
    if buffer is None or buffer.numel() < numel:
        buffer = like.new_empty(max(numel, 1))
        kept = sum(b.numel() * b.element_size() for k, b in pool.items() if k != key)
        if kept + buffer.numel() * buffer.element_size() <= KEEP_BYTES:
            pool[key] = buffer
        else:
            pool.pop(key, None)
    return buffer[:numel].view(shape)


class _Chunk:
    """Views inpainted together, in one zero-padded buffer [V, C + 1, Ha + 11, Wa + 11]:
    channels 0..C-1 the image (zero outside the mask), channel C the 0/1 mask. View v's canvas
    pixel (y, x) is at aligned position (y + oy_v, x + ox_v), stored 6 rows and columns
    further in. `union` is U, the box (aligned) of every view's mask; `counts` each view's
    mask pixels; `zeros` its pixels summing to zero before the first round; `common` the box
    that lies on every view's canvas. `differ`: boxes (aligned) outside which every view's
    buffer holds the same bits (none: the views start equal, e.g. one image pasted on each;
    None: they may differ anywhere)."""

    def __init__(self, work, offsets, height, width, counts, zeros, union, differ=None):
        self.work = work
        self.channels = work.shape[1] - 1
        self.height, self.width = height, width
        self.offsets = offsets
        n, _, hb, wb = work.shape
        self.aligned = (hb - HALO, wb - HALO)
        self._inside: torch.Tensor | None = None
        common = (0, hb - HALO, 0, wb - HALO)  # on every view's canvas
        for v in range(n):
            common = _intersect(common, self.canvas(v))
        self.common = common
        self.counts, self.zeros, self.union = counts, zeros, union
        n_rows, n_cols = self.aligned
        self.differ: list[Box] = [(0, n_rows, 0, n_cols)] if differ is None else list(differ)

    @property
    def inside(self) -> torch.Tensor:
        """[V, 1, Ha, Wa]: 1 on each view's canvas, 0 elsewhere (made when first needed)."""
        if self._inside is None:
            n = len(self.offsets)
            self._inside = _reused("inside", self.work, (n, 1, *self.aligned)).zero_()
            for v, (r0, r1, c0, c1) in enumerate(map(self.canvas, range(n))):
                self._inside[v, :, r0:r1, c0:c1] = 1
        return self._inside

    def canvas(self, v: int) -> Box:
        oy, ox = self.offsets[v]
        return (oy, oy + self.height, ox, ox + self.width)

    def inner(self, box: Box) -> torch.Tensor:
        """The buffer [V, C + 1, h, w] at aligned box `box`."""
        r0, r1, c0, c1 = box
        return self.work[:, :, BEFORE + r0 : BEFORE + r1, BEFORE + c0 : BEFORE + c1]

    def image(self, v: int) -> torch.Tensor:
        """View v's canvas [C, H, W] (a view of the buffer)."""
        r0, r1, c0, c1 = self.canvas(v)
        return self.work[v, : self.channels, BEFORE + r0 : BEFORE + r1, BEFORE + c0 : BEFORE + c1]

    def inpaint(self) -> None:
        """The study's rounds on every view while more than 200 of its pixels sum to zero, at
        most 80; a view also stops after a round that changed nothing (every later round would
        do the same)."""
        n = len(self.offsets)
        active = [z > ZEROS_LEFT for z in self.zeros]
        for round_ in range(1, MAX_ROUNDS + 1):
            if not any(active):
                break
            first = round_ == 1
            added, grown = self._round(active, count_holes=not first)
            if first:
                self._mask_nonzero(added, grown)
            else:
                self.counts = [c + a for c, a in zip(self.counts, added, strict=True)]
                self.union = _union(self.union, grown)
            hw = self.height * self.width
            for v in range(n):
                if active[v] and (
                    hw - self.counts[v] <= ZEROS_LEFT or (not first and added[v] == 0)
                ):
                    active[v] = False

    def _mask_nonzero(self, added: list[int], grown: Box) -> None:
        """After the first round the mask is every pixel whose channels do not sum to zero:
        outside U the round wrote it already, inside U it is set here. U becomes the box of
        the new masks (smaller where the image has black rows or columns at its border)."""
        region = self.inner(self.union)
        # the channels are >= 0, so their sum is 0 where each one is: `_nonzero`'s chain of
        # adds gives that mask without a reduction across strided channels (4x slower)
        on = self._nonzero(region)
        counts = [int(c) for c in on.sum(dim=(1, 2)).tolist()]
        self.counts = [c + a for c, a in zip(counts, added, strict=True)]
        r0, _, c0, _ = self.union
        box = _boxes(on.any(dim=0, keepdim=True))[0]
        inside = (r0 + box[0], r0 + box[1], c0 + box[2], c0 + box[3]) if box[1] else NO_BOX
        self.union = _union(inside, grown)

    def _windows(self, active: list[bool]) -> list[tuple[str, Box]]:
        """The windows (aligned boxes) that hold every pixel the next round can change."""
        r0, r1, c0, c1 = self.union
        if r1 <= r0:
            return []
        ha, wa = self.aligned
        # a mask pixel reaches 5 px before it and 6 after (its outputs' windows: 6 before, 5 after)
        o_r0, o_r1 = max(r0 - AFTER, 0), min(r1 + BEFORE, ha)
        o_c0, o_c1 = max(c0 - AFTER, 0), min(c1 + BEFORE, wa)
        sides = [
            ("band", (o_r0, r0, o_c0, o_c1)),
            ("band", (r1, o_r1, o_c0, o_c1)),
            ("band", (r0, r1, o_c0, c0)),
            ("band", (r0, r1, c1, o_c1)),
        ]
        wins = [(kind, b) for kind, b in sides if b[0] < b[1] and b[2] < b[3]]
        holes = [
            v
            for v in range(len(active))
            if active[v] and self.counts[v] < _area(_intersect(self.union, self.canvas(v)))
        ]
        if holes and self._same(self.union):
            holes = holes[:1]  # every view holds the same bits in U, on its canvas
        if holes:  # U holds canvas pixels outside some mask
            region = self.inner(self.union)
            inside = self.inside[:, :, r0:r1, c0:c1]
            zero = (region[holes, self.channels] == 0) & (inside[holes, 0] != 0)
            a, b, p, q = _boxes(zero.any(dim=0, keepdim=True))[0]
            wins.append(("holes", (r0 + a, r0 + b, c0 + p, c0 + q)))
        return wins

    def _round(self, active: list[bool], count_holes: bool) -> tuple[list[int], Box]:
        """One round, every window computed from the buffer as the round found it: each window
        reads only inputs inside U (all else is zero), and a band lies outside U, so a band
        is written as soon as it is computed; the holes (inside U) are computed before any
        band is written and written last. Returns the pixels each view added to its mask (in
        the holes only if `count_holes`) and the box of those added outside U."""
        everyone = all(active)
        keep = None if everyone else torch.tensor(active, device=self.work.device)
        added = [0] * len(active)
        grown = NO_BOX
        windows = self._windows(active)
        differ: list[Box] = []  # the windows whose new values may differ between views
        holes = [self._holes(box, keep, differ) for kind, box in windows if kind == "holes"]
        for kind, box in windows:
            if kind != "band":
                continue
            values = self._filled(box, "band")  # one view's when all views' are the same
            masked = keep is not None or _intersect(box, self.common) != box
            if masked or len(values) > 1:
                differ.append(box)
            if masked:
                inside = self.inside[:, :, box[0] : box[1], box[2] : box[3]]
                if keep is not None:
                    inside = inside * keep.view(-1, 1, 1, 1)
                if len(values) == len(active):
                    values[:, : self.channels].mul_(inside)
                else:  # the shared values, masked by each view's canvas
                    views = self._scratch("band views", (len(active), *values.shape[1:]))
                    torch.mul(values[:, : self.channels], inside, out=views[:, : self.channels])
                    values = views
            on = self._nonzero(values)
            self.inner(box).copy_(values)  # the shared values go to every view
            counts = on.sum(dim=(1, 2)).tolist()
            for v in range(len(active)):
                added[v] += int(counts[v if len(counts) > 1 else 0])
            b = _box_of(on.amax(dim=0))
            if b[1]:
                grown = _union(grown, (box[0] + b[0], box[0] + b[1], box[2] + b[2], box[2] + b[3]))
        for box, values, new in holes:
            self.inner(box).copy_(values)  # shared values go to every view
            if count_holes:
                counts = new.sum(dim=(1, 2)).tolist()
                for v in range(len(active)):
                    added[v] += int(counts[v if len(counts) > 1 else 0])
        self.differ.extend(differ)  # every window read the buffer as the round found it
        return added, grown

    def _holes(self, box: Box, keep, differ: list[Box]):
        """The round in the holes window: new values [V, C + 1, h, w] and the pixels
        [V, h, w] they add to the mask (those outside a mask, on the canvas, not black).
        `box` goes to `differ` when the new values may differ between views."""
        c = self.channels
        old = self.inner(box)
        filled = self._filled(box, "holes")  # may be one view's, shared (`_filled`)
        if len(filled) > 1 or keep is not None or _intersect(box, self.common) != box:
            differ.append(box)
            change = old[:, c] == 0
            change &= self.inside[:, 0, box[0] : box[1], box[2] : box[3]] != 0
            if keep is not None:
                change &= keep.view(-1, 1, 1)
        else:  # every view holds the same bits in the box (inside U), all on its canvas
            old = old[:1]
            change = old[:, c] == 0
        # mask * image + (1 - mask) * filled with a 0/1 mask: image where 1, filled where 0
        values = torch.where(change[:, None], filled, old)
        on = self._nonzero(values)
        return box, values, change & (on != 0)

    def _filled(self, box: Box, kind: str) -> torch.Tensor:
        """blurred image / blurred mask in window `box`, [V, C + 1, h, w] (channel C is free
        for the caller), in a scratch buffer of `kind`; [1, C + 1, h, w] when the inputs it
        reads lie outside `differ`, the same bits in every view (so are its outputs: the views
        of a path are one image moved, which differ only where a window crossed a canvas's
        edge, and most windows of the first rounds lie far from the edges)."""
        a, b, p, q = box
        hh, ww = b - a, q - p
        c = self.channels
        r0, r1, c0, c1 = self.union
        rows = (max(r0 - a + BEFORE, 0), min(r1 - a + BEFORE, hh + HALO))
        cols = (max(c0 - p + BEFORE, 0), min(c1 - p + BEFORE, ww + HALO))
        x = self.work[:, :, a : a + hh + HALO, p : p + ww + HALO]
        # buffer row a is aligned row a - BEFORE
        read = (
            a - BEFORE + rows[0],
            a - BEFORE + rows[1],
            p - BEFORE + cols[0],
            p - BEFORE + cols[1],
        )
        if len(x) > 1 and not any(_area(_intersect(read, d)) for d in self.differ):
            x = x[:1]
        if hh > ww:  # blurred transposed (see `_blur_into`)
            out = self._scratch(kind, (x.shape[0], c + 1, ww, hh)).transpose(-1, -2)
        else:
            out = self._scratch(kind, (x.shape[0], c + 1, hh, ww))
        _blur_into(out, x, rows, cols, self._scratch)
        weight = out[:, c:].clamp_(min=WEIGHT_FLOOR)
        torch.div(out[:, :c], weight, out=out[:, :c])
        return out

    def _nonzero(self, values: torch.Tensor) -> torch.Tensor:
        """Channel C of `values` set to 1 where channels 0..C-1 do not sum to zero, 0 elsewhere
        (a view [V, h, w])."""
        c = self.channels
        on = values[:, c]
        on.copy_(values[:, 0])
        for k in range(1, c):
            on.add_(values[:, k])
        return on.ne_(0)

    def _same(self, box: Box) -> bool:
        """Whether every view holds the same bits in `box` (aligned), all on its canvas."""
        return _intersect(box, self.common) == box and not any(
            _area(_intersect(box, d)) for d in self.differ
        )

    def _scratch(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A reusable buffer of `shape` (contents undefined), one per name."""
        return _reused(name, self.work, shape)


def _blur_into(out: torch.Tensor, x: torch.Tensor, rows, cols, scratch) -> None:
    """The study's blur, rows then columns, of windows x [K, C, h + 11, w + 11] that carry
    their 6/5 px margins, into out [K, C, h, w]: each output the same chain of multiply-adds
    as in scipy's `convolve2d(..., 'same')` order over the whole canvas. Only the inputs in
    window rows rows[0]:rows[1] and columns cols[0]:cols[1] are read (the rest counts as
    zero, as it was when the round began), and taps that would only add those exact zeros are
    left out. A window taller than wide is blurred transposed, so that its long side is the
    contiguous one: `out` is then the transpose of a contiguous [K, C, w, h]."""
    n, c, h, w = out.shape
    ra, rb = rows
    ca, cb = cols
    k0, k1 = max(0, ca - w + 1), min(12, cb)  # taps that reach columns with data
    j0, j1 = max(0, ra - h + 1), min(12, rb)  # taps that reach rows with data
    span = k1 + w - 1 - k0  # input columns those taps read, from k0
    if h > w:  # [K, C, columns, rows]
        src = scratch("inputs", (n, c, span, rb - ra))
        src.copy_(x[:, :, ra:rb, k0 : k0 + span].transpose(-1, -2))
        src[:, :, : max(ca - k0, 0)].zero_()
        src[:, :, cb - k0 :].zero_()
        blurred_rows = scratch("rows", (n, c, w, h + HALO))
        blurred_rows[..., :ra].zero_()
        blurred_rows[..., rb:].zero_()
        part = blurred_rows[..., ra:rb]
        torch.mul(src[:, :, 0:w], TAPS[k0], out=part)
        for k in range(k0 + 1, k1):
            part.add_(src[:, :, k - k0 : k - k0 + w], alpha=TAPS[k])
        out_t = out.transpose(-1, -2)
        torch.mul(blurred_rows[..., j0 : j0 + h], TAPS[j0], out=out_t)
        for j in range(j0 + 1, j1):
            out_t.add_(blurred_rows[..., j : j + h], alpha=TAPS[j])
        return
    src = scratch("inputs", (n, c, rb - ra, span))
    src.copy_(x[:, :, ra:rb, k0 : k0 + span])
    src[..., : max(ca - k0, 0)].zero_()
    src[..., cb - k0 :].zero_()
    blurred_rows = scratch("rows", (n, c, h + HALO, w))
    blurred_rows[:, :, :ra].zero_()
    blurred_rows[:, :, rb:].zero_()
    part = blurred_rows[:, :, ra:rb]
    torch.mul(src[..., 0:w], TAPS[k0], out=part)
    for k in range(k0 + 1, k1):
        part.add_(src[..., k - k0 : k - k0 + w], alpha=TAPS[k])
    torch.mul(blurred_rows[:, :, j0 : j0 + h], TAPS[j0], out=out)
    for j in range(j0 + 1, j1):
        out.add_(blurred_rows[:, :, j : j + h], alpha=TAPS[j])


def _box_of(on: torch.Tensor) -> Box:
    """Bounding box of the nonzero pixels of one map [h, w]; (0, 0, 0, 0) if none."""
    h = on.shape[0]
    flags = torch.cat([on.amax(dim=1), on.amax(dim=0)]).tolist()
    rows = [i for i in range(h) if flags[i]]
    if not rows:
        return NO_BOX
    cols = [i for i, f in enumerate(flags[h:]) if f]
    return (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)


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


def _intersect(a: Box, b: Box) -> Box:
    return (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))


def _area(box: Box) -> int:
    return max(box[1] - box[0], 0) * max(box[3] - box[2], 0)


def _aligned(boxes: list[Box]) -> list[tuple[int, int]]:
    """Offsets (oy, ox) that put the top left corners of `boxes` at one aligned position."""
    top, left = max(b[0] for b in boxes), max(b[2] for b in boxes)
    return [(top - b[0], left - b[2]) for b in boxes]


def _new_buffer(like: torch.Tensor, offsets, channels: int, height: int, width: int):
    span_y, span_x = max(o[0] for o in offsets), max(o[1] for o in offsets)
    shape = (len(offsets), channels + 1, height + span_y + HALO, width + span_x + HALO)
    return _reused("work", like, shape).zero_()


def inpaint(canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The study's inpainting of canvases [N, C, H, W] (pixel values 0..255, black = 0) with
    0/1 masks [N, 1, H, W]; see `jaggy.protocols.embed.inpaint`. Views that start with 200 or
    fewer zero pixels are returned as they are."""
    n, c, h, w = canvas.shape
    binary = mask.to(canvas.dtype)
    if bool(((binary != 0) & (binary != 1)).any()):
        raise ValueError("inpaint: the mask must hold only 0 and 1")
    out = canvas.clone()
    on = binary[:, 0] != 0
    boxes = _boxes(on)
    counts = on.flatten(1).sum(dim=1).tolist()
    zeros = (canvas.sum(dim=1) == 0).flatten(1).sum(dim=1).tolist()
    for first in range(0, n, CHUNK):
        views = range(first, min(first + CHUNK, n))
        if all(zeros[v] <= ZEROS_LEFT for v in views):
            continue
        offsets = _aligned([boxes[v] for v in views])
        work = _new_buffer(canvas, offsets, c, h, w)
        union = NO_BOX
        for i, v in enumerate(views):
            oy, ox = offsets[i]
            inner = work[i, :, BEFORE + oy : BEFORE + oy + h, BEFORE + ox : BEFORE + ox + w]
            torch.mul(canvas[v], binary[v], out=inner[:c])
            inner[c:] = binary[v]
            if counts[v]:
                r0, r1, c0, c1 = boxes[v]
                union = _union(union, (r0 + oy, r1 + oy, c0 + ox, c1 + ox))
        chunk = _Chunk(
            work, offsets, h, w, [counts[v] for v in views], [zeros[v] for v in views], union
        )
        chunk.inpaint()
        for i, v in enumerate(views):
            if zeros[v] > ZEROS_LEFT:
                out[v] = chunk.image(i)
    return out


def inpaint_pasted(
    image: torch.Tensor, origins: list[tuple[int, int]], height: int, width: int, dtype
) -> torch.Tensor:
    """`inpaint` of the image [C, S, S'] pasted at each (x, y) of `origins` on a black
    height x width canvas, masked where it was pasted (it must lie inside the canvas):
    canvases [V, C, height, width] of `dtype`."""
    c, s_h, s_w = image.shape
    out = torch.empty(len(origins), c, height, width, dtype=dtype, device=image.device)
    black = int((image.sum(dim=0) == 0).sum())
    zeros = height * width - s_h * s_w + black
    for first in range(0, len(origins), CHUNK):
        part = origins[first : first + CHUNK]
        offsets = _aligned([(y, y + s_h, x, x + s_w) for x, y in part])
        work = _new_buffer(image, offsets, c, height, width)
        top, left = part[0][1] + offsets[0][0], part[0][0] + offsets[0][1]
        placed = work[:, :, BEFORE + top : BEFORE + top + s_h, BEFORE + left : BEFORE + left + s_w]
        placed[:, :c] = image
        placed[:, c] = 1
        n = len(part)
        union = (top, top + s_h, left, left + s_w)
        # every view starts as the same image on the same zeros
        chunk = _Chunk(work, offsets, height, width, [s_h * s_w] * n, [zeros] * n, union, [])
        chunk.inpaint()
        for i in range(n):
            out[first + i] = chunk.image(i)
    return out
