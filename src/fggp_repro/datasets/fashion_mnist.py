"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000 test images of 10
kinds of clothing, 28x28 grayscale, read from its four gzipped idx files. It is the one real
image set a machine with nothing but Debian's archive can have (package dataset-fashion-mnist).

Each image is zero-padded to 32x32, as LeNet-5 padded MNIST. The authors' networks then take it
as they are: VGG's four max-pools leave the 2x2 map its average pool expects, every layer but the
first conv (one input channel instead of three) is CIFAR's, and the random crop pads by 4 as on
CIFAR. The normalisation is that of what the network sees: the mean and std of the 60,000 padded
training images (0.2190 and 0.3318; of the unpadded ones, 0.2860 and 0.3530).
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fggp_repro.datasets.base import DataOptions
from fggp_repro.foundations.errors import DataError, first_line
from fggp_repro.foundations.files import first_missing
from fggp_repro.foundations.options import bounded, place

if TYPE_CHECKING:
    import numpy as np

    from fggp_repro.training.data import ImageData

DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
#: where torchvision's FashionMNIST puts the files below its root
TORCHVISION_FOLDER = Path("FashionMNIST/raw")
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TRAIN_IMAGES, SIDE, PADDED_SIDE, CLASSES = 60_000, 28, 32, 10
MEAN, STD = (0.2190,), (0.3318,)
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


@dataclass(frozen=True)
class FashionMnistOptions(DataOptions):
    """`root` holds the four files (.gz or unpacked), directly or in torchvision's
    FashionMNIST/raw/; else Debian's folder is read; `download` fetches them into root.
    `train_size` keeps the first that many training images (the files' order mixes the
    classes); the test set is always all 10,000."""

    mean: list[float] = field(default_factory=lambda: list(MEAN))
    std: list[float] = field(default_factory=lambda: list(STD))
    root: str = place("data")
    download: bool = place(False)
    train_size: int = bounded(TRAIN_IMAGES, f"[1, {TRAIN_IMAGES}]")

    def train_images(self) -> int:
        return self.train_size

    def image_shape(self) -> tuple[int, int, int]:
        return (1, PADDED_SIDE, PADDED_SIDE)

    def ensure_available(self) -> None:
        find_folder(Path(self.root), self.download)


def holds_files(folder: Path) -> bool:
    return all(
        (folder / name).is_file() or (folder / f"{name}.gz").is_file()
        for names in SPLITS.values()
        for name in names
    )


def find_folder(root: Path, download: bool = False) -> Path:
    """The folder holding the four files: `root`, its FashionMNIST/raw/, Debian's folder, or
    (with download) root/FashionMNIST/raw/ after torchvision fetched them there."""
    for folder in (root, root / TORCHVISION_FOLDER, DEBIAN_FOLDER):
        if holds_files(folder):
            return folder
    if root.exists() and not root.is_dir():
        raise DataError(f"data.root={root} is a file, not a folder: name a folder")
    if not download:
        raise DataError(
            f"Fashion-MNIST not found in {root.resolve()} (nor {TORCHVISION_FOLDER}/ below it) "
            f"nor in {DEBIAN_FOLDER}: install Debian's package (apt-get install "
            "dataset-fashion-mnist), put the four .gz files in data.root=<dir>, or add "
            "data.download=true"
        )
    return download_files(root)


def download_files(root: Path) -> Path:
    """torchvision's download (its mirror list) into root/FashionMNIST/raw; a failed one
    leaves no folder it made."""
    import torchvision.datasets

    created = first_missing(root)
    try:
        for train in (True, False):
            torchvision.datasets.FashionMNIST(str(root), train=train, download=True)
    except (OSError, RuntimeError) as error:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = first_line(error) or type(error).__name__
        raise DataError(f"Fashion-MNIST could not be downloaded to {root}: {reason}") from None
    return root / TORCHVISION_FOLDER


def read_idx(folder: Path, name: str, magic: int) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array of the shape its header gives."""
    import numpy as np

    path = folder / name if (folder / name).is_file() else folder / f"{name}.gz"
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error}") from None
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = np.frombuffer(data[: 4 * (1 + dims)], ">i4") if len(data) >= 4 * (1 + dims) else []
    if len(header) != 1 + dims or header[0] != magic:
        raise DataError(f"{path} is not an idx file of {'images' if dims == 3 else 'labels'}")
    shape = tuple(int(n) for n in header[1:])
    body = np.frombuffer(data, np.uint8, offset=4 * (1 + dims))
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated or damaged: {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def load_split(folder: Path, split: str, count: int | None = None):
    """One split as (N, 1, 32, 32) uint8 images, zero-padded, and int64 labels."""
    import torch
    import torch.nn.functional as F

    images_name, labels_name = SPLITS[split]
    images = read_idx(folder, images_name, IMAGES_MAGIC)[:count]
    labels = read_idx(folder, labels_name, LABELS_MAGIC)[:count]
    if images.shape[1:] != (SIDE, SIDE) or len(images) != len(labels):
        raise DataError(
            f"{folder}: {split} images of shape {images.shape} for {len(labels)} labels"
        )
    pad = (PADDED_SIDE - SIDE) // 2
    padded = F.pad(torch.from_numpy(images.copy()).unsqueeze(1), (pad,) * 4)
    return padded, torch.from_numpy(labels.astype("int64"))


def load_fashion_mnist(
    root: str = "data", download: bool = False, train_size: int = TRAIN_IMAGES
) -> ImageData:
    from fggp_repro.training.data import ImageData

    folder = find_folder(Path(root), download)
    train_x, train_y = load_split(folder, "train", train_size)
    test_x, test_y = load_split(folder, "test")
    return ImageData(
        train_x, train_y, test_x, test_y, num_classes=CLASSES, synthetic=False, mean=MEAN,
        std=STD,
    )  # fmt: skip


load_fashion_mnist.options = FashionMnistOptions  # type: ignore[attr-defined]
