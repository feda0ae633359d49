/* test_segment.c -- segment records: a lossless round trip, and every corruption is caught. */
#include "unit_test.h"

#include "segment.h"

#include <zlib.h>

#define T   3 /* steps */
#define OS  2 /* floats of observation per step */
#define IS  5 /* image bytes per step: 15 in all, so the record pads to 4 */
#define AS  2 /* action floats per step (continuous steering and speed) */
#define HDR 72

typedef struct sample {
  float obs[T * OS], reward[T], logp[T], value[T], action[T * AS], trace[T * CH_TRACE_FLOATS];
  uint8_t image[T * IS];
  ch_segment seg;
} sample;

static void make_sample(sample *s) {
  for (int i = 0; i < T * OS; i++) s->obs[i] = 0.25f * (float)i - 1.0f;
  for (int i = 0; i < T; i++) {
    s->action[2 * i] = 7.0f - 2.0f * (float)i;
    s->action[2 * i + 1] = -0.5f * (float)i;
    s->reward[i] = 0.5f + (float)i;
    s->logp[i] = -0.1f * (float)(i + 1);
    s->value[i] = 3.0f - (float)i;
  }
  for (int i = 0; i < T * IS; i++) s->image[i] = (uint8_t)(37 * i + 11);
  for (int i = 0; i < T * CH_TRACE_FLOATS; i++) s->trace[i] = 1.5f * (float)i - 4.0f;
  s->seg = (ch_segment){.policy_version = 0x0102030405060708ull,
                        .episode_id = 0xfedcba9876543210ull,
                        .worker_id = 42,
                        .seq = 9,
                        .num_steps = T,
                        .obs_size = OS,
                        .image_size = IS,
                        .action_size = AS,
                        .flags = CH_SEGMENT_EPISODE_END | CH_SEGMENT_TERMINAL,
                        .bootstrap_value = -2.5f,
                        .episode_status = CH_EPISODE_OFF_TRACK,
                        .episode_steps = 301,
                        .episode_reward = 17.25f,
                        .episode_progress = 63.5f,
                        .obs = s->obs,
                        .image = s->image,
                        .trace = s->trace,
                        .action = s->action,
                        .reward = s->reward,
                        .logp = s->logp,
                        .value = s->value};
}

static unsigned char *encode(const ch_segment *seg, size_t *len) {
  *len = ch_segment_encoded_size(seg);
  unsigned char *buf = malloc(*len); /* malloc's alignment satisfies decode's 4 bytes */
  assert_non_null(buf);
  ch_segment_encode(seg, buf);
  return buf;
}

static void expect_floats(const char *what, const float *got, const float *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&got[i], &want[i], sizeof got[i]) != 0)
      fail_msg("%s[%zu] = %.9g, expected %.9g", what, i, got[i], want[i]);
}

static void test_round_trip(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  assert_int_equal(len, HDR + T * (OS + AS + 3 + CH_TRACE_FLOATS) * 4 + 16 + 4);
  ch_segment d;
  ch_error err = {0, ""};
  unit_check(ch_segment_decode(buf, len, &d, &err), err);
  assert_int_equal(d.policy_version, s.seg.policy_version);
  assert_int_equal(d.episode_id, s.seg.episode_id);
  assert_int_equal(d.worker_id, s.seg.worker_id);
  assert_int_equal(d.seq, 9);
  assert_int_equal(d.image_size, IS);
  assert_int_equal(d.action_size, AS);
  assert_int_equal(d.num_steps, s.seg.num_steps);
  assert_int_equal(d.obs_size, s.seg.obs_size);
  assert_int_equal(d.flags, s.seg.flags);
  assert_float_equal(d.bootstrap_value, s.seg.bootstrap_value, 0.0f);
  assert_int_equal(d.episode_status, s.seg.episode_status);
  assert_int_equal(d.episode_steps, s.seg.episode_steps);
  assert_float_equal(d.episode_reward, s.seg.episode_reward, 0.0f);
  assert_float_equal(d.episode_progress, s.seg.episode_progress, 0.0f);
  expect_floats("obs", d.obs, s.obs, T * OS);
  expect_floats("action", d.action, s.action, T * AS);
  expect_floats("trace", d.trace, s.trace, T * CH_TRACE_FLOATS);
  assert_memory_equal(d.image, s.image, T * IS);
  expect_floats("reward", d.reward, s.reward, T);
  expect_floats("logp", d.logp, s.logp, T);
  expect_floats("value", d.value, s.value, T);
  /* views into the record, not copies */
  assert_ptr_equal(d.obs, (const float *)(buf + HDR));
  free(buf);
}

