"""Procedural pCLE phantom: synthetic Cellvizio-like videos with ground-truth structure masks.

The product may not ship real patient frames, so its demo video and demo model are made from
this phantom. Each video draws one large "tissue" canvas (class-specific structures plus their
mask) and renders every frame as a rotated crop of it at the current probe position, seen
through a fibre-bundle honeycomb inside a circular field of view, with shot noise. That gives
smooth, realistic probe motion and masks that stay consistent with the image at a few ms/frame.

Classes (after the paper's three tissues):
- glioblastoma: dense, random, pleomorphic dark/bright nuclei (irregular blobs);
- meningioma: psammoma bodies (concentric calcified rings) on a streaky fibrous background;
- metastasis: egg-shaped cells with uniform nuclei on a jittered hexagonal lattice.

CLI (:func:`main`; ``python -m models.phantom`` or ``python -m app phantom``): ``--out DIR``
writes ROOT/<class>/<class>_<k>.avi plus ``<class>_<k>.masks.npz``; ``--single-video PATH
--class NAME`` writes one video.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASSES: tuple[str, ...] = ("glioblastoma", "meningioma", "metastasis")

# Sizes below are in pixels of the reference 336x464 frame; they scale with the frame size.
_REF_HEIGHT, _REF_WIDTH = 336, 464
_CANVAS_MARGIN = 24
_MOTION_STREAM, _TISSUE_STREAM, _NOISE_STREAM = 0, 1, 2
_FIXED_PATTERN_SEED = 20240607  # the fibre bundle and its cracks belong to the probe, not a video
_CODECS = ("FFV1", "MJPG")


@dataclass(frozen=True)
class PhantomConfig:
    """Rendering parameters; defaults mimic the real 464x336 Cellvizio frames."""

    height: int = _REF_HEIGHT
    width: int = _REF_WIDTH
    fov_radius_frac: float = 0.49  # FOV disc radius / frame height (measured on real frames)
    fibre_period: float = 3.5  # honeycomb lattice period, px
    fibre_contrast: float = 0.3  # depth of the honeycomb intensity modulation, 0..1
    noise: float = 0.06  # shot-noise strength: sd = noise * sqrt(signal), signal in 0..1
    motion_px_per_frame: float = 2.0  # mean probe speed over the tissue
    rotation_deg_per_frame: float = 0.15  # typical probe roll rate
    overlay: bool = True  # burn in a "Cellvizio" logo and a "20 um" scale bar outside the FOV
    cracks: bool = False  # dark crack lines fixed in the probe (a known spurious cue)

    @property
    def scale(self) -> float:
        """Size factor of the structures relative to the reference frame."""
        return min(self.height / _REF_HEIGHT, self.width / _REF_WIDTH)

    @property
    def fov_radius(self) -> float:
        return self.fov_radius_frac * self.height


@dataclass(frozen=True)
class PhantomFrame:
    """One rendered frame: grey image, ground-truth mask of the class-defining structures."""

    image: np.ndarray  # uint8 (H, W)
    mask: np.ndarray  # bool (H, W); False outside the FOV disc
    class_name: str
    index: int


# --------------------------------------------------------------------------- frame constants


@dataclass(frozen=True)
class _FrameConstants:
    disc: np.ndarray  # bool (H, W): inside the field of view
    modulation: np.ndarray  # float32 (H, W): honeycomb * vignetting * disc edge * cracks
    overlay: np.ndarray | None  # uint8 (H, W): burned-in text, zero inside the disc


def fov_disc(config: PhantomConfig | None = None) -> np.ndarray:
    """Boolean (H, W) mask of the circular field of view."""
    return _frame_constants(config or PhantomConfig()).disc.copy()


def _radius_map(config: PhantomConfig) -> np.ndarray:
    h, w = config.height, config.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)


@functools.lru_cache(maxsize=8)
def _frame_constants(config: PhantomConfig) -> _FrameConstants:
    h, w = config.height, config.width
    radius = config.fov_radius
    rho = _radius_map(config)
    disc = rho <= radius
    edge = np.clip(radius + 0.5 - rho, 0.0, 1.0) * disc

    # Hexagonal lattice of fibre cores: three plane waves 60 degrees apart.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    k = 4 * math.pi / (math.sqrt(3) * config.fibre_period)
    waves = sum(
        np.cos(k * (xx * math.cos(a) + yy * math.sin(a)))
        for a in (0.3, 0.3 + math.pi / 3, 0.3 + 2 * math.pi / 3)
    )
    lattice = (waves + 1.5) / 4.5
    rng = np.random.default_rng(_FIXED_PATTERN_SEED)
    fibre_gain = cv2.GaussianBlur(
        rng.standard_normal((h, w)).astype(np.float32), (0, 0), config.fibre_period / 2
    )
    fibre_gain = 1 + 0.08 * fibre_gain / (fibre_gain.std() + 1e-6)
    honeycomb = (1 - config.fibre_contrast) + config.fibre_contrast * lattice
    vignette = 1.2 * (1 - 0.25 * (rho / radius) ** 2)  # 1.2: disc mean ~100 as in real data
    modulation = (honeycomb * fibre_gain * vignette * edge).astype(np.float32)
    if config.cracks:
        modulation *= 1 - 0.9 * _crack_map(config, rng)

    overlay = _overlay(config, rho) if config.overlay else None
    for arr in (disc, modulation, overlay):
        if arr is not None:
            arr.setflags(write=False)
    return _FrameConstants(disc=disc, modulation=modulation, overlay=overlay)


def _crack_map(config: PhantomConfig, rng: np.random.Generator) -> np.ndarray:
    """Thin jagged dark lines at a fixed place in the lower-left of the FOV, in 0..1."""
    h, w, s = config.height, config.width, config.scale
    cx, cy, r = (w - 1) / 2, (h - 1) / 2, config.fov_radius
    cracks = np.zeros((h, w), np.float32)
    for start in ((cx - 0.6 * r, cy + 0.2 * r), (cx - 0.45 * r, cy + 0.5 * r)):
        steps = rng.normal(0, 1.0, (40, 2)) * s + np.array([1.2, 0.9]) * s * 1.5
        pts = np.asarray(start) + np.cumsum(steps, axis=0)
        cv2.polylines(cracks, [pts.astype(np.int32)], False, 1.0, 1)
    return cv2.GaussianBlur(cracks, (0, 0), 0.4)


def _overlay(config: PhantomConfig, rho: np.ndarray) -> np.ndarray:
    """A "Cellvizio" logo bottom-left and a "20 um" scale bar bottom-right, like the real data."""
    h, w, s = config.height, config.width, config.scale
    img = np.zeros((h, w), np.uint8)
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * s, max(1, round(s))
    base = h - round(10 * s)
    for a in range(0, 360, 60):  # the logo's little flower
        cx = round(14 * s + 4 * s * math.cos(math.radians(a)))
        cy = round(base - 5 * s + 4 * s * math.sin(math.radians(a)))
        cv2.circle(img, (cx, cy), max(1, round(1.5 * s)), 230, -1)
    cv2.putText(img, "Cellvizio", (round(22 * s), base), font, fs, 230, th, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize("20 um", font, fs * 1.2, th + 1)
    x0 = w - round(70 * s) - tw
    cv2.putText(img, "20 um", (x0, base + round(4 * s)), font, fs * 1.2, 255, th + 1, cv2.LINE_AA)
    bar_y = base - round(18 * s)
    cv2.line(
        img,
        (x0 + tw // 2 - round(12 * s), bar_y),
        (x0 + tw // 2 + round(12 * s), bar_y),
        255,
        th + 1,
    )
    img[rho <= config.fov_radius + 2] = 0
    return img


# --------------------------------------------------------------------------- tissue canvases


def _smooth_field(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field with correlation length ~cell px, roughly unit variance."""
    cell = max(cell, 1.0)
    gh, gw = int(h / cell) + 4, int(w / cell) + 4
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(small, (round(gw * cell), round(gh * cell)), interpolation=cv2.INTER_CUBIC)
    field = big[:h, :w]
    return field / (field.std() + 1e-6)


