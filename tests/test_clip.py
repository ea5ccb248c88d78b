"""The CLIP baselines with a small, randomly initialised CLIP (open_clip's architecture and real tokenizer); the
pretrained weights are never downloaded here."""
import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from oecl_core.config import resolve_config  # noqa: E402
from oecl_core.data.fetch import ChecksumError  # noqa: E402
from oecl_core.methods import clip as clip_method  # noqa: E402
from oecl_core.runner import run_experiment, score_run  # noqa: E402
from oecl_core.train import train  # noqa: E402

from test_baselines import separable_split  # noqa: E402


def tiny_clip():
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = CLIP(embed_dim=16, vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
                 quick_gelu=True)
    return model, open_clip.get_tokenizer(clip_method.CLIP_ARCH), 32


@pytest.fixture
def no_download(monkeypatch):
    monkeypatch.setattr(clip_method, "clip_backbone", tiny_clip)


def test_zero_shot_clip_scores_the_class_prompt_probability_without_training(tmp_path, no_download, one_torch_thread):
    cfg = resolve_config("smoke", "digits", "clip", cls=3, device="cpu")
    assert cfg.epochs == 0 and cfg.oe == "none"
    metrics = run_experiment(cfg, tmp_path, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()
    assert set(metrics["auroc"]) == {"p_class_prompt"} and metrics["conv_weight_change"] is None
    assert not metrics["undertrained"]

    # by hand: softmax over 100 x cosine to "a photo of a 3" and "a photo of something", class prompt first
    model, tokenizer, _ = tiny_clip()
    net = clip_method.ClipPromptNet(model, tokenizer, 32, "3").eval()
    x = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        text = F.normalize(model.encode_text(tokenizer(["a photo of a 3", "a photo of something"])), dim=1)
        resized = F.interpolate(x, size=32, mode="bicubic").clamp(0, 1)
        image = F.normalize(model.encode_image((resized - net.mean) / net.std), dim=1)
        expected = F.softmax(100 * image @ text.t(), dim=1)[:, 0]
        got = clip_method.ZeroShotCLIP().normality(net, net(x))
    assert torch.allclose(got, expected, atol=1e-5)


def test_bce_cl_fine_tunes_the_image_encoder_resumes_exactly_and_ranks(tmp_path, no_download, one_torch_thread):
    cfg = resolve_config("smoke", "digits", "bce_cl", epochs=4, batch_size=16, oe_batch_size=16, lr=1e-3,
                         log_samples=16, checkpoint_every=100, device="cpu")
    assert cfg.optimizer == "sgd_nesterov" and cfg.lr_milestones == (50, 60, 70, 75)
    split = separable_split()
    whole = train(cfg, split, tmp_path / "whole", progress=False)
    train(cfg, split, tmp_path / "resumed", stop_after_epoch=2, progress=False)
    resumed = train(cfg, split, tmp_path / "resumed", progress=False)
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in whole.log]
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    text_before = clip_method.ClipPromptNet(*tiny_clip()[:2], 32, "0").text
    assert torch.equal(whole.model.text, text_before)  # the prompt embeddings stay frozen
    metrics = score_run(cfg, tmp_path / "whole", split=split, model=whole.model, progress=False)
    assert metrics["auroc"]["p_class_prompt"] > 0.9


def test_weights_are_checksummed_at_first_use_and_a_changed_file_is_refused(tmp_path, monkeypatch):
    weights = tmp_path / "cache" / "open_clip_model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"first download")
    monkeypatch.setattr(open_clip, "download_pretrained", lambda cfg, cache_dir=None: str(weights))
    monkeypatch.setattr(open_clip, "create_model", lambda arch, pretrained: tiny_clip()[0])
    clip_method.clip_backbone()
    assert (weights.parent / "CHECKSUMS.json").exists()
    clip_method.clip_backbone()  # same file: accepted
    weights.write_bytes(b"tampered or truncated")
    with pytest.raises(ChecksumError, match="differs from the .* recorded"):
        clip_method.clip_backbone()


def test_prompts_per_benchmark_and_the_multi_prompt_loss_by_hand():
    from oecl_core.methods.clip import BCECLIP, normal_class_names

    names = [str(d) for d in range(10)]
    one = resolve_config("smoke", "digits", "bce_cl", cls=3)
    assert normal_class_names(one) == ["3"]
    loo = resolve_config("smoke", "digits", "bce_cl", cls=3, benchmark="leave_one_out")
    assert normal_class_names(loo) == [n for n in names if n != "3"]
    with pytest.raises(ValueError, match="few_shot"):
        normal_class_names(resolve_config("smoke", "digits", "bce_cl", cls=-1, benchmark="few_shot"))
    z = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [1.0, 1.0, 1.0]])  # 2 normal prompts + "something"
    is_oe = torch.tensor([False, False, True])
    log_p = torch.log_softmax(z, dim=1)
    expected = (-max(log_p[0, 0], log_p[0, 1]) - max(log_p[1, 0], log_p[1, 1]) - log_p[2, 2]) / 3
    assert BCECLIP().objective(z, is_oe).item() == pytest.approx(expected.item(), rel=1e-6)
    assert BCECLIP().normality(None, z).tolist() == pytest.approx((1 - torch.softmax(z, dim=1)[:, 2]).tolist())
