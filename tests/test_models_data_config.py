"""Backbones pinned to the FGGP authors' networks (LingkaiZhu1999/NetworkPruning,
archs/cifar10/vgg.py and resnet.py): every parameter shape, the pooling, and each layer kind's
initial distribution against its formula. Augmentation against torchvision, normalisation against
the authors' constants, configs composed the way the CLI composes them."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import compose, spec
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError
from torch import nn

from fggp_repro.cli.config import group_options
from fggp_repro.datasets.cifar import CIFAR10_MEAN, load_cifar10
from fggp_repro.datasets.synthetic import make_synthetic
from fggp_repro.foundations.errors import ConfigError, DataError
from fggp_repro.models import build_backbone
from fggp_repro.runs.validation import total_iterations
from fggp_repro.sparsity.masks import prunable_weights
from fggp_repro.training.data import crop_flip, load_data, train_batches
from fggp_repro.training.state import make_optimizer

VGG19_E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
VGG19_E += [512, 512, 512, 512]  # config E as written in the authors' vgg.py: four max-pools


def vgg19_shapes(conv_bias: bool) -> list[tuple[int, ...]]:
    """Parameter shapes in module order: per conv (weight, [bias]), BN (weight, bias); Linear."""
    shapes, c_in = [], 3
    for v in VGG19_E:
        if v == "M":
            continue
        shapes += [(v, c_in, 3, 3), *([(v,)] if conv_bias else []), (v,), (v,)]
        c_in = v
    return shapes + [(10, 512), (10,)]


def resnet50_shapes() -> list[tuple[int, ...]]:
    """Stem, then per bottleneck conv1/bn1, conv2/bn2, conv3/bn3 and a projection shortcut where
    the shape changes; Linear(2048, 10) without bias."""
    shapes, c_in = [(64, 3, 3, 3), (64,), (64,)], 64
    for stage, blocks in enumerate([3, 4, 6, 3]):
        width = 64 * 2**stage
        for block in range(blocks):
            shapes += [(width, c_in, 1, 1), (width,), (width,), (width, width, 3, 3)]
            shapes += [(width,), (width,), (4 * width, width, 1, 1), (4 * width,), (4 * width,)]
            if block == 0:
                shapes += [(4 * width, c_in, 1, 1), (4 * width,), (4 * width,)]
            c_in = 4 * width
    return shapes + [(10, 2048)]


@pytest.mark.parametrize(
    ("backbone", "expected", "total"),
    [
        ("vgg19", vgg19_shapes(conv_bias=True), 20_040_522),
        ("vgg19_granet", vgg19_shapes(conv_bias=False), 20_035_018),
        ("resnet50", resnet50_shapes(), 23_520_832),
    ],
)
def test_every_parameter_shape_and_the_total_match_the_reference_network(backbone, expected, total):
    model = build_backbone(spec(f"backbone={backbone}").backbone)
    assert [tuple(p.shape) for p in model.parameters()] == expected
    assert sum(math.prod(s) for s in expected) == total


@pytest.mark.parametrize("backbone", ["vgg19", "vgg19_granet", "vgg_tiny"])
def test_vgg_pools_four_times_then_averages_the_2x2_map(backbone):
    model = build_backbone(spec(f"backbone={backbone}").backbone)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert model.features(torch.zeros(1, 3, 32, 32)).shape[2:] == (2, 2)
    assert isinstance(model.pool, nn.AvgPool2d) and model.pool.kernel_size == 2


def close(actual: float, expected: float, tolerance: float = 0.05) -> bool:
    """Sample std within 5%: over 3 standard errors for the smallest layer (1,728 weights)."""
    return abs(actual - expected) <= tolerance * expected


@pytest.mark.parametrize(("backbone", "fan"), [("vgg19", "in"), ("vgg19_granet", "out")])
def test_vgg_init_follows_its_formulas(backbone, fan):
    torch.manual_seed(0)
    model = build_backbone(spec(f"backbone={backbone}").backbone)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            channels = m.in_channels if fan == "in" else m.out_channels
            assert close(m.weight.std().item(), math.sqrt(2 / (9 * channels)))
            assert m.bias is None or not m.bias.any()
        elif isinstance(m, nn.BatchNorm2d):
            assert (m.weight == 1).all() and not m.bias.any()
        elif isinstance(m, nn.Linear):
            assert close(m.weight.std().item(), 0.01) and not m.bias.any()


def test_resnet50_keeps_pytorchs_default_init():
    """kaiming_uniform_(a=sqrt(5)): U(-b, b) with b = 1 / sqrt(fan_in), so std = b / sqrt(3)."""
    torch.manual_seed(0)
    model = build_backbone(spec("backbone=resnet50").backbone)
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            bound = 1 / math.sqrt(m.weight[0].numel())
            assert m.weight.abs().max() <= bound
            assert close(m.weight.std().item(), bound / math.sqrt(3))
        elif isinstance(m, nn.BatchNorm2d):
            assert (m.weight == 1).all() and not m.bias.any()


@pytest.mark.slow
def test_dense_vgg19_at_the_protocol_lr_does_not_blow_up():
    """The networks of an earlier release reached a loss of 11 by the second step (chance is
    ln 10 = 2.3) and sat at chance accuracy for epochs; the authors' network does not."""
    torch.manual_seed(0)
    cfg = spec("backbone=vgg19")
    model = build_backbone(cfg.backbone)
    optimizer = make_optimizer(model, cfg.optim)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.optim.label_smoothing)
    data = make_synthetic(64 * 3, 1, seed=0)  # the earlier networks blew up by step 2
    losses = []
    for images, labels in train_batches(data, 64, torch.Generator().manual_seed(0)):
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert cfg.optim.lr == 0.1 and len(losses) == 3
    assert max(losses) < losses[0] + 1.5, losses


