"""Background Matting (Sengupta, Jayaram, Curless, Seitz, Kemelmacher-Shlizerman, CVPR 2020).

The generator is the official ``ResnetConditionHR`` (``networks.py`` of
senguptaumd/Background-Matting), layer for layer, with one class per part as the paper names it:

- :class:`ImageEncoder`: reflect-pad 3, 7x7 conv 3 -> 64, two 3x3 stride-2 convs (64 -> 128,
  kept as the foreground head's skip, then 128 -> 256), each with batch norm and ReLU;
- :class:`CueEncoder` (three, separate weights): the same layout for the captured background
  B' (3 channels), the soft segmentation S (1) and the motion cue M (4 grey frames);
- :class:`ContextSwitchingBlock`: one :class:`Selector` per cue (1x1 conv 512 -> 64 without
  bias, BN, ReLU on concat(image feature, cue feature)), then the combinator (1x1 conv
  256 + 3 x 64 -> 256 without bias, BN, ReLU on concat(image feature, three selections));
- 7 :class:`ResnetBlock` s shared, then 3 for the alpha branch and 3 for the foreground branch;
- :class:`AlphaHead`: two rounds of bilinear x2 upsampling (align_corners) + 3x3 conv halving
  the channels + BN + ReLU, then reflect-pad 3, 7x7 conv to 1 channel and tanh;
- :class:`ForegroundHead`: upsample + 3x3 conv 256 -> 128 + BN + ReLU, concatenated with the
  image encoder's 1/2-resolution feature, upsample + 3x3 conv 256 -> 64 + BN + ReLU,
  reflect-pad 3 and 7x7 conv to 3 channels (no activation).

Every input is in [-1, 1] (``x * 2 - 1`` of [0, 1] values); alpha comes out in [-1, 1].
Initialisation is the official ``conv_init``: Xavier-uniform with gain sqrt(2) for convs,
bias 0, batch-norm weight ~ N(1, 0.2) and bias 0.

The motion selector: the maintainer states (issues #36, #38) that the released weights and
the paper's results came from a forward that fed the motion selector the *background*
features, so M was never used. ``motion_wiring="corrected"`` (default) feeds it the motion
features; ``"published"`` reproduces the released model and is what ``weights import bgm-v1``
switches on.

:class:`PatchDiscriminator` is the adversarial stage's critic: pix2pixHD's ``NLayerDiscriminator``
as ``MultiscaleDiscriminator(3, num_D=1, norm=InstanceNorm2d, n_layers=3)`` builds it, LSGAN
(no sigmoid).

Parameter names follow the paper's parts; ``weights.py`` maps the official names onto them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mattecli.families.registry import register_family

MOTION_WIRINGS = ("corrected", "published")
CROP_MODES = ("subject", "full")
#: network resolution of the official inference script (``-res 512``)
RESOLUTION = 512
STRIDE = 4  # two stride-2 convolutions


def conv_init(module: nn.Module) -> None:
    """The official ``conv_init``, applied to every sub-module."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2.0))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.zeros_(m.bias)


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, bias: bool = True) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=bias), nn.BatchNorm2d(cout),
            nn.ReLU(True)]


class ImageEncoder(nn.Module):
    """I -> (1/2-resolution feature for the foreground skip, 1/4-resolution feature)."""

    def __init__(self, ngf: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.BatchNorm2d(ngf),
                                    nn.ReLU(True), *_conv_bn_relu(ngf, 2 * ngf, 3, 2))
        self.stage2 = nn.Sequential(*_conv_bn_relu(2 * ngf, 4 * ngf, 3, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.stage1(x)
        return half, self.stage2(half)


class CueEncoder(nn.Sequential):
    """B', S or M -> 4*ngf channels at 1/4 resolution (same layout as the image encoder)."""

    def __init__(self, in_channels: int, ngf: int = 64) -> None:
        super().__init__(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.BatchNorm2d(ngf), nn.ReLU(True),
                         *_conv_bn_relu(ngf, 2 * ngf, 3, 2), *_conv_bn_relu(2 * ngf, 4 * ngf, 3, 2))


class Selector(nn.Sequential):
    """How much of one cue to use here: 1x1 conv on concat(image, cue) features, BN, ReLU."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__(*_conv_bn_relu(2 * channels, out_channels, 1, bias=False))


class ContextSwitchingBlock(nn.Module):
    """Three selectors (background, segmentation, motion) and the 1x1 combinator."""

    def __init__(self, channels: int = 256, nf_part: int = 64, motion_wiring: str = "corrected") -> None:
        super().__init__()
        if motion_wiring not in MOTION_WIRINGS:
            raise ValueError(f"motion_wiring must be one of {', '.join(MOTION_WIRINGS)}, not {motion_wiring!r}")
        self.motion_wiring = motion_wiring
        self.background_selector = Selector(channels, nf_part)
        self.segmentation_selector = Selector(channels, nf_part)
        self.motion_selector = Selector(channels, nf_part)
        self.combinator = nn.Sequential(*_conv_bn_relu(channels + 3 * nf_part, channels, 1, bias=False))

    def forward(self, image: torch.Tensor, background: torch.Tensor, segmentation: torch.Tensor,
                motion: torch.Tensor) -> torch.Tensor:
        # The published model's forward hands the background features to the motion selector.
        motion_input = background if self.motion_wiring == "published" else motion
        selected = [self.background_selector(torch.cat((image, background), 1)),
                    self.segmentation_selector(torch.cat((image, segmentation), 1)),
                    self.motion_selector(torch.cat((image, motion_input), 1))]
        return self.combinator(torch.cat([image, *selected], 1))


class ResnetBlock(nn.Module):
    """pix2pixHD's residual block: reflect-pad, 3x3 conv, BN, ReLU, reflect-pad, 3x3 conv, BN; x + that."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.BatchNorm2d(channels),
                                        nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                        nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _up_conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), *_conv_bn_relu(cin, cout, 3)]


