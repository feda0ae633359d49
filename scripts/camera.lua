-- camera.lua -- DeepRacer's own setup: the front camera and a convolutional network, as a
-- console model with DEEP_CONVOLUTIONAL_NETWORK_SHALLOW would train.

return {
  model = "bayside-camera",
  track = "bayside",
  reward = "../rewards/follow_center_line.lua",
  action_space = console_actions(30, 5, 2.0, 2), -- max steering, granularity, max speed, granularity
  sensor = { "camera" },                          -- 160x120 grayscale ("stereo": two cameras)
  camera = { downscale = 2 },                     -- 80x60 frames: four times fewer pixels
  network = { plugin = "cnn", architecture = "shallow" },
  hyperparameters = { stack_size = 1 },           -- frames stacked per observation
  stop = { max_seconds = 3600 },
}
