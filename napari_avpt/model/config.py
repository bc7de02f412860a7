"""One configuration describes A-VPT, its ablations and every baseline, so
that all of them run through the same model code and the same trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass

METHODS = (
    "avpt",  # anatomy-guided prompts, carried across layers, SupCon + attention prior
    "avpt-no-anatomy",  # region embeddings from the whole image instead of tissue maps
    "avpt-no-carry",  # new prompts at every block, no gated carry-over
    "avpt-no-supcon",  # no cross-modal contrastive loss
    "vpt-deep",  # static learned prompts at every block (Jia et al. 2022)
    "vpt-shallow",  # static learned prompts at the input only
    "linear",  # frozen features, heads only
    "full",  # the whole backbone fine-tuned
)
MODALITY_INDEX = {"MG": 0, "US": 1, "MR": 2}
# Modalities as users name them (any case), to the codes above.
MODALITY_ALIASES = {
    "MG": "MG",
    "MAMMOGRAM": "MG",
    "MAMMOGRAPHY": "MG",
    "MAMMO": "MG",
    "US": "US",
    "ULTRASOUND": "US",
    "SONOGRAPHY": "US",
    "MR": "MR",
    "MRI": "MR",
    "BREAST MRI": "MR",
}
MODALITY_WORDS = {"MG": "mammogram", "US": "ultrasound", "MR": "MRI"}


def modality_code(name) -> str | None:
    """MG, US or MR for a name users give a modality (`mammogram`, `MRI`,
    `ultrasound`, any case), else None."""
    return MODALITY_ALIASES.get(str(name).strip().upper()) if name is not None else None


def parse_modality(name) -> str:
    """`modality_code`, refusing a name it does not know with a message that lists the choices."""
    code = modality_code(name)
    if code is None:
        raise ValueError(f"unknown modality {name!r}: choose MG (mammogram), US (ultrasound) or MR (MRI)")
    return code


CLASS_NAMES = ("normal", "benign", "malignant")
# Values of fields added after prompt sets were first saved: a set without
# the field was made with this value (the shipped default of sessions 3-10
# among them, and sets tuned from it).
LEGACY = {
    "fuse_channels": 4,
    "decoder_activation": "relu",
    "modality_decoder": False,
    "class_from": "image",
    "modality_fuse": False,
}
CLASS_FROM = ("image", "lesion-final", "lesion-taps")
# What one training run updates: all the method trains, or the class head alone.
TUNE = ("all", "class-head")


@dataclass
class ModelConfig:
    method: str = "avpt"
    backbone: str = "vit_tiny_patch16_224"
    img_size: int = 224
    prompts_per_tissue: int = 2
    global_prompts: int = 2  # static VPT-deep style prompts beside the tissue prompts
    vpt_prompts: int = 8  # prompt count of the VPT baselines (= A-VPT's 3 x 2 + 2)
    rank: int = 16
    decoder_channels: int = 16
    skip_channels: int = 8
    fuse_channels: int = 4  # hidden units of the decoder's full-resolution fuse (GELU: none is silent)
    decoder_activation: str = "gelu"  # of the full-resolution skip and fuse
    modality_decoder: bool = True  # A-VPT's lesion decoder conditioned on the modality code (FiLM)
    # A-VPT only: the fuse's hidden units are `fuse_channels` per modality,
    # the modality code picks them: in joint training ultrasound took a
    # shared 4-unit fuse's units and mammograms and MRI were never learnt
    # (docs/model.md).
    modality_fuse: bool = True
    # The baselines (VPT, linear, full) with A-VPT's modality-conditioned
    # decoder too (FiLM and, with `modality_fuse`, fuse units per modality):
    # the benchmark's one-decoder comparison, where only the prompts differ.
    # In joint training that decoder, not the prompts, is what learnt
    # mammograms and MRI (docs/benchmarks.md, session 12).
    baseline_modality_decoder: bool = False
    n_taps: int = 4
    # What the class head reads beside CLS (and A-VPT's mean tissue prompt):
    # "image" nothing more; "lesion-final" / "lesion-taps" the patch tokens
    # (last block / the decoder's taps) pooled by the model's own lesion
    # probability, and how sure it is that there is a lesion.
    class_from: str = "lesion-taps"
    # A-VPT: each block's tissue prompts also shift the patch tokens of their
    # own tissue (the pooled tissue map weighting a learned per-block,
    # per-tissue scale of the tissue's mean prompt, starting at zero): the
    # prompts alone reach a patch only through attention, the same for
    # every patch whatever its tissue.
    tissue_shift: bool = False
    # A-VPT: attention between a patch and a tissue's prompts biased by how
    # much of the patch is that tissue, alpha * (share - 1) with a learned
    # alpha per block and tissue starting at `tissue_attention_init` (0 is
    # plain attention): a tissue's prompts then read and write mostly their
    # own tissue's patches.
    tissue_attention: bool = False
    tissue_attention_init: float = 2.0
    gate_init: float = -2.0  # sigmoid(-2) = 0.12: start close to "new prompts" (VPT-deep like)
    tune_layernorm: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.decoder_activation not in ("gelu", "relu"):
            raise ValueError(f"unknown decoder activation {self.decoder_activation!r} (gelu or relu)")
        if self.class_from not in CLASS_FROM:
            raise ValueError(f"unknown class input {self.class_from!r}; choose from {', '.join(CLASS_FROM)}")

    @classmethod
    def from_saved(cls, saved: dict) -> ModelConfig:
        """The configuration a prompt set was saved with. Sets saved before
        a field existed were made with its old value (LEGACY), not today's
        default: the shipped default of sessions 3-10, and the sets tuned
        from it, have the 4-unit ReLU fuse."""
        return cls(**{**LEGACY, **saved})

    @property
    def is_avpt(self) -> bool:
        return self.method.startswith("avpt")

    @property
    def conditions_decoder(self) -> bool:
        """Whether the lesion decoder is conditioned on the modality code."""
        return self.modality_decoder and (self.is_avpt or self.baseline_modality_decoder)

    @property
    def uses_anatomy(self) -> bool:
        return self.is_avpt and self.method != "avpt-no-anatomy"

    @property
    def carries_prompts(self) -> bool:
        return self.is_avpt and self.method != "avpt-no-carry"

    @property
    def uses_supcon(self) -> bool:
        return self.is_avpt and self.method != "avpt-no-supcon"

    def to_dict(self) -> dict:
        return asdict(self)
