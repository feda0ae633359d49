/* racing_line.c -- the minimum-curvature racing line of a track and the lap time it allows. */
#include "track.h"

#include <chicane/plugin_util.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
** Method.
**
** The line. Each centre point i may move along its normal n_i (left, the track's own normal) by
** an offset a_i within [-(hr_i - margin), hl_i - margin], so the line's point is p_i = c_i +
** a_i n_i and the line keeps the margin from both borders at every point. The line minimises
**
**     F(a) = sum_i w_i kappa_i(a)^2 + beta sum_i |p_{i+1} - p_i|^2 / h_i
**
** with h_i = |c_{i+1} - c_i| and w_i = (h_{i-1} + h_i) / 2: a discrete integral of squared
** curvature, where kappa_i is the signed curvature of the circle through p_{i-1}, p_i, p_{i+1}
** (Menger curvature: exact for any spacing, so DeepRacer's uneven points need no resampling),
** plus a length term. Curvature alone is not lap time: a circle of radius R costs 2 pi / R, so
** the pure minimum-curvature line drifts to the outside of every corner and, on an oval, runs
** a longer and slower lap than the centre line does. The length term pulls the line back in;
** beta is chosen per track by lap time: a grid of 0.1, 0.3, 1, 3 and 10 per m^2, then a
** golden-section search in log(beta) around the grid's best, each candidate solved from the
** centre line (12 solves).
**
** One solve. kappa_i depends on three offsets, so the Jacobian J of the residuals r_i =
** sqrt(w_i) kappa_i is tridiagonal (cyclic for a loop) and J'J is pentadiagonal; the length
** term is quadratic in the offsets, its Hessian tridiagonal. Each Levenberg-Marquardt step
** (Gauss-Newton with damping mu diag(H)) solves
**
**     min_d  1/2 d'(H + mu D)d + g'd    subject to  lo - a <= d <= hi - a,
**
** H = J'J plus half the length term's Hessian, g = J'r plus half its gradient, with a
** primal-dual active-set method (Hintermueller, Ito and Kunisch 2002): guess which offsets sit
** on a bound, solve for the others, read the multipliers of the bound ones, repeat until the
** guess no longer changes (a few rounds). Each solve is a Cholesky factorisation of the free
** offsets' matrix, banded with a two-row border that carries the loop's wrap-around terms, so
** it costs O(n). A step is kept only if F falls (else mu grows), which also guards against an
** active-set round that did not settle. A solve stops when F falls by less than a relative 1e-6
** or no offset moves by 0.1 mm (3 to 15 steps on DeepRacer's tracks).
**
** The speed. v_i <= min(v_max, sqrt(a_lat / |kappa_i|)) (floored by v_min); a forward pass
** limits the speed gain over each segment to a_accel (v_j^2 <= v_i^2 + 2 a_accel ds), a
** backward pass the speed loss to |a_brake|. By default the limits are independent, as sim2d's
** car has them (its speed follows the command at +4 / -6 m/s^2 whatever the lateral load);
** with friction_circle the longitudinal limit at a point shrinks to a sqrt(1 - (v^2 kappa /
** a_lat)^2), evaluated at the speed where the segment starts. A loop's profile is periodic:
** both passes start at the point of least limit speed, where the limit is the true speed (a
** constant speed that low is feasible everywhere). A straight starts from rest and ends at the
** far end at whatever speed the car has. The time over a segment is ds over the mean of the
** speeds at its ends (exact for constant acceleration); the standing lap of a loop repeats the
** forward pass from rest at point 0 under the periodic profile.
*/

#define CH__MIN_POINTS  5 /* the banded Hessian needs distinct neighbours two away */
#define CH__MAX_STEPS   60
#define CH__PDAS_ROUNDS 30

void ch_car_limits_default(ch_car_limits *out) {
  out->v_max = 4.0;
  out->v_min = 0.1;
  out->a_lat = 0.5 * 9.81;
  out->a_accel = 4.0;
  out->a_brake = -6.0;
  out->margin = 0.098 + 0.032;
  out->friction_circle = 0;
}

static int ch__check_limits(const ch_car_limits *c, ch_error *err) {
  const char *bad = !(c->v_max > 0 && isfinite(c->v_max))        ? "v_max must be > 0"
                    : !(c->v_min >= 0 && c->v_min <= c->v_max)   ? "v_min must be in [0, v_max]"
                    : !(c->a_lat > 0 && isfinite(c->a_lat))      ? "a_lat must be > 0"
                    : !(c->a_accel > 0 && isfinite(c->a_accel))  ? "a_accel must be > 0"
                    : !(c->a_brake != 0 && isfinite(c->a_brake)) ? "a_brake must not be 0"
                    : !(c->margin >= 0 && isfinite(c->margin))   ? "margin must be >= 0"
                                                                 : NULL;
  if (bad)
    return ch_error_set(err, CH_EINVAL,
                        "car limits: %s (v_max %g, v_min %g, a_lat %g, a_accel %g, a_brake %g, "
                        "margin %g)",
                        bad, c->v_max, c->v_min, c->a_lat, c->a_accel, c->a_brake, c->margin);
  return CH_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The result                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static ch_racing_line *ch__line_alloc(int n) {
  ch_racing_line *rl = calloc(1, sizeof *rl);
  double *b = calloc(7 * ((size_t)n + 1), sizeof *b);
  if (!rl || !b) {
    free(rl), free(b);
    return NULL;
  }
  double **arrays[] = {&rl->x, &rl->y, &rl->s, &rl->kappa, &rl->v, &rl->t, &rl->offset};
  for (size_t i = 0; i < 7; i++) *arrays[i] = b + i * ((size_t)n + 1);
  rl->n = n;
  return rl;
}

void ch_racing_line_free(ch_racing_line *rl) {
  if (!rl) return;
  free(rl->x); /* the start of the array block */
  free(rl);
}

/* Signed curvature of the circle through a, b, c (+ = turning left); 0 if two coincide. */
static double ch__menger(double ax, double ay, double bx, double by, double cx, double cy) {
  double ux = bx - ax, uy = by - ay, vx = cx - bx, vy = cy - by, wx = cx - ax, wy = cy - ay;
  double den = sqrt((ux * ux + uy * uy) * (vx * vx + vy * vy) * (wx * wx + wy * wy));
  return den > 0 ? 2 * (ux * vy - uy * vx) / den : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Speed profile                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Speed after ds metres from speed v at curvature kappa with acceleration a. */
static double ch__reach(const ch_car_limits *car, double v, double kappa, double ds, double a) {
  if (car->friction_circle) {
    double ay = v * v * fabs(kappa) / car->a_lat;
    a = ay >= 1 ? 0 : a * sqrt(1 - ay * ay);
  }
  return sqrt(v * v + 2 * a * ds);
}

static double ch__seg_len(const ch_racing_line *rl, int i) {
  int j = (i + 1) % rl->n;
  return hypot(rl->x[j] - rl->x[i], rl->y[j] - rl->y[i]);
}

static void ch__limit_speeds(ch_racing_line *rl, const ch_car_limits *car) {
  for (int i = 0; i < rl->n; i++) {
    double k = fabs(rl->kappa[i]);
    double v = k > 0 ? fmin(car->v_max, sqrt(car->a_lat / k)) : car->v_max;
    rl->v[i] = fmax(v, car->v_min);
  }
}

/* Forward then backward pass around a loop, starting where the limit speed is least. */
static void ch__passes_loop(ch_racing_line *rl, const ch_car_limits *car) {
  int n = rl->n, m = 0;
  for (int i = 1; i < n; i++)
    if (rl->v[i] < rl->v[m]) m = i;
  for (int k = 0; k < n; k++) {
    int i = (m + k) % n, j = (i + 1) % n;
    rl->v[j] =
        fmin(rl->v[j], ch__reach(car, rl->v[i], rl->kappa[i], ch__seg_len(rl, i), car->a_accel));
  }
  for (int k = 0; k < n; k++) {
    int j = (m - k + n) % n, i = (j - 1 + n) % n;
    rl->v[i] = fmin(rl->v[i],
                    ch__reach(car, rl->v[j], rl->kappa[j], ch__seg_len(rl, i), fabs(car->a_brake)));
  }
}

static void ch__passes_open(ch_racing_line *rl, const ch_car_limits *car) {
  rl->v[0] = 0; /* from rest */
  for (int i = 0; i + 1 < rl->n; i++)
    rl->v[i + 1] = fmin(rl->v[i + 1],
                        ch__reach(car, rl->v[i], rl->kappa[i], ch__seg_len(rl, i), car->a_accel));
  for (int i = rl->n - 2; i >= 0; i--)
    rl->v[i] = fmin(rl->v[i], ch__reach(car, rl->v[i + 1], rl->kappa[i + 1], ch__seg_len(rl, i),
                                        fabs(car->a_brake)));
}

/* Arc positions, times and lap times from the points, curvatures and speeds. */
static void ch__timing(ch_racing_line *rl, int loop, const ch_car_limits *car) {
  int nseg = loop ? rl->n : rl->n - 1;
  rl->s[0] = rl->t[0] = 0;
  double standing = 0, vs = 0;
  for (int i = 0; i < nseg; i++) {
    int j = (i + 1) % rl->n;
    double ds = ch__seg_len(rl, i);
    rl->s[i + 1] = rl->s[i] + ds;
    rl->t[i + 1] = rl->t[i] + 2 * ds / (rl->v[i] + rl->v[j]);
    /* From rest at the start line, held under the periodic profile (its braking limits). */
    double next = fmin(rl->v[j], ch__reach(car, vs, rl->kappa[i], ds, car->a_accel));
    standing += 2 * ds / (vs + next);
    vs = next;
  }
  rl->length = rl->s[nseg];
  rl->lap_time = rl->t[nseg];
  rl->standing_lap_time = loop ? standing : rl->lap_time;
}

/* Curvatures of the line's points; the ends of a straight take their neighbour's. */
static void ch__curvatures(ch_racing_line *rl, int loop) {
  int n = rl->n;
  for (int i = 0; i < n; i++) {
    if (!loop && (i == 0 || i == n - 1)) continue;
    int a = (i - 1 + n) % n, c = (i + 1) % n;
    rl->kappa[i] = ch__menger(rl->x[a], rl->y[a], rl->x[i], rl->y[i], rl->x[c], rl->y[c]);
  }
  if (!loop) {
    rl->kappa[0] = n > 2 ? rl->kappa[1] : 0;
    rl->kappa[n - 1] = n > 2 ? rl->kappa[n - 2] : 0;
  }
}

/* Everything but the points and offsets. */
static void ch__profile(ch_racing_line *rl, int loop, const ch_car_limits *car) {
  ch__curvatures(rl, loop);
  ch__limit_speeds(rl, car);
  if (loop)
    ch__passes_loop(rl, car);
  else
    ch__passes_open(rl, car);
  ch__timing(rl, loop, car);
}

/* ------------------------------------------------------------------------------------------ */
/* Banded-with-border Cholesky                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
** The free offsets' matrix M (nf x nf) is zero beyond two off the diagonal except in its last
** m rows and columns (m = 2 for a loop, whose wrap-around terms join the first offsets with the
** last two). M = [A B'; B C] with A banded: L_A from a band Cholesky, Y = B L_A^-T, S = C - Y Y'
** factored densely; then M = [L_A 0; Y L_S] [L_A 0; Y L_S]'.
*/
#define CH__BAND       2
#define CH__BORDER_MAX 2

typedef struct ch__chol {
  int p, m;     /* band rows, border rows */
  double *band; /* L(i, i - k) at band[3 i + k], k = 0..2 */
  double *y;    /* Y, m rows of p */
  double s[CH__BORDER_MAX * CH__BORDER_MAX];
} ch__chol;

#define CH__L(c, i, j) ((c)->band[3 * (i) + ((i) - (j))])

typedef double (*ch__entry_fn)(const void *ctx, int r, int c);

static int ch__band_factor(ch__chol *c, ch__entry_fn M, const void *ctx) {
  for (int i = 0; i < c->p; i++) {
    for (int j = i - CH__BAND > 0 ? i - CH__BAND : 0; j < i; j++) {
      double sum = M(ctx, i, j);
      for (int l = i - CH__BAND > 0 ? i - CH__BAND : 0; l < j; l++)
        sum -= CH__L(c, i, l) * CH__L(c, j, l);
      CH__L(c, i, j) = sum / CH__L(c, j, j);
    }
    double d = M(ctx, i, i);
    for (int l = i - CH__BAND > 0 ? i - CH__BAND : 0; l < i; l++)
      d -= CH__L(c, i, l) * CH__L(c, i, l);
    if (!(d > 0)) return -1;
    CH__L(c, i, i) = sqrt(d);
  }
  return 0;
}

static void ch__band_forward(const ch__chol *c, double *x) {
  for (int i = 0; i < c->p; i++) {
    for (int l = i - CH__BAND > 0 ? i - CH__BAND : 0; l < i; l++) x[i] -= CH__L(c, i, l) * x[l];
    x[i] /= CH__L(c, i, i);
  }
}

static void ch__band_backward(const ch__chol *c, double *x) {
  for (int i = c->p - 1; i >= 0; i--) {
    for (int l = i + 1; l <= i + CH__BAND && l < c->p; l++) x[i] -= CH__L(c, l, i) * x[l];
    x[i] /= CH__L(c, i, i);
  }
}

/* Dense Cholesky of the m x m matrix s in place (lower triangle). */
static int ch__dense_factor(double *s, int m) {
  for (int i = 0; i < m; i++) {
    for (int j = 0; j <= i; j++) {
      double sum = s[i * m + j];
      for (int l = 0; l < j; l++) sum -= s[i * m + l] * s[j * m + l];
      if (i == j) {
        if (!(sum > 0)) return -1;
        s[i * m + i] = sqrt(sum);
      } else {
        s[i * m + j] = sum / s[j * m + j];
      }
    }
  }
  return 0;
}

static void ch__dense_solve(const double *s, int m, double *x) {
  for (int i = 0; i < m; i++) {
    for (int l = 0; l < i; l++) x[i] -= s[i * m + l] * x[l];
    x[i] /= s[i * m + i];
  }
  for (int i = m - 1; i >= 0; i--) {
    for (int l = i + 1; l < m; l++) x[i] -= s[l * m + i] * x[l];
    x[i] /= s[i * m + i];
  }
}

static int ch__factor(ch__chol *c, int nf, int m, ch__entry_fn M, const void *ctx) {
  c->m = nf > m ? m : 0;
  c->p = nf - c->m;
  if (ch__band_factor(c, M, ctx)) return -1;
  for (int q = 0; q < c->m; q++) {
    double *yq = c->y + (size_t)q * c->p;
    for (int i = 0; i < c->p; i++) yq[i] = M(ctx, c->p + q, i);
    ch__band_forward(c, yq);
  }
  for (int q = 0; q < c->m; q++)
    for (int r = 0; r < c->m; r++) {
      double sum = M(ctx, c->p + q, c->p + r);
      for (int i = 0; i < c->p; i++) sum -= c->y[(size_t)q * c->p + i] * c->y[(size_t)r * c->p + i];
      c->s[q * c->m + r] = sum;
    }
  return ch__dense_factor(c->s, c->m);
}

static void ch__chol_solve(const ch__chol *c, double *x) {
  double *x2 = x + c->p;
  ch__band_forward(c, x);
  for (int q = 0; q < c->m; q++)
    for (int i = 0; i < c->p; i++) x2[q] -= c->y[(size_t)q * c->p + i] * x[i];
  ch__dense_solve(c->s, c->m, x2);
  for (int q = 0; q < c->m; q++)
    for (int i = 0; i < c->p; i++) x[i] -= c->y[(size_t)q * c->p + i] * x2[q];
  ch__band_backward(c, x);
}

/* ------------------------------------------------------------------------------------------ */
/* The optimiser                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct ch__opt {
  const ch_track *t;
  int n, loop;
  double *nx, *ny;   /* unit left normals */
  double *lo, *hi;   /* bounds of the offsets */
  double *sw;        /* sqrt of each residual's weight (0 for the ends of a straight) */
  double *a, *trial; /* offsets, and a step's candidate */
  double *r, *jac;   /* residuals; their derivatives by a[i-1], a[i], a[i+1] */
  double *h;         /* J'J + mu D as h[3 j + d] = H(j, j + d mod n), d = 0..2 */
  double *g;         /* J'r */
  double *d, *lam;   /* the step and the bound multipliers */
  double *dlo, *dhi; /* the step's bounds */
  double *rhs;       /* right-hand side of a solve, then its solution */
  double *diag;      /* the undamped diagonal of J'J, kept while mu changes */
  int *state, *next; /* -1 at the lower bound, +1 at the upper, 0 free */
  int *free_idx, nf; /* free offsets of the current round */
  double beta;       /* weight of the length term, 1/m^2 */
  ch__chol chol;
} ch__opt;

/* The residual of point i for offsets a: its weighted curvature. */
static double ch__residual(const ch__opt *o, const double *a, int i) {
  int n = o->n, p = (i - 1 + n) % n, q = (i + 1) % n;
  const ch_track *t = o->t;
  return o->sw[i] * ch__menger(t->cx[p] + a[p] * o->nx[p], t->cy[p] + a[p] * o->ny[p],
                               t->cx[i] + a[i] * o->nx[i], t->cy[i] + a[i] * o->ny[i],
                               t->cx[q] + a[q] * o->nx[q], t->cy[q] + a[q] * o->ny[q]);
}

/* Segment i of the line moved by a: its vector. */
static void ch__seg_vec(const ch__opt *o, const double *a, int i, double *dx, double *dy) {
  const ch_track *t = o->t;
  int j = (i + 1) % o->n;
  *dx = t->cx[j] + a[j] * o->nx[j] - t->cx[i] - a[i] * o->nx[i];
  *dy = t->cy[j] + a[j] * o->ny[j] - t->cy[i] - a[i] * o->ny[i];
}

static double ch__objective(const ch__opt *o, const double *a) {
  double f = 0;
  for (int i = 0; i < o->t->nseg; i++) {
    double dx, dy;
    ch__seg_vec(o, a, i, &dx, &dy);
    f += o->beta * (dx * dx + dy * dy) / o->t->ulen[i];
  }
  for (int i = 0; i < o->n; i++) {
    if (o->sw[i] == 0) continue;
    double r = ch__residual(o, a, i);
    f += r * r;
  }
  return f;
}

/* Residuals and their derivatives (central differences over a tenth of a millimetre). */
static void ch__linearise(ch__opt *o) {
  const double h = 1e-4;
  int n = o->n;
  for (int i = 0; i < n; i++) {
    o->r[i] = o->jac[3 * i] = o->jac[3 * i + 1] = o->jac[3 * i + 2] = 0;
    if (o->sw[i] == 0) continue;
    o->r[i] = ch__residual(o, o->a, i);
    for (int k = 0; k < 3; k++) {
      int j = (i - 1 + k + n) % n;
      double keep = o->a[j];
      o->a[j] = keep + h;
      double up = ch__residual(o, o->a, i);
      o->a[j] = keep - h;
      double down = ch__residual(o, o->a, i);
      o->a[j] = keep;
      o->jac[3 * i + k] = (up - down) / (2 * h);
    }
  }
}

/* h = J'J and g = J'r; residual i touches offsets i-1, i, i+1. */
static void ch__normal_equations(ch__opt *o) {
  int n = o->n;
  memset(o->h, 0, 3 * (size_t)n * sizeof *o->h);
  memset(o->g, 0, (size_t)n * sizeof *o->g);
  for (int i = 0; i < n; i++) {
    if (o->sw[i] == 0) continue;
    const double *J = o->jac + 3 * i;
    int j0 = (i - 1 + n) % n, j1 = i, j2 = (i + 1) % n;
    o->h[3 * j0] += J[0] * J[0], o->h[3 * j1] += J[1] * J[1], o->h[3 * j2] += J[2] * J[2];
    o->h[3 * j0 + 1] += J[0] * J[1], o->h[3 * j1 + 1] += J[1] * J[2];
    o->h[3 * j0 + 2] += J[0] * J[2];
    o->g[j0] += J[0] * o->r[i], o->g[j1] += J[1] * o->r[i], o->g[j2] += J[2] * o->r[i];
  }
  /* The length term is quadratic in the offsets: half its exact gradient and Hessian. */
  for (int i = 0; i < o->t->nseg; i++) {
    int j = (i + 1) % n;
    double dx, dy, w = o->beta / o->t->ulen[i];
    ch__seg_vec(o, o->a, i, &dx, &dy);
    o->g[i] -= w * (o->nx[i] * dx + o->ny[i] * dy);
    o->g[j] += w * (o->nx[j] * dx + o->ny[j] * dy);
    o->h[3 * i] += w, o->h[3 * j] += w;
    o->h[3 * i + 1] -= w * (o->nx[i] * o->nx[j] + o->ny[i] * o->ny[j]);
  }
}

/* H(j, k) of the damped matrix; zero beyond two apart (cyclically for a loop). */
static double ch__H(const ch__opt *o, int j, int k) {
  int n = o->n, d = ((k - j) % n + n) % n;
  if (d <= 2) return o->h[3 * j + d];
  if (n - d <= 2) return o->h[3 * k + (n - d)];
  return 0;
}

static double ch__M(const void *ctx, int r, int c) {
  const ch__opt *o = ctx;
  return ch__H(o, o->free_idx[r], o->free_idx[c]);
}

/* (H d)_j over its five neighbours. */
static double ch__Hd(const ch__opt *o, int j) {
  double sum = 0;
  for (int k = -2; k <= 2; k++) {
    int c = j + k;
    if (o->loop)
      c = (c + o->n) % o->n;
    else if (c < 0 || c >= o->n)
      continue;
    sum += ch__H(o, j, c) * o->d[c];
  }
  return sum;
}

/* One round: bound offsets on their bounds, the free ones from M d_F = -g_F - H_FA d_A. */
static int ch__pdas_solve(ch__opt *o) {
  o->nf = 0;
  for (int j = 0; j < o->n; j++) {
    o->d[j] = o->state[j] < 0 ? o->dlo[j] : o->state[j] > 0 ? o->dhi[j] : 0;
    if (o->state[j] == 0) o->free_idx[o->nf++] = j;
  }
  if (o->nf > 0) {
    for (int r = 0; r < o->nf; r++) o->rhs[r] = -o->g[o->free_idx[r]] - ch__Hd(o, o->free_idx[r]);
    if (ch__factor(&o->chol, o->nf, o->loop ? CH__BORDER_MAX : 0, ch__M, o)) return -1;
    ch__chol_solve(&o->chol, o->rhs);
    for (int r = 0; r < o->nf; r++) o->d[o->free_idx[r]] = o->rhs[r];
  }
  for (int j = 0; j < o->n; j++) o->lam[j] = o->state[j] ? -(ch__Hd(o, j) + o->g[j]) : 0;
  return 0;
}

/* The box-constrained quadratic step; the result is clamped into its bounds whatever happens. */
static int ch__qp(ch__opt *o) {
  double c = 0;
  for (int j = 0; j < o->n; j++) c += o->h[3 * j];
  c = c / o->n + 1e-12;
  for (int round = 0; round < CH__PDAS_ROUNDS; round++) {
    if (ch__pdas_solve(o)) return -1;
    int changed = 0;
    for (int j = 0; j < o->n; j++) {
      double up = o->lam[j] + c * (o->d[j] - o->dhi[j]),
             low = o->lam[j] + c * (o->d[j] - o->dlo[j]);
      o->next[j] = up > 0 ? 1 : low < 0 ? -1 : 0;
      changed |= o->next[j] != o->state[j];
    }
    if (!changed) break;
    memcpy(o->state, o->next, (size_t)o->n * sizeof *o->state);
  }
  for (int j = 0; j < o->n; j++) o->d[j] = fmin(fmax(o->d[j], o->dlo[j]), o->dhi[j]);
  return 0;
}

/* One Levenberg-Marquardt step from o->a: raise mu until a step lowers F (then lower mu for the
** next). Returns 1 with the step taken (*f the new F, *move its largest offset change), or 0
** when no step helps: a step of zero, or 16 rises of mu. */
static int ch__lm_step(ch__opt *o, double *f, double *mu, double *move) {
  ch__linearise(o);
  ch__normal_equations(o);
  double diag_mean = 0;
  for (int j = 0; j < o->n; j++) diag_mean += o->h[3 * j] / o->n;
  for (int j = 0; j < o->n; j++) o->diag[j] = o->h[3 * j];
  for (int tries = 0; tries < 16; tries++) {
    for (int j = 0; j < o->n; j++) {
      o->h[3 * j] = o->diag[j] + *mu * (o->diag[j] + 1e-9 * diag_mean + 1e-12);
      o->dlo[j] = o->lo[j] - o->a[j], o->dhi[j] = o->hi[j] - o->a[j];
    }
    int bad = ch__qp(o);
    *move = 0;
    for (int j = 0; j < o->n; j++) {
      o->trial[j] = fmin(fmax(o->a[j] + (bad ? 0 : o->d[j]), o->lo[j]), o->hi[j]);
      *move = fmax(*move, fabs(o->trial[j] - o->a[j]));
    }
    if (!bad && *move < 1e-12) return 0;
    double f1 = ch__objective(o, o->trial);
    if (!bad && f1 < *f) {
      *mu = fmax(*mu * 0.3, 1e-12);
      *f = f1;
      memcpy(o->a, o->trial, (size_t)o->n * sizeof *o->a);
      return 1;
    }
    *mu *= 10;
  }
  return 0;
}

/* Levenberg-Marquardt on F from o->a; returns the steps taken. */
static int ch__optimise(ch__opt *o) {
  double f = ch__objective(o, o->a), mu = 1e-4, move;
  int steps = 0;
  /* Each quadratic step starts from the bounds the last one ended on: they change little from
  ** step to step, so the active-set rounds settle in a few. */
  memset(o->state, 0, (size_t)o->n * sizeof *o->state);
  while (steps < CH__MAX_STEPS) {
    double before = f;
    if (!ch__lm_step(o, &f, &mu, &move)) break;
    steps++;
    if (before - f <= 1e-6 * f || move < 1e-4) break;
  }
  return steps;
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up and the public functions                                                             */
/* ------------------------------------------------------------------------------------------ */

static void ch__bounds(const ch_track *t, const ch_car_limits *car, double *lo, double *hi) {
  for (int i = 0; i < t->n; i++) {
    lo[i] = -(t->hr[i] - car->margin), hi[i] = t->hl[i] - car->margin;
    /* Narrower than the car needs: the middle of the track is the best there is. */
    if (lo[i] > hi[i]) lo[i] = hi[i] = 0.5 * (t->hl[i] - t->hr[i]);
  }
}

static void ch__weights(const ch_track *t, double *sw) {
  for (int i = 0; i < t->n; i++) {
    if (!t->is_loop && (i == 0 || i == t->n - 1)) {
      sw[i] = 0;
      continue;
    }
    int p = (i - 1 + t->n) % t->n;
    sw[i] = sqrt(0.5 * (t->ulen[p] + t->ulen[i]));
  }
}

static int ch__opt_init(ch__opt *o, const ch_track *t, const ch_car_limits *car) {
  size_t n = (size_t)t->n;
  memset(o, 0, sizeof *o);
  o->t = t, o->n = t->n, o->loop = t->is_loop;
  /* doubles: 15 arrays of n, then jac, h and band (3 n each) and y (2 n) */
  double *b = calloc(26 * n + 8, sizeof *b);
  int *ib = calloc(3 * n + 1, sizeof *ib);
  if (!b || !ib) {
    free(b), free(ib);
    return CH_ENOMEM;
  }
  double **arrays[] = {&o->nx, &o->ny,  &o->lo,  &o->hi,  &o->sw,  &o->a,    &o->trial, &o->r,
                       &o->d,  &o->lam, &o->dlo, &o->dhi, &o->rhs, &o->diag, &o->g};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = b + i * n;
  o->jac = b + 15 * n, o->h = b + 18 * n, o->chol.band = b + 21 * n, o->chol.y = b + 24 * n;
  o->state = ib, o->next = ib + n, o->free_idx = ib + 2 * n;
  for (int i = 0; i < t->n; i++) o->nx[i] = -t->ty[i], o->ny[i] = t->tx[i];
  ch__bounds(t, car, o->lo, o->hi);
  ch__weights(t, o->sw);
  for (int i = 0; i < t->n; i++) o->a[i] = fmin(fmax(0, o->lo[i]), o->hi[i]);
  return CH_OK;
}

static void ch__opt_free(ch__opt *o) {
  free(o->nx);
  free(o->state);
}

/* The line through the centre points moved by offsets a (NULL: none), with its profile. */
static void ch__fill(ch_racing_line *rl, const ch_track *t, const double *a,
                     const ch_car_limits *car) {
  for (int i = 0; i < t->n; i++) {
    double off = a ? a[i] : 0;
    rl->offset[i] = off;
    rl->x[i] = t->cx[i] - off * t->ty[i];
    rl->y[i] = t->cy[i] + off * t->tx[i];
  }
  ch__profile(rl, t->is_loop, car);
}

int ch_track_centre_line(const ch_track *t, const ch_car_limits *car, ch_racing_line **out,
                         ch_error *err) {
  *out = NULL;
  int rc = ch__check_limits(car, err);
  if (rc) return rc;
  if (!(*out = ch__line_alloc(t->n)))
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", t->name);
  ch__fill(*out, t, NULL, car);
  return CH_OK;
}

/* The search over beta: its best line so far. */
typedef struct ch__search {
  ch__opt *o;
  const ch_car_limits *car;
  ch_racing_line *rl; /* scratch for timing a candidate */
  double *best_a, best_time, best_beta;
  int steps;
} ch__search;

/* Optimise from the centre line with the length weight beta; returns the standing lap time. */
static double ch__try(ch__search *sr, double beta) {
  ch__opt *o = sr->o;
  for (int i = 0; i < o->n; i++) o->a[i] = fmin(fmax(0, o->lo[i]), o->hi[i]);
  o->beta = beta;
  sr->steps += ch__optimise(o);
  ch__fill(sr->rl, o->t, o->a, sr->car);
  double time = sr->rl->standing_lap_time;
  if (time < sr->best_time) {
    sr->best_time = time, sr->best_beta = beta;
    memcpy(sr->best_a, o->a, (size_t)o->n * sizeof *o->a);
  }
  return time;
}

/* A coarse grid of beta, then a golden-section search in log(beta) around the grid's best. */
static void ch__search_beta(ch__search *sr) {
  static const double grid[] = {0.1, 0.3, 1, 3, 10};
  const int ng = (int)(sizeof grid / sizeof grid[0]);
  int best = 0;
  double times[sizeof grid / sizeof grid[0]];
  for (int k = 0; k < ng; k++) {
    times[k] = ch__try(sr, grid[k]);
    if (times[k] < times[best]) best = k;
  }
  const double phi = 0.5 * (sqrt(5.0) - 1);
  double a = log(grid[best > 0 ? best - 1 : 0]), b = log(grid[best + 1 < ng ? best + 1 : ng - 1]);
  double c = b - phi * (b - a), d = a + phi * (b - a);
  double fc = ch__try(sr, exp(c)), fd = ch__try(sr, exp(d));
  for (int k = 0; k < 5; k++) {
    if (fc < fd)
      b = d, d = c, fd = fc, c = b - phi * (b - a), fc = ch__try(sr, exp(c));
    else
      a = c, c = d, fc = fd, d = a + phi * (b - a), fd = ch__try(sr, exp(d));
  }
}

int ch_track_racing_line(const ch_track *t, const ch_car_limits *car, ch_racing_line **out,
                         ch_error *err) {
  *out = NULL;
  int rc = ch__check_limits(car, err);
  if (rc) return rc;
  ch__opt o;
  ch_racing_line *rl = ch__line_alloc(t->n), *scratch = ch__line_alloc(t->n);
  double *best_a = calloc((size_t)t->n, sizeof *best_a);
  if (!rl || !scratch || !best_a || ch__opt_init(&o, t, car)) {
    ch_racing_line_free(rl), ch_racing_line_free(scratch), free(best_a);
    return ch_error_set(err, CH_ENOMEM, "%s: out of memory", t->name);
  }
  ch__search sr = {&o, car, scratch, best_a, INFINITY, 0, 0};
  for (int i = 0; i < t->n; i++) best_a[i] = o.a[i];
  if (t->n >= CH__MIN_POINTS) ch__search_beta(&sr);
  ch__fill(rl, t, best_a, car);
  rl->iterations = sr.steps;
  rl->beta = sr.best_beta;
  ch__opt_free(&o);
  ch_racing_line_free(scratch);
  free(best_a);
  *out = rl;
  return CH_OK;
}

int ch_track_reference_lap(const ch_track *t, double *seconds, ch_error *err) {
  ch_car_limits car;
  ch_car_limits_default(&car);
  ch_racing_line *rl;
  int rc = ch_track_racing_line(t, &car, &rl, err);
  if (rc) return rc;
  *seconds = rl->standing_lap_time;
  ch_racing_line_free(rl);
  return CH_OK;
}