def _background(rng: np.random.Generator, h: int, w: int, s: float, level: float) -> np.ndarray:
    """Blotchy low-frequency tissue intensity, as in real pCLE frames."""
    return (
        level + 0.1 * _smooth_field(rng, h, w, 60 * s) + 0.05 * _smooth_field(rng, h, w, 15 * s)
    ).astype(np.float32)


def _meningioma(
    rng: np.random.Generator, h: int, w: int, s: float
) -> tuple[np.ndarray, np.ndarray]:
    tissue = _background(rng, h, w, s, 0.32)
    mask = np.zeros((h, w), np.uint8)

    # Wavy fibres following a smooth orientation field (streamlines, all advanced at once).
    n = int(h * w / (180 * s * s))
    n_steps, step = 18, 3.0 * s
    theta = 1.6 * _smooth_field(rng, h, w, 70 * s)
    pos = rng.uniform((0, 0), (w, h), (n, 2))
    phase, freq = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.4, 0.9, n)
    pts = np.empty((n, n_steps, 2), np.float64)
    for k in range(n_steps):
        pts[:, k] = pos
        ix = np.clip(pos[:, 0].astype(np.int64), 0, w - 1)
        iy = np.clip(pos[:, 1].astype(np.int64), 0, h - 1)
        a = theta[iy, ix] + 0.35 * np.sin(freq * k + phase)
        pos = pos + step * np.stack([np.cos(a), np.sin(a)], axis=1)
    fibres = np.zeros((h, w), np.float32)
    pts_int = np.round(pts).astype(np.int32)
    groups = rng.integers(0, 4, n)
    for g in range(4):
        thickness = 2 if g == 3 and s >= 0.75 else 1
        cv2.polylines(fibres, list(pts_int[groups == g]), False, 0.2 + 0.1 * g, thickness)
    tissue += cv2.GaussianBlur(fibres, (0, 0), 0.8 * s)

    # Psammoma bodies: dark core, bright calcified rim, fainter inner lamellae.
    spacing = 85 * s
    gy, gx = np.mgrid[0 : h + spacing : spacing, 0 : w + spacing : spacing]
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    centres += rng.uniform(-0.32, 0.32, centres.shape) * spacing
    centres = centres[rng.random(len(centres)) < 0.8]
    for (x, y), r in zip(
        np.round(centres).astype(int), rng.uniform(11, 27, len(centres)) * s, strict=True
    ):
        rim = max(2, round(0.2 * r))
        ri = round(r)
        cv2.circle(tissue, (x, y), ri, float(rng.uniform(0.08, 0.18)), -1)
        cv2.circle(tissue, (x, y), ri, float(rng.uniform(0.85, 1.0)), rim)
        for frac in (0.62, 0.3):
            if rng.random() < 0.8 and frac * r >= 2:
                lam = max(1, round(0.09 * r))
                cv2.circle(tissue, (x, y), round(frac * r), float(rng.uniform(0.5, 0.7)), lam)
        cv2.circle(mask, (x, y), ri + rim // 2, 1, -1)
    return tissue, mask


def _glioblastoma(
    rng: np.random.Generator, h: int, w: int, s: float
) -> tuple[np.ndarray, np.ndarray]:
    tissue = _background(rng, h, w, s, 0.3)
    tissue += 0.06 * _smooth_field(rng, h, w, 25 * s)
    mask = np.zeros((h, w), np.uint8)

    # Pleomorphic nuclei: irregular polygons, log-normal sizes, random positions, dense.
    n = int(h * w / (16 * s) ** 2)
    n_vert = 10
    centres = rng.uniform((0, 0), (w, h), (n, 2))
    size = np.clip(np.exp(rng.normal(math.log(5.5 * s), 0.4, n)), 2 * s, 16 * s)
    t = np.linspace(0, 2 * np.pi, n_vert, endpoint=False)
    wobble = 1 + 0.3 * rng.standard_normal((n, n_vert))
    wobble = np.clip((wobble + np.roll(wobble, 1, 1) + np.roll(wobble, -1, 1)) / 3, 0.45, 1.8)
    elong = rng.uniform(1.0, 1.7, n)
    lx = (size[:, None] * wobble) * np.cos(t) * elong[:, None]
    ly = (size[:, None] * wobble) * np.sin(t)
    phi = rng.uniform(0, np.pi, n)[:, None]
    px = centres[:, :1] + lx * np.cos(phi) - ly * np.sin(phi)
    py = centres[:, 1:] + lx * np.sin(phi) + ly * np.cos(phi)
    polys = np.round(np.stack([px, py], axis=2)).astype(np.int32)
    bright = rng.random(n) < 0.6
    values = np.where(bright, rng.uniform(0.6, 0.9, n), rng.uniform(0.06, 0.18, n))
    for poly, v in zip(polys, values, strict=True):
        cv2.fillPoly(tissue, [poly], float(v))
        cv2.fillPoly(mask, [poly], 1)
    return tissue, mask


def _metastasis(
    rng: np.random.Generator, h: int, w: int, s: float
) -> tuple[np.ndarray, np.ndarray]:
    tissue = _background(rng, h, w, s, 0.2)
    mask = np.zeros((h, w), np.uint8)

    # Egg-shaped cells on a jittered hexagonal lattice, locally aligned, uniform nuclei.
    d = 32 * s
    rows = np.arange(-1, h / (d * math.sqrt(3) / 2) + 2)
    cols = np.arange(-1, w / d + 2)
    gx, gy = np.meshgrid(cols, rows)
    x = (gx + 0.5 * (gy % 2)) * d
    y = gy * d * math.sqrt(3) / 2
    centres = np.stack([x.ravel(), y.ravel()], axis=1)
    centres += rng.normal(0, 0.08 * d, centres.shape)
    centres = centres[rng.random(len(centres)) > 0.05]
    n = len(centres)
    orient_field = 40 * _smooth_field(rng, h, w, 120 * s) + rng.uniform(0, 180)
    ix = np.clip(centres[:, 0].astype(int), 0, w - 1)
    iy = np.clip(centres[:, 1].astype(int), 0, h - 1)
    angles = orient_field[iy, ix] + rng.normal(0, 8, n)
    a = 0.46 * d * (1 + 0.05 * rng.standard_normal(n))  # long semi-axis, broad end
    b = 0.33 * d * (1 + 0.05 * rng.standard_normal(n))
    for (cx, cy), ang, ai, bi in zip(np.round(centres).astype(int), angles, a, b, strict=True):
        c, ang = (int(cx), int(cy)), float(ang)
        broad, narrow = (round(ai), round(bi)), (round(0.75 * ai), round(bi))
        cyto = float(rng.uniform(0.5, 0.62))
        cv2.ellipse(tissue, c, broad, ang, -90, 90, cyto, -1)
        cv2.ellipse(tissue, c, narrow, ang, 90, 270, cyto, -1)
        rim = max(1, round(1.5 * s))
        cv2.ellipse(tissue, c, broad, ang, -90, 90, 0.85, rim)
        cv2.ellipse(tissue, c, narrow, ang, 90, 270, 0.85, rim)
        off = 0.15 * ai
        nc = (
            round(cx + off * math.cos(math.radians(ang))),
            round(cy + off * math.sin(math.radians(ang))),
        )
        cv2.ellipse(tissue, nc, (round(0.38 * bi), round(0.32 * bi)), ang, 0, 360, 0.1, -1)
        cv2.ellipse(mask, c, broad, ang, -90, 90, 1, -1)
        cv2.ellipse(mask, c, narrow, ang, 90, 270, 1, -1)
    return tissue, mask


_DRAWERS = {"glioblastoma": _glioblastoma, "meningioma": _meningioma, "metastasis": _metastasis}


def _tissue_canvas(
    class_name: str, rng: np.random.Generator, h: int, w: int, s: float
) -> tuple[np.ndarray, np.ndarray]:
    tissue, mask = _DRAWERS[class_name](rng, h, w, s)
    # Fine texture that moves with the tissue, then the optical blur of the probe.
    tissue *= 1 + 0.12 * _smooth_field(rng, h, w, 6 * s)
    tissue += 0.03 * _smooth_field(rng, h, w, 2 * s)
    tissue = cv2.GaussianBlur(tissue, (0, 0), 1.0 * s)
    return tissue, mask


# --------------------------------------------------------------------------- video


def _smooth_noise(rng: np.random.Generator, n: int, corr: float) -> np.ndarray:
    """Unit-variance 1-D noise with correlation length ~corr samples."""
    half = int(3 * corr) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / corr) ** 2)
    out = np.convolve(rng.standard_normal(n + 2 * half), kernel, mode="valid")
    return out / np.sqrt((kernel**2).sum())


