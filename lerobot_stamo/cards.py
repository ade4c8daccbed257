"""Where the Hub cards this plug-in writes (model cards, dataset cards) link back to: one home for the URLs.

The same addresses are the `[project.urls]` of pyproject.toml (tests/test_docs.py checks that they agree).
"""

PROJECT_URL = "https://github.com/lerobot-stamo/lerobot-stamo"
DOCS_URL = f"{PROJECT_URL}/blob/main/docs"
PAPER_URL = "https://arxiv.org/abs/2510.05057"

# The docs page that explains each kind of dataset this plug-in writes.
_DATASET_DOCS = {
    "sim_record": ("sim-arm.md", "Recorded on the simulated SO-101 (`stamo_so101`) by its scripted expert"),
    "label": ("latent-motion.md", "Labelled with StaMo states and latent motion (`lerobot-stamo-label`)"),
    "cotrain": (
        "stamo-vla.md#co-training-a-few-robot-episodes-plus-many-videos",
        "Robot episodes and StaMo-labelled videos for co-training `stamo_vla` (`lerobot-stamo-cotrain`)",
    ),
}


def dataset_card_kwargs(kind: str) -> dict:
    """Keyword arguments for `LeRobotDataset.push_to_hub`: the card's description, homepage, paper and tags.

    Args:
        kind: "sim_record", "label" or "cotrain" (the command that wrote the dataset).
    """
    page, what = _DATASET_DOCS[kind]
    return {
        "tags": ["stamo", "lerobot-stamo"],
        "dataset_description": f"{what}, with the [lerobot-stamo]({PROJECT_URL}) plug-in: see "
        f"[its documentation]({DOCS_URL}/{page}).",
        "url": PROJECT_URL,
        "paper": PAPER_URL,
    }
