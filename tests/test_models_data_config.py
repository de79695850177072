"""Backbones against hand-counted parameter totals, augmentation against torchvision, configs
composed the way the CLI composes them."""

import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import compose
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from fggp_repro.cli import group_options
from fggp_repro.data import crop_flip, load_cifar10, make_synthetic
from fggp_repro.errors import DataError
from fggp_repro.masks import prunable_weights
from fggp_repro.models import build_backbone


def vgg19_bn_parameters() -> int:
    """16 bias-free 3x3 convs with BN (2 per channel) and Linear(512, 10), counted by hand."""
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8
    convs = sum(9 * c_in * c_out for c_in, c_out in zip(channels, channels[1:]))
    return convs + 2 * sum(channels[1:]) + 512 * 10 + 10


def test_vgg19_parameter_count():
    model = build_backbone(compose("backbone=vgg19").backbone)
    total = sum(p.numel() for p in model.parameters())
    assert total == vgg19_bn_parameters() == 20_035_018  # "about 20.0M"
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 16


def test_resnet50_parameter_count():
    model = build_backbone(compose("backbone=resnet50").backbone)
    # the widely reported count of the CIFAR ResNet-50 (bottleneck [3,4,6,3], 10 classes)
    assert sum(p.numel() for p in model.parameters()) == 23_520_842  # "about 23.5M"
    assert model.classifier.in_features == 2048


@pytest.mark.parametrize("name", ["vgg19", "resnet50", "vgg_tiny", "resnet_tiny"])
def test_every_backbone_maps_cifar_images_to_ten_logits(name):
    model = build_backbone(compose(f"backbone={name}").backbone).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_prunable_set_is_conv_and_linear_weights_with_first_conv_switch():
    model = build_backbone(compose("backbone=resnet_tiny").backbone)
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


def test_synthetic_data_is_seeded_and_cifar_shaped():
    first, again = make_synthetic(64, 32, seed=5), make_synthetic(64, 32, seed=5)
    assert first.train_x.shape == (64, 3, 32, 32) and first.train_x.dtype == torch.uint8
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    assert first.synthetic
    assert not torch.equal(first.train_x, make_synthetic(64, 32, seed=6).train_x)


def test_missing_cifar10_offline_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        load_cifar10(tmp_path, download=False)


@pytest.mark.parametrize("group", ["backbone", "pruner", "data", "experiment"])
def test_every_group_option_composes(group):
    for option in group_options(group):
        cfg = compose(f"{group}={option}")
        if group != "experiment":
            assert cfg[group].name == option


def test_paper_protocol_is_the_default():
    cfg = compose()
    assert (cfg.backbone.name, cfg.pruner.name, cfg.data.name) == ("vgg19", "fggp", "cifar10")
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.nesterov) == (0.1, 0.9, True)
    assert (cfg.optim.weight_decay, list(cfg.optim.milestones)) == (5e-4, [80, 120])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.optim.label_smoothing) == (160, 64, 0.1)
    assert (cfg.schedule.interval, cfg.schedule.end_fraction, cfg.pruner.rate) == (2000, 0.8, 0.5)
    assert cfg.masking.keep_first_conv_dense


def test_typed_configs_reject_bad_overrides():
    with pytest.raises(ConfigCompositionException):
        compose("pruner.rate=high")
    with pytest.raises(ConfigCompositionException):
        compose("train.epochz=3")
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose("init=sparse90")
