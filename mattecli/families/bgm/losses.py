"""Background Matting's losses (``loss_functions.py``, ``train_adobe.py``, ``train_real_fixed.py``).

Every term works on the network's [-1, 1] tensors and is the official ``normalized_l1_loss``:
per sample, sum |a*m - b*m| / (sum m + 1e-6) (a sample whose mask is empty adds 0), averaged
over the batch, with ONE-channel masks as the official scripts build them: the colour terms
(F, the composite) sum three channels per mask pixel, which weighs them 3x an alpha term
(effective Adobe weights 1 : 6 : 3 : 1 for alpha : F : comp : gradient).

- ``adobe`` (supervised): L1(alpha) + 2 * L1(F, where GT alpha > -0.99) + L1(I, comp) + Sobel
  gradient L1, with comp = alpha_pred' * F_c + (1 - alpha_pred') * B, alpha_pred' = (alpha_pred + 1) / 2,
  F_c = I where alpha_pred > 0.95 (on the [-1, 1] scale) else F_pred, and B the *true*
  background (not the perturbed plate the network saw). Masks are all ones except F's.
- ``real`` (self-supervised, teacher-student): L_alpha = L1(alpha_t, alpha) + 0.5 * gradient L1;
  L_F = L1(F_t, F) where alpha_t > -0.98; L_comp = L1(I, alpha' F + (1 - alpha') B') where the
  raw segmentation > 0.95; LSGAN (MSE to 1 / 0 labels); L_G = L_GAN + wt * 0.05 * (L_comp +
  L_alpha + L_F), wt = 0.5 ** ((epoch + 1) // 2); L_D = 0.5 * (MSE(D(real), 1) + MSE(D(fake), 0)).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

L1_EPS = 1e-6
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
FG_WEIGHT = 2.0
PSEUDO_WEIGHT = 0.05
REAL_GRADIENT_WEIGHT = 0.5


def normalized_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The official ``normalized_l1_loss``: per sample, sum |a*m - b*m| over every channel,
    divided by the sum of the mask as given. The official masks have ONE channel (``alpha >
    -0.99``, ``ones(alpha.shape)``, ``seg_gt > 0.95``), so a 3-channel colour term counts
    three values per mask pixel; ``mask`` None is that one-channel mask of ones."""
    a = a.float()
    b = b.float()
    if mask is None:
        mask = a.new_ones((a.shape[0], 1, *a.shape[2:]))
    mask = mask.to(a.dtype)
    area = mask.flatten(1).sum(1)
    per = (a * mask - b * mask).abs().flatten(1).sum(1) / (area + L1_EPS)
    per = torch.where(area > 0, per, torch.zeros_like(per))
    return per.sum() / a.shape[0]


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    kx = x.new_tensor(SOBEL_X).view(1, 1, 3, 3)
    ky = x.new_tensor(SOBEL_Y).view(1, 1, 3, 3)
    return F.conv2d(x, kx, padding=1), F.conv2d(x, ky, padding=1)


def gradient_l1(alpha: torch.Tensor, alpha_pred: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the Sobel-x and Sobel-y responses (zero padding, as ``F.conv2d(padding=1)``)."""
    gx, gy = sobel(alpha.float())
    px, py = sobel(alpha_pred.float())
    return normalized_l1(gx, px, mask) + normalized_l1(gy, py, mask)


def composite_signed(alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """``compose_loss``'s composite: alpha in [-1, 1] mapped to [0, 1], colours left in [-1, 1]."""
    a = (alpha + 1.0) / 2.0
    return fg * a + (1.0 - a) * bg


def adobe_loss(alpha_pred: torch.Tensor, fg_pred: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor,
               image: torch.Tensor, bg: torch.Tensor) -> dict[str, torch.Tensor]:
    """``train_adobe.py``'s loss; every tensor in [-1, 1]. Returns the total and its four terms."""
    l_alpha = normalized_l1(alpha, alpha_pred)
    l_fg = normalized_l1(fg, fg_pred, (alpha > -0.99).float())
    opaque = (alpha_pred > 0.95).to(fg_pred.dtype)
    fg_c = image * opaque + fg_pred * (1.0 - opaque)
    l_comp = normalized_l1(image, composite_signed(alpha_pred, fg_c, bg))
    l_grad = gradient_l1(alpha, alpha_pred)
    total = l_alpha + FG_WEIGHT * l_fg + l_comp + l_grad
    return {"loss": total, "alpha": l_alpha, "fg": l_fg, "comp": l_comp, "grad": l_grad}


def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
    """``GANloss``: MSE of the PatchGAN map to all-ones (real) or all-zeros (fake)."""
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.mse_loss(pred.float(), target.float())


def pseudo_supervision(alpha: torch.Tensor, fg: torch.Tensor, alpha_t: torch.Tensor, fg_t: torch.Tensor,
                       image: torch.Tensor, plate: torch.Tensor, raw_segmentation: torch.Tensor) -> dict[str, torch.Tensor]:
    """The teacher terms of ``train_real_fixed.py`` (all in [-1, 1]; ``raw_segmentation`` in [-1, 1])."""
    l_alpha = normalized_l1(alpha_t, alpha) + REAL_GRADIENT_WEIGHT * gradient_l1(alpha_t, alpha)
    l_fg = normalized_l1(fg_t, fg, (alpha_t > -0.98).float())
    l_comp = normalized_l1(image, composite_signed(alpha, fg, plate), (raw_segmentation > 0.95).float())
    return {"alpha": l_alpha, "fg": l_fg, "comp": l_comp}


def pseudo_weight(epoch: int) -> float:
    """wt * 0.05, where ``train_real_fixed.py`` halves wt at the END of epochs 0, 2, 4, ...
    (``if epoch % 2 == 0: wt = wt / 2`` after the epoch): 0.05, 0.025, 0.025, 0.0125, ..."""
    return PSEUDO_WEIGHT * 0.5 ** ((int(epoch) + 1) // 2)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (lsgan(d_real, True) + lsgan(d_fake, False))