class PhantomVideo:
    """A seeded phantom video of one class; frames render lazily and in any order.

    The tissue canvas is drawn once here; ``video[i]`` costs a warp, a few array ops and the
    noise draw. Same (class_name, n_frames, seed, config) gives identical frames.
    """

    def __init__(
        self,
        class_name: str,
        n_frames: int,
        seed: int = 0,
        config: PhantomConfig | None = None,
    ) -> None:
        if class_name not in _DRAWERS:
            raise ValueError(f"unknown class {class_name!r}; expected one of {CLASSES}")
        if n_frames < 1:
            raise ValueError("n_frames must be >= 1")
        self.class_name = class_name
        self.n_frames = n_frames
        self.seed = seed
        self.config = config or PhantomConfig()
        self._stream = (seed, CLASSES.index(class_name))
        self._const = _frame_constants(self.config)

        cfg, s = self.config, self.config.scale
        rng = np.random.default_rng((*self._stream, _MOTION_STREAM))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.08, n_frames))
        speed = cfg.motion_px_per_frame * np.clip(
            1 + 0.5 * _smooth_noise(rng, n_frames, 15), 0.1, None
        )
        steps = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
        path = np.cumsum(steps, axis=0) - steps[0]
        self._angles = np.radians(cfg.rotation_deg_per_frame) * np.cumsum(
            _smooth_noise(rng, n_frames, 20)
        )
        self._gains = 1 + 0.03 * _smooth_noise(rng, n_frames, 10)

        # Only the FOV disc is ever visible, so the canvas need only cover disc + path.
        reach = cfg.fov_radius + _CANVAS_MARGIN
        self._centres = path - path.min(axis=0) + reach
        cw, ch = np.ceil(np.ptp(path, axis=0) + 2 * reach).astype(int)
        tissue_rng = np.random.default_rng((*self._stream, _TISSUE_STREAM))
        self._tissue, self._mask = _tissue_canvas(class_name, tissue_rng, int(ch), int(cw), s)

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[PhantomFrame]:
        return (self[i] for i in range(self.n_frames))

    def __getitem__(self, index: int) -> PhantomFrame:
        if not -self.n_frames <= index < self.n_frames:
            raise IndexError(index)
        index %= self.n_frames
        cfg, const = self.config, self._const
        h, w = cfg.height, cfg.width
        cos, sin = math.cos(self._angles[index]), math.sin(self._angles[index])
        (ccx, ccy), fx, fy = self._centres[index], (w - 1) / 2, (h - 1) / 2
        # Inverse map: frame pixel p -> canvas point centre + R(angle) (p - frame centre).
        m = np.array(
            [[cos, -sin, ccx - cos * fx + sin * fy], [sin, cos, ccy - sin * fx - cos * fy]]
        )
        inverse = cv2.WARP_INVERSE_MAP
        tissue = cv2.warpAffine(
            self._tissue, m, (w, h), flags=cv2.INTER_LINEAR | inverse, borderMode=cv2.BORDER_REFLECT
        )
        mask = cv2.warpAffine(
            self._mask, m, (w, h), flags=cv2.INTER_NEAREST | inverse, borderMode=cv2.BORDER_REFLECT
        )

        signal = np.maximum(tissue * const.modulation, 0) * np.float32(self._gains[index])
        rng = np.random.default_rng((*self._stream, _NOISE_STREAM, index))
        noise = rng.standard_normal((h, w), dtype=np.float32)
        noise *= np.sqrt(signal) * np.float32(cfg.noise * 255)
        signal *= 255
        signal += noise
        image = np.clip(signal, 0, 255, out=signal).astype(np.uint8)
        if const.overlay is not None:
            np.maximum(image, const.overlay, out=image)
        return PhantomFrame(
            image=image,
            mask=(mask > 0) & const.disc,
            class_name=self.class_name,
            index=index,
        )


