-- continuous.lua -- a continuous action space: the policy picks any steering angle and speed
-- within the ranges (DeepRacer maps its two outputs in [-1, 1] linearly onto them).

return {
  model = "bayside-continuous",
  track = "bayside",
  reward = "../rewards/follow_center_line.lua",
  action_space = {
    steering_angle = { -30, 30 }, -- degrees: {low, high} (or {low = -30, high = 30})
    speed = { 0.5, 3.5 },         -- m/s
  },
  algorithm = "clipped_ppo",      -- "sac" also works with a continuous space
  hyperparameters = { sac_alpha = 0.2 },
  stop = { max_seconds = 900 },
}
