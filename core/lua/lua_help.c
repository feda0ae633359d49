/* lua_help.c -- the API's documentation: chicane.help(), :help in the REPL. */
#include "lua_internal.h"

#include <string.h>

typedef struct ch__help {
  const char *name;      /* "track", "env:step" */
  const char *signature; /* how it is called */
  const char *text;      /* first line: the summary; then details */
} ch__help;

static const ch__help ch__entries[] = {
    {"help", "chicane.help([name]) -> table or string",
     "The API's documentation.\n"
     "Without a name: a table of every entry, name -> summary. With one (\"track\",\n"
     "\"env:step\", \"chicane.model\"): that entry's whole text. The REPL's :help and\n"
     ":help NAME print the same."},
    {"version", "chicane.version", "The version of chicane, a string."},
    {"home", "chicane.home([dir | {home=, storage=, catalog=}]) -> {home, storage, catalog, data}",
     "Where models live; with an argument, move there first.\n"
     "The default home is $CHICANE_HOME, else the current directory, as for the chicane\n"
     "command: storage in HOME/storage, the catalog in HOME/catalog.db. `data` is where\n"
     "tracks, rewards and scripts are found ($CHICANE_DATA_DIR or the installed data)."},
    {"plugins", "chicane.plugins() -> list of {kind, name, version, summary, path}",
     "The plugins found on the search path, as `chicane plugins` lists them.\n"
     "A file that failed to load has `error` instead of kind and name."},
    {"tracks", "chicane.tracks() -> list of names",
     "The tracks shipped in the data directory; pass a name to chicane.track."},
    {"track", "chicane.track(name_or_path) -> track",
     "Load a track by name (\"bayside\") or .track file path.\n"
     "Fields: name, path, length and width (metres), loop (boolean), points (count),\n"
     "waypoints (the centre line as a list of {x, y}), left and right (the borders).\n"
     "Methods: project, point_at, curvature, racing_line, centre_line, reference_lap,\n"
     "close."},
    {"track:project", "track:project(x, y) -> {s, progress, offset, distance, heading, ...}",
     "Where a point lies relative to the track.\n"
     "s: arc position along the centre line (m); progress: s as a percentage of the length;\n"
     "offset: signed distance from the centre line (+ = left of the driving direction);\n"
     "distance: |offset|; heading: the track's direction there (degrees); x, y: the closest\n"
     "centre-line point; segment (from 1), t (0..1 along it); half_left, half_right: the\n"
     "half widths there; left_of_center, on_track: booleans."},
    {"track:point_at", "track:point_at(s) -> x, y, heading",
     "The centre-line point and heading (degrees) at an arc position.\n"
     "s is in metres from the start line and wraps round a loop."},
    {"track:racing_line", "track:racing_line([car]) -> {points, speed, length, lap_time, ...}",
     "The minimum-curvature racing line inside the borders and its speed profile.\n"
     "points: a list of {x, y}, one per centre point; speed (m/s), offset (from the centre\n"
     "line, + = left), curvature and s (arc position), one per point; length, lap_time (a\n"
     "flying lap), standing_lap_time (from rest), iterations. car: limits of the car,\n"
     "DeepRacer's by default: v_max, v_min, a_lat, a_accel, a_brake, margin,\n"
     "friction_circle."},
    {"track:centre_line", "track:centre_line([car]) -> {points, speed, length, lap_time, ...}",
     "The centre line with the same speed profile, to compare the racing line with."},
    {"track:reference_lap", "track:reference_lap() -> seconds",
     "The reference lap time evaluations compare with (the racing line from rest)."},
    {"track:curvature", "track:curvature(s[, ahead]) -> number",
     "Mean curvature of the centre line ahead of an arc position, 1/m (+ = turning left).\n"
     "Averaged over [s, s + ahead], ahead 0.5 m by default."},
    {"env", "chicane.env{track=, plugin=\"sim2d\", num_cars=1, ...} -> env",
     "Create a simulator (an env plugin) to drive by hand.\n"
     "track is a name, a path or a track object; plugin names the env plugin; every other\n"
     "key goes to the plugin as its JSON configuration, tables included (sim2d's USAGE:\n"
     "num_cars, max_steps, substeps, min_speed, seed, start_heading_offset, sensors =\n"
     "{\"camera\", ...}, camera, lidar, race_type, objects, bots).\n"
     "chicane.env(\"oval\") is chicane.env{track = \"oval\"}. Cars are numbered from 1.\n"
     "Fields: num_cars, obs_size, track, plugin. Methods: reset, step, recover, spec,\n"
     "waypoints, close (or `local env <close> = chicane.env{...}`)."},
    {"env:reset", "env:reset{car=1, start=0, offset=0, reversed=false, seed=1} -> obs, params",
     "Start an episode.\n"
     "start: fraction 0..1 of the track from the start line; offset: metres left (+) or\n"
     "right (-) of the centre line; reversed: drive against the track's direction; seed:\n"
     "randomness of objects and bots. obs is the list of observation floats (with\n"
     "obs.image, an image, when the env has a camera); params is DeepRacer's reward\n"
     "parameters table. Without car in an env of several cars, every car is reset and\n"
     "the results are lists, one entry per car."},
    {"env:step", "env:step(steering, speed) -> obs, params, status",
     "Advance the simulation one step (1/15 s) with a command.\n"
     "steering in degrees (+ = left), speed in m/s. status is the episode status: in_progress, "
     "lap_complete, off_track, crashed,\n"
     "immobilized, reversed or time_up; after the episode ends, reset or recover the car.\n"
     "In an env of several cars pass lists (one entry per car) and get lists; cars whose\n"
     "episode ended are not stepped and keep their last values."},
    {"env:recover", "env:recover([car]) -> obs, params",
     "Put a car back on the track after its episode ended, keeping progress and steps.\n"
     "The car goes to the closest centre-line point, at rest (the evaluation rule after\n"
     "leaving the track); car is 1 by default."},
    {"env:spec", "env:spec() -> table",
     "The env's shape, from its plugin.\n"
     "Fields: num_cars, obs_size, num_waypoints, is_loop, track_length, track_width,\n"
     "step_seconds, image_width, image_height, image_channels, max_objects."},
    {"env:waypoints", "env:waypoints() -> list of {x, y}",
     "The centre line as the env drives it; params.waypoints is the same table."},
    {"image", "obs.image -> image",
     "A camera frame, in the obs of an env with a camera.\n"
     "Fields: width, height, channels and bytes (the raw pixels as a string: channel\n"
     "planes of rows of bytes). Methods: at, mean, save."},
    {"image:at", "image:at(x, y[, channel]) -> 0..255",
     "One pixel's value.\n"
     "Column x and row y count from 1, row 1 at the top; channel is 1 by default."},
    {"image:mean", "image:mean() -> number", "The mean pixel value over every channel."},
    {"image:save", "image:save(path) -> image",
     "Write the frame as a grayscale PNG.\n"
     "Several channels (stereo, stacked frames) are stacked top to bottom."},
    {"reward", "chicane.reward(path[, track[, {reversed=false}]]) -> reward",
     "Load a reward function in the training sandbox.\n"
     "path is relative to the current directory, else to the data directory\n"
     "(\"rewards/progress.lua\"). With a track, as in training, params.waypoints is its\n"
     "centre line and params.racing_line its racing line, in the direction driven.\n"
     "Call it as reward:call(params) or reward(params). Fields: path, track."},
    {"reward:call", "reward:call(params) -> number",
     "Call reward_function(params) as training does.\n"
     "With the instruction budget and memory cap, and an error for a value that is not a\n"
     "finite number in [-1e5, 1e5]. params is a table with DeepRacer's names (missing ones\n"
     "are 0 or false), e.g. what env:step returned."},
    {"models", "chicane.models() -> list of {name, track, status, iterations, ...}",
     "The models in the catalog.\n"
     "Each with name, track, status, reward_script, created, and from its latest\n"
     "checkpoint iterations, env_steps, mean_progress, completion_rate and mean_reward."},
    {"model", "chicane.model(name) -> model",
     "Load a model's latest checkpoint from storage (checked against the catalog).\n"
     "Fields: name, track, iteration, num_actions, actions, input_size, status, config,\n"
     "created, reward_script, storage. Methods: act, probabilities, drive, checkpoints,\n"
     "evaluations, close."},
    {"checkpoints", "chicane.checkpoints(name) -> list",
     "A model's checkpoints in the catalog.\n"
     "Each with iteration, episodes, env_steps, wall_seconds, storage_key, sha256,\n"
     "created and metrics."},
    {"evaluations", "chicane.evaluations(name) -> list",
     "A model's recorded evaluations.\n"
     "Each with iteration, track, trials, completed_laps, created and results."},
    {"model:act", "model:act(obs) -> index, steering, speed",
     "The greedy action for an observation.\n"
     "obs is a list of input_size floats (the obs of env:step); returns the action's\n"
     "index in the action space (from 1), its steering angle and its speed."},
    {"model:probabilities", "model:probabilities(obs) -> list",
     "The policy's probability of each action for an observation."},
    {"model:drive", "model:drive{track=, trials=1, penalty=5, max_seconds=180, ...} -> results",
     "Drive evaluation laps and summarize them.\n"
     "As `chicane evaluate` does: the latest checkpoint acts greedily from the start line\n"
     "and is put back with a time penalty after leaving the track; on track (default:\n"
     "the model's own). More options: crash_penalty (5), race_type, seed (1). The results\n"
     "are what `chicane evaluate --json` prints: completed_laps, best_lap_time,\n"
     "reference_lap, best_ratio, off_track, crashes, and trials, a list of {trial,\n"
     "progress, lap_time, ratio, off_track, crashes, completed, steps, status}. Nothing\n"
     "is recorded in the catalog."},
    {"model:checkpoints", "model:checkpoints() -> list",
     "The model's checkpoints in the catalog, as chicane.checkpoints(model.name)."},
    {"model:evaluations", "model:evaluations() -> list",
     "The model's recorded evaluations, as chicane.evaluations(model.name)."},
    {"train", "chicane.train(script[, {name=, max_seconds=, max_iterations=, replace=, quiet=}])",
     "Run a training script (see scripts/default.lua) until a stop condition holds.\n"
     "The options override the script's model name and stop conditions; replace starts an\n"
     "existing model over; quiet drops the per-iteration lines. Returns a summary: model,\n"
     "iterations, episodes, env_steps, seconds, stop_reason, last (the last iteration's\n"
     "statistics)."},
    {"render",
     "chicane.render{track=, sensor=\"camera\", progress=0, offset=0, out=\"frame.png\", ...}",
     "Draw what a car's sensors see, or a map of the track, into a PNG file; returns out.\n"
     "sensor: camera, stereo, lidar or top (the whole track). The car starts progress\n"
     "percent along the track, offset metres left (+) of the centre line, turned\n"
     "heading_offset degrees. More options: race_type, seed (where objects go), reversed,\n"
     "scale (camera pixels per image pixel, 4), plugin (the env), env (a table of more env\n"
     "config, e.g. {objects = {count = 5}})."},
    {"repr", "chicane.repr(value[, {depth=4, items=30, width=100}]) -> string",
     "A readable rendering of any value, as the REPL prints results.\n"
     "Tables as {k = v, ...} (nested up to depth, items entries each, one entry per line\n"
     "past width), cycles as <cycle>, functions by name, objects by their summary."},
    {"pp", "chicane.pp(...)", "Print values as chicane.repr renders them."},
};

