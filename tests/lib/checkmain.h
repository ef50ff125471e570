/* The end of every Check runner's main: run the suite, say how it went,
 * turn the result into the exit code run-unit.sh reads. */
#ifndef HVGATE_TESTS_LIB_CHECKMAIN_H
#define HVGATE_TESTS_LIB_CHECKMAIN_H

#include <check.h>

/* Runs every test of `s` with CK_NORMAL output, frees the runner (and with
 * it the suite) and returns 0 when all passed, 1 otherwise. */
int check_main(Suite *s);

#endif
