/*
 * check.h - the smallest test harness that does the job.
 *
 * Each test program is a main() that calls CHECK*() as often as it likes and
 * returns check_summary(). A failed check prints file:line and the values
 * involved and counts as a failure, but the program goes on so that one run
 * shows every broken case. The summary line "N passed, N failed" is the one
 * CI reads.
 */
#ifndef NT_TESTS_CHECK_H
#define NT_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed_count;
static int check_failed_count;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (cond) {                                                         \
            check_passed_count++;                                           \
        } else {                                                            \
            check_failed_count++;                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                 \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (cond) {                                                         \
            check_passed_count++;                                           \
        } else {                                                            \
            check_failed_count++;                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                 \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

#define CHECK_STR_CONTAINS(haystack, needle)                                \
    CHECK_MSG((haystack) != NULL && strstr((haystack), (needle)) != NULL,   \
              "\"%s\" does not contain \"%s\"",                             \
              (haystack) ? (haystack) : "(null)", (needle))

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_passed_count, check_failed_count);
    return check_failed_count == 0 ? 0 : 1;
}

#endif