def render_frame(
    class_name: str, seed: int = 0, config: PhantomConfig | None = None
) -> PhantomFrame:
    """One standalone phantom frame (a one-frame video)."""
    return PhantomVideo(class_name, 1, seed, config)[0]


# --------------------------------------------------------------------------- files


def masks_path(video_path: str | Path) -> Path:
    """Where the masks of a phantom video live: ``<stem>.masks.npz`` next to it."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + ".masks.npz")


def load_masks(video_path: str | Path) -> np.ndarray:
    """The bool (N, H, W) ground-truth masks written by :func:`write_video`."""
    with np.load(masks_path(video_path)) as data:
        return data["masks"]


def write_video(
    path: str | Path,
    frames: Iterable[PhantomFrame],
    fps: float = 24.0,
    codec: str | None = None,
) -> tuple[Path, Path]:
    """Write frames as a 3-channel .avi (FFV1 lossless, else MJPG) plus their masks .npz.

    Returns (video path, masks path). Raises RuntimeError when no codec works or the file
    does not read back with the expected frame count.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer: cv2.VideoWriter | None = None
    masks: list[np.ndarray] = []
    try:
        for frame in frames:
            if writer is None:
                writer = _open_writer(path, fps, frame.image.shape, codec)
            writer.write(cv2.cvtColor(frame.image, cv2.COLOR_GRAY2BGR))
            masks.append(frame.mask)
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise ValueError("no frames to write")

    cap = cv2.VideoCapture(str(path))
    try:
        ok, _ = cap.read()
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if not ok or count != len(masks):
        raise RuntimeError(f"{path} does not read back: {count} frames, expected {len(masks)}")
    mpath = masks_path(path)
    np.savez_compressed(mpath, masks=np.stack(masks).astype(bool))
    return path, mpath


