-- object_avoidance.lua -- DeepRacer's object-avoidance race: boxes stand in the lanes, and the
-- car sees them with a camera and a lidar.

return {
  model = "bayside-boxes",
  track = "bayside",
  reward = "../rewards/object_avoidance.lua",
  action_space = mirror_actions({
    { steering_angle = 0, speed = 1.0 },
    { steering_angle = 0, speed = 2.0 },
    { steering_angle = 15, speed = 1.0 },
    { steering_angle = 30, speed = 0.8 },
  }),
  race_type = "object_avoidance",
  objects = { count = 3, placement = "random", min_spacing = 3.0 },
  sensor = { "camera", "lidar" },
  camera = { downscale = 2 },
  network = { plugin = "cnn", architecture = "deep" },
  stop = { max_seconds = 3600 },
}
