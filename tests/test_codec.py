"""The codec's stored bytes decode to exactly what its own forward pass quantizes, at any image size,
and the charged bytes are those of the tensors kept."""

import copy

import pytest
import torch

from braincl.codec import (build_codec, encode, freeze, pack_tables, psnr, quantized_forward, tables_nbytes_bound,
                           to_uint8, train_codec, unpack_tables)


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
    assert completion.tables_nbytes() == len(pack_tables(eb))
    assert len(list(eb.parameters())) == 1  # only the quantiles: the density network is dropped


def test_packed_tables_rebuild_exactly_and_decode_bit_identically(trained):
    codec, images, _ = trained
    freeze(codec, (28, 28), "fp16", max_cdf_length=48)
    eb = codec.entropy_bottleneck  # the codec's own tables, which encoded the strings
    packed = pack_tables(eb)
    rebuilt = unpack_tables(packed)
    for name in ("_quantized_cdf", "_offset", "_cdf_length"):
        a, b = getattr(eb, name), getattr(rebuilt, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert torch.equal(rebuilt.quantiles[:, 0, 1], eb.quantiles[:, 0, 1])  # the medians, exactly
    strings, shape = encode(codec, images)
    assert torch.equal(rebuilt.decompress(strings, shape), eb.decompress(strings, shape))
    assert torch.equal(rebuilt.decompress(strings, shape), quantized_forward(codec, images)[0])
    # the charged form: 4 B header, fp32 medians, 1-byte offsets and lengths here, 2 B per CDF value
    M, symbols = eb._cdf_length.numel(), int((eb._cdf_length - 2).sum())
    assert len(packed) == 4 + 4 * M + M + M + 2 * symbols
    int32_form = 4 * (eb._quantized_cdf.numel() + eb._offset.numel() + eb._cdf_length.numel())
    assert len(packed) < int32_form / 1.5
    assert tables_nbytes_bound(M, 48) >= len(packed)


def test_a_table_that_is_not_a_16_bit_cdf_is_refused(trained):
    codec, _, _ = trained
    eb = copy.deepcopy(codec.entropy_bottleneck)
    eb.update(force=True)
    eb._quantized_cdf[0, 0] = 5
    with pytest.raises(ValueError, match="quantized CDF"):
        pack_tables(eb)
    with pytest.raises(ValueError, match="left over"):
        unpack_tables(pack_tables(codec.entropy_bottleneck) + b"x")


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


def test_rate_distortion_loss_under_both_conventions():
    from braincl.codec import rate_distortion_loss

    x = torch.full((2, 1, 4, 4), 0.5)
    out = {"x_hat": x + 0.1, "likelihoods": {"y": torch.full((2, 3, 2, 2), 0.5)}}
    bpp = 2 * 3 * 2 * 2 / (2 * 4 * 4)  # one bit per latent symbol, over the pixels
    mse = 0.01
    compressai = rate_distortion_loss(out, x, 0.02)
    assert compressai["bpp"].item() == pytest.approx(bpp) and compressai["mse"].item() == pytest.approx(mse)
    assert compressai["loss"].item() == pytest.approx(0.02 * 255**2 * mse + bpp)
    assert rate_distortion_loss(out, x, 0.02, "rate")["loss"].item() == pytest.approx(mse + 0.02 * bpp)
    with pytest.raises(ValueError, match="lambda_convention"):
        rate_distortion_loss(out, x, 0.02, "paper")


def mean_cue_bytes(lmbda: float, convention: str) -> float:
    images = digit_like(32, size=(16, 16), seed=5)
    torch.manual_seed(0)
    codec = build_codec(1, 8, 4, depth=2)
    train_codec(codec, images, lmbda=lmbda, steps=40, batch_size=16, lr=1e-2, aux_lr=1e-1, progress=False,
                lambda_convention=convention)
    freeze(codec, (16, 16), "fp32", 48)
    strings, _ = encode(codec, images)
    return sum(map(len, strings)) / len(strings)


def test_a_higher_lambda_gives_smaller_cues_under_rate_and_larger_under_compressai():
    assert mean_cue_bytes(10.0, "rate") < mean_cue_bytes(1e-4, "rate")
    assert mean_cue_bytes(1.0, "compressai") > mean_cue_bytes(1e-4, "compressai")
    with pytest.raises(ValueError, match="lambda_convention"):
        train_codec(build_codec(1, 4, 4), digit_like(2), lmbda=0.01, steps=1, progress=False, lambda_convention="bpp")


def test_braincl_takes_lambda_convention_from_its_params():
    from braincl import config

    from conftest import tiny_overrides

    assert config.load(None, tiny_overrides("braincl"))["method"]["params"]["lambda_convention"] == "compressai"
    cfg = config.load(None, tiny_overrides("braincl", **{"method.params.lambda_convention": "rate"}))
    assert cfg["method"]["params"]["lambda_convention"] == "rate"
    with pytest.raises(config.ConfigError, match="lambda_convention"):
        config.load(None, tiny_overrides("braincl", **{"method.params.lambda_convention": "paper"}))
