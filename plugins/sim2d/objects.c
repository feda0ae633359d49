/* objects.c -- sim2d race objects: boxes placed in the lanes and bot cars driving along them. */
#include <chicane/plugin_util.h>
#include <math.h>

#include "sim2d.h"

/* splitmix64: the episode's random numbers come from the reset seed alone. */
static uint64_t ch__next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double ch__uniform(uint64_t *state) {
  return (double)(ch__next(state) >> 11) * 0x1.0p-53;
}

/* The segment holding arc position s (wrapped): a few steps forward from the hint, which is
** where a moving object is found, else a binary search. */
static int ch__segment(const ch_track *t, double s, int hint) {
  for (int k = 0; hint >= 0 && hint < t->nseg && k < 4; k++) {
    if (t->s[hint] <= s && (s < t->s[hint + 1] || hint == t->nseg - 1)) return hint;
    hint = (hint + 1) % t->nseg;
  }
  return ch_track_segment_at(t, s);
}

/* Place o at its arc position and lane: the centre-line point there moved along the normal by
** lane times the half width on that side; slope is d(offset)/ds, which turns the heading. */
static void ch__pose(const ch_track *t, ch_sim2d_obj *o, double slope) {
  double s = ch_track_wrap_s(t, o->s);
  int i = ch__segment(t, s, o->seg), j = (i + 1) % t->n;
  double a = s - t->s[i], f = a / t->ulen[i];
  f = f < 0 ? 0 : f > 1 ? 1 : f;
  double tx = t->tx[i] + (t->tx[j] - t->tx[i]) * f, ty = t->ty[i] + (t->ty[j] - t->ty[i]) * f;
  double tl = sqrt(tx * tx + ty * ty);
  tx /= tl, ty /= tl;
  double half =
      o->lane >= 0 ? t->hl[i] + (t->hl[j] - t->hl[i]) * f : t->hr[i] + (t->hr[j] - t->hr[i]) * f;
  double off = o->lane * half, turn = atan(slope * half);
  o->seg = i;
  o->x = t->cx[i] + a * t->ux[i] - ty * off;
  o->y = t->cy[i] + a * t->uy[i] + tx * off;
  o->cs = tx * cos(turn) - ty * sin(turn);
  o->sn = ty * cos(turn) + tx * sin(turn);
}

static void ch__publish(const ch_sim2d_obj *o, ch_env_object *pub) {
  pub->x = o->x;
  pub->y = o->y;
  pub->heading = atan2(o->sn, o->cs) * (180 / CH_SIM2D_PI);
  pub->speed = o->speed;
  pub->distance = o->s;
  pub->is_left_of_center = o->lane > 0;
  pub->kind = o->kind;
}

int ch_sim2d_objects_fit(const ch_sim2d *sim, ch_error *err) {
  const ch_track *t = sim->tracks[0];
  const ch_sim2d_config *c = &sim->cfg;
  int n = 0;
  double spacing = 0, clear = 0;
  const char *what = "objects";
  if (c->race_type == CH_SIM2D_OBJECT_AVOIDANCE && !c->objects.fixed)
    n = c->objects.count, spacing = c->objects.min_spacing, clear = c->objects.start_clearance;
  if (c->race_type == CH_SIM2D_HEAD_TO_HEAD)
    n = c->bots.count, spacing = c->bots.min_spacing, clear = c->bots.start_clearance,
    what = "bots";
  /* A straight track fits what it can ahead of each start (see USAGE); a loop must fit all. */
  if (n == 0 || !t->is_loop || 2 * clear + (n - 1) * spacing <= t->length) return CH_OK;
  return ch_error_set(err, CH_EINVAL,
                      "sim2d: %d %s with %s.min_spacing %g m and %s.start_clearance %g m on "
                      "either side of the start do not fit on track '%s' (%.2f m)",
                      n, what, what, spacing, what, clear, t->name, t->length);
}

