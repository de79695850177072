"""CIFAR-10 through torchvision: offline from its unpacked folder, or downloaded on request."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fggp_repro.datasets.base import DataOptions
from fggp_repro.foundations.errors import DataError, first_line
from fggp_repro.foundations.files import first_missing
from fggp_repro.foundations.options import place

if TYPE_CHECKING:
    from fggp_repro.training.data import ImageData

CIFAR_TRAIN_IMAGES = 50_000
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
# the FGGP authors' data.py; GraNet's std is (0.2023, 0.1994, 0.2010)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class CifarOptions(DataOptions):
    """`root` holds torchvision's unpacked folder; `download` fetches it there if missing."""

    #: torchvision's class of the dataset
    torchvision_name: ClassVar[str]
    root: str = place("data")
    download: bool = place(False)

    def train_images(self) -> int:
        return CIFAR_TRAIN_IMAGES

    def ensure_available(self) -> None:
        ensure_cifar(self.torchvision_name, Path(self.root), self.download)


@dataclass(frozen=True)
class Cifar10Options(CifarOptions):
    torchvision_name: ClassVar[str] = "CIFAR10"
    mean: list[float] = field(default_factory=lambda: list(CIFAR10_MEAN))
    std: list[float] = field(default_factory=lambda: list(CIFAR10_STD))


def load_cifar10(root: str = "data", download: bool = False) -> ImageData:
    return load_cifar("CIFAR10", Path(root), download)


load_cifar10.options = Cifar10Options  # type: ignore[attr-defined]

#: torchvision's class name -> the folder its archive unpacks to, and the archive
FOLDERS = {"CIFAR10": "cifar-10-batches-py", "CIFAR100": "cifar-100-python"}
ARCHIVES = {"CIFAR10": "cifar-10-python.tar.gz", "CIFAR100": "cifar-100-python.tar.gz"}


def load_cifar(
    dataset: str,
    root: Path,
    download: bool = False,
    mean: tuple[float, ...] = CIFAR10_MEAN,
    std: tuple[float, ...] = CIFAR10_STD,
) -> ImageData:
    """A torchvision CIFAR dataset as uint8 tensors, with its normalisation constants; a
    missing copy offline is a one-line DataError saying where to put it."""
    label = dataset.replace("CIFAR", "CIFAR-")
    folder = root / FOLDERS[dataset]
    for path in (root, folder):
        if path.exists() and not path.is_dir():
            raise DataError(f"{path} is a file, not a folder: set data.root=<a folder>")
    if not download and not folder.is_dir():
        raise DataError(
            f"{label} not found: expected {folder.resolve()}/ (unpack {ARCHIVES[dataset]} there, "
            "set data.root=<dir>, or add data.download=true)"
        )
    import torch
    import torchvision.datasets

    from fggp_repro.training.data import ImageData

    loader = getattr(torchvision.datasets, dataset)
    try:
        train = loader(str(root), train=True, download=download)
        test = loader(str(root), train=False, download=download)
    except (OSError, RuntimeError) as error:
        reason = first_line(error) or type(error).__name__
        if "download=True" in reason:  # torchvision's words for a failed checksum
            raise DataError(
                f"{label} in {folder.resolve()}/ is damaged or incomplete (its files fail "
                f"torchvision's checksums): unpack {ARCHIVES[dataset]} there again, or remove "
                "the folder and add data.download=true"
            ) from None
        raise DataError(f"{label} could not be loaded from {root.resolve()}: {reason}") from None

    def as_tensors(split: Any) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(split.targets, dtype=torch.int64)

    train_x, train_y = as_tensors(train)
    test_x, test_y = as_tensors(test)
    classes = len(train.classes)
    return ImageData(
        train_x, train_y, test_x, test_y, num_classes=classes, synthetic=False, mean=mean, std=std
    )


def ensure_cifar(dataset: str, root: Path, download: bool) -> None:
    """The files are there, or are downloaded now; a failed download leaves no empty folders."""
    if (root / FOLDERS[dataset]).is_dir():
        return
    if not download:
        load_cifar(dataset, root, download=False)  # raises the DataError that says where
    created = first_missing(root)
    try:
        load_cifar(dataset, root, download=True)
    except DataError:
        if created is not None:  # the outermost folder this download made, with its contents
            shutil.rmtree(created, ignore_errors=True)
        raise
