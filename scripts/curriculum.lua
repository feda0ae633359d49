-- curriculum.lua -- learn the easy track first, then the hard one, with a decaying learning
-- rate: on_iteration(stats, training) runs after every iteration and steers the training.
--
-- The wide oval teaches the car to go round at all; once it finishes most of its laps there
-- the script moves it to bayside (a 2018-style 0.76 m track with tight corners) and keeps a
-- named checkpoint of the oval model. The learning rate decays by 3% an iteration down to a
-- floor, and training stops when bayside laps are mostly complete.

local switched = false

return {
  model = "curriculum",
  track = "oval",
  reward = "../rewards/progress.lua",
  action_space = action_grid({ -30, -15, 0, 15, 30 }, { 1.5, 3.0 }),
  hyperparameters = { lr = 0.0005, num_episodes_between_training = 32 },
  stop = { max_seconds = 1200 },

  on_iteration = function(stats, training)
    -- lr decay: 3% per iteration, never below 5e-5
    training.set_lr(math.max(5e-5, training.lr * 0.97))

    if not switched and stats.completion_rate >= 0.6 then
      switched = true
      training.save_checkpoint("oval-done")
      training.set_track("bayside")
      training.set_beta_entropy(0.005) -- explore a little less on the second track
      print(string.format("iteration %d: oval mastered, moving to bayside", stats.iteration))
    elseif switched and stats.completion_rate >= 0.9 then
      return { stop = "bayside laps mostly complete" }
    end
  end,
}
