#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testdir.h"

char testdir[64];

void testdir_setup(void)
{
	strcpy(testdir, "/tmp/hvgate-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(testdir));
}

void testdir_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", testdir);
	ck_assert_int_eq(system(cmd), 0);
}

void testdir_write(const char *rel, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", testdir, rel);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}
