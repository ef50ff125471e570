/* conf_load(): the default file loads, and each bad file fails with its
 * exact message (file, line, setting). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/config.h"
#include "tests/lib/checkmain.h"

static char path[64];

static void write_conf(const char *text)
{
	int fd;
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/hvgate-conf.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

#define GOOD_POLICY "policy: { path = \"/etc/hvgate/policy\"; };\n"

/* Loads `text`; returns the error with the temporary path replaced by "F". */
static const char *load_err(const char *text)
{
	static char out[CONF_ERR_MAX];
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };
	int rc;

	write_conf(text);
	rc = conf_load(path, &c, err, sizeof(err));
	unlink(path);
	conf_free(&c);
	if (!rc)
		return "OK";
	ck_assert_int_eq(strncmp(err, path, strlen(path)), 0);
	snprintf(out, sizeof(out), "F%s", err + strlen(path));
	return out;
}

START_TEST(default_file_loads)
{
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };

	ck_assert_int_eq(conf_load("conf/hvgate.conf", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.n_ifaces, 2);
	ck_assert_str_eq(c.ifaces[0].name, "eth0");
	ck_assert_int_eq(c.ifaces[0].role, CONF_ROLE_UPLINK);
	ck_assert_int_eq(c.source, CONF_SOURCE_PATH);
	ck_assert_str_eq(c.policy_path, "/etc/hvgate/policy");
	ck_assert_int_eq(c.socket_mode, 0660);
	ck_assert_int_eq(c.log_rate, 100);
	ck_assert_int_eq(c.metrics_port, 9469);
	ck_assert_str_eq(c.metrics_addr, "127.0.0.1");
	ck_assert_ptr_null(c.netns);
	ck_assert(!c.flush_on_stop);
	conf_free(&c);
}
END_TEST

START_TEST(minimal_and_git)
{
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };

	write_conf("policy: { source = \"git\"; path = \"/srv/pol.git\"; };\nnetns = \"lab1\";\n"
		   "on_stop = \"flush\";\nmetrics: { listen = \"[::1]:9100\"; };\n");
	ck_assert_int_eq(conf_load(path, &c, err, sizeof(err)), 0);
	unlink(path);
	ck_assert_int_eq(c.source, CONF_SOURCE_GIT);
	ck_assert_str_eq(c.git_ref, "HEAD");
	ck_assert_str_eq(c.netns, "lab1");
	ck_assert(c.flush_on_stop);
	ck_assert_str_eq(c.metrics_addr, "::1");
	ck_assert_int_eq(c.metrics_port, 9100);
	conf_free(&c);
}
END_TEST

START_TEST(failed_reload_keeps_old)
{
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };

	ck_assert_int_eq(conf_load("conf/hvgate.conf", &c, err, sizeof(err)), 0);
	write_conf(GOOD_POLICY "log: { rate = 0; };\n");
	ck_assert_int_lt(conf_load(path, &c, err, sizeof(err)), 0);
	unlink(path);
	ck_assert_str_eq(c.file, "conf/hvgate.conf");
	ck_assert_int_eq(c.log_rate, 100);
	conf_free(&c);
}
END_TEST