/* Non-finite floats and negative ints travel bit for bit. */
static void test_round_trip_special_values(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  s.obs[0] = -0.0f;
  s.obs[1] = INFINITY;
  s.value[2] = NAN;
  s.action[1] = -1.0f;
  s.seg.flags = 0;
  s.seg.episode_status = CH_EPISODE_IN_PROGRESS;
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  ch_segment d;
  ch_error err = {0, ""};
  unit_check(ch_segment_decode(buf, len, &d, &err), err);
  expect_floats("obs", d.obs, s.obs, T * OS);
  expect_floats("value", d.value, s.value, T);
  assert_float_equal(d.action[1], -1.0f, 0.0f);
  assert_int_equal(d.flags, 0);
  free(buf);
}

static void test_every_byte_flip(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  static const unsigned char masks[] = {0x01, 0x10, 0x80, 0xff};
  for (size_t i = 0; i < len; i++)
    for (size_t m = 0; m < sizeof masks; m++) {
      ch_segment d;
      ch_error err = {0, ""};
      buf[i] ^= masks[m];
      int rc = ch_segment_decode(buf, len, &d, &err);
      buf[i] ^= masks[m];
      if (rc != CH_ECORRUPT)
        fail_msg("byte %zu of %zu xor 0x%02x: decode returned %d, expected CH_ECORRUPT (%d)", i,
                 len, masks[m], rc, CH_ECORRUPT);
      if (!err.message[0]) fail_msg("byte %zu xor 0x%02x: no reason given", i, masks[m]);
    }
  free(buf);
}

static void test_truncated(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  for (size_t n = 0; n < len; n++) {
    ch_segment d;
    ch_error err = {0, ""};
    int rc = ch_segment_decode(buf, n, &d, &err);
    if (rc != CH_ECORRUPT) fail_msg("%zu of %zu bytes: decode returned %d", n, len, rc);
    if (n < HDR + 4)
      unit_assert_contains(err.message, "too short");
    else
      unit_assert_contains(err.message, "do not match");
  }
  /* trailing bytes are as wrong as missing ones */
  unsigned char *longer = calloc(1, len + 8);
  assert_non_null(longer);
  memcpy(longer, buf, len);
  ch_segment d;
  ch_error err = {0, ""};
  unit_expect(ch_segment_decode(longer, len + 8, &d, &err), CH_ECORRUPT, err);
  unit_assert_contains(err.message, "do not match");
  free(longer);
  free(buf);
}

/* Rewrite one header field and fix the CRC, so only the field check can catch it. */
static void patch(unsigned char *buf, size_t len, size_t off, const void *v, size_t n) {
  memcpy(buf + off, v, n);
  uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
  memcpy(buf + len - 4, &crc, 4);
}

static void expect_header_error(size_t off, const void *v, size_t n, const char *reason) {
  sample s;
  make_sample(&s);
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  patch(buf, len, off, v, n);
  ch_segment d;
  ch_error err = {0, ""};
  unit_expect(ch_segment_decode(buf, len, &d, &err), CH_ECORRUPT, err);
  unit_assert_contains(err.message, reason);
  free(buf);
}

static void test_header_checks(void **state) {
  (void)state;
  const uint32_t magic = 0x47455344u, steps2 = 2, zero = 0, big = 2000000, act17 = 17;
  const uint16_t format = 1;
  expect_header_error(0, &magic, 4, "magic 47455344");
  expect_header_error(4, &format, 2, "segment format 1");
  expect_header_error(16, &steps2, 4, "2 steps x 2");
  expect_header_error(16, &zero, 4, "0 steps");
  expect_header_error(20, &big, 4, "do not match");
  expect_header_error(20, &zero, 4, "do not match");
  expect_header_error(24, &big, 4, "do not match");
  expect_header_error(28, &zero, 4, "0 action floats");
  expect_header_error(28, &act17, 4, "17 action floats");
}

static void test_checksum_reason(void **state) {
  (void)state;
  sample s;
  make_sample(&s);
  size_t len;
  unsigned char *buf = encode(&s.seg, &len);
  buf[HDR + 4] ^= 0x04; /* inside obs */
  ch_segment d;
  ch_error err = {0, ""};
  unit_expect(ch_segment_decode(buf, len, &d, &err), CH_ECORRUPT, err);
  unit_assert_contains(err.message, "checksum mismatch (worker 42");
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_round_trip_special_values),
      cmocka_unit_test(test_every_byte_flip), cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_header_checks),   cmocka_unit_test(test_checksum_reason),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
