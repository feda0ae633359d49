-- stay_inside_borders.lua -- DeepRacer's example 2: reward keeping all wheels on the track.
-- High reward while the car stays inside the borders with a small margin, nearly none outside.

function reward_function(params)
  local all_wheels_on_track = params.all_wheels_on_track
  local distance_from_center = params.distance_from_center
  local track_width = params.track_width

  local reward = 1e-3
  -- all wheels on the track and at least 5 cm from the border
  if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05 then
    reward = 1.0
  end
  return reward
end
