"""The codec's stored bytes decode to exactly what its own forward pass quantizes, at any image size,
and the charged bytes are those of the tensors kept."""

import pytest
import torch

from braincl.codec import build_codec, encode, freeze, psnr, quantized_forward, to_uint8, train_codec


def digit_like(n: int, size=(28, 28), seed: int = 0) -> torch.Tensor:
    """Blurry strokes on black: cheap images with MNIST-like statistics."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((n, 1, *size), generator=g) > 0.85).float()
    x = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2) * 3
    return to_uint8(x)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    images = digit_like(24)
    codec = build_codec(1, 8, 8)
    stats = train_codec(codec, images, lmbda=0.01, steps=8, batch_size=8, lr=3e-3, progress=False)
    return codec, images, stats


def test_cues_decode_to_the_quantized_forward_output(trained):
    codec, images, _ = trained
    completion = freeze(codec, (28, 28), "fp16")
    y_forward, x_forward = quantized_forward(codec, images)
    strings, shape = encode(codec, images)
    assert shape == (2, 2)  # 28 is padded to 32, then downsampled 16x
    y_decoded = completion.decode_latents(strings, shape)
    assert torch.equal(y_decoded, y_forward)
    assert torch.equal(completion.synthesize(y_decoded), x_forward)
    recalled = completion.recall(strings, shape, batch_size=5)
    assert recalled.shape == images.shape and recalled.dtype == torch.uint8
    assert torch.equal(recalled, to_uint8(x_forward))


def test_fp16_storage_is_what_is_charged_and_used(trained):
    codec, _, _ = trained
    completion = freeze(codec, (28, 28), "fp16")
    floats = [t for t in list(completion.g_s.parameters()) + list(completion.g_s.buffers()) if t.is_floating_point()]
    assert all(torch.equal(t, t.half().float()) for t in floats)  # decoding uses the fp16 values
    assert completion.decoder_nbytes() == 2 * sum(t.numel() for t in floats)
    eb = completion.entropy
    stored = [eb._quantized_cdf, eb._offset, eb._cdf_length, eb.quantiles, eb.target, eb.likelihood_lower_bound.bound]
    assert completion.tables_nbytes() == sum(t.numel() * t.element_size() for t in stored)
    assert len(list(eb.parameters())) == 1  # only the quantiles: the density network is dropped


def test_odd_sizes_and_rgb_round_trip():
    torch.manual_seed(1)
    images = torch.randint(0, 256, (3, 3, 20, 37), dtype=torch.uint8)
    codec = build_codec(3, 4, 4)
    train_codec(codec, images, lmbda=0.01, steps=1, batch_size=3, progress=False)
    completion = freeze(codec, (20, 37), "fp32")
    strings, shape = encode(codec, images)
    assert shape == (2, 3)
    y_forward, x_forward = quantized_forward(codec, images)
    assert torch.equal(completion.decode_latents(strings, shape), y_forward)
    assert completion.recall(strings, shape).shape == images.shape


def test_training_lowers_distortion():
    images = digit_like(32, seed=3)
    torch.manual_seed(0)
    codec = build_codec(1, 8, 8)
    completion = freeze(codec, (28, 28))
    before = psnr(images, completion.recall(*encode(codec, images)))
    codec.g_s.requires_grad_(True)
    train_codec(codec, images, lmbda=0.01, steps=40, batch_size=16, lr=5e-3, progress=False)
    completion = freeze(codec, (28, 28))
    after = psnr(images, completion.recall(*encode(codec, images)))
    assert after > before + 3
