"""The offline testbed: a small CLIP pretrained on the generated shapes world, cached on first use."""
