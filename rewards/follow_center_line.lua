-- follow_center_line.lua -- DeepRacer's example 1: reward staying close to the centre line.
-- The closer the car is to the centre, the higher the reward, in three bands.

function reward_function(params)
  local track_width = params.track_width
  local distance_from_center = params.distance_from_center

  -- three markers at increasing distance from the centre line
  local marker_1 = 0.1 * track_width
  local marker_2 = 0.25 * track_width
  local marker_3 = 0.5 * track_width

  local reward
  if distance_from_center <= marker_1 then
    reward = 1.0
  elseif distance_from_center <= marker_2 then
    reward = 0.5
  elseif distance_from_center <= marker_3 then
    reward = 0.1
  else
    reward = 1e-3 -- likely crashed or close to off track
  end
  return reward
end
