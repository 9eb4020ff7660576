/*
 * isa.c - which instruction sets this CPU runs.
 */
#include <string.h>

#include "kernels/isa.h"

nt_isa nt_isa_best(void) {
#if NT_HAVE_X86
    /* libgcc's cpu model checks both CPUID and that the OS saves the
     * registers (XCR0), which is what "supports" must mean here. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return __builtin_cpu_supports("avx512vnni") ? NT_ISA_AVX512VNNI
                                                    : NT_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return NT_ISA_AVX2;
#endif
    return NT_ISA_GENERIC;
}

int nt_isa_from_simd(nt_simd simd) {
    nt_isa best = nt_isa_best();
    nt_isa want;
    switch (simd) {
    case NT_SIMD_AUTO: return (int)best;
    case NT_SIMD_GENERIC: want = NT_ISA_GENERIC; break;
    case NT_SIMD_AVX2: want = NT_ISA_AVX2; break;
    case NT_SIMD_AVX512: want = NT_ISA_AVX512; break;
    case NT_SIMD_AVX512VNNI: want = NT_ISA_AVX512VNNI; break;
    default: return -1;
    }
    return want <= best ? (int)want : -1;
}

nt_simd nt_isa_to_simd(nt_isa isa) {
    switch (isa) {
    case NT_ISA_AVX512VNNI: return NT_SIMD_AVX512VNNI;
    case NT_ISA_AVX512: return NT_SIMD_AVX512;
    case NT_ISA_AVX2: return NT_SIMD_AVX2;
    default: return NT_SIMD_GENERIC;
    }
}

nt_simd nt_simd_best(void) { return nt_isa_to_simd(nt_isa_best()); }

const char *nt_simd_name(nt_simd simd) {
    switch (simd) {
    case NT_SIMD_AUTO: return "auto";
    case NT_SIMD_GENERIC: return "generic";
    case NT_SIMD_AVX2: return "avx2";
    case NT_SIMD_AVX512: return "avx512";
    case NT_SIMD_AVX512VNNI: return "avx512vnni";
    }
    return "unknown";
}

int nt_simd_parse(const char *name) {
    static const nt_simd all[] = {NT_SIMD_AUTO, NT_SIMD_GENERIC, NT_SIMD_AVX2,
                                  NT_SIMD_AVX512, NT_SIMD_AVX512VNNI};
    for (unsigned i = 0; name && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, nt_simd_name(all[i])) == 0)
            return (int)all[i];
    return -1;
}
