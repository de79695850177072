"""Real images and any image shape: Fashion-MNIST read against the files themselves, a small
network that learns it within seconds, the three ways to get it, images of other sizes and
channels, and options that name a place kept out of the run id by what they declare."""

import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli, spec

from fggp_repro.datasets import fashion_mnist
from fggp_repro.datasets.base import DataOptions
from fggp_repro.foundations.errors import ConfigError, DataError
from fggp_repro.foundations.options import bounded, place
from fggp_repro.foundations.spec import PluginSpec
from fggp_repro.models import build_backbone, check_input
from fggp_repro.models.vgg import VGGOptions, check_vgg_input
from fggp_repro.runs.experiment import run_experiment
from fggp_repro.runs.identity import place_keys, run_id

DEBIAN = fashion_mnist.DEBIAN_FOLDER
installed = pytest.mark.skipif(
    not fashion_mnist.holds_files(DEBIAN),
    reason="Fashion-MNIST is not installed here (apt-get install dataset-fashion-mnist)",
)


def idx_file(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """An idx file's dimensions and its bytes after the header, read by struct alone."""
    data = gzip.decompress(path.read_bytes())
    magic, count = struct.unpack(">ii", data[:8])
    dims = (count, *struct.unpack(">ii", data[8:16])) if magic == 2051 else (count,)
    offset = 8 + 4 * (len(dims) - 1)
    return dims, np.frombuffer(data[offset:], np.uint8)


@installed
def test_the_loader_gives_the_files_images_and_labels_padded_to_32x32():
    data = fashion_mnist.load_fashion_mnist()
    splits = ((data.train_x, data.train_y, "train", 6000), (data.test_x, data.test_y, "t10k", 1000))
    for images, labels, prefix, per_class in splits:
        (count, rows, cols), pixels = idx_file(DEBIAN / f"{prefix}-images-idx3-ubyte.gz")
        (label_count,), raw_labels = idx_file(DEBIAN / f"{prefix}-labels-idx1-ubyte.gz")
        assert (count, rows, cols) == (label_count, 28, 28)
        assert images.shape == (count, 1, 32, 32) and images.dtype == torch.uint8
        assert torch.equal(images[:, 0, 2:30, 2:30].reshape(-1), torch.from_numpy(pixels.copy()))
        border = images.clone()
        border[:, :, 2:30, 2:30] = 0
        assert border.count_nonzero() == 0  # zero padding, two pixels a side
        histogram = torch.bincount(labels, minlength=10).tolist()
        assert histogram == np.bincount(raw_labels, minlength=10).tolist() == [per_class] * 10
    padded = data.train_x.double() / 255
    assert (round(padded.mean().item(), 4), round(padded.std().item(), 4)) == (0.2190, 0.3318)
    assert (data.mean, data.std) == ((0.2190,), (0.3318,))


@pytest.mark.slow
@installed
def test_a_small_network_learns_fashion_mnist_in_seconds(tmp_path):
    """5,000 images, two epochs of the tiny VGG: only the right images, labels and
    normalisation get over 70% (chance is 10%)."""
    run = spec("experiment=demo", "data=fashion_mnist", "data.train_size=5000", "pruner=dense",
               "train.epochs=2", "optim.milestones=[1]", "train.progress=false",
               f"output_root={tmp_path}")  # fmt: skip
    record = run_experiment(run, tmp_path / "run")
    assert record["dataset"] == "fashion_mnist" and record["synthetic_data"] is False
    assert record["final_test_acc"] > 70.0
    assert record["params_total"] == sum(  # the first conv takes one channel
        p.numel() for p in build_backbone(run.backbone, 10, in_channels=1).parameters()
    )


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">iiii", 2051, len(images), 28, 28)
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(header + images.tobytes())
    )
    header = struct.pack(">ii", 2049, len(labels))
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())  # unpacked


