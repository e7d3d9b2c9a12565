"""CIFAR10-DVS from the user's --data-root, read by tonic (it cannot be downloaded on these machines).

tonic 1.7 reads ROOT/CIFAR10DVS/<class>/*.aedat4, <class> one of `CLASSES` (the figshare release,
extracted), through the `aedat` package. Its own existence check also wants the downloaded
CIFAR10DVS.zip and at least 1000 files, and downloads otherwise; we accept any extracted copy with
.aedat4 files in every class folder. tonic lists files in os.walk order, which depends on the file
system, so we sort them: the same index is the same recording everywhere.

CIFAR10-DVS has no official split: we hold out 10% of each class (stratified, seed `SPLIT_SEED`).
Frames: 128x128 events downsampled to SIZE x SIZE (48: 7x fewer inputs, still recognisable), tonic
`ToFrame(n_time_bins=T)`, counts clipped to 1.
"""

from pathlib import Path

import numpy as np
import tonic
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Subset

from tna.data.spec import DataSpec
from tna.errors import TnaError

CLASSES = tuple(tonic.datasets.CIFAR10DVS.classes)  # folder names, in label order
SENSOR_SIZE = tonic.datasets.CIFAR10DVS.sensor_size  # (128, 128, 2)
SIZE = 48
SPLIT_SEED = 0
TEST_FRACTION = 0.1


def _missing_classes(folder: Path) -> list[str]:
    return [c for c in CLASSES if not any((folder / c).glob("*.aedat4"))]


class CIFAR10DVS(tonic.datasets.CIFAR10DVS):
    """tonic's reader with a lighter existence check and a file-system-independent order."""

    def __init__(self, save_to: str, transform=None):
        super().__init__(save_to, transform=transform)
        order = np.argsort(self.data, kind="stable")
        self.data = [self.data[i] for i in order]
        self.targets = [self.targets[i] for i in order]

    def _check_exists(self) -> bool:
        return not _missing_classes(Path(self.location_on_system))


def _binary(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames > 0).to(torch.float32)


def frame_transform(T: int):
    """Events (tonic structured array, 128x128 sensor) -> float32 {0,1} frames [T, 2, SIZE, SIZE]."""
    return tonic.transforms.Compose([
        tonic.transforms.Downsample(sensor_size=SENSOR_SIZE, target_size=(SIZE, SIZE)),
        tonic.transforms.ToFrame(sensor_size=(SIZE, SIZE, 2), n_time_bins=T),
        _binary,
    ])


def _check_layout(root: str | None) -> None:
    layout = f"CIFAR10DVS/{{{','.join(CLASSES)}}}/*.aedat4"
    if root is None:
        raise TnaError(f"cifar10-dvs needs its files on disk: pass --data-root DIR, with DIR/{layout}")
    missing = _missing_classes(Path(root).expanduser() / "CIFAR10DVS")
    if missing:
        raise TnaError(
            f"cifar10-dvs not found under {root} (no .aedat4 files for {', '.join(missing)}): expected "
            f"{Path(root) / layout}; download CIFAR10-DVS (figshare, aedat4) and extract each class "
            f"zip there, then pass --data-root {root}"
        )
    try:
        import aedat  # noqa: F401  (tonic imports it per file; fail now, not mid-epoch)
    except ImportError:
        raise TnaError("reading cifar10-dvs (.aedat4) needs the 'aedat' package: pip install aedat") from None


def load(*, T: int, root: str | None):
    """(train, test, spec) over binary frames [T, 2, SIZE, SIZE], decoded from disk per item."""
    _check_layout(root)
    full = CIFAR10DVS(str(Path(root).expanduser()), transform=frame_transform(T))
    train_idx, test_idx = train_test_split(
        np.arange(len(full)), test_size=TEST_FRACTION, stratify=full.targets, random_state=SPLIT_SEED
    )
    spec = DataSpec("cifar10-dvs", (2, SIZE, SIZE), len(CLASSES), "events", T, input_scale=1.0)
    return Subset(full, np.sort(train_idx).tolist()), Subset(full, np.sort(test_idx).tolist()), spec
