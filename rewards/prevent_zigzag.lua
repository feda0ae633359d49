-- prevent_zigzag.lua -- DeepRacer's example 3: follow the centre line, penalise hard steering.
-- Same bands as follow_center_line.lua; steering beyond 15 degrees costs 20% of the reward.

local ABS_STEERING_THRESHOLD = 15 -- degrees; tune it to the action space

function reward_function(params)
  local distance_from_center = params.distance_from_center
  local track_width = params.track_width
  local abs_steering = math.abs(params.steering_angle)

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
    reward = 1e-3
  end

  if abs_steering > ABS_STEERING_THRESHOLD then
    reward = reward * 0.8
  end
  return reward
end