/* n arc positions at least spacing apart, uniformly at random in the clear part of the track
** ahead of start_s (sorted gaps, then the spacing added back); returns how many fit. */
static int ch__spread(const ch_track *t, double start_s, int n, double spacing, double clear,
                      uint64_t *rng, double *s) {
  double room = t->is_loop ? t->length - 2 * clear : t->length - start_s - clear;
  if (room < 0) return 0;
  if (!t->is_loop && spacing > 0 && (n - 1) * spacing > room) n = (int)floor(room / spacing) + 1;
  double free_len = room - (n - 1) * spacing;
  for (int k = 0; k < n; k++) {
    double u = ch__uniform(rng) * free_len;
    int m = k;
    for (; m > 0 && s[m - 1] > u; m--) s[m] = s[m - 1];
    s[m] = u;
  }
  for (int k = 0; k < n; k++) s[k] = ch_track_wrap_s(t, start_s + clear + s[k] + k * spacing);
  return n;
}

static void ch__init(ch_sim2d_obj *o, int kind, double s, double lane) {
  *o = (ch_sim2d_obj){.s = s, .lane = lane, .seg = -1, .kind = kind, .next_change = HUGE_VAL};
}

static int ch__place_boxes(const ch_sim2d *sim, const ch_track *t, uint32_t i, double start_s,
                           ch_sim2d_obj *o) {
  const ch_sim2d_objects_config *c = &sim->cfg.objects;
  double s[CH_SIM2D_MAX_OBJECTS];
  int n = c->count;
  uint64_t *rng = &sim->cars.rng[i];
  if (!c->fixed) n = ch__spread(t, start_s, n, c->min_spacing, c->start_clearance, rng, s);
  for (int k = 0; k < n; k++) {
    double lane = 0.5 * (c->fixed ? c->lane[k] : (ch__next(rng) >> 63) ? 1 : -1);
    ch__init(&o[k], CH_OBJECT_BOX,
             c->fixed ? ch_track_wrap_s(t, c->progress[k] / 100 * t->length) : s[k], lane);
    o[k].half_length = 0.5 * c->length;
    o[k].half_width = 0.5 * c->width;
    o[k].height = CH_SIM2D_BOX_HEIGHT;
  }
  return n;
}

static int ch__place_bots(const ch_sim2d *sim, const ch_track *t, uint32_t i, double start_s,
                          ch_sim2d_obj *o) {
  const ch_sim2d_bots_config *c = &sim->cfg.bots;
  double s[CH_SIM2D_MAX_OBJECTS];
  uint64_t *rng = &sim->cars.rng[i];
  int n = ch__spread(t, start_s, c->count, c->min_spacing, c->start_clearance, rng, s);
  for (int k = 0; k < n; k++) {
    ch__init(&o[k], CH_OBJECT_BOT_CAR, s[k], (ch__next(rng) >> 63) ? 0.5 : -0.5);
    o[k].half_length = 0.5 * CH_SIM2D_CAR_LENGTH;
    o[k].half_width = 0.5 * CH_SIM2D_CAR_WIDTH;
    o[k].height = CH_SIM2D_CAR_HEIGHT;
    o[k].speed = c->speed;
    if (c->lane_changes)
      o[k].next_change = c->min_interval + ch__uniform(rng) * (c->max_interval - c->min_interval);
  }
  return n;
}

void ch_sim2d_objects_place(ch_sim2d *sim, uint32_t i, double start_s) {
  const ch_track *t = ch_sim2d_track(sim, i);
  ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  int n = 0;
  if (sim->cfg.race_type == CH_SIM2D_OBJECT_AVOIDANCE) n = ch__place_boxes(sim, t, i, start_s, o);
  if (sim->cfg.race_type == CH_SIM2D_HEAD_TO_HEAD) n = ch__place_bots(sim, t, i, start_s, o);
  sim->cars.nobj[i] = n;
  for (int k = 0; k < n; k++) {
    ch__pose(t, &o[k], 0);
    ch__publish(&o[k], sim->objects + (size_t)i * sim->max_objects + k);
  }
}