def test_normalisation_uses_the_authors_cifar10_constants():
    data = make_synthetic(4, 1, seed=0)
    assert data.mean == (0.4914, 0.4822, 0.4465)
    assert data.std == (0.2470, 0.2435, 0.2616)  # archs' data.py; GraNet's is (0.2023, ...)
    pixel = torch.full((1, 3, 1, 1), 51, dtype=torch.uint8)  # 51 / 255 = 0.2
    expected = [(0.2 - m) / s for m, s in zip(data.mean, data.std)]
    assert data.normalize(pixel).flatten().tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", group_options("backbone"))
def test_every_backbone_maps_cifar_images_to_ten_logits(name):
    model = build_backbone(spec(f"backbone={name}").backbone).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_prunable_set_is_conv_and_linear_weights_with_first_conv_switch():
    model = build_backbone(spec("backbone=resnet_tiny").backbone)
    every = prunable_weights(model, keep_first_conv_dense=False)
    kept = prunable_weights(model, keep_first_conv_dense=True)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert [w for _, w in every] == [m.weight for m in layers]
    assert [w for _, w in kept] == [m.weight for m in layers[1:]]
    assert layers[0] is model.stem[0]


def test_crop_flip_matches_torchvision_per_image():
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    dy = torch.tensor([0, 8, 4, 1, 7, 3])
    dx = torch.tensor([8, 0, 4, 6, 2, 5])
    flip = torch.tensor([False, True, False, True, True, False])
    batch = crop_flip(images, dy, dx, flip, padding=4)
    for i in range(6):
        expected = TF.crop(TF.pad(images[i], [4]), int(dy[i]), int(dx[i]), 32, 32)
        if flip[i]:
            expected = TF.hflip(expected)
        assert torch.equal(batch[i], expected)


def test_reflect_padding_crops_match_torchvision_reflect_pad():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    dy, dx = torch.tensor([0, 8, 3]), torch.tensor([8, 0, 5])
    flip = torch.tensor([False, True, False])
    batch = crop_flip(images, dy, dx, flip, padding=4, padding_mode="reflect")
    for i in range(3):
        padded = TF.pad(images[i], [4], padding_mode="reflect")
        expected = TF.crop(padded, int(dy[i]), int(dx[i]), 32, 32)
        assert torch.equal(batch[i], TF.hflip(expected) if flip[i] else expected)
    assert batch[0, :, 0, 0].tolist() == images[0, :, 4, 4].tolist()  # corner of the reflection


