"""MNIST-5k as an event camera sees it: N-MNIST's recording procedure, simulated on the bundled digits.

N-MNIST (Orchard et al., 2015) was recorded by an ATIS camera making three saccades, in a triangle,
in front of MNIST digits. We simulate that on the same 5000 digits as `mnist5k` (same split), because
N-MNIST itself cannot be downloaded here:

* scene: the digit (x/255) on a black 34x34 canvas; its top-left corner travels the triangle `VERTICES`
  (pixels), one straight 100 ms saccade per side, rendered every 1 ms with bilinear interpolation, so
  motion is sub-pixel (~0.05 px per step);
* pixels: each keeps a reference log intensity log(I + LOG_EPS). When log(I) - ref reaches +C it emits
  ON (p=1), at -C OFF (p=0); a step that crosses n thresholds emits n events, spread evenly over the
  step, and moves ref by n*C (fast edges are not capped at one event per step);
* sensor non-idealities: per-pixel thresholds C * (1 + MISMATCH * N(0,1)), ON and OFF apart, fixed by the
  seed (one sensor for all digits); each recording starts its references at a random fraction of a
  threshold and adds background-activity noise events at NOISE_HZ per pixel. Recording i draws from
  the generator (seed, i), so its events do not depend on which other recordings are built.

Frames for the network: tonic's `Denoise` rule (drops isolated noise; vectorised here, see `denoise`),
then tonic `ToFrame(n_time_bins=T)`, counts clipped to 1. The events (once) and the frames (per T) are
cached, written atomically; a cache file that cannot be read is rebuilt. Building uses every core.
"""

import hashlib
import multiprocessing
import os
import warnings
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import tonic

from tna.data import mnist5k
from tna.data.spec import ArrayDataset, DataSpec

SENSOR_SIZE = (34, 34, 2)  # tonic order: (W, H, polarities)
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # t in microseconds
SIM_SEED = 0
VERTICES = ((0.5, 5.5), (3.0, 0.5), (5.5, 5.5))  # (x, y) of the digit's top-left corner on the canvas
SACCADE_US = 100_000
STEP_US = 1_000
DURATION_US = len(VERTICES) * SACCADE_US
CONTRAST = 0.4  # log-intensity threshold C
MISMATCH = 0.03  # relative std of the per-pixel thresholds
LOG_EPS = 0.1  # keeps log(I) finite on the black background
NOISE_HZ = 0.5  # background-activity events per pixel per second
DENOISE_US = 10_000
_CHUNK = 250  # recordings per worker job


def _trajectory() -> np.ndarray:
    """[S+1, 2] corner positions, one per simulation step, closing the triangle."""
    steps = SACCADE_US // STEP_US
    v = np.asarray(VERTICES, dtype=np.float64)
    frac = np.arange(steps)[:, None] / steps
    sides = [v[i] + (v[(i + 1) % len(v)] - v[i]) * frac for i in range(len(v))]
    return np.concatenate(sides + [v[:1]])


def _thresholds(seed: int) -> np.ndarray:
    """[2, H*W] per-pixel OFF and ON thresholds: the sensor's fixed mismatch."""
    rng = np.random.default_rng(seed)
    spread = rng.standard_normal((2, SENSOR_SIZE[0] * SENSOR_SIZE[1]))
    return (CONTRAST * (1 + MISMATCH * spread)).astype(np.float32)


