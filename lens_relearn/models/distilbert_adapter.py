"""A TransformerLens architecture adapter for DistilBERT (``DistilBertForMaskedLM``).

TransformerLens 4.3 ships no DistilBERT adapter. DistilBERT is BERT with other module
names and no token-type embedding, so the adapter reuses BERT's weight conversions and
maps DistilBERT's modules onto the same canonical hook points
(``blocks.{l}.mlp.hook_post`` is the input of ``ffn.lin2``).
"""

from typing import Any

from transformer_lens.factories import architecture_adapter_factory
from transformer_lens.model_bridge.generalized_components import (
    AttentionBridge,
    BlockBridge,
    EmbeddingBridge,
    LinearBridge,
    MLPBridge,
    NormalizationBridge,
    PosEmbedBridge,
    UnembeddingBridge,
)
from transformer_lens.model_bridge.supported_architectures.bert import BertArchitectureAdapter

ARCHITECTURE = "DistilBertForMaskedLM"


class DistilBertArchitectureAdapter(BertArchitectureAdapter):
    """Maps ``DistilBertForMaskedLM`` onto TransformerLens's canonical components."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)

        def layer_norm(name: str) -> NormalizationBridge:
            return NormalizationBridge(name=name, config=self.cfg, use_native_layernorm_autograd=True)

        self.component_mapping = {
            "embed": EmbeddingBridge(name="distilbert.embeddings.word_embeddings"),
            "pos_embed": PosEmbedBridge(name="distilbert.embeddings.position_embeddings"),
            "embed_ln": layer_norm("distilbert.embeddings.LayerNorm"),
            "blocks": BlockBridge(
                name="distilbert.transformer.layer",
                hook_alias_overrides={
                    "hook_mlp_out": "mlp.out.hook_out",
                    "hook_mlp_in": "mlp.in.hook_in",
                },
                submodules={
                    "ln1": layer_norm("sa_layer_norm"),
                    "ln2": layer_norm("output_layer_norm"),
                    "attn": AttentionBridge(
                        name="attention",
                        config=self.cfg,
                        submodules={
                            "q": LinearBridge(name="q_lin"),
                            "k": LinearBridge(name="k_lin"),
                            "v": LinearBridge(name="v_lin"),
                            "o": LinearBridge(name="out_lin"),
                        },
                    ),
                    "mlp": MLPBridge(
                        name="ffn",
                        config=self.cfg,
                        submodules={
                            "in": LinearBridge(name="lin1"),
                            "out": LinearBridge(name="lin2"),
                        },
                    ),
                },
            ),
            "mlm_head": LinearBridge(name="vocab_transform"),
            "ln_final": layer_norm("vocab_layer_norm"),
            "unembed": UnembeddingBridge(name="vocab_projector"),
        }

    def prepare_model(self, hf_model: Any) -> None:
        """DistilBERT has no pooler and no next-sentence head: nothing to adjust."""


def register() -> None:
    """Make ``boot_transformers`` accept DistilBERT checkpoints.

    ``register_adapter`` alone is not enough in TransformerLens 4.3: the architecture
    lookup at boot reads the module-level ``SUPPORTED_ARCHITECTURES`` table, which
    ``register_adapter`` does not update, so the adapter is entered in both.
    """
    factory = architecture_adapter_factory.ArchitectureAdapterFactory
    factory.register_adapter(ARCHITECTURE, DistilBertArchitectureAdapter)
    architecture_adapter_factory.SUPPORTED_ARCHITECTURES[ARCHITECTURE] = DistilBertArchitectureAdapter
