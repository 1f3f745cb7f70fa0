"""A frozen open_clip CLIP with the two hook points SECA needs (spec §1-§2).

* ``encode_image(images, adapters)`` runs the image encoder with a chosen adapter set (the current one,
  a frozen snapshot, or none) and returns the projected feature or the last block's class token.
  ``stem(images, block)`` is the frozen part before the first adapter, computed once and reused (§7b).
* ``text`` (a :class:`~seca.clip.text.TextTower`) encodes token embeddings, so learnable prompts can
  replace some of them (``PromptedClassTexts`` in text.py).

Nothing of CLIP is copied here: the blocks, norms, projections and tokenizer are open_clip's own; this
module only decides where an adapter's output joins the residual stream.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..errors import SecaError
from ..peft.adapter import AdapterSet, StackedAdapters
from ..peft.lora import LoraSet
from .archs import ARCHITECTURES, pretrained_weights
from .text import TextTower

log = logging.getLogger(__name__)

ImageOutput = Literal["projected", "class_token"]
# anything with ``first_block`` and ``adapter_for(block)``, and optionally ``attention_for(block)`` (LoRA)
Adapters = AdapterSet | StackedAdapters | LoraSet


@dataclass
class FrozenStem:
    """What the frozen image encoder computes before the first adapter, for a batch of images (spec §7b).

    With the first adapter in block b: ``residual`` is the stream after block b's attention (what the
    adapter reads) and ``output`` block b's output without the adapter (what the adapter's output is added
    to); ``tokens`` is the sequence length. With no augmentation both are functions of the image alone, so
    a task's stems are computed once with its teachers and reused every step; every adapter set (the
    current one, each snapshot of the pool) and plain CLIP continue from the same stem.
    """

    block: int
    residual: torch.Tensor  # [N, L, width] (L = 1 at the last block: only the class token is kept)
    output: torch.Tensor
    tokens: int

    def __len__(self) -> int:
        return self.residual.shape[0]

    def __getitem__(self, rows) -> FrozenStem:
        return FrozenStem(self.block, self.residual[rows], self.output[rows], self.tokens)

    def repeat(self, times: int) -> FrozenStem:
        """The batch ``times`` over, member-major (for :class:`~seca.peft.adapter.StackedAdapters`)."""
        return FrozenStem(self.block, self.residual.repeat(times, 1, 1), self.output.repeat(times, 1, 1), self.tokens)

    @property
    def nbytes(self) -> int:
        return self.residual.nbytes + self.output.nbytes

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FrozenStem:
        return FrozenStem(
            self.block,
            self.residual.to(device, non_blocking=non_blocking),
            self.output.to(device, non_blocking=non_blocking),
            self.tokens,
        )

    @staticmethod
    def cat(stems: Sequence[FrozenStem]) -> FrozenStem:
        first = stems[0]
        return FrozenStem(
            first.block, torch.cat([s.residual for s in stems]), torch.cat([s.output for s in stems]), first.tokens
        )


@dataclass
class ClipBackbone:
    """A frozen CLIP and its preprocessing and tokenizer.

    Deliberately not an ``nn.Module``: learners keep a reference to it without its weights entering their
    ``state_dict`` (checkpoints hold only what is learned).
    """

    model: nn.Module
    preprocess: Callable
    tokenizer: Callable
    model_name: str
    pretrained: str | None

    def __post_init__(self):
        self.model.requires_grad_(False)
        self.model.eval()
        visual = self.model.visual
        if not all(hasattr(visual, n) for n in ("_embeds", "transformer", "ln_post", "proj")):
            raise SecaError(
                f"model '{self.model_name}' has no ViT image encoder; SECA needs a ViT-based CLIP (e.g. ViT-B-16)"
            )
        if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
            raise SecaError(
                f"model '{self.model_name}' does not pool its image feature from a class token; "
                "SECA's teacher features need one (use e.g. ViT-B-16)"
            )
        block_parts = ("ln_1", "attention", "ls_1", "ln_2", "mlp", "ls_2")
        if not all(hasattr(block, part) for block in self.blocks for part in block_parts):
            raise SecaError(
                f"the image encoder blocks of '{self.model_name}' are not standard CLIP residual attention "
                "blocks, so adapters cannot be placed in them (use e.g. ViT-B-16)"
            )
        if not getattr(visual.transformer, "batch_first", True):
            raise SecaError(f"model '{self.model_name}' runs its transformer sequence-first, which is not supported")
        self.text = TextTower(self.model)

    # ---- sizes -----------------------------------------------------------------------------------
    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.visual.transformer.resblocks

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def vision_width(self) -> int:
        return self.model.visual.transformer.width

    @property
    def image_tokens(self) -> int:
        """Tokens per image in the image encoder (patches and the class token)."""
        return self.model.visual.positional_embedding.shape[0]

    def stem_bytes(self, block: int, images: int = 1) -> int:
        """Memory of the fp32 :class:`FrozenStem` of ``images`` images up to ``block``."""
        tokens = 1 if block == self.num_blocks - 1 else self.image_tokens
        return 2 * images * tokens * self.vision_width * 4

    @property
    def text_width(self) -> int:
        return self.text.width

    @property
    def embed_dim(self) -> int:
        return self.model.visual.proj.shape[1]

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else int(size)

    @property
    def logit_scale(self) -> float:
        """CLIP's learned scale (100 for OpenAI weights), used in the training cross-entropies."""
        return float(self.model.logit_scale.exp())

    @property
    def device(self) -> torch.device:
        return self.model.visual.proj.device

    def to(self, device: torch.device | str) -> ClipBackbone:
        self.model.to(device)
        return self

    @functools.cached_property
    def weights_digest(self) -> str:
        """SHA-256 of every weight (names, types, shapes and bytes): the backbone's identity in the feature
        store, whatever file or tag it was loaded from. Computed once (about a second for ViT-B/16)."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    def new_adapters(self, blocks: Sequence[int], bottleneck: int, scale: float, dropout: float) -> AdapterSet:
        return AdapterSet(self.vision_width, blocks, bottleneck, scale, dropout).to(self.device)

    # ---- image side ------------------------------------------------------------------------------
    def stem(self, images: torch.Tensor, block: int) -> FrozenStem:
        """The frozen computation of ``images`` up to the adapter of ``block`` (see :class:`FrozenStem`)."""
        x = self.model.visual._embeds(images)
        for index in range(block):
            x = self._run_block(index, x)
        residual, output = self._block_parts(block, x)
        return FrozenStem(block, residual, output, x.shape[1])

    def encode_image(
        self,
        images: torch.Tensor | None = None,
        adapters: Adapters | None = None,
        output: ImageOutput = "projected",
        stem: FrozenStem | None = None,
    ) -> torch.Tensor:
        """Image features with ``adapters`` (None: plain frozen CLIP); not normalised.

        ``output="class_token"`` returns the last block's class token before the final layer norm and
        projection (SG-AKT's teacher feature V, spec §3); ``"projected"`` the usual CLIP image feature.
        Each adapter reads the residual stream after attention, in parallel to the MLP (spec §2):
        ``x = x + attn(ln_1(x));  x = x + mlp(ln_2(x)) + adapter(x)``.
        ``stem`` replaces ``images`` with their frozen stem, computed earlier (spec §7b); it must end at
        or before the first adapter. Adapters with ``attention_for(block)`` (LoRA) change every block's attention
        instead, from the first block on (they take no stem).
        """
        attention_for = getattr(adapters, "attention_for", None)
        if attention_for is not None:  # the attention changes from block 0 on: only the embeddings are frozen
            if stem is not None:
                raise ValueError("a frozen stem cannot be used with adapters that change the attention")
            x = self.model.visual._embeds(images)
            for index in range(self.num_blocks):
                x = self._run_block(index, x, adapters.adapter_for(index), attention_for(index))
            class_token = x[:, 0]
            return class_token if output == "class_token" else self.project_class_token(class_token)
        if stem is None:
            stem = self.stem(images, adapters.first_block if adapters is not None else self.num_blocks - 1)
        elif adapters is not None and adapters.first_block < stem.block:
            raise ValueError(f"a stem up to block {stem.block} skips the adapter of block {adapters.first_block}")
        adapter = adapters.adapter_for(stem.block) if adapters is not None else None
        x = stem.output if adapter is None else stem.output + adapter(stem.residual, stem.tokens)
        for index in range(stem.block + 1, self.num_blocks):
            x = self._run_block(index, x, adapters.adapter_for(index) if adapters is not None else None)
        class_token = x[:, 0]
        if output == "class_token":
            return class_token
        return self.project_class_token(class_token)

    @torch.no_grad()
    def stacked_class_tokens(
        self, stem: FrozenStem, adapter_sets: Sequence[AdapterSet], max_rows: int = 256
    ) -> torch.Tensor:
        """``[B, sets, W]``: the last block's class token of each image under each of ``adapter_sets``
        (snapshots, in eval mode), run together: each chunk of images repeated once per set, at most
        ``max_rows`` rows at a time, through one stacked pass."""
        stacked, sets = StackedAdapters(adapter_sets), len(adapter_sets)
        rows = max(1, max_rows // sets)
        return torch.cat(
            [
                self.encode_image(stem=stem[i : i + rows].repeat(sets), adapters=stacked, output="class_token")
                .unflatten(0, (sets, -1))
                .transpose(0, 1)
                for i in range(0, len(stem), rows)
            ]
        )

    def _block_parts(
        self, index: int, x: torch.Tensor, attention: Callable | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``index`` on ``x`` without an adapter: (stream after attention, block output).

        ``attention`` (a LoRA of :mod:`seca.peft.lora`) replaces the block's attention. Only the class token is
        read from the last block, so there it attends from the class token alone (keys and values still come
        from every token) and runs the MLP on it alone: the same result up to rounding, a fraction of the work.
        """
        block = self.blocks[index]
        h = block.ln_1(x)
        queries, stream = (h[:, :1], x[:, :1]) if index == self.num_blocks - 1 else (h, x)
        if attention is None:
            attended = block.attention(q_x=queries, k_x=h, v_x=h)
        else:
            attended = attention(block.attn, queries, h)
        residual = stream + block.ls_1(attended)
        return residual, residual + block.ls_2(block.mlp(block.ln_2(residual)))

    def _run_block(
        self, index: int, x: torch.Tensor, adapter: Callable | None = None, attention: Callable | None = None
    ) -> torch.Tensor:
        residual, output = self._block_parts(index, x, attention)
        return output if adapter is None else output + adapter(residual, x.shape[1])

    def project_class_token(self, class_token: torch.Tensor) -> torch.Tensor:
        """CLIP's final layer norm and projection, applied to a class token (student or teacher)."""
        visual = self.model.visual
        return visual.ln_post(class_token) @ visual.proj

    # ---- text side -------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.device)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Plain text features (not normalised), e.g. for ``"a good photo of a {}."`` templates."""
        features = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start : start + batch_size])
            tokens = tokens[:, : self.text.useful_length(tokens)]
            features.append(self.text.encode_embeddings(self.text.embed(tokens), tokens))
        return torch.cat(features)


