"""The engine's option vocabulary, importable without Keras (the command line validates
options with it before any heavy import).

The engine modules own the behaviour behind each name: :mod:`dnalift.engine.policy` the modes,
:mod:`dnalift.engine.maxpool` the max-pooling rules.
"""

from __future__ import annotations

#: DeepLIFT modes, and all engine modes (gradient baselines included).
DEEPLIFT_MODES = ("rescale", "revealcancel", "genomics_default")
MODES = DEEPLIFT_MODES + ("gradient", "gradient_x_input", "integrated_gradients")
#: Max-pooling rule names (``DeepLift(maxpool=...)``, ``dnalift score --maxpool``).
MAXPOOL_RULES = ("rescale", "gradient")
#: How a profile target treats the channels (strands) of an ``(L_out, C)`` output.
PROFILE_CHANNELS = ("sum", "each", "joint")
#: How a counts target combines several log-count columns.
COUNTS_COMBINE = ("sum", "logsumexp")
#: Per-pair weights of a profile target's mean-centred logits (the conventions of the field;
#: see :class:`ProfileTarget`): dnalift's, ChromBPNet's DeepSHAP and bpnet-lite/tangermeme's.
PROFILE_WEIGHTS = ("dnalift", "chrombpnet", "bpnet-lite")
