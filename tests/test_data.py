"""Data layer: the fixed MNIST-5k split, the simulated event camera and its caches, CIFAR and CIFAR10-DVS
read from tiny files in their real on-disk formats, and the time encodings."""

import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import tonic
import torch

from tna.data import DATASETS, load_dataset, mnist5k
from tna.data import cifar10_dvs, mnist5k_dvs
from tna.data.encoding import encode
from tna.errors import TnaError


# ---------------------------------------------------------------- encoding

def test_direct_is_a_stride_zero_view_of_identical_steps():
    x = torch.rand(3, 1, 4, 4)
    out = encode(x, 5, "static", "direct")
    assert out.shape == (5, 3, 1, 4, 4) and out.stride(0) == 0
    assert out.data_ptr() == x.data_ptr()
    assert all(torch.equal(out[t], x) for t in range(5))


def test_rate_spikes_are_binary_with_the_pixel_as_rate():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.7, -0.3]).view(6, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    out = encode(x, 4000, "static", "rate", generator=g)
    assert out.shape == (4000, 6, 1, 1, 1) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(out.mean(0).flatten(), torch.tensor([0, 0.25, 0.5, 1, 1, 0]), atol=0.03)
    again = encode(x, 4000, "static", "rate", generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_events_become_time_major():
    x = torch.rand(3, 6, 2, 5, 5)
    out = encode(x, 6, "events")
    assert out.shape == (6, 3, 2, 5, 5) and torch.equal(out[2, 1], x[1, 2])


def test_unknown_encoding_or_dataset_is_a_user_error():
    with pytest.raises(TnaError, match="direct, rate"):
        encode(torch.rand(2, 1, 3, 3), 4, "static", "latency")
    with pytest.raises(TnaError, match=", ".join(DATASETS)):
        load_dataset("mnist")
    with pytest.raises(TnaError, match="positive"):
        load_dataset("mnist5k-dvs", T=0)


# ---------------------------------------------------------------- mnist5k

@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k", train_augment=False)


def test_mnist5k_fixed_stratified_split(mnist):
    train, test, spec = mnist
    assert (spec.input_shape, spec.num_classes, spec.kind, spec.T) == ((1, 28, 28), 10, "static", None)
    assert spec.input_scale == 1 / 255
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(train.y.numpy()).tolist() == [400] * 10
    assert np.bincount(test.y.numpy()).tolist() == [100] * 10
    x, y = test[0]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and isinstance(y, int)
    assert train.x.min() == 0 and train.x.max() == 1
    assert torch.equal(torch.round(train.x * 255) / 255, train.x)  # exactly x/255
    images, _ = mnist5k.digits()
    tr, te = mnist5k.split(mnist5k.digits()[1])
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == 5000
    assert torch.equal(test.x, torch.from_numpy(images[te]).unsqueeze(1) / 255)
    train2, test2, _ = load_dataset("mnist5k", train_augment=False)
    assert torch.equal(train.x, train2.x) and torch.equal(test.y, test2.y)


def test_mnist5k_augmentation_shifts_reproducibly(mnist):
    plain = mnist[0]
    shifted, _, _ = load_dataset("mnist5k", train_augment=True)
    torch.manual_seed(3)
    a = torch.stack([shifted[i][0] for i in range(20)])
    torch.manual_seed(3)
    b = torch.stack([shifted[i][0] for i in range(20)])
    assert torch.equal(a, b) and not torch.equal(a, plain.x[:20])
    assert torch.equal(torch.round(a * 255) / 255, a)  # whole-pixel shifts stay on the 1/255 grid


# ---------------------------------------------------------------- mnist5k-dvs

def test_dvs_recordings_look_like_n_mnist():
    for i in (0, 1234, 4999):
        ev = mnist5k_dvs.sample_events(i)
        assert ev.dtype == mnist5k_dvs.EVENT_DTYPE
        assert set(np.unique(ev["p"])) == {0, 1}
        assert np.all(np.diff(ev["t"]) >= 0)
        assert 0 <= ev["t"][0] and ev["t"][-1] < mnist5k_dvs.DURATION_US
        assert ev["x"].min() >= 0 and ev["x"].max() < 34 and ev["y"].min() >= 0 and ev["y"].max() < 34
        assert 1000 < len(ev) < 20000
        assert np.array_equal(ev, mnist5k_dvs.sample_events(i))
    images, _ = mnist5k.digits()
    other_seed = mnist5k_dvs.simulate(images[:1], [0], seed=1)
    assert not np.array_equal(mnist5k_dvs.recording(other_seed, 0), mnist5k_dvs.sample_events(0))


def test_denoise_matches_tonic_exactly():
    images, _ = mnist5k.digits()
    store = mnist5k_dvs.simulate(images[::1000], np.arange(0, 5000, 1000))
    for b in range(5):
        ev = mnist5k_dvs.recording(store, b)
        kept = mnist5k_dvs.denoise(ev)
        assert np.array_equal(kept, tonic.functional.denoise_numpy(ev, mnist5k_dvs.DENOISE_US))
        assert 0.5 * len(ev) < len(kept) < len(ev)
    rng = np.random.default_rng(0)
    for _ in range(50):  # small sensors, ties in time, short filters
        n = int(rng.integers(1, 40))
        ev = np.zeros(n, mnist5k_dvs.EVENT_DTYPE)
        ev["x"], ev["y"] = rng.integers(0, 4, n), rng.integers(0, 3, n)
        ev["t"] = np.sort(rng.integers(0, 60, n))
        ft = int(rng.integers(1, 30))
        assert np.array_equal(mnist5k_dvs.denoise(ev, ft), tonic.functional.denoise_numpy(ev, ft))


def test_dvs_frames_are_binary():
    frames = mnist5k_dvs.to_frames(mnist5k_dvs.sample_events(7), 6)
    assert frames.shape == (6, 2, 34, 34) and frames.dtype == np.uint8
    assert set(np.unique(frames)) == {0, 1}
    assert frames[:, 0].sum() > 0 and frames[:, 1].sum() > 0


@pytest.fixture
def few_digits(monkeypatch):
    """20 digits per class stand in for the 5000, and jobs of 50 exercise the parallel build."""
    images, labels = mnist5k.digits()
    sel = np.concatenate([np.flatnonzero(labels == c)[:20] for c in range(10)])
    monkeypatch.setattr(mnist5k, "digits", lambda: (images[sel], labels[sel]))
    monkeypatch.setattr(mnist5k_dvs, "_CHUNK", 50)
    return images[sel]


def test_dvs_dataset_is_built_once_then_read_from_cache(few_digits, tmp_path, monkeypatch):
    train, test, spec = load_dataset("mnist5k-dvs", T=4, cache_dir=str(tmp_path))
    assert (spec.input_shape, spec.kind, spec.T, spec.input_scale) == ((2, 34, 34), "events", 4, 1.0)
    assert len(train) == 160 and len(test) == 40
    x, y = train[5]
    assert x.shape == (4, 2, 34, 34) and x.dtype == torch.float32 and isinstance(y, int)
    assert set(x.unique().tolist()) == {0.0, 1.0}

    store = mnist5k_dvs.cached_events(tmp_path)  # built in 4 parallel jobs, same as one at a time
    for b in (0, 77, 199):
        alone = mnist5k_dvs.simulate(few_digits[b:b + 1], [b])
        assert np.array_equal(mnist5k_dvs.recording(store, b), mnist5k_dvs.recording(alone, 0))

    files = sorted((tmp_path / "mnist5k-dvs").iterdir())
    mtimes = [f.stat().st_mtime_ns for f in files]
    monkeypatch.setattr(mnist5k_dvs, "simulate", None)  # any rebuild would now fail
    train2, test2, _ = load_dataset("mnist5k-dvs", T=4, cache_dir=str(tmp_path))
    assert torch.equal(train2.x, train.x) and torch.equal(test2.y, test.y)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    eight, _, _ = load_dataset("mnist5k-dvs", T=8, cache_dir=str(tmp_path))  # new frames, cached events
    assert eight[0][0].shape == (8, 2, 34, 34)


def test_dvs_unreadable_cache_is_rebuilt(few_digits, tmp_path):
    train, _, _ = load_dataset("mnist5k-dvs", T=3, cache_dir=str(tmp_path))
    for f in (tmp_path / "mnist5k-dvs").iterdir():
        f.write_bytes(f.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.warns(UserWarning, match="rebuilding unreadable cache"):
        again, _, _ = load_dataset("mnist5k-dvs", T=3, cache_dir=str(tmp_path))
    assert torch.equal(again.x, train.x)
    assert not list((tmp_path / "mnist5k-dvs").glob(".*.tmp"))


# ---------------------------------------------------------------- cifar

class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strings, as in the original CIFAR pickles (made by Python 2): they
    load as b'data' with encoding='bytes' and as 'data' with the encoding='latin1' torchvision uses."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = _save_py2_str


def _write_py2_pickle(path, obj):
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _images(n, first):
    """n images as CIFAR stores them, rows of [R plane, G plane, B plane], each plane 32x32 row-major:
    image k is (first+k, first+k+1, first+k+2) everywhere except pixel (row 7, col 9) of its G plane, 255."""
    planes = np.arange(first, first + n, dtype=np.uint8)[:, None] + np.arange(3, dtype=np.uint8)
    data = np.repeat(planes, 1024, axis=1)
    data[:, 1024 + 7 * 32 + 9] = 255
    return data


def test_cifar10_reads_the_real_format(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        _write_py2_pickle(folder / f"data_batch_{b}", {
            "batch_label": f"training batch {b} of 5", "labels": [b, b + 1, 0],
            "data": _images(3, 10 * b), "filenames": ["a.png", "b.png", "c.png"]})
    _write_py2_pickle(folder / "test_batch", {"labels": [9, 3], "data": _images(2, 200)})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _write_py2_pickle(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": 3, "num_vis": 3072})
    with open(folder / "test_batch", "rb") as f:
        assert set(pickle.load(f, encoding="bytes")) == {b"labels", b"data"}  # as the CIFAR page shows

    train, test, spec = load_dataset("cifar10", root=str(tmp_path), train_augment=False)
    assert (spec.input_shape, spec.num_classes, spec.kind, spec.input_scale) == ((3, 32, 32), 10, "static", 1 / 64)
    assert len(train) == 15 and len(test) == 2
    assert [train[i][1] for i in range(3)] == [1, 2, 0] and [test[i][1] for i in range(2)] == [9, 3]
    x, _ = test[1]
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2470, 0.2435, 0.2616])
    assert x.shape == (3, 32, 32)
    on_grid = lambda v: torch.round(v * 64) / 64  # noqa: E731 - normalised values on the 1/64 input grid
    assert torch.equal(x[:, 0, 0], on_grid((torch.tensor([201, 202, 203]) / 255 - mean) / std))
    assert torch.equal(x[:, 7, 9], on_grid((torch.tensor([201, 255, 203]) / 255 - mean) / std))
    assert torch.equal(x, on_grid(x))
    augmented, _, _ = load_dataset("cifar10", root=str(tmp_path))
    a = augmented[4][0]
    assert a.shape == (3, 32, 32) and torch.equal(a, on_grid(a))  # padded pixels land on the grid too


def test_cifar100_reads_the_real_format(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _write_py2_pickle(folder / "train", {"fine_labels": [99, 5, 42], "coarse_labels": [1, 2, 3],
                                         "data": _images(3, 0)})
    _write_py2_pickle(folder / "test", {"fine_labels": [7], "coarse_labels": [0], "data": _images(1, 50)})
    _write_py2_pickle(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)],
                                        "coarse_label_names": [f"s{i}" for i in range(20)]})
    train, test, spec = load_dataset("cifar100", root=str(tmp_path))
    assert spec.num_classes == 100 and spec.input_scale == 1 / 64 and len(train) == 3 and len(test) == 1
    assert [train[i][1] for i in range(3)] == [99, 5, 42] and test[0][1] == 7
    assert train[0][0].shape == (3, 32, 32) and train[0][0].dtype == torch.float32


def test_cifar_missing_files_name_the_layout(tmp_path):
    with pytest.raises(TnaError, match="--data-root"):
        load_dataset("cifar10")
    with pytest.raises(TnaError, match=r"cifar-10-batches-py/\{data_batch_1\.\.5,test_batch,batches\.meta\}"):
        load_dataset("cifar10", root=str(tmp_path / "nowhere"))
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"")
    with pytest.raises(TnaError, match=r"cifar-100-python/\{train,test,meta\}.*download CIFAR-100"):
        load_dataset("cifar100", root=str(tmp_path))