# --------------------------------------------------------------------------------------------------
# Loading


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or Path(value).suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}


def _load_seca_arch(name: str, pretrained: str | None) -> tuple[nn.Module, Callable, Callable]:
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    arch = ARCHITECTURES[name]
    model = open_clip.CLIP(**arch)
    if pretrained:  # a registered tag (the offline world's "shapes": built into the cache on first use)
        pretrained = pretrained_weights(pretrained, name) or pretrained
    if pretrained:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise SecaError(f"backbone.pretrained '{pretrained}' is not a file; give the path of weights for '{name}'")
        try:
            open_clip.load_checkpoint(model, str(path))
        except Exception as e:  # shape or key mismatch
            raise SecaError(
                f"weights '{pretrained}' do not fit architecture '{name}': {str(e).splitlines()[0]}"
            ) from None
    preprocess = open_clip.image_transform(arch["vision_cfg"]["image_size"], is_train=False)
    tokenizer = SimpleTokenizer(context_length=arch["text_cfg"]["context_length"])
    return model, preprocess, tokenizer


@contextlib.contextmanager
def _offline_unless_reachable(downloads: bool):
    """Without a route to the Hugging Face hub, load in the hub's offline mode: weights in the cache load as
    usual, missing ones fail at once instead of after a minute of retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    if downloads and not offline:
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=3).close()
        except OSError:
            constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline


def check_model_name(name: str) -> None:
    """Refuse a CLIP model name that is neither this project's nor open_clip's, with the closest names."""
    import open_clip

    if name not in ARCHITECTURES and name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models() + list(ARCHITECTURES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SecaError(f"unknown CLIP model '{name}'{hint}; see open_clip.list_models()")


def _load_open_clip(name: str, pretrained: str | None, cache_dir: str | None) -> tuple[nn.Module, Callable, Callable]:
    import open_clip

    check_model_name(name)
    if pretrained and _looks_like_path(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise SecaError(f"backbone.pretrained '{pretrained}' is not a file; give the path of a CLIP weights file")
        pretrained = str(Path(pretrained).expanduser())
    elif pretrained and pretrained not in open_clip.list_pretrained_tags_by_model(name):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise SecaError(f"'{pretrained}' is not a pretrained tag of {name} (tags: {tags}) nor a weights file")
    try:
        with _offline_unless_reachable(pretrained is not None and not _looks_like_path(pretrained)):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, cache_dir=cache_dir
            )
    except RuntimeError as e:
        if pretrained and not _looks_like_path(pretrained):
            raise SecaError(
                f"could not get the '{pretrained}' weights of {name} (no network?): download them where there is "
                f"one, then set backbone.pretrained to the local file (e.g. --set backbone.pretrained=/path/to/"
                f"{name}.bin) or backbone.cache_dir to the folder that holds them"
            ) from None
        raise SecaError(f"could not load {name} from '{pretrained}': {str(e).splitlines()[0]}") from None
    return model, preprocess, open_clip.get_tokenizer(name)


def load_backbone(
    model: str, pretrained: str | None = None, cache_dir: str | None = None, device: torch.device | str = "cpu"
) -> ClipBackbone:
    """Load and freeze a CLIP: a name of :data:`ARCHITECTURES` or any open_clip model name.

    ``pretrained`` is an open_clip tag (``"openai"``), a local weights file, or None for random weights
    (always the same ones: they are drawn from a fixed seed).
    """
    if pretrained in ("", "none", "None"):
        pretrained = None
    # Random initial weights are drawn from a fixed seed, so a model with "random weights" is the same
    # model in every process (a saved learner over it can be loaded again), whatever the global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if model in ARCHITECTURES:
            clip, preprocess, tokenizer = _load_seca_arch(model, pretrained)
        else:
            clip, preprocess, tokenizer = _load_open_clip(model, pretrained, cache_dir)
    return ClipBackbone(clip, preprocess, tokenizer, model, pretrained).to(device)
