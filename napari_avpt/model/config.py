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
CLASS_FROM = ("image", "lesion-final", "lesion-taps")
# What one training run updates: all the method trains, its heads (lesion
# decoder and class head) on the prompts as they are, the lesion decoder
# alone, or the class head alone.
TUNE = ("all", "heads", "decoder", "class-head")
# The part of a prompt set each `TUNE` choice trains (parameter name prefixes); "all": everything.
TUNE_PREFIXES = {"heads": ("decoder.", "class_head."), "decoder": ("decoder.",), "class-head": ("class_head.",)}


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
    fuse_channels: int = 4  # hidden units per modality of the decoder's full-resolution fuse (GELU)
    # The baselines (VPT, linear, full) with A-VPT's modality-conditioned
    # decoder (FiLM and fuse units per modality): the benchmark's
    # one-decoder comparison, where only the prompts differ.
    baseline_modality_decoder: bool = False
    # One lesion decoder per modality (`heads.ModalityDecoders`) instead of
    # one shared by all: what one modality's training changes, the others'
    # lesions do not see.
    decoder_per_modality: bool = False
    n_taps: int = 4
    # What the class head reads beside CLS (and A-VPT's mean tissue prompt):
    # "image" nothing more; "lesion-final" / "lesion-taps" the patch tokens
    # (last block / the decoder's taps) pooled by the model's own lesion
    # probability, and how sure it is that there is a lesion.
    class_from: str = "lesion-taps"
    gate_init: float = -2.0  # sigmoid(-2) = 0.12: start close to "new prompts" (VPT-deep like)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.decoder_per_modality and not self.conditions_decoder:
            raise ValueError("one decoder per modality needs a decoder that knows the modality (A-VPT's)")
        if self.class_from not in CLASS_FROM:
            raise ValueError(f"unknown class input {self.class_from!r}; choose from {', '.join(CLASS_FROM)}")

    @property
    def is_avpt(self) -> bool:
        return self.method.startswith("avpt")

    @property
    def conditions_decoder(self) -> bool:
        """Whether the lesion decoder is conditioned on the modality code:
        A-VPT's is; a baseline's only for the one-decoder comparison."""
        return self.is_avpt or self.baseline_modality_decoder

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
