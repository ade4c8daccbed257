import torch
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION
from torch import nn

from lerobot_stamo.policies.stamo import load_stamo_config
from lerobot_stamo.transforms import VALID_KEY, motion_key

from .configuration_motion_test import MotionTestConfig


class MotionTestPolicy(PreTrainedPolicy):
    config_class = MotionTestConfig
    name = "motion_test"

    def __init__(self, config: MotionTestConfig, **kwargs):
        super().__init__(config)
        config.validate_features()
        self.config = config
        stamo = load_stamo_config(config.stamo_path)  # the motion's size: num_tokens x token_dim
        self.head = nn.Linear(stamo.num_tokens * stamo.token_dim, config.output_features[ACTION].shape[0])

    def get_optim_params(self):
        return self.parameters()

    def reset(self):
        pass

    def forward(self, batch, reduction: str = "mean"):
        key = motion_key(self.config.motion_camera)
        if key not in batch:  # the label must reach forward
            raise KeyError(f"{key} missing from the batch given to forward: {sorted(batch)}")
        motion = batch[key]  # (B, N, D)
        if motion.ndim != 3 or VALID_KEY not in batch:
            raise ValueError(f"bad motion {tuple(motion.shape)} / keys {sorted(batch)}")
        pred = self.head(motion.flatten(1))  # (B, A)
        target = batch[ACTION][:, 0]  # (B, A)
        loss = ((pred - target) ** 2).mean(-1) * batch[VALID_KEY].float()
        info = {"motion_abs": motion.abs().mean().item(), "valid": batch[VALID_KEY].float().mean().item()}
        return (loss if reduction == "none" else loss.mean()), info

    def predict_action_chunk(self, batch, **kwargs):
        b = next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0]
        return torch.zeros(b, 1, self.config.output_features[ACTION].shape[0])

    def select_action(self, batch, **kwargs):
        return self.predict_action_chunk(batch)[:, 0]
