/*
 * rng.h - small, fast, seedable pseudo-random numbers.
 *
 * splitmix64 turns a counter into well-mixed 64-bit values: enough on its
 * own for synthetic weights, and the standard way to seed xoshiro256**,
 * which the sampler draws from.
 */
#ifndef NT_RNG_H
#define NT_RNG_H

#include <stdint.h>

static inline uint64_t nt_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) from the top 53 bits. */
static inline double nt_unit_from_u64(uint64_t x) {
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

#endif
