-- default.lua -- the default training: the state sensor on the bayside track, PPO, until the
-- car completes 3 of 3 evaluation laps (or 10 minutes pass).
--
-- Every key is optional except reward and action_space; the values shown for
-- hyperparameters are DeepRacer's console defaults unless a comment says otherwise. The
-- other example scripts here show the rest: curriculum.lua (on_iteration: switch tracks, decay
-- the learning rate), continuous.lua (continuous actions), camera.lua (camera + CNN),
-- object_avoidance.lua (boxes on the track), head_to_head.lua (bot cars) and
-- multi_track.lua (several tracks at once), fast_lap.lua (SAC within 10% of the reference
-- lap in about a minute) and generalize.lua (train on two tracks, drive a third). To start
-- from a DeepRacer model's files, add
--   deepracer = { model_metadata = "model_metadata.json", hyperparameters = "hyperparameters.json" },
-- and the action space, sensor, network, algorithm and hyperparameters come from them (keys
-- written here still win).

return {
  model = "bayside-ppo",
  track = "bayside",                  -- tracks/bayside.track (or a path to a .track file)
  reward = "../rewards/progress.lua", -- relative to this script, else to the data directory

  -- steering_angle in degrees (+ = left), speed in m/s; action_grid(steerings, speeds)
  -- builds every combination, or list them as { {steering_angle = 0, speed = 1}, ... }
  -- (console_actions(30, 5, 3, 2) builds what the DeepRacer console would)
  action_space = action_grid({ -30, -15, 0, 15, 30 }, { 1.5, 3.0 }),

  sensor = { "state" },     -- the compact state vector: fastest to learn from
  algorithm = "clipped_ppo",
  network = { plugin = "mlp", hidden = { 64, 64 }, activation = "tanh" },

  hyperparameters = {
    batch_size = 64,
    num_epochs = 10,
    lr = 0.0003,
    beta_entropy = 0.01,
    discount_factor = 0.999,
    loss_type = "huber",
    num_episodes_between_training = 32, -- console default 20; 32 fills 2 workers x 8 cars twice
    -- Also accepted (DeepRacer's names): exploration_type = "categorical" | "e-greedy",
    -- e_greedy_value, epsilon_steps, stack_size (camera frames), term_cond_avg_score,
    -- term_cond_max_episodes, sac_alpha (algorithm = "sac"); and chicane's PPO extras
    -- value_clip (SB3's clip_range_vf) and target_kl (early stop), both off unless set.
  },

  stop = {
    eval_laps = 3,      -- stop once a greedy evaluation completes 3 of 3 laps
    max_seconds = 600,  -- or after 10 minutes
  },

  start = {
    advance = 0.05,     -- each episode starts 5% of the track further on (DeepRacer's rule)
    offset = 0,         -- metres left (+) of the centre line
    alternate_direction = false, -- true: every other episode drives the track the other way
  },

  workers = 2,          -- rollout threads (one per core)
  update_threads = 0,   -- PPO update threads (0: automatic, one for this small network)
  cars_per_worker = 8,  -- cars each worker steps together
  segment_steps = 128,  -- episodes are cut into segments of this many steps
  max_steps = 1500,     -- a training episode ends after 100 s of simulated time
}