def test_the_files_are_read_from_data_root_else_refused_naming_the_three_ways(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-debian-package")
    with pytest.raises(DataError) as refused:
        fashion_mnist.load_fashion_mnist(str(tmp_path / "empty"))
    message = str(refused.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data.root=" in message and "data.download=true" in message
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    raw = tmp_path / "root" / "FashionMNIST" / "raw"  # torchvision's layout below data.root
    write_idx(raw, "train", images, labels)
    write_idx(raw, "t10k", images[:5], labels[:5])
    data = fashion_mnist.load_fashion_mnist(str(tmp_path / "root"), train_size=10)
    assert data.train_x.shape == (10, 1, 32, 32) and data.test_x.shape == (5, 1, 32, 32)
    assert torch.equal(data.train_x[:, 0, 2:30, 2:30], torch.from_numpy(images[:10]))
    assert data.train_y.tolist() == labels[:10].tolist()
    damaged = raw / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(gzip.compress(gzip.decompress(damaged.read_bytes())[:-7]))
    with pytest.raises(DataError, match="truncated or damaged"):
        fashion_mnist.load_fashion_mnist(str(tmp_path / "root"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match="is a file, not a folder"):
        fashion_mnist.find_folder(tmp_path / "a-file")


def test_a_failed_download_is_one_line_and_leaves_no_folder_it_made(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(root: str, train: bool, download: bool) -> None:
        (Path(root) / fashion_mnist.TORCHVISION_FOLDER).mkdir(parents=True, exist_ok=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz\nsecond line")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError) as refused:
        fashion_mnist.download_files(tmp_path / "new" / "data")
    assert str(refused.value).endswith(": Error downloading train-images-idx3-ubyte.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("side", range(20, 70, 3))
def test_vggs_stated_image_sizes_are_those_its_layers_take(side):
    """check_vgg_input against the network itself, run on the meta device."""
    options = VGGOptions(convs_per_stage=[1] * 5, widths=[4] * 5)
    with torch.device("meta"):
        model = build_backbone(PluginSpec("vgg", "fggp_repro.models.vgg.build_vgg", options), 10,
                               in_channels=1)  # fmt: skip
        try:
            model(torch.empty(2, 1, side, side))
            runs = True
        except RuntimeError:
            runs = False
    try:
        check_vgg_input(options, (1, side, side))
        accepted = True
    except ConfigError:
        accepted = False
    assert accepted == runs


@dataclasses.dataclass(frozen=True)
class GrayOptions(DataOptions):
    """A test dataset of one-channel images of `side` pixels, its folder declared a place."""

    mean: list[float] = dataclasses.field(default_factory=lambda: [0.5])
    std: list[float] = dataclasses.field(default_factory=lambda: [0.25])
    side: int = bounded(28, "[8, 64]")
    folder: str = place("somewhere")

    def train_images(self) -> int:
        return 64

    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.side, self.side)


def gray_images(side: int = 28, folder: str = "somewhere"):
    from fggp_repro.training.data import ImageData

    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, side, side), dtype=torch.uint8, generator=generator)
    y = torch.arange(64) % 10
    return ImageData(x, y, x[:16], y[:16], num_classes=10, synthetic=True, mean=(0.5,),
                     std=(0.25,))  # fmt: skip


gray_images.options = GrayOptions
GRAY = "_target_: test_real_data.gray_images\nname: gray\nside: {side}\nfolder: somewhere\n"
GRAY += "mean: [0.5]\nstd: [0.25]\npadding: zeros\nholdout: 0.0\n"


@pytest.mark.slow
def test_an_image_size_a_backbone_cannot_take_is_refused_at_start_up(tmp_path):
    conf = tmp_path / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "data" / "gray.yaml").write_text(GRAY.format(side=28))
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(Path(__file__).parent)}
    refused = run_cli("--config-dir", str(conf), "experiment=demo", "data=gray",
                      f"output_root={out}", env=env)  # fmt: skip
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "backbone=vgg_tiny takes images of 32 to 63 pixels a side" in refused.stderr
    assert "28x28" in refused.stderr and not out.exists()
    resnet = run_cli("--config-dir", str(conf), "experiment=demo", "data=gray", "pruner=dense",
                     "backbone=resnet_tiny", "train.epochs=1", "train.progress=false",
                     f"output_root={out}", env=env)  # fmt: skip
    assert resnet.returncode == 0, resnet.stderr  # a global pool takes any size


def test_one_channel_reaches_the_first_conv_the_flop_count_and_synflow():
    from fggp_repro.pruners import SynFlow
    from fggp_repro.sparsity.masks import MaskSet
    from fggp_repro.training.flops import layer_forward_flops

    backbone = spec("backbone=vgg19").backbone
    gray, colour = build_backbone(backbone, 10, in_channels=1), build_backbone(backbone, 10)
    assert gray.features[0].weight.shape == (64, 1, 3, 3)
    assert sum(p.numel() for p in gray.parameters()) == 20_040_522 - 64 * 2 * 9
    flops = layer_forward_flops(gray, (1, 1, 32, 32))
    assert flops["features.0"] == 2 * 1 * 9 * 64 * 32 * 32  # 2 x C_in x k^2 x C_out x H x W
    assert flops["features.0"] * 3 == layer_forward_flops(colour, (1, 3, 32, 32))["features.0"]
    tiny = build_backbone(spec("backbone=vgg_tiny").backbone, 10, in_channels=1)
    masks = MaskSet.from_model(tiny)
    batch = [(torch.zeros(4, 1, 32, 32), torch.zeros(4, dtype=torch.long))]
    SynFlow(masks, rounds=2, target_density=0.1, total_iterations=1).at_init(tiny, iter(batch))
    assert masks.active_count == masks.target_active(0.1)


def test_per_channel_constants_must_match_the_images_channels():
    with pytest.raises(ConfigError, match=r"data.mean must be 1 per-channel value"):
        spec("data=fashion_mnist", "data.mean=[0.2,0.2,0.2]")
    backbone = dataclasses.replace(spec().backbone, target="test_real_data.no_channels")
    with pytest.raises(ConfigError, match="has no in_channels parameter"):
        check_input(backbone, (1, 32, 32))


def no_channels(num_classes: int = 10):
    return torch.nn.Linear(3, num_classes)


def test_an_option_declared_a_place_is_no_part_of_the_run_id_whatever_its_name():
    config = {"data": {"_target_": "test_real_data.gray_images", "side": 32, "folder": "a"}}
    assert place_keys(config) == ["data.folder"]
    fashion = {"data": {"_target_": "fggp_repro.datasets.fashion_mnist.load_fashion_mnist"}}
    assert place_keys(fashion) == ["data.root", "data.download"]
    base = ("data=fashion_mnist", "schedule.interval=100")
    here = spec(*base, "data.root=/here")
    assert run_id(here) == run_id(spec(*base, "data.root=/there", "data.download=true"))
    assert run_id(here) != run_id(spec(*base, "data.train_size=30000"))