def _open_writer(
    path: Path, fps: float, shape: tuple[int, ...], codec: str | None
) -> cv2.VideoWriter:
    h, w = shape[:2]
    for fourcc in (codec,) if codec else _CODECS:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), True)
        if writer.isOpened():
            return writer
        writer.release()
    raise RuntimeError(f"no usable video codec for {path} (tried {codec or _CODECS})")


def write_dataset(
    root: str | Path,
    classes: Sequence[str] = CLASSES,
    videos_per_class: int = 3,
    frames_per_video: int = 100,
    seed: int = 0,
    config: PhantomConfig | None = None,
    fps: float = 24.0,
) -> list[Path]:
    """Write ROOT/<class>/<class>_<k>.avi (+ masks), the layout of the real data set.

    Video k of a class uses a seed derived from (seed, k), so adding videos keeps the others.
    """
    root = Path(root)
    written = []
    for class_name in classes:
        for k in range(1, videos_per_class + 1):
            video_seed = int(np.random.SeedSequence((seed, k)).generate_state(1)[0])
            video = PhantomVideo(class_name, frames_per_video, video_seed, config)
            path, _ = write_video(root / class_name / f"{class_name}_{k}.avi", video, fps)
            written.append(path)
    return written


# --------------------------------------------------------------------------- CLI


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 336x464, not {text!r}") from err
    if h < 32 or w < 32:
        raise argparse.ArgumentTypeError("size must be at least 32x32")
    return h, w


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m models.phantom``."""
    parser = argparse.ArgumentParser(
        prog="python -m models.phantom",
        description="Write synthetic pCLE phantom videos (.avi) with masks (.masks.npz).",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out", type=Path, help="data set root: writes OUT/<class>/<class>_<k>.avi"
    )
    target.add_argument("--single-video", type=Path, metavar="PATH", help="write one video here")
    parser.add_argument(
        "--class", dest="class_name", choices=CLASSES, help="class of --single-video"
    )
    parser.add_argument("--classes", default=",".join(CLASSES), help="comma-separated classes")
    parser.add_argument("--videos-per-class", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100, help="frames per video")
    parser.add_argument("--size", type=_parse_size, default=(_REF_HEIGHT, _REF_WIDTH), help="HxW")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--no-overlay", action="store_true", help="no logo / scale bar")
    parser.add_argument("--cracks", action="store_true", help="add fixed dark crack artefacts")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0; a usage error exits with 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    config = PhantomConfig(
        height=args.size[0], width=args.size[1], overlay=not args.no_overlay, cracks=args.cracks
    )
    if args.single_video is not None:
        if args.class_name is None:
            parser.error("--single-video needs --class")
        video = PhantomVideo(args.class_name, args.frames, args.seed, config)
        path, mpath = write_video(args.single_video, video, args.fps)
        print(f"wrote {path} ({args.frames} frames, {args.class_name}) and {mpath}")
        return 0
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = sorted(set(classes) - set(CLASSES))
    if unknown:
        parser.error(f"unknown classes {unknown}; choose from {','.join(CLASSES)}")
    paths = write_dataset(
        args.out, classes, args.videos_per_class, args.frames, args.seed, config, args.fps
    )
    for path in paths:
        print(f"wrote {path} and {masks_path(path).name}")
    print(f"{len(paths)} videos x {args.frames} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
