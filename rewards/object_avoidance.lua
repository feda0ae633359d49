-- object_avoidance.lua -- DeepRacer's example 4: stay inside the borders, keep clear of the
-- object ahead when it is in the car's lane.
--
-- A line-by-line translation of the console's object-avoidance example. Lua counts from 1, so
-- params.closest_objects holds 1-based indices into the objects_* lists, and 0 means there is
-- no such object (a time trial, or nothing ahead on a straight track); the Python original
-- would fail there, this one then scores the lane alone.

function reward_function(params)
  local all_wheels_on_track = params.all_wheels_on_track
  local distance_from_center = params.distance_from_center
  local track_width = params.track_width
  local objects_location = params.objects_location
  local agent_x = params.x
  local agent_y = params.y
  local next_object_index = params.closest_objects[2]
  local objects_left_of_center = params.objects_left_of_center
  local is_left_of_center = params.is_left_of_center

  -- Initialize reward with a small number but not zero, because zero means off-track or
  -- crashed
  local reward = 1e-3

  -- Reward if the agent stays inside the two borders of the track
  local reward_lane
  if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05 then
    reward_lane = 1.0
  else
    reward_lane = 1e-3
  end

  -- Penalize if the agent is too close to the next object
  local reward_avoid = 1.0

  local next_object_loc = objects_location[next_object_index]
  if next_object_loc ~= nil then
    -- Distance to the next object
    local distance_closest_object = math.sqrt((agent_x - next_object_loc[1]) ^ 2 +
                                              (agent_y - next_object_loc[2]) ^ 2)
    -- Decide if the agent and the next object is on the same lane
    local is_same_lane = objects_left_of_center[next_object_index] == is_left_of_center

    if is_same_lane then
      if 0.5 <= distance_closest_object and distance_closest_object < 0.8 then
        reward_avoid = reward_avoid * 0.5
      elseif 0.3 <= distance_closest_object and distance_closest_object < 0.5 then
        reward_avoid = reward_avoid * 0.2
      elseif distance_closest_object < 0.3 then
        reward_avoid = 1e-3 -- Likely crashed
      end
    end
  end

  -- Calculate reward by putting different weights on the two aspects above
  reward = reward + 1.0 * reward_lane + 4.0 * reward_avoid

  return reward
end