# ---------------------------------------------------------------- cifar10-dvs

def _write_aedat4(path, t, x, y, p):
    """One polarity-event stream in AEDAT 4 as the `aedat` decoder reads it: magic line, IOHeader
    flatbuffer (no compression, XML stream description), then one size-prefixed 'EVTS' packet."""
    xml = ('<dv version="2.0"><node name="outInfo" path="/outInfo/"><node name="0" path="/outInfo/0/">'
           '<attr key="typeIdentifier" type="string">EVTS</attr><node name="info" path="/outInfo/0/info/">'
           '<attr key="sizeX" type="int">128</attr><attr key="sizeY" type="int">128</attr>'
           '</node></node></node></dv>').encode()
    # root offset, id, vtable (3 fields: only description set), table (vtable distance, string offset)
    header = struct.pack("<I4s5Hxx iI I", 20, b"IOHE", 10, 8, 0, 0, 4, 12, 4, len(xml)) + xml + b"\0"
    ev = np.zeros(len(t), np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")]))
    ev["t"], ev["x"], ev["y"], ev["on"] = t, x, y, p
    # size, root offset, id, vtable (1 field), table (vtable distance, vector offset), vector length, structs
    packet = struct.pack("<I I4s3Hxx iI I", 28 + ev.nbytes, 16, b"EVTS", 6, 8, 4, 8, 4, len(ev)) + ev.tobytes()
    path.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(header)) + header
                     + struct.pack("<iI", 0, len(packet)) + packet)


