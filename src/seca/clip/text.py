"""CLIP's frozen text encoder run from token embeddings, and class texts with learnable prompts (spec §2, §7b).

Every prompted class text is ``[start] P_1 .. P_M name tokens [end]``: all classes under one prompt share
their first 1 + M positions. The text transformer is causal, so those positions never see the class
name: :meth:`TextTower.encode_shared_prefix` runs the shared prefix once per prompt, keeps its keys and
values in every layer, and runs only each class's own tokens against them. The features are those of the
full sequences (up to floating-point order); gradients reach the prompt through the prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SecaError
from ..peft.lora import is_packed_attention

log = logging.getLogger(__name__)

BLOCK_PARTS = ("ln_1", "attn", "ls_1", "ln_2", "mlp", "ls_2")


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[N, L, W] -> [N, heads, L, W / heads]"""
    n, length, width = x.shape
    return x.view(n, length, heads, width // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[N, heads, L, d] -> [N, L, heads * d]"""
    n, heads, length, d = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * d)


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
        self.attn_mask: torch.Tensor | None = getattr(tower, "attn_mask", None)
        self.pool_type: str = getattr(tower, "text_pool_type", None) or getattr(tower, "pool_type", "argmax")
        self.eos_id: int | None = getattr(tower, "text_eos_id", None) or getattr(tower, "eos_id", None)
        self.width: int = self.token_embedding.weight.shape[1]
        self.context_length: int = self.positional_embedding.shape[0]
        blocks = list(getattr(self.transformer, "resblocks", []))
        # Shared-prefix encoding re-implements one standard pre-norm attention block; anything else (custom
        # attention, no causal mask, pooling at the first token) is encoded whole, as open_clip does.
        self.can_share_prefix: bool = (
            self.attn_mask is not None
            and self.pool_type in ("argmax", "eos")
            and bool(blocks)
            and getattr(self.transformer, "batch_first", True)
            and all(
                all(hasattr(b, p) for p in BLOCK_PARTS) and not hasattr(b, "ln_1_kv") and is_packed_attention(b.attn)
                for b in blocks
            )
        )

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
        if self.attn_mask is None or self.pool_type == "last" or not len(tokens):
            return tokens.shape[1]
        return int(self.pooled_positions(tokens).max()) + 1

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(tokens)

    def _pool_and_project(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.ln_final(x[torch.arange(x.shape[0], device=x.device), positions])
        if isinstance(self.projection, nn.Linear):
            return self.projection(x)
        return x @ self.projection if self.projection is not None else x

    def encode_embeddings(self, embeddings: torch.Tensor, tokens: torch.Tensor, adapters=None) -> torch.Tensor:
        """Text features from ``[N, L, width]`` token embeddings (L may be shorter than the context).

        ``adapters`` (anything with ``adapter_for(block)``, as the image side takes) adds an adapter's output
        to a block's, reading the stream after its attention, in parallel to the MLP:
        ``x = x + attn(ln_1(x));  x = x + mlp(ln_2(x)) + adapter(x)``. If it also has ``attention_for(block)``
        (LoRA, :mod:`seca.peft.lora`), that replaces the block's attention: ``attention_for(block)(attn, h, h,
        mask)``.
        """
        length = embeddings.shape[1]
        x = embeddings + self.positional_embedding[:length].to(embeddings.dtype)
        mask = None if self.attn_mask is None else self.attn_mask[:length, :length]
        if adapters is None:
            x = self.transformer(x, attn_mask=mask)
        else:
            attention_for = getattr(adapters, "attention_for", None)
            for index, block in enumerate(self.blocks_for_adapters()):
                h = block.ln_1(x)
                if attention_for is None:
                    attended = block.attention(q_x=h, attn_mask=mask)
                else:
                    attended = attention_for(index)(block.attn, h, h, mask)
                residual = x + block.ls_1(attended)
                x = residual + block.ls_2(block.mlp(block.ln_2(residual)))
                adapter = adapters.adapter_for(index)
                if adapter is not None:
                    x = x + adapter(residual, length)
        return self._pool_and_project(x, self.pooled_positions(tokens[:, :length]))

    def blocks_for_adapters(self) -> list[nn.Module]:
        """The text transformer's blocks, refused with one line unless adapters can join them."""
        blocks = list(getattr(self.transformer, "resblocks", []))
        parts = ("ln_1", "attention", "ls_1", "ln_2", "mlp", "ls_2")
        if (
            not blocks
            or not getattr(self.transformer, "batch_first", True)
            or not all(hasattr(b, p) for b in blocks for p in parts)
        ):
            raise SecaError(
                "the text encoder's blocks are not standard batch-first CLIP residual attention blocks, "
                "so adapters cannot be placed in them (use an OpenAI-style CLIP such as ViT-B-16)"
            )
        return blocks

    @property
    def num_blocks(self) -> int:
        return len(getattr(self.transformer, "resblocks", []))

    def encode_shared_prefix(
        self, prefixes: torch.Tensor, suffixes: torch.Tensor, suffix_tokens: torch.Tensor
    ) -> torch.Tensor:
        """Features of every sequence ``prefixes[t] + suffixes[c]``: ``[T, P, W]``, ``[C, S, W]`` -> ``[T, C, E]``.

        Each prefix runs once; its keys and values in every layer serve all C suffixes, which attend to
        the whole prefix and causally to themselves. The pooled (end-of-text) position must lie in the
        suffix (``suffix_tokens`` are the suffixes' token ids). Needs :attr:`can_share_prefix`.
        """
        t, p, _ = prefixes.shape
        c, s, _ = suffixes.shape
        dtype = prefixes.dtype
        position = self.positional_embedding.to(dtype)
        x_prefix = prefixes + position[:p]  # [T, P, W]
        x = (suffixes.to(dtype) + position[p : p + s]).unsqueeze(0).expand(t, c, s, -1).reshape(t * c, s, -1)
        # suffix position i sees the whole prefix and suffix positions 0..i
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        sees = torch.cat([torch.ones(s, p, dtype=torch.bool, device=x.device), causal], dim=1)
        blocks = list(self.transformer.resblocks)
        for depth, block in enumerate(blocks):
            attn = block.attn
            heads = attn.num_heads
            q_p, k_p, v_p = (
                _split_heads(z, heads)
                for z in F.linear(block.ln_1(x_prefix), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            )
            q, k, v = (
                _split_heads(z, heads)
                for z in F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            )
            k = torch.cat([k_p.repeat_interleave(c, dim=0), k], dim=2)  # [T*C, heads, P + S, d]
            v = torch.cat([v_p.repeat_interleave(c, dim=0), v], dim=2)
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=sees)
            x = x + block.ls_1(attn.out_proj(_merge_heads(attended)))
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
            if depth < len(blocks) - 1:  # the last layer's prefix output is never read
                attended = F.scaled_dot_product_attention(q_p, k_p, v_p, is_causal=True)
                x_prefix = x_prefix + block.ls_1(attn.out_proj(_merge_heads(attended)))
                x_prefix = x_prefix + block.ls_2(block.mlp(block.ln_2(x_prefix)))
        positions = self.pooled_positions(suffix_tokens).repeat(t)
        return self._pool_and_project(x, positions).view(t, c, -1)


class PromptedClassTexts:
    """The token embeddings of ``"X X X X X X X X {class}"`` for a list of class names (spec §2).

    ``encode(prompt, rows)`` puts a prompt's M vectors in place of the M placeholder embeddings (right
    after the start token) and runs the frozen text encoder; gradients flow back into the prompt.
    ``encode_prompts`` does the same for several prompts at once. Where the encoder allows it, both use
    shared-prefix encoding (spec §7b); ``shared_prefix=False`` encodes every sequence whole. Sequences are
    cut after the end-of-text token of the encoded rows (the encoder is causal: the features are the same);
    ``cut=False`` encodes the whole context, as the reference implementation does.
    """

    def __init__(
        self, backbone, class_names: Sequence[str], length: int = 8, shared_prefix: bool = True, cut: bool = True
    ):
        self.text: TextTower = backbone.text
        self.tokenizer = backbone.tokenizer
        self.length = length
        self.class_names = list(class_names)
        texts = [" ".join(["X"] * length) + " " + name.replace("_", " ") for name in self.class_names]
        tokens = backbone.tokenize(texts)
        placeholder = backbone.tokenize(["X"])[0, 1]
        if not bool((tokens[:, 1 : 1 + length] == placeholder).all()):
            raise SecaError(f"the tokenizer of '{backbone.model_name}' does not keep 'X' as one token per placeholder")
        self._warn_truncated(texts, tokens)
        self.cut = cut
        if cut:
            tokens = tokens[:, : self.text.useful_length(tokens)]
        self.tokens = tokens
        with torch.no_grad():
            self.embeddings = self.text.embed(tokens)
        # The end-of-text token of every class must follow the prompt for the prefix to be shared.
        self.shared_prefix = (
            shared_prefix and self.text.can_share_prefix and bool((self.text.pooled_positions(tokens) > length).all())
        )

    def _warn_truncated(self, texts: Sequence[str], tokens: torch.Tensor) -> None:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return
        lost = [t for t in texts if len(encode(t)) + 2 > tokens.shape[1]]
        if lost:
            log.warning("%d class prompts exceed the text context and are truncated, e.g. '%s'", len(lost), lost[0])

    def __len__(self) -> int:
        return len(self.class_names)

    def encode(self, prompt: torch.Tensor, rows: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Text features (not normalised) of the classes in ``rows`` (default: all) under ``prompt``."""
        return self.encode_prompts(prompt.unsqueeze(0), rows)[0]

    def encode_prompts(self, prompts: torch.Tensor, rows: torch.Tensor | slice | None = None) -> torch.Tensor:
        """``[T, C, E]``: the classes in ``rows`` under each of the ``[T, M, width]`` prompts."""
        rows = slice(None) if rows is None else rows
        tokens = self.tokens[rows]
        # cut at these rows' own end: the same classes always take the same shape, whatever else is known
        length = self.text.useful_length(tokens) if self.cut else tokens.shape[1]
        embeddings, tokens = self.embeddings[rows, :length], tokens[:, :length]
        prompts = prompts.to(embeddings.dtype)
        start, names = embeddings[:1, :1], embeddings[:, 1 + self.length :]
        if self.shared_prefix:
            prefixes = torch.cat([start.expand(prompts.shape[0], -1, -1), prompts], dim=1)
            return self.text.encode_shared_prefix(prefixes, names, tokens[:, 1 + self.length :])
        t, c = prompts.shape[0], embeddings.shape[0]
        # row t * C + c is class c under prompt t
        x = torch.cat(
            [embeddings[:, :1].repeat(t, 1, 1), prompts.repeat_interleave(c, dim=0), names.repeat(t, 1, 1)], dim=1
        )
        return self.text.encode_embeddings(x, tokens.repeat(t, 1)).view(t, c, -1)