def test_granet_protocol_data_holds_out_the_last_tenth_and_normalises_its_way():
    cfg = spec("protocol=granet", "data=synthetic", "data.train_size=50", "data.test_size=8",
               "train.batch_size=45", "pruner=dense")  # fmt: skip
    data, full = load_data(cfg.data), make_synthetic(50, 8, seed=0)
    assert torch.equal(data.train_x, full.train_x[:45]) and torch.equal(data.test_x, full.test_x)
    assert total_iterations(cfg) == 160 * 1  # 45 images (the tenth held out): one step an epoch
    # white images: zero padding would put black pixels into shifted crops, reflection never;
    # every pixel must come out as (1 - mean) / std with GraNet's std
    white = dataclasses.replace(data, train_x=torch.full_like(data.train_x, 255))
    [(images, _)] = list(train_batches(white, 64, torch.Generator().manual_seed(0)))
    expected = [(1 - m) / s for m, s in zip(CIFAR10_MEAN, (0.2023, 0.1994, 0.2010))]
    for channel, value in enumerate(expected):
        assert images[:, channel].flatten().tolist() == pytest.approx([value] * 45 * 1024)


def test_synthetic_data_is_seeded_and_cifar_shaped():
    first, again = make_synthetic(64, 32, seed=5), make_synthetic(64, 32, seed=5)
    assert first.train_x.shape == (64, 3, 32, 32) and first.train_x.dtype == torch.uint8
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert first.synthetic
    assert not torch.equal(first.train_x, make_synthetic(64, 32, seed=6).train_x)


def test_missing_cifar10_offline_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        load_cifar10(str(tmp_path), download=False)
    with pytest.raises(DataError, match="CIFAR-100 not found: expected .*cifar-100-python"):
        spec("data=cifar100", f"data.root={tmp_path}").data.options.ensure_available()


def test_a_damaged_cifar_folder_or_a_root_that_is_a_file_says_so_in_this_tools_keys(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (folder / name).write_text("garbage")
    with pytest.raises(DataError) as damaged:
        load_cifar10(str(tmp_path), download=False)
    assert "damaged or incomplete" in str(damaged.value)
    assert "data.download=true" in str(damaged.value) and "download=True" not in str(damaged.value)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DataError, match="a-file is a file, not a folder: set data.root="):
        load_cifar10(str(tmp_path / "a-file"), download=False)


def test_cifar100_loads_offline_from_torchvisions_files_with_its_own_normalisation(
    tmp_path, monkeypatch
):
    """Files in torchvision's CIFAR-100 layout (their checksums waived: these are made up)."""
    import pickle

    import torchvision.datasets.cifar as tv_cifar

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 6), ("test", 2)):
        data = np.arange(n * 3072, dtype=np.uint8).reshape(n, 3072) % 251
        entry = {"data": data, "fine_labels": [99 - i for i in range(n)]}
        (folder / split).write_bytes(pickle.dumps(entry))
    names = [f"class{i}" for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names}))
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args: True)
    monkeypatch.setattr(tv_cifar.CIFAR100, "_check_integrity", lambda self: True)
    run = spec("data=cifar100", f"data.root={tmp_path}", "train.batch_size=6")
    data = load_data(run.data)
    assert (data.num_classes, tuple(data.train_x.shape), data.train_y.tolist()[:2]) == (
        100, (6, 3, 32, 32), [99, 98])  # fmt: skip
    assert data.mean == (0.5071, 0.4865, 0.4409) and data.std == (0.2673, 0.2564, 0.2762)


@pytest.mark.parametrize("group", ["backbone", "pruner", "data", "protocol", "experiment"])
def test_every_group_option_composes(group):
    for option in group_options(group):
        cfg = compose(f"{group}={option}")
        if group != "experiment":
            assert cfg[group].name == option


