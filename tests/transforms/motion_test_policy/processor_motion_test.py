from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines

from lerobot_stamo.policies.stamo import StamoPseudoActionStep


def make_motion_test_pre_post_processors(config, dataset_stats=None):
    s = make_default_policy_processor_steps(config, dataset_stats)
    motion = StamoPseudoActionStep(policy_path=config.stamo_path, cameras=[config.motion_camera])
    return make_policy_processor_pipelines(
        input_steps=[s.rename_observations, s.add_batch_dim, s.to_device, motion, s.normalize],
        output_steps=[s.unnormalize, s.to_cpu],
    )
