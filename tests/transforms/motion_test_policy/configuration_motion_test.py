from dataclasses import dataclass, field

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig


@PreTrainedConfig.register_subclass("motion_test")
@dataclass
class MotionTestConfig(PreTrainedConfig):
    stamo_path: str = ""
    motion_camera: str = "observation.images.front"
    horizon: int = 2
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    def __post_init__(self):
        super().__post_init__()

    @property
    def drop_n_last_frames(self) -> int:
        return self.horizon

    @property
    def observation_delta_indices(self) -> list[int]:
        return [0, self.horizon]

    @property
    def action_delta_indices(self) -> list[int]:
        return [0]

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=1e-3)

    def get_scheduler_preset(self) -> None:
        return None

    def validate_features(self) -> None:
        if self.motion_camera not in self.image_features:
            raise ValueError(f"{self.motion_camera} not in {list(self.image_features)}")
