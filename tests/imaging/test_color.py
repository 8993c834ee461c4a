

def test_luma_and_chroma_apart_give_the_joined_conversion_channels_last():
    import torch

    from superres.imaging.color import luma_chroma_to_rgb_torch, ycbcr_to_rgb_torch

    ycbcr = torch.rand(2, 3, 9, 7) * 200 + 20
    rgb = luma_chroma_to_rgb_torch(ycbcr[:, :1].contiguous(), ycbcr[:, 1:].contiguous())
    torch.testing.assert_close(rgb, ycbcr_to_rgb_torch(ycbcr), atol=1e-5, rtol=0)
    assert rgb.permute(0, 2, 3, 1).is_contiguous()  # already in the layout pixels are stored in