static const struct {
	const char *text, *err;
} bad[] = {
	{ GOOD_POLICY "polcy = 1;\n", "F:2: setting 'polcy': unknown setting" },
	{ "state_dir = \"/x\";\n", "F: setting 'policy': is required" },
	{ "policy: { source = \"svn\"; path = \"/p\"; };\n",
	  "F:1: setting 'policy.source': must be \"path\" or \"git\"" },
	{ "policy: {\n  path = \"rel/dir\";\n};\n",
	  "F:2: setting 'policy.path': must be an absolute path" },
	{ "policy: { path = 5; };\n", "F:1: setting 'policy.path': must be a string" },
	{ "policy: { path = \"/p\"; ref = \"main\"; };\n",
	  "F:1: setting 'policy.ref': only applies to source = \"git\"" },
	{ GOOD_POLICY "state_dir = \"var/lib\";\n",
	  "F:2: setting 'state_dir': must be an absolute path" },
	{ GOOD_POLICY "control: {\n mode = \"660\";\n};\n",
	  "F:3: setting 'control.mode': must be an octal mode string such as \"0660\"" },
	{ GOOD_POLICY "control: { mode = 432; };\n",
	  "F:2: setting 'control.mode': must be a string" },
	{ GOOD_POLICY "control: { group = \"no-such-group-hv\"; };\n",
	  "F:2: setting 'control.group': group 'no-such-group-hv' does not exist" },
	{ GOOD_POLICY "control: { socket = \"sock\"; };\n",
	  "F:2: setting 'control.socket': must be an absolute path of at most 107 bytes" },
	{ GOOD_POLICY "control: { sockett = \"/s\"; };\n",
	  "F:2: setting 'control.sockett': unknown setting" },
	{ GOOD_POLICY "control: { max_clients_per_uid = 0; };\n",
	  "F:2: setting 'control.max_clients_per_uid': must be between 1 and 56" },
	{ GOOD_POLICY "control: { request_seconds = 0; };\n",
	  "F:2: setting 'control.request_seconds': must be between 1 and 3600" },
	{ GOOD_POLICY "control: { idle_seconds = \"5\"; };\n",
	  "F:2: setting 'control.idle_seconds': must be an integer" },
	{ GOOD_POLICY "log: {\n\n rate = 0;\n};\n",
	  "F:4: setting 'log.rate': must be between 1 and 1000000" },
	{ GOOD_POLICY "log: { syslog = \"yes\"; };\n",
	  "F:2: setting 'log.syslog': must be a boolean (true/false)" },
	{ GOOD_POLICY "log: { nflog_group = 70000; };\n",
	  "F:2: setting 'log.nflog_group': must be between 0 and 65535" },
	{ GOOD_POLICY "log: { file = \"events.log\"; };\n",
	  "F:2: setting 'log.file': must be an absolute path or \"\"" },
	{ GOOD_POLICY "metrics: { listen = \"localhost:80\"; };\n",
	  "F:2: setting 'metrics.listen': must be a numeric address and a port 1..65535, \"127.0.0.1:9469\"" },
	{ GOOD_POLICY "metrics: { listen = \"127.0.0.1:0\"; };\n",
	  "F:2: setting 'metrics.listen': must be a numeric address and a port 1..65535, \"127.0.0.1:9469\"" },
	{ GOOD_POLICY "metrics: { listen = \"127.0.0.1\"; };\n",
	  "F:2: setting 'metrics.listen': must be \"ADDRESS:PORT\"" },
	{ GOOD_POLICY "on_stop = \"drop\";\n",
	  "F:2: setting 'on_stop': must be \"keep\" or \"flush\"" },
	{ GOOD_POLICY "netns = \"../x\";\n",
	  "F:2: setting 'netns': must be a namespace name (no '/')" },
	{ GOOD_POLICY "interfaces = ( { name = \"eth0\"; role = \"wan\"; } );\n",
	  "F:2: setting 'interfaces.[0]': role 'wan' is not one of uplink, tenant, management, vpn" },
	{ GOOD_POLICY
	  "interfaces = (\n { name = \"eth0\"; role = \"uplink\"; },\n { name = \"eth0\"; role = \"tenant\"; }\n);\n",
	  "F:4: setting 'interfaces.[1]': interface 'eth0' is listed twice" },
	{ GOOD_POLICY
	  "interfaces = ( { name = \"an-interface-name-too-long\"; role = \"uplink\"; } );\n",
	  "F:2: setting 'interfaces.[0]': interface name 'an-interface-name-too-long' is not a valid name (1..15 characters, no '/' or space)" },
	{ GOOD_POLICY "interfaces = ( { name = \"eth0\"; } );\n",
	  "F:2: setting 'interfaces.[0]': needs a role" },
	{ GOOD_POLICY "interfaces = ( { name = \"eth0\"; role = \"uplink\"; mtu = 1500; } );\n",
	  "F:2: setting 'interfaces.[0].mtu': unknown setting" },
	{ GOOD_POLICY "counter_interval_ms = 5;\n",
	  "F:2: setting 'counter_interval_ms': must be between 100 and 3600000" },
	{ GOOD_POLICY "fastpath: { enabled = 1; };\n",
	  "F:2: setting 'fastpath.enabled': must be a boolean (true/false)" },
	{ GOOD_POLICY "fastpath: { workers = 0; };\n",
	  "F:2: setting 'fastpath.workers': must be between 1 and 64" },
	{ GOOD_POLICY "fastpath: { fail_closed = 1; };\n",
	  "F:2: setting 'fastpath.fail_closed': must be a boolean (true/false)" },
	{ GOOD_POLICY "state_dir = ;\n", "F:2: syntax error: syntax error" },
	{ GOOD_POLICY "vpn = 1;\n", "F:2: setting 'vpn': must be a group { ... }" },
};

