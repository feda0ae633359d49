/* rng.h -- splitmix64: the small, seedable random generator the workers and trainer share. */
#ifndef CHICANE_RNG_H
#define CHICANE_RNG_H

#include <stdint.h>

/* Next 64 random bits; *state is the caller's (any seed is fine). */
static inline uint64_t ch_rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double ch_rng_uniform(uint64_t *state) {
  return (double)(ch_rng_next(state) >> 11) * 0x1.0p-53;
}

#endif