#define CH__NENTRIES (sizeof ch__entries / sizeof ch__entries[0])

/* Find an entry: "track", "chicane.track", "env:step", "env.step". */
static const ch__help *ch__find(const char *name) {
  char key[128];
  if (strncmp(name, "chicane.", 8) == 0) name += 8;
  snprintf(key, sizeof key, "%s", name);
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < CH__NENTRIES; i++)
      if (strcmp(ch__entries[i].name, key) == 0) return &ch__entries[i];
    char *dot = strchr(key, '.');
    if (!dot) break;
    *dot = ':';
  }
  return NULL;
}

static size_t ch__summary_len(const ch__help *h) {
  const char *nl = strchr(h->text, '\n');
  return nl ? (size_t)(nl - h->text) : strlen(h->text);
}

int ch_lua_help_print(FILE *out, const char *name) {
  if (name) {
    const ch__help *h = ch__find(name);
    if (!h) return -1;
    fprintf(out, "%s\n\n%s\n", h->signature, h->text);
    return 0;
  }
  fputs("The chicane module (global `chicane`, or require \"chicane\"). `:help NAME` for one.\n\n",
        out);
  for (size_t i = 0; i < CH__NENTRIES; i++) {
    const ch__help *h = &ch__entries[i];
    int n = (int)strlen(h->signature);
    if (n > 44)
      fprintf(out, "  %s\n  %-44s %.*s\n", h->signature, "", (int)ch__summary_len(h), h->text);
    else
      fprintf(out, "  %-44s %.*s\n", h->signature, (int)ch__summary_len(h), h->text);
  }
  return 0;
}

/* chicane.help([name]) -> table of summaries, or one entry's text */
static int ch__help_fn(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_createtable(L, 0, (int)CH__NENTRIES);
    for (size_t i = 0; i < CH__NENTRIES; i++) {
      lua_pushlstring(L, ch__entries[i].text, ch__summary_len(&ch__entries[i]));
      lua_setfield(L, -2, ch__entries[i].name);
    }
    return 1;
  }
  const char *name = luaL_checkstring(L, 1);
  const ch__help *h = ch__find(name);
  if (!h) return luaL_error(L, "chicane.help: no entry '%s' (chicane.help() lists them)", name);
  lua_pushfstring(L, "%s\n\n%s", h->signature, h->text);
  return 1;
}

void ch_lua_open_help(lua_State *L) {
  lua_pushcfunction(L, ch__help_fn);
  lua_setfield(L, -2, "help");
}