START_TEST(bad_config)
{
	ck_assert_str_eq(load_err(bad[_i].text), bad[_i].err);
}
END_TEST

START_TEST(placeholders_accept_unknown_keys)
{
	ck_assert_str_eq(load_err(GOOD_POLICY "fastpath: { later = 3; };\nvpn: { peers = (); };\n"),
			 "OK");
}
END_TEST

START_TEST(include_beside_the_file)
{
	char err[CONF_ERR_MAX], inc[96], main_path[96], dir[64];
	struct conf c = { 0 };
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/hvgate-confdir.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(inc, sizeof(inc), "%s/log.conf", dir);
	snprintf(main_path, sizeof(main_path), "%s/hvgate.conf", dir);
	f = fopen(inc, "w");
	fputs("log: { rate = 7; };\n", f);
	fclose(f);
	f = fopen(main_path, "w");
	fputs(GOOD_POLICY "@include \"log.conf\"\n", f);
	fclose(f);
	ck_assert_msg(conf_load(main_path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.log_rate, 7);
	/* An error in the included file names that file. */
	f = fopen(inc, "w");
	fputs("\nlog: { rate = 0; };\n", f);
	fclose(f);
	ck_assert_int_eq(conf_load(main_path, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "log.conf:2: setting 'log.rate'") != NULL, "%s", err);
	conf_free(&c);
	unlink(inc);
	unlink(main_path);
	rmdir(dir);
}
END_TEST

START_TEST(fastpath_fail_closed)
{
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };

	write_conf(GOOD_POLICY "fastpath: { enabled = true; fail_closed = true; };\n");
	ck_assert_msg(conf_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert(c.fastpath_fail_closed);
	conf_free(&c);
	memset(&c, 0, sizeof(c));
	write_conf(GOOD_POLICY "fastpath: { enabled = true; };\n");
	ck_assert_msg(conf_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert(!c.fastpath_fail_closed); /* bypass by default */
	unlink(path);
	conf_free(&c);
}
END_TEST

START_TEST(missing_file)
{
	char err[CONF_ERR_MAX];
	struct conf c = { 0 };

	ck_assert_int_eq(conf_load("/nonexistent/hvgate.conf", &c, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/hvgate.conf: cannot read: No such file or directory");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, default_file_loads);
	tcase_add_test(tc, minimal_and_git);
	tcase_add_test(tc, failed_reload_keeps_old);
	tcase_add_loop_test(tc, bad_config, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, placeholders_accept_unknown_keys);
	tcase_add_test(tc, include_beside_the_file);
	tcase_add_test(tc, fastpath_fail_closed);
	tcase_add_test(tc, missing_file);
	suite_add_tcase(s, tc);
	return check_main(s);
}
