/* The daemon's event lookups (appliance/daemon_events.c): an NFLOG prefix
 * or a fast path event's rule id names its rule, verdict, tenant and log
 * text through the index of the running policy, which is built again when
 * the running policy changes. No kernel. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/daemon_internal.h"
#include "tests/lib/checkmain.h"

static char dir[64];
static struct daemon d;

static void setup(void)
{
	memset(&d, 0, sizeof(d));
	snprintf(dir, sizeof(dir), "/tmp/hvgate-events.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(txn_init(&d.txn, dir, NULL, 1), 0);
}

static void teardown(void)
{
	char cmd[128];
	daemon_rule_index_free(&d.rules);
	txn_policy_free(d.txn.running);
	d.txn.running = NULL;
	txn_free(&d.txn);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Compiles `text` as dir/NAME and makes it the running policy, as a change
 * of the running policy does (a new generation). */
static const struct policy *run(const char *name, const char *text)
{
	char path[128], err[256];
	struct txn_policy *p;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_msg(txn_compile_path(&d.txn, path, &p, err, sizeof(err)) == 0, "%s", err);
	txn_policy_free(d.txn.running);
	d.txn.running = p;
	d.txn.running_gen++;
	return p->policy;
}

struct named {
	const char *rule, *verdict, *tenant, *prefix;
};

static struct named lookup(const char *prefix)
{
	struct named n = { 0 };
	daemon_log_lookup(&d, prefix, &n.rule, &n.verdict, &n.tenant, &n.prefix);
	return n;
}

static const char *const tenants = "zone uplink { interface \"up0\" }\n"
				   "tenant a {\n"
				   "  segment lan { interface \"ta0\" address 10.0.1.0/24 }\n"
				   "  pass from lan to uplink service ssh log \"ssh-a\"\n"
				   "  block from lan to uplink service http log\n"
				   "  default block log\n"
				   "}\n"
				   "tenant b {\n"
				   "  segment lan { interface \"tb0\" address 10.0.1.0/24 }\n"
				   "  pass from lan to uplink service ssh log \"ssh-b\"\n"
				   "}\n";

static const struct policy_rule *rule_logged(const struct policy *p, const char *log_prefix)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].log_prefix && !strcmp(p->rules[i].log_prefix, log_prefix))
			return &p->rules[i];
	ck_abort_msg("no rule logs as %s", log_prefix);
	return NULL;
}

START_TEST(test_rule_by_kernel_id_and_by_id)
{
	const struct policy *p = run("t.hvp", tenants);
	const struct policy_rule *ssh_b = rule_logged(p, "ssh-b");

	/* an NFLOG prefix is the kernel id (FILE:HASH, no line) */
	ck_assert_str_ne(ssh_b->kernel_id, ssh_b->id);
	struct named n = lookup(ssh_b->kernel_id);
	ck_assert_ptr_eq(n.rule, ssh_b->id);
	ck_assert_str_eq(n.verdict, "pass");
	ck_assert_str_eq(n.tenant, "b");
	ck_assert_str_eq(n.prefix, "ssh-b");
	/* a fast path event names the rule by its id (FILE:LINE:HASH) */
	n = lookup(ssh_b->id);
	ck_assert_ptr_eq(n.rule, ssh_b->id);
	ck_assert_str_eq(n.tenant, "b");
	/* the other tenant's rule of the same service is another rule */
	n = lookup(rule_logged(p, "ssh-a")->kernel_id);
	ck_assert_str_eq(n.tenant, "a");
	ck_assert_str_eq(n.prefix, "ssh-a");
}
END_TEST

START_TEST(test_default_and_unknown)
{
	const struct policy *p = run("t.hvp", tenants);
	char id[DAEMON_DEFAULT_ID_LEN];
	const struct policy_default *df = NULL;

	for (size_t i = 0; i < p->n_defaults && !df; i++)
		if (p->defaults[i].log)
			df = &p->defaults[i];
	ck_assert_ptr_nonnull(df);
	snprintf(id, sizeof(id), "default:%s:%u", df->loc.file, df->loc.line);
	struct named n = lookup(id);
	ck_assert_ptr_null(n.rule); /* a default has no rule id */
	ck_assert_str_eq(n.verdict, "block");
	ck_assert_str_eq(n.tenant, "a");
	/* a name of no rule leaves every field as it was */
	n = lookup("nowhere.hvp:1:abcdef");
	ck_assert(!n.rule && !n.verdict && !n.tenant && !n.prefix);
	snprintf(id, sizeof(id), "default:%s:%u", df->loc.file, df->loc.line + 100);
	n = lookup(id);
	ck_assert(!n.rule && !n.verdict && !n.tenant && !n.prefix);
}
END_TEST

/* A change of the running policy (a new generation) is seen by the next
 * lookup: the old policy's names are gone, the new one's found. */
START_TEST(test_index_follows_the_running_policy)
{
	const struct policy *p = run("t.hvp", tenants);
	char old_kernel_id[sizeof(p->rules[0].kernel_id)];

	snprintf(old_kernel_id, sizeof(old_kernel_id), "%s", rule_logged(p, "ssh-b")->kernel_id);
	ck_assert_str_eq(lookup(old_kernel_id).tenant, "b");
	p = run("u.hvp", "zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\n"
			 "block from lan to dmz service ssh log \"ssh-lan\"\n");
	struct named n = lookup(old_kernel_id);
	ck_assert(!n.rule && !n.tenant);
	n = lookup(rule_logged(p, "ssh-lan")->kernel_id);
	ck_assert_ptr_eq(n.rule, p->rules[0].id);
	ck_assert_str_eq(n.verdict, "block");
	ck_assert_ptr_null(n.tenant);
	/* nothing running: nothing named */
	snprintf(old_kernel_id, sizeof(old_kernel_id), "%s", p->rules[0].kernel_id);
	txn_policy_free(d.txn.running);
	d.txn.running = NULL;
	d.txn.running_gen++;
	n = lookup(old_kernel_id);
	ck_assert(!n.rule && !n.verdict);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("lookup");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rule_by_kernel_id_and_by_id);
	tcase_add_test(tc, test_default_and_unknown);
	tcase_add_test(tc, test_index_follows_the_running_policy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_main(suite());
}
