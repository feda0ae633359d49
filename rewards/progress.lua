-- progress.lua -- chicane's own reward: pay for track covered, weighted by how centred the car is.
--
-- Why it trains faster than the examples: the centre-line rewards pay per step, so a car
-- that crawls earns as much as one that races, and the learner must first discover that
-- finishing matters. Paying for progress made in this step (in percent of the lap) makes a
-- whole lap worth about 100 however long it takes, so going further is what pays, and the
-- discount makes going faster pay too. The centring weight keeps the car away from the
-- borders while it learns. Leaving the track ends the episode, which forfeits the rest.
--
-- Each car gets its own Lua state, so the global below belongs to one car's episodes.

local last_progress = 0

function reward_function(params)
  if params.steps <= 1 then
    last_progress = 0
  end
  local gained = params.progress - last_progress
  last_progress = params.progress

  local half_width = 0.5 * params.track_width
  local centred = 1.0 - math.min(1.0, params.distance_from_center / half_width)

  if gained < 0 then
    gained = 0
  end
  return gained * (0.5 + 0.5 * centred)
end
