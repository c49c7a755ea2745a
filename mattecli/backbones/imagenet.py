"""ImageNet backbone files as torchvision publishes them: found in torch's hub cache, downloaded
there with torch's own download (sha256 checked, progress shown), or refused in one line.

A paper recipe names its backbone by URL and sha256 (``imagenet_url``, ``imagenet_sha256``;
SHM's M-Net by ``mnet_imagenet_url``, ``mnet_imagenet_sha256``). The file name is the URL's
last part, as ``torch.hub.load_state_dict_from_url`` names its cache files, so a file that
torchvision already downloaded is found and reused. Torch checks only the 8-hex-digit prefix
in the file name; the recipes carry the full sha256 and it is checked in full, on download
and on a cached file.

``MATTECLI_IMAGENET_MIRROR`` replaces everything before the file name (a local mirror for
machines without internet; the tests serve one on 127.0.0.1).
"""
from __future__ import annotations

import http.client
import os
import re
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from mattecli.errors import MatteError
from mattecli.io.foreign import file_sha256

MIRROR_ENV = "MATTECLI_IMAGENET_MIRROR"
_SHA256 = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class BackboneSlot:
    """One ImageNet start a family's network takes, by the recipe keys that name it."""

    weights_key: str   # an explicit state dict file (set by the flag); when set, nothing is downloaded
    url_key: str       # torchvision's URL of the published file
    sha256_key: str    # that file's sha256 (full, or at least torch's 8-digit prefix)
    flag: str          # the `train` flag that gives the file


#: torchvision's ImageNet files the paper recipes name (IMAGENET1K_V1, the weights of the papers' time)
TORCHVISION = {
    "vgg16": ("https://download.pytorch.org/models/vgg16-397923af.pth",
              "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"),
    "resnet34": ("https://download.pytorch.org/models/resnet34-b627a593.pth",
                 "b627a593bcbe140c234610266fe4f8ae95ea42fc881d091c9b6052e6b1d0590f"),
    "resnet50": ("https://download.pytorch.org/models/resnet50-0676ba61.pth",
                 "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a"),
}


def cache_dir() -> Path:
    """Where torch.hub keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` by default."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def source_url(url: str) -> str:
    """The URL to download from: ``url``, or the same file name under ``$MATTECLI_IMAGENET_MIRROR``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{file_name(url)}" if mirror else url


def check_slot(recipe: Mapping[str, Any], slot: BackboneSlot) -> None:
    """One line naming the key when the recipe's URL or sha256 cannot name a file."""
    url, digest = recipe.get(slot.url_key, ""), recipe.get(slot.sha256_key, "")
    if not isinstance(url, str) or (url and "/" not in url):
        raise MatteError(f"recipe key {slot.url_key} = {url!r}: expected the URL of a published weights file")
    if not isinstance(digest, str) or (digest and not _SHA256.fullmatch(digest)):
        raise MatteError(f"recipe key {slot.sha256_key} = {digest!r}: expected the file's sha256 in lowercase hex "
                         "(at least its first 8 digits)")
    if bool(url) != bool(digest):
        raise MatteError(f"recipe keys {slot.url_key} and {slot.sha256_key}: give both (or neither)")


def fetch_published(url: str, sha256: str, flag: str, progress: bool = True) -> Path:
    """The published file in torch's hub cache, downloaded there first when missing.

    Raises a one-line :class:`MatteError` naming the file, where to put it, ``flag`` and
    ``--from-scratch`` when it can be neither found nor downloaded, and when a cached or
    downloaded file's sha256 is not the published one (a bad download leaves nothing behind).
    """
    name, folder = file_name(url), cache_dir()
    target = folder / name
    remedy = (f"put the file from {url} in {folder}, or give {flag} FILE, or train with --from-scratch")
    if target.is_file():
        found = file_sha256(target)
        if not found.startswith(sha256):
            raise MatteError(f"{target}: sha256 {found[:16]}... is not the published {name}'s "
                             f"({sha256[:16]}...): delete it to download it again, or {remedy.split(', or ', 1)[1]}")
        return target
    source = source_url(url)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # torch's own download: a temporary file in the cache folder, moved into place only
        # when the digest's start matches hash_prefix (here the full sha256)
        torch.hub.download_url_to_file(source, str(target), hash_prefix=sha256, progress=progress)
    except RuntimeError as exc:  # torch: "invalid hash value (expected ..., got ...)"
        raise MatteError(f"{source}: the downloaded file is not the published {name} ({exc}); {remedy}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MatteError(f"needs the ImageNet weights {name} and could not download them from {source} "
                         f"({str(reason).strip() or type(exc).__name__}): {remedy}") from None
    return target


def resolve_backbones(recipe: Mapping[str, Any], slots: tuple[BackboneSlot, ...],
                      progress: bool = True) -> dict[str, str]:
    """``{weights_key: path}`` for every slot the recipe names a published file for and gives
    no file of its own; empty when the recipe says ``from_scratch``."""
    found: dict[str, str] = {}
    if recipe.get("from_scratch"):
        return found
    for slot in slots:
        check_slot(recipe, slot)
        if recipe.get(slot.weights_key) or not recipe.get(slot.url_key):
            continue
        found[slot.weights_key] = str(fetch_published(recipe[slot.url_key], recipe[slot.sha256_key], slot.flag,
                                                      progress))
    return found
