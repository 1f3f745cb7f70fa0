"""A frozen open_clip CLIP with the two hook points SECA needs (spec §1-§2).

* ``encode_image(images, adapters)`` runs the image encoder with a chosen adapter set (the current one,
  a frozen snapshot, or none) and returns the projected feature or the last block's class token.
* ``text`` (a :class:`TextTower`) encodes token embeddings, so learnable prompts can replace some of them.

Nothing of CLIP is copied here: the blocks, norms, projections and tokenizer are open_clip's own; this
module only decides where an adapter's output joins the residual stream.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import torch
from torch import nn

from ..errors import SecaError
from ..peft.adapter import AdapterSet
from .archs import ARCHITECTURES

log = logging.getLogger(__name__)

ImageOutput = Literal["projected", "class_token"]


class TextTower:
    """The pieces of CLIP's text encoder, run from token embeddings instead of token ids."""

    def __init__(self, model: nn.Module):
        tower = getattr(model, "text", model)  # CustomTextCLIP keeps them under .text
        needed = ("token_embedding", "positional_embedding", "transformer", "ln_final")
        if not all(hasattr(tower, name) for name in needed) or getattr(tower, "cls_emb", None) is not None:
            raise SecaError(
                f"the text encoder of this model ({type(tower).__name__}) is not a CLIP text transformer; "
                "prompted text encoding needs one (use an OpenAI-style CLIP such as ViT-B-16)"
            )
        self.token_embedding: nn.Embedding = tower.token_embedding
        self.positional_embedding: torch.Tensor = tower.positional_embedding
        self.transformer: nn.Module = tower.transformer
        self.ln_final: nn.Module = tower.ln_final
        self.projection = getattr(tower, "text_projection", None)
        self.attn_mask: Optional[torch.Tensor] = getattr(tower, "attn_mask", None)
        self.pool_type: str = getattr(tower, "text_pool_type", None) or getattr(tower, "pool_type", "argmax")
        self.eos_id: Optional[int] = getattr(tower, "text_eos_id", None) or getattr(tower, "eos_id", None)
        self.width: int = self.token_embedding.weight.shape[1]
        self.context_length: int = self.positional_embedding.shape[0]

    def pooled_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """Where the sentence feature is read: the end-of-text token (or the last/first position)."""
        if self.pool_type == "argmax":
            return tokens.argmax(dim=-1)
        if self.pool_type == "eos":
            return (tokens == self.eos_id).int().argmax(dim=-1)
        if self.pool_type == "first":
            return torch.zeros(tokens.shape[0], dtype=torch.long, device=tokens.device)
        return torch.full((tokens.shape[0],), tokens.shape[1] - 1, dtype=torch.long, device=tokens.device)

    def useful_length(self, tokens: torch.Tensor) -> int:
        """How many leading positions decide the output.

        The text transformer is causal, so positions after the pooled one cannot influence it: cutting the
        sequences there (about 20 of 77 tokens for class names) gives identical features (spec §7b).
        """
        if self.attn_mask is None or self.pool_type == "last":
            return tokens.shape[1]
        return int(self.pooled_positions(tokens).max()) + 1

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(tokens)

    def encode_embeddings(self, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Text features from ``[N, L, width]`` token embeddings (L may be shorter than the context)."""
        length = embeddings.shape[1]
        x = embeddings + self.positional_embedding[:length].to(embeddings.dtype)
        mask = None if self.attn_mask is None else self.attn_mask[:length, :length]
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), self.pooled_positions(tokens[:, :length])]
        if isinstance(self.projection, nn.Linear):
            return self.projection(x)
        return x @ self.projection if self.projection is not None else x


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
    pretrained: Optional[str]

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

    def to(self, device: torch.device | str) -> "ClipBackbone":
        self.model.to(device)
        return self

    def new_adapters(self, blocks: Sequence[int], bottleneck: int, scale: float, dropout: float) -> AdapterSet:
        return AdapterSet(self.vision_width, blocks, bottleneck, scale, dropout).to(self.device)

    # ---- image side ------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor, adapters: Optional[AdapterSet] = None,
                     output: ImageOutput = "projected") -> torch.Tensor:
        """Image features with ``adapters`` (None: plain frozen CLIP); not normalised.

        ``output="class_token"`` returns the last block's class token before the final layer norm and
        projection (SG-AKT's teacher feature V, spec §3); ``"projected"`` the usual CLIP image feature.
        Each adapter reads the residual stream after attention, in parallel to the MLP (spec §2):
        ``x = x + attn(ln_1(x));  x = x + mlp(ln_2(x)) + adapter(x)``.
        """
        visual = self.model.visual
        x = visual._embeds(images)
        for index, block in enumerate(self.blocks):
            adapter = adapters.adapter_for(index) if adapters is not None else None
            if adapter is None:
                x = block(x)
                continue
            x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
            x = x + block.ls_2(block.mlp(block.ln_2(x))) + adapter(x)
        class_token = x[:, 0]
        if output == "class_token":
            return class_token
        return self.project_class_token(class_token)

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
            tokens = self.tokenize(texts[start:start + batch_size])
            tokens = tokens[:, : self.text.useful_length(tokens)]
            features.append(self.text.encode_embeddings(self.text.embed(tokens), tokens))
        return torch.cat(features)


class PromptedClassTexts:
    """The token embeddings of ``"X X X X X X X X {class}"`` for a list of class names (spec §2).

    ``encode(prompt, rows)`` puts a prompt's M vectors in place of the M placeholder embeddings (right
    after the start token) and runs the frozen text encoder; gradients flow back into the prompt.
    """

    def __init__(self, backbone: ClipBackbone, class_names: Sequence[str], length: int = 8):
        self.backbone = backbone
        self.length = length
        self.class_names = list(class_names)
        texts = [" ".join(["X"] * length) + " " + name.replace("_", " ") for name in self.class_names]
        tokens = backbone.tokenize(texts)
        placeholder = backbone.tokenize(["X"])[0, 1]
        if not bool((tokens[:, 1:1 + length] == placeholder).all()):
            raise SecaError(f"the tokenizer of '{backbone.model_name}' does not keep 'X' as one token per placeholder")
        self._warn_truncated(texts, tokens)
        tokens = tokens[:, : backbone.text.useful_length(tokens)]
        self.tokens = tokens
        with torch.no_grad():
            self.embeddings = backbone.text.embed(tokens)

    def _warn_truncated(self, texts: Sequence[str], tokens: torch.Tensor) -> None:
        encode = getattr(self.backbone.tokenizer, "encode", None)
        if encode is None:
            return
        lost = [t for t in texts if len(encode(t)) + 2 > tokens.shape[1]]
        if lost:
            log.warning("%d class prompts exceed the text context and are truncated, e.g. '%s'", len(lost), lost[0])

    def __len__(self) -> int:
        return len(self.class_names)

    def encode(self, prompt: torch.Tensor, rows: Optional[torch.Tensor | slice] = None) -> torch.Tensor:
        """Text features (not normalised) of the classes in ``rows`` (default: all) under ``prompt``."""
        rows = slice(None) if rows is None else rows
        embeddings, tokens = self.embeddings[rows], self.tokens[rows]
        prompt = prompt.to(embeddings.dtype).unsqueeze(0).expand(embeddings.shape[0], -1, -1)
        x = torch.cat([embeddings[:, :1], prompt, embeddings[:, 1 + self.length:]], dim=1)
        return self.backbone.text.encode_embeddings(x, tokens)

    def placeholder_prompt(self) -> torch.Tensor:
        """The embeddings of the placeholder tokens themselves: with them, ``encode`` is plain CLIP."""
        return self.embeddings[0, 1:1 + self.length].clone()


# --------------------------------------------------------------------------------------------------
# Loading


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or Path(value).suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}


def _load_seca_arch(name: str, pretrained: Optional[str]) -> tuple[nn.Module, Callable, Callable]:
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    arch = ARCHITECTURES[name]
    model = open_clip.CLIP(**arch)
    if pretrained == "shapes":  # the offline world's pretrained weights, built into the cache on first use
        from ..offline.pretrain import ARCHITECTURE, ensure_shapes_clip

        if name != ARCHITECTURE:
            raise SecaError(f"the 'shapes' weights exist for model '{ARCHITECTURE}' only, not '{name}'")
        pretrained = str(ensure_shapes_clip())
    if pretrained:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise SecaError(f"backbone.pretrained '{pretrained}' is not a file; give the path of weights for '{name}'")
        try:
            open_clip.load_checkpoint(model, str(path))
        except Exception as e:  # shape or key mismatch
            raise SecaError(f"weights '{pretrained}' do not fit architecture '{name}': {str(e).splitlines()[0]}") from None
    preprocess = open_clip.image_transform(arch["vision_cfg"]["image_size"], is_train=False)
    tokenizer = SimpleTokenizer(context_length=arch["text_cfg"]["context_length"])
    return model, preprocess, tokenizer


def _load_open_clip(name: str, pretrained: Optional[str], cache_dir: Optional[str]) -> tuple[nn.Module, Callable, Callable]:
    import open_clip

    if name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models() + list(ARCHITECTURES), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SecaError(f"unknown CLIP model '{name}'{hint}; see open_clip.list_models()")
    if pretrained and _looks_like_path(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise SecaError(f"backbone.pretrained '{pretrained}' is not a file; give the path of a CLIP weights file")
        pretrained = str(Path(pretrained).expanduser())
    elif pretrained and pretrained not in open_clip.list_pretrained_tags_by_model(name):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise SecaError(f"'{pretrained}' is not a pretrained tag of {name} (tags: {tags}) nor a weights file")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, cache_dir=cache_dir)
    except RuntimeError as e:
        if pretrained and not _looks_like_path(pretrained):
            raise SecaError(
                f"could not get the '{pretrained}' weights of {name} (no network?): download them where there is "
                f"one, then set backbone.pretrained to the local file (e.g. --set backbone.pretrained=/path/to/"
                f"{name}.bin) or backbone.cache_dir to the folder that holds them"
            ) from None
        raise SecaError(f"could not load {name} from '{pretrained}': {str(e).splitlines()[0]}") from None
    return model, preprocess, open_clip.get_tokenizer(name)


def load_backbone(model: str, pretrained: Optional[str] = None, cache_dir: Optional[str] = None,
                  device: torch.device | str = "cpu") -> ClipBackbone:
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