@pytest.fixture
def dvs_root(tmp_path):
    """10 tiny recordings per class, laid out as the extracted figshare release."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(cifar10_dvs.CLASSES):
        (tmp_path / "CIFAR10DVS" / name).mkdir(parents=True)
        for k in range(10):
            n = 300
            _write_aedat4(tmp_path / "CIFAR10DVS" / name / f"cifar10_{name}_{k}.aedat4",
                          np.sort(rng.integers(0, 1_000_000, n)), rng.integers(0, 128, n),
                          rng.integers(0, 128, n), rng.integers(0, 2, n))
    return tmp_path


def test_cifar10_dvs_reads_aedat4(dvs_root):
    pytest.importorskip("aedat", reason="the 'aedat' package decodes .aedat4 (pip install aedat)")
    train, test, spec = load_dataset("cifar10-dvs", T=5, root=str(dvs_root))
    assert (spec.input_shape, spec.num_classes, spec.kind, spec.T) == ((2, 48, 48), 10, "events", 5)
    assert spec.input_scale == 1.0
    assert len(train) == 90 and len(test) == 10
    assert sorted(test[i][1] for i in range(10)) == list(range(10))  # 1 in 10 of every class
    x, y = train[0]
    assert x.shape == (5, 2, 48, 48) and x.dtype == torch.float32 and y == 0
    assert set(x.unique().tolist()) == {0.0, 1.0}
    again, _, _ = load_dataset("cifar10-dvs", T=5, root=str(dvs_root))
    assert train.indices == again.indices


def test_cifar10_dvs_without_aedat_says_what_to_install(dvs_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "aedat", None)  # makes `import aedat` fail
    with pytest.raises(TnaError, match="pip install aedat"):
        load_dataset("cifar10-dvs", root=str(dvs_root))


def test_cifar10_dvs_missing_files_name_the_layout(dvs_root):
    with pytest.raises(TnaError, match="--data-root"):
        load_dataset("cifar10-dvs")
    for f in (dvs_root / "CIFAR10DVS" / "truck").iterdir():
        f.unlink()
    with pytest.raises(TnaError, match=r"no \.aedat4 files for truck\): expected .*CIFAR10DVS/\{airplane,"):
        load_dataset("cifar10-dvs", root=str(dvs_root))


def test_cifar10_dvs_frame_pipeline_on_synthetic_events():
    n = 5000
    rng = np.random.default_rng(1)
    events = np.zeros(n, tonic.datasets.CIFAR10DVS.dtype)
    events["t"] = np.sort(rng.integers(0, 1_000_000, n))
    events["x"], events["y"], events["p"] = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    events[0] = (events["t"][0], 127, 127, True)  # the far corner must land on pixel 47
    frames = cifar10_dvs.frame_transform(7)(events)
    assert frames.shape == (7, 2, 48, 48) and frames.dtype == torch.float32
    assert set(frames.unique().tolist()) == {0.0, 1.0}
    assert frames[0, 1, 47, 47] == 1 and frames.sum() < n


def test_cache_dir_defaults_to_env(monkeypatch, tmp_path):
    from tna.data import default_cache_dir

    monkeypatch.setenv("TNA_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("TNA_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "tna"


def test_damaged_cifar_files_are_one_line(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        _write_py2_pickle(folder / name, {"labels": [1, 2], "data": _images(2, 0)})
    _write_py2_pickle(folder / "batches.meta", {"label_names": [str(i) for i in range(10)]})
    (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:100])  # truncated
    with pytest.raises(TnaError, match="cifar10 files under .* are damaged .*extract the CIFAR-10"):
        load_dataset("cifar10", root=str(tmp_path))