class AlphaHead(nn.Sequential):
    """1/4-resolution features -> alpha in [-1, 1] at full resolution."""

    def __init__(self, ngf: int = 64) -> None:
        super().__init__(*_up_conv(4 * ngf, 2 * ngf), *_up_conv(2 * ngf, ngf), nn.ReflectionPad2d(3),
                         nn.Conv2d(ngf, 1, 7), nn.Tanh())


class ForegroundHead(nn.Module):
    """1/4-resolution features + the image encoder's 1/2-resolution skip -> F (3 channels)."""

    def __init__(self, ngf: int = 64) -> None:
        super().__init__()
        self.up = nn.Sequential(*_up_conv(4 * ngf, 2 * ngf))
        self.out = nn.Sequential(*_up_conv(4 * ngf, ngf), nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat((self.up(x), skip), 1))


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the official input scaling (``x / 255 * 2 - 1``)."""
    return x * 2.0 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) / 2.0


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """Bx3xHxW -> Bx1xHxW luma (ITU-R 601, as OpenCV's RGB2GRAY)."""
    w = rgb.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


class _CueShapes(dict):
    """``export_input_shapes`` for the export runner: the default shape with the cue's channel count."""

    def get(self, name, default=None):  # type: ignore[override]
        if name not in self or default is None:
            return default
        return (default[0], self[name], *default[2:])


class BackgroundMatting(nn.Module):
    """``ResnetConditionHR``: (I, B', S, M) in [-1, 1] -> (alpha in [-1, 1], F)."""

    family = "bgm"
    guidance = "background"
    #: cues ``predict`` accepts beside the plate (``LearnedMethod`` passes them when it has them)
    cues = ("segmentation", "motion")
    export_inputs = (("image", "Bx3xHxW RGB in [0, 1]"), ("background", "Bx3xHxW plate in [0, 1]"),
                     ("segmentation", "Bx1xHxW soft segmentation in [0, 1]"),
                     ("motion", "Bx4xHxW grey neighbour frames in [0, 1]"))
    #: the exported graph resizes to the network resolution itself: any size works
    size_multiple = 1
    export_notes = ("full-frame variant: the whole frame is resized to the network resolution; the official "
                    "subject crop, largest-component clean-up and paste-back stay outside the graph")

    def __init__(self, ngf: int = 64, nf_part: int = 64, n_blocks1: int = 7, n_blocks2: int = 3,
                 motion_frames: int = 4, motion_wiring: str = "corrected", resolution: int = RESOLUTION,
                 crop: str = "subject", margin: float = 0.1, discriminator: bool = False,
                 largest_component: bool = True) -> None:
        super().__init__()
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, not {crop!r}")
        if resolution < 16 or resolution % STRIDE:
            raise ValueError(f"resolution must be a multiple of {STRIDE} and at least 16, not {resolution}")
        self.config: dict[str, Any] = {"ngf": ngf, "nf_part": nf_part, "n_blocks1": n_blocks1,
                                       "n_blocks2": n_blocks2, "motion_frames": motion_frames,
                                       "motion_wiring": motion_wiring, "resolution": resolution, "crop": crop,
                                       "margin": margin, "discriminator": bool(discriminator),
                                       "largest_component": bool(largest_component)}
        self.largest_component = bool(largest_component)
        self.motion_frames = motion_frames
        self.export_input_shapes = _CueShapes(segmentation=1, motion=motion_frames)
        self.resolution = resolution
        self.crop = crop
        self.margin = margin
        self.image_encoder = ImageEncoder(ngf)
        self.background_encoder = CueEncoder(3, ngf)
        self.segmentation_encoder = CueEncoder(1, ngf)
        self.motion_encoder = CueEncoder(motion_frames, ngf)
        self.context_switch = ContextSwitchingBlock(4 * ngf, nf_part, motion_wiring)
        self.decoder = nn.Sequential(*[ResnetBlock(4 * ngf) for _ in range(n_blocks1)])
        self.alpha_decoder = nn.Sequential(*[ResnetBlock(4 * ngf) for _ in range(n_blocks2)])
        self.foreground_decoder = nn.Sequential(*[ResnetBlock(4 * ngf) for _ in range(n_blocks2)])
        self.alpha_head = AlphaHead(ngf)
        self.foreground_head = ForegroundHead(ngf)
        conv_init(self)
        #: the adversarial stage's critic (absent from an ``adobe`` network; unused by ``predict``)
        self.discriminator = Critic() if discriminator else None

    @property
    def motion_wiring(self) -> str:
        return self.context_switch.motion_wiring

    def forward(self, image: torch.Tensor, background: torch.Tensor, segmentation: torch.Tensor,
                motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All inputs in [-1, 1], sides multiples of 4; returns (alpha in [-1, 1], F)."""
        half, feat = self.image_encoder(image)
        fused = self.context_switch(feat, self.background_encoder(background),
                                    self.segmentation_encoder(segmentation), self.motion_encoder(motion))
        shared = self.decoder(fused)
        alpha = self.alpha_head(self.alpha_decoder(shared))
        fg = self.foreground_head(self.foreground_decoder(shared), half)
        return alpha, fg

    # --- inference ------------------------------------------------------------------------

    def run_at_resolution(self, image: torch.Tensor, background: torch.Tensor, segmentation: torch.Tensor,
                          motion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs in [0, 1] of any size -> resized to the network resolution, run, resized back.

        Returns alpha in [0, 1] and F in [0, 1] (F := I where alpha > 0.95, as the official
        script does). Traceable: only shape arithmetic in Python.
        """
        h, w = image.shape[-2:]
        r = self.resolution

        def down(x: torch.Tensor) -> torch.Tensor:
            # always resized (an identity at the network size): a traced graph must not depend on the size
            return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)

        alpha, fg = self(to_signed(down(image)), to_signed(down(background)), to_signed(down(segmentation)),
                         to_signed(down(motion)))
        alpha, fg = to_unit(alpha), to_unit(fg)
        alpha = F.interpolate(alpha, size=(h, w), mode="bilinear", align_corners=False)
        fg = F.interpolate(fg, size=(h, w), mode="bilinear", align_corners=False)
        alpha = alpha.clamp(0.0, 1.0)
        fg = torch.where(alpha > 0.95, image, fg.clamp(0.0, 1.0))
        return alpha, fg

    def export_forward(self, image: torch.Tensor, background: torch.Tensor, segmentation: torch.Tensor,
                       motion: torch.Tensor) -> dict[str, torch.Tensor]:
        alpha, fg = self.run_at_resolution(image, background, segmentation, motion)
        return {"alpha": alpha, "fg": fg}

    @torch.no_grad()
    def predict(self, image: torch.Tensor, guidance: torch.Tensor, segmentation: torch.Tensor | None = None,
                motion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The registry contract plus the cues: image and plate Bx3xHxW in [0, 1]; ``segmentation``
        Bx1xHxW soft mask in [0, 1] (default: from the plate difference, see ``cues.py``);
        ``motion`` Bx4xHxW grey frames in [0, 1] (default: four copies of the grey image, the
        official recipe for stills).

        The official inference recipe: a square box around the subject (10% margin, side 1.2x
        the larger extent of the segmentation) cut out of every input, run at the network
        resolution, pasted back into a zero canvas; ``crop="full"`` runs the whole frame.
        Then (``largest_component``, default on) the largest connected component of alpha > 0.05
        is kept and F is zeroed where alpha < 0.01, as in ``test_background-matting_image.py``.
        """
        from mattecli.families.bgm.cues import largest_component, segmentation_from_plate, subject_box

        if segmentation is None:
            segmentation = torch.stack([torch.from_numpy(segmentation_from_plate(_uint8(i), _uint8(b)))[None]
                                        for i, b in zip(image, guidance)]).to(image)
        if motion is None:
            motion = grey(image).expand(-1, self.motion_frames, -1, -1)
        b, _, h, w = image.shape
        alphas, fgs = [], []
        for k in range(b):
            box = (0, h, 0, w) if self.crop == "full" else subject_box(segmentation[k, 0].float().cpu().numpy(),
                                                                        self.margin)
            y0, y1, x0, x1 = box
            part = [t[k:k + 1, :, y0:y1, x0:x1] for t in (image, guidance, segmentation, motion)]
            a, f = self.run_at_resolution(*part)
            alpha = image.new_zeros((1, 1, h, w))
            fg = image.new_zeros((1, 3, h, w))
            alpha[..., y0:y1, x0:x1] = a
            fg[..., y0:y1, x0:x1] = f
            if self.largest_component:
                keep = torch.from_numpy(largest_component(alpha[0, 0].float().cpu().numpy() > 0.05)).to(alpha.device)
                alpha = alpha * keep.to(alpha.dtype)
                fg = torch.where(alpha < 0.01, torch.zeros_like(fg), fg)
            alphas.append(alpha)
            fgs.append(fg)
        return {"alpha": torch.cat(alphas), "fg": torch.cat(fgs)}


def _uint8(chw: torch.Tensor) -> np.ndarray:
    return (chw.float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pixHD ``NLayerDiscriminator``, n_layers 3, InstanceNorm, LSGAN: no sigmoid).

    4x4 convolutions with padding 2: 3 -> 64 stride 2 + LeakyReLU(0.2); 64 -> 128 s2, 128 -> 256 s2,
    256 -> 512 s1, each + InstanceNorm + LeakyReLU; 512 -> 1 s1. Input in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True)]
        nf = ndf
        for n in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            layers += [nn.Conv2d(prev, nf, 4, 2 if n < n_layers else 1, 2), nn.InstanceNorm2d(nf),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(nf, 1, 4, 1, 2))
        self.model = nn.Sequential(*layers)
        conv_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Critic(nn.Module):
    """The PatchGAN with its own Adam and G-step counter. Adam's moments live in buffers, so they
    are saved with the network and ``--resume`` restores the discriminator's optimiser too."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = PatchDiscriminator()
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_loss", torch.zeros(()))
        self.register_buffer("adam_step", torch.zeros(()))
        for i, p in enumerate(self.patch.parameters()):
            self.register_buffer(f"adam_exp_avg_{i}", torch.zeros_like(p))
            self.register_buffer(f"adam_exp_avg_sq_{i}", torch.zeros_like(p))
        self.optimizer: torch.optim.Optimizer | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch(x)

    def make_optimizer(self, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(self.patch.parameters(), lr=lr, betas=betas)
            if float(self.adam_step) > 0:
                for i, p in enumerate(self.patch.parameters()):
                    self.optimizer.state[p] = {"step": self.adam_step.detach().clone().float().cpu(),
                                               "exp_avg": getattr(self, f"adam_exp_avg_{i}").clone(),
                                               "exp_avg_sq": getattr(self, f"adam_exp_avg_sq_{i}").clone()}
        return self.optimizer

    def step(self, loss: torch.Tensor) -> None:
        """One discriminator update on ``loss``; its Adam state is copied into the buffers."""
        assert self.optimizer is not None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for i, p in enumerate(self.patch.parameters()):
                state = self.optimizer.state[p]
                getattr(self, f"adam_exp_avg_{i}").copy_(state["exp_avg"])
                getattr(self, f"adam_exp_avg_sq_{i}").copy_(state["exp_avg_sq"])
                self.adam_step.fill_(float(state["step"]))
            self.last_loss.fill_(float(loss.detach()))


@register_family("bgm")
def build_bgm(ngf: int = 64, nf_part: int = 64, n_blocks1: int = 7, n_blocks2: int = 3, motion_frames: int = 4,
              motion_wiring: str = "corrected", resolution: int = RESOLUTION, crop: str = "subject",
              margin: float = 0.1, discriminator: bool = False, largest_component: bool = True) -> BackgroundMatting:
    return BackgroundMatting(ngf=ngf, nf_part=nf_part, n_blocks1=n_blocks1, n_blocks2=n_blocks2,
                             motion_frames=motion_frames, motion_wiring=motion_wiring, resolution=resolution,
                             crop=crop, margin=margin, discriminator=discriminator,
                             largest_component=largest_component)