def simulate(images: np.ndarray, indices, seed: int = SIM_SEED) -> dict[str, np.ndarray]:
    """Record uint8 digits [B,28,28], whose dataset indices key their random draws.

    Returns compact concatenated events: x, y (uint8), t (int32, us), p (uint8), sorted by (recording, t),
    and `offsets` [B+1]: recording b is [offsets[b]:offsets[b+1]]."""
    W, H = SENSOR_SIZE[:2]
    B, hd, wd = images.shape
    thr = _thresholds(seed)
    c_min = thr.min(0)
    padded = np.zeros((B, hd + 2, wd + 2), np.float32)
    padded[:, 1:-1, 1:-1] = images / np.float32(255)
    log_i = np.empty((B, H, W), np.float32)
    background = np.float32(np.log(LOG_EPS))

    def log_intensity(ox: float, oy: float) -> np.ndarray:
        ix, iy = int(ox), int(oy)
        fx, fy = np.float32(ox - ix), np.float32(oy - iy)
        img = ((1 - fx) * (1 - fy) * padded[:, 1:, 1:] + fx * (1 - fy) * padded[:, 1:, :-1]
               + (1 - fx) * fy * padded[:, :-1, 1:] + fx * fy * padded[:, :-1, :-1])
        log_i.fill(background)
        log_i[:, iy:iy + hd + 1, ix:ix + wd + 1] = np.log(img + np.float32(LOG_EPS))
        return log_i.reshape(B, H * W)

    rngs = [np.random.default_rng((seed, int(i))) for i in indices]
    path = _trajectory()
    ref = log_intensity(*path[0]).copy()
    ref += np.stack([r.uniform(-0.5, 0.5, H * W) for r in rngs]).astype(np.float32) * thr[1]
    parts = []  # (recording, pixel, t, p) per step
    for k in range(1, len(path)):
        d = log_intensity(*path[k])
        d -= ref
        idx = np.flatnonzero(np.abs(d) >= c_min)
        pix = idx % (H * W)
        pol = (d.flat[idx] > 0).astype(np.int64)
        n = (np.abs(d.flat[idx]) / thr[pol, pix]).astype(np.int64)
        idx, pix, pol, n = idx[n > 0], pix[n > 0], pol[n > 0], n[n > 0]
        ref.flat[idx] += (2 * pol - 1) * n * thr[pol, pix]
        rep = np.repeat(np.arange(len(idx)), n)
        j = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
        t = (k - 1) * STEP_US + (j + 1) * STEP_US // (n[rep] + 1)
        parts.append((idx[rep] // (H * W), pix[rep], t, pol[rep]))
    for b, r in enumerate(rngs):
        count = r.poisson(NOISE_HZ * H * W * DURATION_US * 1e-6)
        parts.append((np.full(count, b), r.integers(0, H * W, count),
                      r.integers(0, DURATION_US, count), r.integers(0, 2, count)))
    rec, pix, t, p = (np.concatenate(a) for a in zip(*parts))
    order = np.lexsort((t, rec))
    rec, pix = rec[order], pix[order]
    return {
        "x": (pix % W).astype(np.uint8),
        "y": (pix // W).astype(np.uint8),
        "t": t[order].astype(np.int32),
        "p": p[order].astype(np.uint8),
        "offsets": np.searchsorted(rec, np.arange(B + 1)),
    }


def recording(store: dict[str, np.ndarray], b: int) -> np.ndarray:
    """Recording b of a `simulate` result as a tonic structured array (EVENT_DTYPE)."""
    s = slice(store["offsets"][b], store["offsets"][b + 1])
    events = np.empty(s.stop - s.start, EVENT_DTYPE)
    for name in EVENT_DTYPE.names:
        events[name] = store[name][s]
    return events


def sample_events(index: int, seed: int = SIM_SEED) -> np.ndarray:
    """Raw events (before denoising) of digit `index`, e.g. for plots; identical to the cached ones."""
    images, _ = mnist5k.digits()
    return recording(simulate(images[index:index + 1], [index], seed), 0)


def denoise(events: np.ndarray, filter_time: int = DENOISE_US) -> np.ndarray:
    """tonic's `Denoise` rule, vectorised: keep an event when one of its 4 neighbour pixels had an event
    less than `filter_time` before it (a pixel without events counts as one at t=0). tonic loops over
    events in Python (~3 us each, a minute for all 5000 recordings); a test checks both agree exactly."""
    n = len(events)
    x, y, t = (events[k].astype(np.int64) for k in ("x", "y", "t"))
    width, height = x.max() + 1, y.max() + 1
    order = np.argsort(x * height + y, kind="stable")  # by pixel, then by arrival
    keys = (x * height + y)[order] * n + order
    keep = np.zeros(n, bool)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        nx, ny = x + dx, y + dy
        inside = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
        neighbour = nx * height + ny
        last = np.searchsorted(keys, neighbour * n + np.arange(n)) - 1  # latest earlier event there
        seen = (last >= 0) & (keys[last] // n == neighbour)
        last_t = np.where(seen, t[order[last]], 0)  # a pixel never seen counts as time 0
        keep |= inside & (last_t + filter_time > t)
    return events[keep]


def to_frames(events: np.ndarray, T: int) -> np.ndarray:
    """Events -> binary uint8 frames [T, 2, 34, 34]: denoised, tonic `ToFrame` into T equal time bins,
    counts clipped to 1."""
    frames = tonic.transforms.ToFrame(sensor_size=SENSOR_SIZE, n_time_bins=T)(denoise(events))
    return np.minimum(frames, 1).astype(np.uint8)


def _frames_of(store: dict[str, np.ndarray], T: int) -> np.ndarray:
    return np.stack([to_frames(recording(store, b), T) for b in range(len(store["offsets"]) - 1)])


def _parallel(fn, jobs: list[tuple]) -> list:
    """fn(*job) for every job, on all cores; fork-ed workers start without re-importing torch."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [fn(*job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, *zip(*jobs)))


def _chunks(n: int) -> list[slice]:
    return [slice(a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]


def _subset(store: dict[str, np.ndarray], s: slice) -> dict[str, np.ndarray]:
    """Recordings s.start..s.stop-1 of a store, as a store of their own."""
    offsets = store["offsets"][s.start:s.stop + 1]
    events = slice(offsets[0], offsets[-1])
    return {k: store[k][events] for k in ("x", "y", "t", "p")} | {"offsets": offsets - offsets[0]}


def _concat(stores: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    starts = np.cumsum([0] + [len(s["t"]) for s in stores])
    out = {k: np.concatenate([s[k] for s in stores]) for k in ("x", "y", "t", "p")}
    out["offsets"] = np.concatenate([[0]] + [s["offsets"][1:] + a for s, a in zip(stores, starts)])
    return out


def build_events(images: np.ndarray) -> dict[str, np.ndarray]:
    """Simulate recordings of all `images` (dataset indices 0..N-1) with the default seed."""
    jobs = [(images[s], np.arange(s.start, s.stop)) for s in _chunks(len(images))]
    return _concat(_parallel(simulate, jobs))


def _write_atomic(path: Path, write) -> None:
    """Write to a private temp file, then rename: readers never see a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def _cached(path: Path, read, build, write):
    """read(path) if it works, else build(), store it atomically with write(f, value), and return it."""
    if path.exists():
        try:
            return read(path)
        except _UNREADABLE as e:
            warnings.warn(f"rebuilding unreadable cache file {path} ({e})", stacklevel=3)
    value = build()
    _write_atomic(path, lambda f: write(f, value))
    return value


def _events_key(n: int) -> str:
    params = (SIM_SEED, VERTICES, SACCADE_US, STEP_US, CONTRAST, MISMATCH, LOG_EPS, NOISE_HZ, n)
    return hashlib.sha1(repr(params).encode()).hexdigest()[:12]


def cached_events(cache_dir: Path) -> dict[str, np.ndarray]:
    """All recordings, from `cache_dir` or simulated and stored there."""
    images, _ = mnist5k.digits()
    n = len(images)

    def read(path):
        with open(path, "rb") as f, np.load(f) as z:  # own handle: np.load leaks it on a bad zip
            store = {k: z[k] for k in ("x", "y", "t", "p", "offsets")}
        if len(store["offsets"]) != n + 1 or store["offsets"][-1] != len(store["t"]):
            raise ValueError("inconsistent event offsets")
        return store

    path = Path(cache_dir) / "mnist5k-dvs" / f"events-{_events_key(n)}.npz"
    return _cached(path, read, lambda: build_events(images),
                   lambda f, store: np.savez_compressed(f, **store))


def cached_frames(T: int, cache_dir: Path) -> np.ndarray:
    """uint8 [N, T, 2, 34, 34] binary frames of all recordings, from `cache_dir` or built and stored."""
    n = len(mnist5k.digits()[1])
    shape = (n, T, SENSOR_SIZE[2], SENSOR_SIZE[1], SENSOR_SIZE[0])

    def read(path):
        frames = np.load(path)
        if frames.shape != shape or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 {shape}, found {frames.dtype} {frames.shape}")
        return frames

    def build():
        store = cached_events(cache_dir)
        jobs = [(_subset(store, s), T) for s in _chunks(n)]
        return np.concatenate(_parallel(_frames_of, jobs))

    path = Path(cache_dir) / "mnist5k-dvs" / f"frames-{_events_key(n)}-dn{DENOISE_US}-T{T}.npy"
    return _cached(path, read, build, np.save)


def load(*, T: int, cache_dir: Path):
    """(train, test, spec) over binary frames [T, 2, 34, 34]; the split is mnist5k's."""
    _, labels = mnist5k.digits()
    train_idx, test_idx = mnist5k.split(labels)
    x = torch.from_numpy(cached_frames(T, cache_dir))
    y = torch.from_numpy(labels)
    spec = DataSpec("mnist5k-dvs", (SENSOR_SIZE[2], SENSOR_SIZE[1], SENSOR_SIZE[0]), 10, "events", T, input_scale=1.0)
    return ArrayDataset(x[train_idx], y[train_idx]), ArrayDataset(x[test_idx], y[test_idx]), spec
