-- generalize.lua -- one model trained on oval and narrows at once, both directions, to drive a
-- track it never saw: `chicane evaluate generalize --track bayside` (bayside is also
-- narrower, 0.76 m against 1.067 m).
--
-- The state sensor describes the road relative to the car (offset over the half width,
-- heading error, curvature ahead), not where the car is, so what it learns on two tracks can
-- carry to a third; alternate_direction gives it left and right corners on both. The reward
-- is fast_lap.lua's (rewards/racing_line_fast.lua), computed on each track's own racing line.
--
-- Measured (180 s of training, 260k-281k env steps, `chicane evaluate generalize --track T`,
-- 3 trials each, all complete), seeds 1 and 2:
--   bayside (never seen)  5.93 s, 5.80 s  ratio 1.069, 1.045
--   oval                  5.47 s, 5.40 s  ratio 1.052, 1.039
--   narrows               5.60 s, 5.80 s  ratio 1.064, 1.102

return {
  model = "generalize",
  tracks = { "oval", "narrows" }, -- worker w drives tracks[w % 2]
  reward = "../rewards/racing_line_fast.lua",
  action_space = {
    steering_angle = { -30, 30 },
    speed = { 0.5, 4.0 },
  },
  sensor = { "state" },
  algorithm = "sac",
  network = { plugin = "mlp", hidden = { 64, 64 }, activation = "tanh" },
  hyperparameters = {
    discount_factor = 0.99,
    sac_alpha = 0.05,
    num_episodes_between_training = 32,
  },
  start = { advance = 0.05, alternate_direction = true },
  workers = 2,
  stop = { max_seconds = 180 },
  seed = 1,
}
