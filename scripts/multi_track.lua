-- multi_track.lua -- one model trained on two tracks at once (worker w drives track
-- w % #tracks), with the racing-line reward and episodes in both directions.

return {
  model = "two-tracks",
  tracks = { "bayside", "oval" },
  reward = "../rewards/racing_line.lua",
  action_space = action_grid(linspace(-30, 30, 5), { 1.5, 2.5, 3.5 }),
  start = { advance = 0.05, alternate_direction = true },
  workers = 2,
  stop = { max_seconds = 300 }, -- progress alone is reached long before the laps get fast
}