/* One step of a bot: along its lane at its speed, and through a lane change when one is due.
** The change follows a smoothstep of the distance driven, so the heading turns and returns. */
static void ch__drive(const ch_sim2d *sim, const ch_track *t, ch_sim2d_obj *o, double now,
                      uint64_t *rng) {
  const ch_sim2d_bots_config *c = &sim->cfg.bots;
  double ds = o->speed * CH_SIM2D_STEP_SECONDS, slope = 0;
  if (t->is_loop) {
    o->s = ch_track_wrap_s(t, o->s + ds);
  } else if ((o->s += ds) >= t->length) {
    o->s = t->length, o->speed = 0; /* parked at the far end */
  }
  if (o->change_left > 0) {
    o->change_left = fmax(0, o->change_left - ds);
    double p = 1 - o->change_left / c->change_distance;
    o->lane = o->lane_from + (o->lane_to - o->lane_from) * p * p * (3 - 2 * p);
    slope = (o->lane_to - o->lane_from) * 6 * p * (1 - p) / c->change_distance;
    if (o->change_left == 0)
      o->next_change =
          now + c->min_interval + ch__uniform(rng) * (c->max_interval - c->min_interval);
  } else if (now >= o->next_change && o->speed > 0) {
    o->lane_from = o->lane;
    o->lane_to = o->lane > 0 ? -0.5 : 0.5;
    o->change_left = c->change_distance;
    o->next_change = HUGE_VAL;
  }
  ch__pose(t, o, slope);
}

void ch_sim2d_objects_move(ch_sim2d *sim, uint32_t i) {
  int n = sim->cars.nobj[i];
  if (n == 0 || sim->cfg.race_type != CH_SIM2D_HEAD_TO_HEAD) return;
  const ch_track *t = ch_sim2d_track(sim, i);
  ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  ch_env_object *pub = sim->objects + (size_t)i * sim->max_objects;
  double now = (sim->cars.steps[i] + 1) * CH_SIM2D_STEP_SECONDS;
  for (int k = 0; k < n; k++) {
    ch__drive(sim, t, &o[k], now, &sim->cars.rng[i]);
    ch__publish(&o[k], &pub[k]);
  }
}

int ch_sim2d_objects_hit(const ch_sim2d *sim, uint32_t i, double x, double y, double cs, double sn,
                         double margin) {
  int n = sim->cars.nobj[i];
  if (n == 0) return -1;
  const ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  double hl = 0.5 * CH_SIM2D_CAR_LENGTH + margin, hw = 0.5 * CH_SIM2D_CAR_WIDTH + margin;
  double rc = hl + hw;
  for (int k = 0; k < n; k++) {
    double dx = o[k].x - x, dy = o[k].y - y, r = rc + o[k].half_length + o[k].half_width;
    if (dx * dx + dy * dy > r * r) continue;
    if (ch_sim2d_rects_overlap(x, y, cs, sn, hl, hw, o[k].x, o[k].y, o[k].cs, o[k].sn,
                               o[k].half_length, o[k].half_width))
      return k;
  }
  return -1;
}

void ch_sim2d_objects_closest(const ch_sim2d *sim, uint32_t i, double s, int32_t out[2]) {
  const ch_track *t = ch_sim2d_track(sim, i);
  const ch_sim2d_obj *o = sim->obj + (size_t)i * sim->max_objects;
  double ahead = HUGE_VAL, behind = HUGE_VAL;
  out[0] = out[1] = -1;
  for (int k = 0; k < sim->cars.nobj[i]; k++) {
    double d = o[k].s - s, back;
    /* On a loop every object is both ahead and behind; the nearer way round counts. */
    if (t->is_loop) {
      d = ch_track_wrap_s(t, d);
      back = d > 0 ? t->length - d : HUGE_VAL;
    } else {
      back = d < 0 ? -d : HUGE_VAL;
      d = d >= 0 ? d : HUGE_VAL;
    }
    if (d < ahead) ahead = d, out[1] = k;
    if (back < behind) behind = back, out[0] = k;
  }
}
