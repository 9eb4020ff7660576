/*
 * isa.h - instruction sets the kernels are written for.
 *
 * Every kernel exists in a portable C version; faster versions for AVX2 and
 * AVX-512 are compiled into the same binary with per-function target
 * attributes and chosen at run time, so one build runs on any x86-64 CPU
 * (and the portable code on any other). Kernel tables are indexed by nt_isa;
 * a NULL entry means "use the next lower set".
 */
#ifndef NT_KERNELS_ISA_H
#define NT_KERNELS_ISA_H

#include "nemotron.h"

typedef enum nt_isa {
    NT_ISA_GENERIC = 0,
    NT_ISA_AVX2,
    NT_ISA_AVX512,
    NT_ISA_AVX512VNNI,  /* AVX-512 plus VNNI: the 8-bit dot products */
    NT_ISA_COUNT
} nt_isa;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NT_HAVE_X86 1
#define NT_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define NT_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define NT_TARGET_AVX512VNNI                                                  \
    __attribute__((target(                                                    \
        "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#else
#define NT_HAVE_X86 0
#endif

/* The best set this CPU (and OS) supports. */
nt_isa nt_isa_best(void);

/* Maps the public choice to a set; -1 if the CPU lacks it. */
int nt_isa_from_simd(nt_simd simd);
nt_simd nt_isa_to_simd(nt_isa isa);

/* out = table[isa], falling back to lower sets past NULL entries. */
#define NT_ISA_RESOLVE(out, table, isa)                       \
    do {                                                      \
        int nt_resolve_i_ = (int)(isa);                       \
        while (nt_resolve_i_ > 0 && !(table)[nt_resolve_i_])  \
            nt_resolve_i_--;                                  \
        (out) = (table)[nt_resolve_i_];                       \
    } while (0)

#endif
