"""Images kept on the device and augmented there (binaryvision.device_data).

Runs on the CPU: the same tensor code runs on a GPU, where ``Trainer(data_on_device="auto")``
turns it on. Speed is measured in bench/gpu.py and bench/finetune.py, not here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import write_class_tree
from PIL import Image

from binaryvision import Callback, ImageBinaryClassifier, Trainer
from binaryvision.backbones import DataConfig
from binaryvision.data import load_image
from binaryvision.exceptions import InvalidParameterError
from binaryvision.transforms import Transforms, build_transforms
from binaryvision.transforms.on_device import (
    DeviceLoader,
    _crop_affines,
    augment_batch,
    store_images,
    stored_bytes,
)

CONFIG = DataConfig(input_size=48, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), crop_pct=0.75)
TRAINER = Trainer(num_workers=0, progress=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    """Photos of several shapes and sizes (landscape, portrait, square; PNG and JPEG)."""
    root = tmp_path_factory.mktemp("device-photos")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(90, 60), (50, 120), (64, 64), (200, 150), (81, 97)]):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = root / f"p{i}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    return paths


def gradient_images(n: int, side: int) -> torch.Tensor:
    """uint8 images whose red channel grows left to right and green top to bottom."""
    ramp = torch.linspace(20, 235, side).round().to(torch.uint8)
    images = torch.zeros(n, 3, side, side, dtype=torch.uint8)
    images[:, 0] = ramp.view(1, 1, side)
    images[:, 1] = ramp.view(1, side, 1)
    images[:, 2] = 128
    return images


# ---------------------------------------------------------------------- storing
def test_stored_eval_crops_equal_the_eval_transform(photos):
    """augment="none" from the device gives what the Pillow eval transform gives."""
    stored = store_images(photos, CONFIG, "none", TRAINER)
    assert stored.dtype == torch.uint8 and stored.shape == (len(photos), 3, 48, 48)
    got = augment_batch(stored, CONFIG, "none")
    eval_tf = build_transforms(CONFIG, "none").eval
    expected = torch.stack([eval_tf(load_image(p, min_size=64)) for p in photos])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_stored_squares_for_augmentation_are_the_resized_centre(photos):
    stored = store_images(photos, CONFIG, "light", TRAINER)
    side = round(48 / 0.75)
    assert stored.shape == (len(photos), 3, side, side)
    assert stored_bytes(len(photos), CONFIG, "light") == stored.numel()
    # their centre crop is the eval crop
    eval_crops = store_images(photos, CONFIG, "none", TRAINER)
    torch.testing.assert_close(
        augment_batch(stored, CONFIG, "none"),
        augment_batch(eval_crops, CONFIG, "none"),
        rtol=0,
        atol=2 / 255 / min(CONFIG.std) + 1e-6,  # one-pixel offset of an odd margin at most
    )


# ---------------------------------------------------------------------- augmenting
def test_augment_is_repeatable_and_leaves_the_images_alone():
    images = gradient_images(6, 64)
    before = images.clone()
    a = augment_batch(images, CONFIG, "standard", torch.Generator().manual_seed(3))
    b = augment_batch(images, CONFIG, "standard", torch.Generator().manual_seed(3))
    c = augment_batch(images, CONFIG, "standard", torch.Generator().manual_seed(4))
    assert torch.equal(images, before)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.shape == (6, 3, 48, 48) and a.dtype == torch.float32


def test_crop_parameters_stay_in_the_presets_ranges():
    theta = _crop_affines(4000, torch.Generator().manual_seed(0), rotate=False)
    width, height = theta[:, 0, 0].abs(), theta[:, 1, 1]
    area = width * height
    assert area.max() <= 1 + 1e-9
    unclamped = (width < 1) & (height < 1)
    assert area[unclamped].min() >= 0.35 - 1e-9
    ratio = width[unclamped] / height[unclamped]
    assert ratio.min() >= 3 / 4 - 1e-9 and ratio.max() <= 4 / 3 + 1e-9
    # every crop lies inside the image
    assert (theta[:, 0, 2].abs() <= 1 - width + 1e-9).all()
    assert (theta[:, 1, 2].abs() <= 1 - height + 1e-9).all()
    flipped = (theta[:, 0, 0] < 0).double().mean().item()
    assert abs(flipped - 0.5) < 0.04  # 5 standard deviations of 4000 coin flips


def test_light_crops_and_flips_without_leaving_the_image():
    images = gradient_images(64, 64)
    out = augment_batch(images, CONFIG, "light", torch.Generator().manual_seed(1))
    mean, std = torch.tensor(CONFIG.mean), torch.tensor(CONFIG.std)
    pixels = out * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    # no black padding: every value comes from inside the ramps (20..235)
    assert pixels[:, :2].min() >= 20 / 255 - 1e-4 and pixels[:, :2].max() <= 235 / 255 + 1e-4
    red_step = pixels[:, 0, :, 1:] - pixels[:, 0, :, :-1]
    green_step = pixels[:, 1, 1:, :] - pixels[:, 1, :-1, :]
    assert (green_step >= -1e-5).all()  # never upside down
    left_to_right = (red_step >= -1e-5).flatten(1).all(1)
    right_to_left = (red_step <= 1e-5).flatten(1).all(1)
    assert (left_to_right ^ right_to_left).all()  # each image is flipped or not, as a whole
    assert 16 <= int(right_to_left.sum()) <= 48
    # zooms in: a crop covers at most the whole ramp, at least sqrt(0.35 * 3/4) of it
    span = pixels[:, 0, 24, -1] - pixels[:, 0, 24, 0]
    full = (235 - 20) / 255
    assert span.abs().max() <= full + 1e-4
    assert span.abs().min() >= full * math.sqrt(0.35 * 3 / 4) * (47 / 48) * 0.9


def test_standard_jitter_keeps_gray_gray_and_values_in_range():
    images = torch.arange(0, 256, 4, dtype=torch.uint8).view(1, 1, 8, 8).repeat(5, 3, 8, 8)
    out = augment_batch(images, CONFIG, "standard", torch.Generator().manual_seed(2))
    mean, std = torch.tensor(CONFIG.mean), torch.tensor(CONFIG.std)
    pixels = out * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    # hue and saturation turn colours, not grays
    torch.testing.assert_close(pixels[:, 0], pixels[:, 1], rtol=0, atol=1e-4)
    torch.testing.assert_close(pixels[:, 0], pixels[:, 2], rtol=0, atol=1e-4)
    # but the colours do change from image to image
    colour = gradient_images(5, 64)
    jittered = augment_batch(colour, CONFIG, "standard", torch.Generator().manual_seed(2))
    plain = augment_batch(colour, CONFIG, "light", torch.Generator().manual_seed(2))
    assert not torch.allclose(jittered, plain, atol=1e-2)


@pytest.mark.parametrize(
    ("images", "augment", "match"),
    [
        (torch.zeros(2, 3, 8, 8), "light", "uint8"),
        (torch.zeros(2, 8, 8, dtype=torch.uint8), "light", "uint8"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "heavy", "presets"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "light", "Generator"),
    ],
)
def test_augment_refuses_bad_input(images, augment, match):
    with pytest.raises(InvalidParameterError, match=match):
        augment_batch(images, CONFIG, augment)


# ---------------------------------------------------------------------- the loader
def test_loader_covers_every_image_once_per_epoch():
    images = gradient_images(10, 64)
    images[:, 2] = torch.arange(10, dtype=torch.uint8).view(10, 1, 1) * 20  # tag each image
    loader = DeviceLoader(
        images,
        np.arange(10) % 2,
        CONFIG,
        "none",
        4,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(loader) == 3
    epochs = []
    for _ in range(2):
        seen = []
        for x, y in loader:
            blue = x[:, 2, 0, 0] * CONFIG.std[2] + CONFIG.mean[2]
            tags = (blue * 255 / 20).round().long()
            assert torch.equal(y, (tags % 2).float())  # targets travel with their images
            seen += tags.tolist()
        assert sorted(seen) == list(range(10))
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # a new order every epoch
    loader.drop_last = True
    assert len(loader) == 2 and sum(len(y) for _, y in loader) == 8


def test_loader_takes_the_samplers_indices():
    images = gradient_images(6, 64)
    loader = DeviceLoader(images, np.zeros(6), CONFIG, "none", 2, sampler=[5, 1, 3])
    assert len(loader) == 2
    assert [len(y) for _, y in loader] == [2, 1]


# ---------------------------------------------------------------------- the trainer
def test_trainer_auto_keeps_cpu_data_in_loaders_and_checks_its_value():
    assert Trainer(device="cpu").resolved_data_on_device(1) is False
    assert Trainer(device="cpu", data_on_device=True).resolved_data_on_device(10**12) is True
    with pytest.raises(InvalidParameterError, match="data_on_device"):
        Trainer(data_on_device="yes").resolved_data_on_device(1)


def test_trainer_auto_on_cuda_keeps_images_that_fit_the_budget(monkeypatch):
    """On CUDA, "auto" stores at most 2 GiB and a quarter of the free memory."""
    trainer = Trainer(device="auto")
    monkeypatch.setattr(Trainer, "resolved_device", lambda self: torch.device("cuda", 0))
    gib = 2**30
    free = {"bytes": 100 * gib}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (free["bytes"], 141 * gib))
    assert trainer.resolved_data_on_device(2 * gib) is True
    assert trainer.resolved_data_on_device(2 * gib + 1) is False
    free["bytes"] = 4 * gib  # a busy GPU: a quarter of what is free
    assert trainer.resolved_data_on_device(gib) is True
    assert trainer.resolved_data_on_device(gib + 1) is False
    assert Trainer(data_on_device=False).resolved_data_on_device(1) is False


# ---------------------------------------------------------------------- in a fit
PARAMS = dict(
    backbone="tiny_cnn",
    pretrained=False,
    epochs=2,
    fine_tune_epochs=3,
    batch_size=8,
    random_state=5,
    verbose=0,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("device-fit")
    write_class_tree(root / "train", 12, ("a", "b"), seed=1)
    write_class_tree(root / "valid", 6, ("a", "b"), seed=2)
    return root


def fit(data, data_on_device, callbacks=(), fit_kwargs=None, **changes):
    trainer = Trainer(num_workers=0, data_on_device=data_on_device, callbacks=list(callbacks))
    clf = ImageBinaryClassifier(**{**PARAMS, **changes}, trainer=trainer)
    return clf.fit(data, **(fit_kwargs or {}))


def test_fine_tuning_on_the_device_without_augmentation_equals_the_loader_path(data):
    """Same images, same order, same batches: the same weights as the DataLoader path."""
    a = fit(data, False, transforms="none")
    b = fit(data, True, transforms="none")
    for (name, x), y in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    assert [e["valid_loss"] for e in a.history_] == pytest.approx(
        [e["valid_loss"] for e in b.history_], rel=1e-4
    )


def test_fine_tuning_on_the_device_is_repeatable_and_uses_the_stored_images(data, monkeypatch):
    import binaryvision.transforms.on_device as device_data

    calls = []
    real = device_data.store_images

    def spy(items, config, augment, trainer, **kw):
        calls.append((len(items), augment))
        return real(items, config, augment, trainer, **kw)

    monkeypatch.setattr(device_data, "store_images", spy)
    a = fit(data, True, transforms="standard")
    assert calls == [(24, "standard"), (12, "none")]  # train once, valid once, not per epoch
    b = fit(data, True, transforms="standard")
    for x, y in zip(a.model_.state_dict().values(), b.model_.state_dict().values()):
        assert torch.equal(x, y)
    c = fit(data, False, transforms="standard")
    assert any(  # the Pillow path draws other augmentations
        not torch.equal(x, y)
        for x, y in zip(a.model_.state_dict().values(), c.model_.state_dict().values())
    )


def test_device_data_with_your_own_transforms(data):
    tf = build_transforms(CONFIG, "light")
    own = Transforms(tf.train, tf.eval, tf.decode_size)
    with pytest.raises(InvalidParameterError, match="data_on_device=True"):
        fit(data, True, transforms=own)
    assert fit(data, "auto", transforms=own).history_[-1]["phase"] == "fine_tune"


class StopAt(Callback):
    def on_batch_start(self, trainer, state):
        if state.phase == "fine_tune" and state.epoch == 2:
            raise KeyboardInterrupt


def test_resume_on_the_device_continues_the_same_augmentations(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(data, True, callbacks=[StopAt()], fit_kwargs=dict(checkpoint_dir=ckpt))
    resumed = fit(data, True, fit_kwargs=dict(checkpoint_dir=ckpt, resume=True))
    whole = fit(data, True)
    for x, y in zip(resumed.model_.state_dict().values(), whole.model_.state_dict().values()):
        assert torch.equal(x, y)
