/* A scratch directory for unit tests that need real files (includes, globs,
 * directory sources). Use testdir_setup / testdir_teardown as a Check
 * checked fixture; testdir holds the directory's path in between. */
#ifndef HVGATE_TESTS_TESTDIR_H
#define HVGATE_TESTS_TESTDIR_H

extern char testdir[64];

void testdir_setup(void);
void testdir_teardown(void);
/* Writes `text` to testdir/rel (the folders of rel must exist). */
void testdir_write(const char *rel, const char *text);

#endif
