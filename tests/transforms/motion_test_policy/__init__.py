"""A throw-away policy for the tests: it asks for frames t and t+k and trains a linear map from the StaMo
latent motion (added by the `stamo_pseudo_action` step) to the action. Imported by the test's lerobot-train
subprocess before LeRobot parses its arguments."""

from .configuration_motion_test import MotionTestConfig
from .modeling_motion_test import MotionTestPolicy
from .processor_motion_test import make_motion_test_pre_post_processors

__all__ = ["MotionTestConfig", "MotionTestPolicy", "make_motion_test_pre_post_processors"]