@pytest.mark.parametrize("backbone", group_options("backbone"))
def test_granet_protocol_composes_for_every_backbone_with_granets_settings(backbone):
    cfg = compose("experiment=granet_protocol", f"backbone={backbone}")
    assert (cfg.backbone.name, cfg.protocol.name, cfg.output_root) == (
        backbone, "granet", "results/granet_protocol")  # fmt: skip
    assert (cfg.train.batch_size, cfg.schedule.interval, cfg.optim.label_smoothing) == (
        100,
        1000,
        0,
    )
    assert cfg.schedule.end_fraction * cfg.train.epochs == 110  # final_prune_epoch
    assert (cfg.data.holdout, cfg.data.padding, list(cfg.data.std)) == (
        0.1, "reflect", [0.2023, 0.1994, 0.2010])  # fmt: skip
    assert not cfg.masking.keep_first_conv_dense and cfg.masking.density_base == "prunable"
    assert cfg.protocol.best_test_after_pruning and cfg.train.eval_every == 1
    assert compose("experiment=granet_protocol").backbone.name == "vgg19_granet"


def test_granet_protocol_sets_each_pruner_its_own_way():
    granet = compose("experiment=granet_protocol", "pruner=granet").pruner
    assert granet.end_fraction == 0.6875  # its window is the protocol's, not epochs 0-80
    for name in ("rigl", "set"):  # GraNet's DST update
        dst = compose("experiment=granet_protocol", f"pruner={name}").pruner
        assert (dst.drop_fraction, dst.final_drop_fraction) == (0.5, 0.005)
        assert (dst.drop_rounding, dst.end_fraction) == ("ceil", 1.0)
    evci = compose("pruner=rigl").pruner
    assert (evci.drop_fraction, evci.final_drop_fraction, evci.end_fraction) == (0.3, 0.0, 0.75)
    assert compose("pruner=granet").pruner.end_fraction == 0.5


def test_paper_protocol_is_the_default():
    cfg = compose()
    assert (cfg.backbone.name, cfg.pruner.name, cfg.data.name) == ("vgg19", "fggp", "cifar10")
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.nesterov) == (0.1, 0.9, True)
    assert (cfg.optim.weight_decay, list(cfg.optim.milestones)) == (5e-4, [80, 120])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.optim.label_smoothing) == (160, 64, 0.1)
    assert (cfg.schedule.interval, cfg.schedule.end_fraction, cfg.pruner.rate) == (2000, 0.8, 0.5)
    assert cfg.masking.keep_first_conv_dense
    assert cfg.masking.density_base == "conv_linear"  # the authors' bookkeeping
    assert compose("optim.label_smoothing=0").optim.label_smoothing == 0  # their previous commit
    assert (cfg.data.padding, cfg.data.holdout, cfg.protocol.name) == ("zeros", 0.0, "fggp_authors")
    assert compose("pruner=fggp_annealed").pruner.rate == 0.5  # GraNet's 0.5, not the script's 0.01


def test_typed_configs_reject_bad_overrides():
    with pytest.raises(ConfigError, match="pruner.rate"):
        spec("pruner.rate=high")
    with pytest.raises(ConfigCompositionException):
        compose("train.epochz=3")
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose("init=sparse90")


def test_the_augmentation_flips_half_the_images_and_crops_at_every_offset():
    """random_crop_flip against torch.flip and the padded image: each output is the image's
    crop at one of the 9 x 9 offsets, mirrored for about half of them (as torchvision's
    RandomHorizontalFlip(0.5) after RandomCrop(32, padding=4))."""
    from fggp_repro.training.data import random_crop_flip

    generator = torch.Generator().manual_seed(0)
    n = 2000
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator)
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=4)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    windows = padded.unfold(2, 8, 1).unfold(3, 8, 1)  # (n, 1, 9, 9, 8, 8): every crop
    offsets, flipped = [], 0
    for i in range(n):
        as_is = (windows[i, 0] == out[i, 0]).flatten(2).all(-1)
        mirrored = (windows[i, 0].flip(-1) == out[i, 0]).flatten(2).all(-1)
        found = as_is.nonzero().tolist() or mirrored.nonzero().tolist()
        assert found, i  # a crop of the padded image, mirrored or not
        flipped += not as_is.any()
        offsets.append(tuple(found[0]))
    assert 900 <= flipped <= 1100  # p = 0.5: 1000 +- 4.5 standard deviations
    assert len(set(offsets)) == 81  # every offset of 0..8 in each direction occurs
