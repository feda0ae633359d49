-- head_to_head.lua -- DeepRacer's head-to-head race against bot cars that change lanes, seen
-- through a stereo camera and a sector lidar.

return {
  model = "bayside-h2h",
  track = "bayside",
  reward = "../rewards/object_avoidance.lua", -- bot cars are objects too
  action_space = console_actions(30, 5, 2.5, 2),
  race_type = "head_to_head",
  bots = { count = 2, speed = 1.0, lane_changes = true },
  sensor = { "stereo", "sector_lidar" },
  network = { plugin = "cnn", architecture = "shallow" },
  stop = { max_seconds = 3600 },
}
