"""Per-image transforms for decoded (PIL) images, written to match torchvision's definitions.

They run in DataLoader worker processes and return uint8 CHW tensors: a uint8 batch is a quarter
of the bytes of a float one to move to the device, where `Normalize` turns it into floats.
Randomness comes from an explicit numpy Generator so an image's crop is a pure function of its seed.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

# ImageNet's per-channel statistics (the values torchvision's reference scripts use).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_resized_crop_box(width: int, height: int, rng: np.random.Generator,
                            scale: tuple[float, float] = (0.08, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a crop as torchvision's RandomResizedCrop.get_params draws it:
    up to 10 tries of a random area fraction and log-uniform aspect ratio, else a central crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Image.Image:
    left, top, w, h = random_resized_crop_box(image.width, image.height, rng, scale, ratio)
    return image.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BILINEAR)


def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size`, aspect kept (torchvision Resize(int): the long side is truncated)."""
    width, height = image.size
    if width <= height:
        new = (size, int(size * height / width))
    else:
        new = (int(size * width / height), size)
    return image if new == image.size else image.resize(new, Image.Resampling.BILINEAR)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    if width < size or height < size:
        raise ValueError(f"image of {width}x{height} is smaller than the {size}x{size} centre crop")
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def to_uint8_chw(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def train_transform(image: Image.Image, size: int, rng: np.random.Generator,
                    scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """RandomResizedCrop(size) + RandomHorizontalFlip(), as uint8 (3, size, size)."""
    x = to_uint8_chw(random_resized_crop(image, size, rng, scale, ratio))
    return x.flip(2) if rng.random() < 0.5 else x


def eval_transform(image: Image.Image, size: int, resize: int) -> torch.Tensor:
    """Resize(resize) + CenterCrop(size), as uint8 (3, size, size)."""
    return to_uint8_chw(center_crop(resize_shorter(image, resize), size))


class Normalize:
    """uint8 (N, 3, H, W) on the device -> float32 (x / 255 - mean) / std, in two in-place ops."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, device: torch.device | str = "cpu"):
        self.shift = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.scale = 1.0 / (torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().sub_(self.shift).mul_(self.scale)
