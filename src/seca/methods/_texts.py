"""Class texts for learners that change CLIP's text encoder (MoE-Adapters' experts, Mind the Gap's LoRA).

:class:`AdaptedTexts` is a mixin for a :class:`~seca.methods.base.Learner` with ``self.text`` (what the text encoder
takes as ``adapters``) and ``self.settings.template``: it tokenizes class names into their template, cut after the
end-of-text token (the encoder is causal and the changes act per token: the same features), encodes them through
the changed encoder, and keeps the seen classes' normalised texts in the ``text_features`` buffer for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._precision import widen


class AdaptedTexts:
    def _tokenize(self, names) -> torch.Tensor:
        tokens = self.backbone.tokenize([self.settings.template.format(name) for name in names])
        return tokens[:, : self.backbone.text.useful_length(tokens)]

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        text = self.backbone.text
        return text.encode_embeddings(text.embed(tokens), tokens, adapters=self.text)

    def _cache_texts(self) -> None:
        """The texts of every seen class under the encoder as it is now (fixed until the next task trains),
        encoded as at test (no noise, no dropout) whatever mode the learner is in."""
        if self.num_seen:
            was_training = self.training
            self.eval()
            with torch.no_grad():
                texts = self._encode(self._tokenize(self.class_names[: self.num_seen]))
            self.train(was_training)
            self.text_features = F.normalize(widen(texts), dim=-1).to(self.text_features.device)
