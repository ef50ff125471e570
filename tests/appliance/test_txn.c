/* Compiling candidates (file, git ref, stored revision) and comparing them
 * rule by rule; the git tree reader; the log rate limiter. No kernel. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/gitsrc.h"
#include "appliance/json.h"
#include "appliance/kernel/nflog.h"
#include "appliance/txn.h"
#include "tests/lib/checkmain.h"

static char dir[64];
static struct txn t;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/hvgate-txn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(txn_init(&t, dir, NULL, 1), 0);
}

static void teardown(void)
{
	char cmd[128];
	txn_free(&t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

#define ZONES "zone lan { interface \"lan0\" }\nzone dmz { interface \"dmz0\" }\n"

static struct json *compare(const struct txn_policy *a, const struct txn_policy *b)
{
	struct json_buf out;
	struct json *j;
	char err[128];

	json_buf_init(&out);
	json_obj_begin(&out);
	txn_compare(a, b, &out);
	json_obj_end(&out);
	ck_assert(!out.oom);
	ck_assert_int_eq(json_parse(out.s, out.len, &j, err, sizeof(err)), 0);
	json_buf_free(&out);
	return j;
}

START_TEST(compile_and_compare)
{
	struct txn_policy *a, *b, *c;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	long long same;

	write_file(
	    "a.hvp", ZONES
	    "pass from lan to dmz service tcp port 80\nblock from lan to dmz service tcp port 22\n");
	write_file(
	    "b.hvp", ZONES
	    "pass from lan to dmz service tcp port 80\npass from lan to dmz service tcp port 22\n"
	    "pass from lan to dmz service tcp port 443\n");
	snprintf(path, sizeof(path), "%s/a.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/b.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(a->hash), TXN_HASH_HEX - 1);
	ck_assert_str_ne(a->hash, b->hash);
	/* The block lists are in every ruleset. */
	ck_assert_int_eq(txn_compile_path(&t, path, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(b->hash, c->hash);
	txn_policy_free(c);

	j = compare(a, b);
	ck_assert_int_eq(json_get(j, "added")->n, 1);
	ck_assert_int_eq(json_get(j, "removed")->n, 0);
	ck_assert_int_eq(json_get(j, "changed")->n, 1);
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(&json_get(j, "changed")->items[0], "from"), "location"),
		   "a.hvp:4"));
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(&json_get(j, "added")->items[0], "location"), "b.hvp:5"));
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 1);
	json_free(j);
	j = compare(NULL, a);
	ck_assert_int_eq(json_get(j, "added")->n, 2);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
}
END_TEST

/* VPN blocks and peers are compared by their names, next to rules and NAT:
 * a changed peer lists what changed, its public key abbreviated. */
#define W6S_VPN(PORT, PEERS)                                                                       \
	ZONES "vpn wg0 {\n  listen-port " PORT "\n  private-key-file \"/etc/hvgate/wg0.key\"\n"    \
	      "  address 10.99.0.1/24\n" PEERS "}\n"
#define W6S_KEY1 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define W6S_KEY2 "aTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

static const struct json *item_with_id(const struct json *arr, const char *side, const char *id)
{
	for (size_t i = 0; arr && i < arr->n; i++) {
		const struct json *it = side ? json_get(&arr->items[i], side) : &arr->items[i];
		if (!strcmp(json_get_str(it, "id"), id))
			return &arr->items[i];
	}
	return NULL;
}

/* Rules are matched by their content (tenant and text, blanks and comments
 * aside), wherever they are: a file policy against the same rules in a
 * directory, one moved to another line, one of another tenant with the
 * same text, a rule over several lines; only the one that changed shows,
 * with its whole text. */
START_TEST(compare_by_content)
{
	struct txn_policy *a, *b;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	const struct json *ch;
	long long same;

	write_file("one.hvp",
		   ZONES "tenant t { segment s { interface \"t0\" address 10.0.0.0/24 }\n"
			 "  pass from s to dmz service tcp port 25\n}\n"
			 "pass from lan to dmz service tcp port 80\n"
			 "pass from lan\n  to dmz   # web\n  service tcp port 443\n"
			 "block from lan to dmz service tcp port 22\n");
	ck_assert_int_eq(mkdir(strcat(strcpy(path, dir), "/d"), 0700), 0);
	write_file("d/main.hvp", "\n\n" ZONES "block from lan to dmz service tcp port 22\n"
				 "pass from lan to dmz service tcp port 8080\n"
				 "pass from lan to dmz service tcp port 443\n"
				 "tenant t { segment s { interface \"t0\" address 10.0.0.0/24 }\n"
				 "  pass from s to dmz service tcp port 25\n}\n");
	snprintf(path, sizeof(path), "%s/one.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/d", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	j = compare(a, b);
	ck_assert_int_eq(json_get(j, "added")->n, 0);
	ck_assert_int_eq(json_get(j, "removed")->n, 0);
	ch = json_get(j, "changed");
	ck_assert_int_eq(ch->n, 1);
	ck_assert_str_eq(json_get_str(json_get(&ch->items[0], "from"), "text"),
			 "pass from lan to dmz service tcp port 80");
	ck_assert_str_eq(json_get_str(json_get(&ch->items[0], "to"), "text"),
			 "pass from lan to dmz service tcp port 8080");
	/* block 22 went before pass 443: a move (first match); the tenant's
	 * rule is ordered only among the tenant's own */
	ck_assert_int_eq(json_get(j, "moved")->n, 1);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 2);
	json_free(j);
	/* the same text in another tenant is another rule */
	write_file("two.hvp",
		   ZONES "tenant t { segment s { interface \"t0\" address 10.0.0.0/24 }\n}\n"
			 "pass from lan to dmz service tcp port 80\n"
			 "pass from lan to dmz service tcp port 443\n"
			 "block from lan to dmz service tcp port 22\n");
	txn_policy_free(b);
	snprintf(path, sizeof(path), "%s/two.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	j = compare(a, b);
	ck_assert_int_eq(json_get(j, "removed")->n, 1);
	ck_assert_str_eq(json_get_str(&json_get(j, "removed")->items[0], "tenant"), "t");
	ck_assert_int_eq(json_get(j, "changed")->n, 0);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
}
END_TEST

/* A rule whose own text did not change but whose define or service did
 * matches other packets: changed, saying which part and which names it
 * uses; a rule using an unchanged define stays unchanged. */
START_TEST(redefined_is_changed)
{
	struct txn_policy *a, *b;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	const struct json *ch, *redef, *parts;
	long long same;

	write_file("r1.hvp",
		   ZONES "define web = 10.0.0.1\ndefine db = 10.0.0.9\nservice app = tcp port 80\n"
			 "pass from lan to $web service app\n"
			 "pass from lan to $db service tcp port 5432\n");
	write_file(
	    "r2.hvp", ZONES
	    "define web = { 10.0.0.1, 10.0.0.2 }\ndefine db = 10.0.0.9\nservice app = tcp port 80\n"
	    "pass from lan to $web service app\n"
	    "pass from lan to $db service tcp port 5432\n");
	write_file("r3.hvp", ZONES
		   "define web = 10.0.0.1\ndefine db = 10.0.0.9\nservice app = tcp port 8080\n"
		   "pass from lan to $web service app\n"
		   "pass from lan to $db service tcp port 5432\n");
	snprintf(path, sizeof(path), "%s/r1.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/r2.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	j = compare(a, b);
	ch = json_get(j, "changed");
	ck_assert_int_eq(ch->n, 1);
	ck_assert_str_eq(json_get_str(json_get(&ch->items[0], "to"), "text"),
			 "pass from lan to $web service app");
	redef = json_get(&ch->items[0], "redefined");
	ck_assert_ptr_nonnull(redef);
	parts = json_get(redef, "parts");
	ck_assert_int_eq(parts->n, 1);
	ck_assert_str_eq(parts->items[0].string, "to");
	ck_assert_str_eq(json_get_str(redef, "uses"), "$web, app");
	ck_assert_int_eq(json_get(j, "moved")->n, 0);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 1);
	json_free(j);
	txn_policy_free(b);
	/* the service's ports */
	snprintf(path, sizeof(path), "%s/r3.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	j = compare(a, b);
	ch = json_get(j, "changed");
	ck_assert_int_eq(ch->n, 1);
	parts = json_get(json_get(&ch->items[0], "redefined"), "parts");
	ck_assert_int_eq(parts->n, 1);
	ck_assert_str_eq(parts->items[0].string, "service");
	json_free(j);
	/* the same policy: nothing changed */
	j = compare(a, a);
	ck_assert_int_eq(json_get(j, "changed")->n, 0);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
}
END_TEST

START_TEST(vpn_compare)
{
	struct txn_policy *a, *b, *c;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	const struct json *it, *fields;
	long long same;

	write_file("va.hvp", W6S_VPN("51820", "  peer b1 { public-key \"" W6S_KEY1
					      "\" endpoint \"192.0.2.50:51820\"\n"
					      "    allowed-ips { 10.99.0.2/32 } keepalive 25 }\n"
					      "  peer b2 { public-key \"" W6S_KEY2
					      "\" allowed-ips { 10.99.0.3/32 } }\n"));
	write_file("vb.hvp",
		   W6S_VPN("51821",
			   "  peer b1 { public-key \"" W6S_KEY1 "\" endpoint \"192.0.2.51:51820\"\n"
			   "    allowed-ips { 10.99.0.2/32, 172.16.0.0/16 } keepalive 25 }\n"
			   "  peer b3 { public-key \"" W6S_KEY2
			   "\" allowed-ips { 10.99.0.4/32 } }\n"));
	write_file("vc.hvp", ZONES);
	snprintf(path, sizeof(path), "%s/va.hvp", dir);
	ck_assert_msg(txn_compile_path(&t, path, &a, err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/vb.hvp", dir);
	ck_assert_msg(txn_compile_path(&t, path, &b, err, sizeof(err)) == 0, "%s", err);
	snprintf(path, sizeof(path), "%s/vc.hvp", dir);
	ck_assert_msg(txn_compile_path(&t, path, &c, err, sizeof(err)) == 0, "%s", err);

	j = compare(a, b);
	ck_assert_int_eq(json_get(j, "changed")->n, 2); /* wg0's port, peer b1 */
	it = item_with_id(json_get(j, "changed"), "to", "wg0");
	ck_assert_ptr_nonnull(it);
	fields = json_get(it, "fields");
	ck_assert_int_eq(fields->n, 1);
	ck_assert_str_eq(fields->items[0].string, "listen-port");
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(it, "from"), "text"), "listen-port 51820"));
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(it, "to"), "text"), "listen-port 51821"));
	it = item_with_id(json_get(j, "changed"), "to", "wg0/b1");
	ck_assert_ptr_nonnull(it);
	ck_assert_str_eq(json_get_str(json_get(it, "to"), "kind"), "peer");
	fields = json_get(it, "fields");
	ck_assert_int_eq(fields->n, 2);
	ck_assert_str_eq(fields->items[0].string, "endpoint");
	ck_assert_str_eq(fields->items[1].string, "allowed-ips");
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(it, "to"), "text"), "endpoint 192.0.2.51:51820"));
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(it, "to"), "text"), "10.99.0.2/32,172.16.0.0/16"));
	/* The key is abbreviated, not printed whole. */
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(it, "to"), "text"), "public-key xTIBA5rb..."));
	ck_assert_ptr_null(strstr(json_get_str(json_get(it, "to"), "text"), W6S_KEY1));
	ck_assert_ptr_nonnull(strstr(json_get_str(json_get(it, "to"), "location"), "vb.hvp:"));
	ck_assert_int_eq(json_get(j, "added")->n, 1);
	ck_assert_ptr_nonnull(item_with_id(json_get(j, "added"), NULL, "wg0/b3"));
	ck_assert_int_eq(json_get(j, "removed")->n, 1);
	ck_assert_ptr_nonnull(item_with_id(json_get(j, "removed"), NULL, "wg0/b2"));
	json_free(j);

	/* The same VPN: unchanged (the vpn block and its two peers). */
	j = compare(a, a);
	ck_assert_int_eq(json_get(j, "changed")->n, 0);
	ck_assert_int_eq(json_get(j, "added")->n, 0);
	ck_assert_int_eq(json_get(j, "removed")->n, 0);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 3);
	json_free(j);

	/* A VPN removed: the block and each of its peers. */
	j = compare(b, c);
	ck_assert_int_eq(json_get(j, "removed")->n, 3);
	it = item_with_id(json_get(j, "removed"), NULL, "wg0");
	ck_assert_ptr_nonnull(it);
	ck_assert_str_eq(json_get_str(it, "kind"), "vpn");
	ck_assert_ptr_nonnull(strstr(json_get_str(it, "text"), "address 10.99.0.1/24"));
	json_free(j);
	j = compare(c, b);
	ck_assert_int_eq(json_get(j, "added")->n, 3);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
	txn_policy_free(c);
}
END_TEST

/* A labelled rule is named by its label (the kernel's comment, counters,
 * metrics, logs) and compared by it: moved and edited it is "changed", not
 * removed and added; an unlabelled rule keeps FILE:LINE:HASH. */
START_TEST(labels)
{
	struct txn_policy *a, *b;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	const struct json *ch;
	long long same;

	write_file("a.hvp", ZONES "pass from lan to dmz service tcp port 80 label \"web-in\"\n"
				  "block from lan to dmz service tcp port 22\n");
	write_file("b.hvp", ZONES "block from lan to dmz service tcp port 22\n\n\n"
				  "pass from lan to dmz service tcp port 8080 label \"web-in\"\n");
	snprintf(path, sizeof(path), "%s/a.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/b.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	ck_assert_str_eq(a->policy->rules[0].id, "web-in");
	ck_assert(a->policy->rules[0].labelled);
	ck_assert_ptr_nonnull(strstr(a->policy->rules[0].where, "a.hvp:3:"));
	ck_assert_ptr_nonnull(strstr(a->policy->rules[1].id, "a.hvp:4:"));
	ck_assert(!a->policy->rules[1].labelled);

	j = compare(a, b);
	ch = json_get(j, "changed");
	ck_assert_int_eq(ch->n, 1);
	ck_assert_int_eq(json_get(j, "added")->n, 0);
	ck_assert_int_eq(json_get(j, "removed")->n, 0);
	ck_assert_str_eq(json_get_str(json_get(&ch->items[0], "to"), "id"), "web-in");
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(&ch->items[0], "from"), "location"), "a.hvp:3"));
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(&ch->items[0], "to"), "location"), "b.hvp:6"));
	ck_assert_str_eq(json_get_str(json_get(&ch->items[0], "to"), "text"),
			 "pass from lan to dmz service tcp port 8080 label \"web-in\"");
	/* it went past the block rule, which stays where it was */
	ck_assert_ptr_nonnull(json_get(&ch->items[0], "moved"));
	ck_assert(json_get(&ch->items[0], "moved")->boolean);
	ck_assert_int_eq(json_get(j, "moved")->n, 0);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 1);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
}
END_TEST

/* First match: the order of the rules decides, so a rule moved past
 * another is "moved", not unchanged; lines moved by an edit above them,
 * the order kept, are unchanged; an edit in place is "changed" and not
 * moved. */
START_TEST(reorder_is_moved)
{
	struct txn_policy *a, *b, *c, *d;
	char path[128], err[TXN_ERR_MAX];
	struct json *j;
	const struct json *mv, *ch;
	long long same;

	write_file("a.hvp", ZONES "pass from lan to dmz service tcp port 20-25\nblock from lan to "
				  "dmz service tcp port 22-30\n"
				  "pass from lan to dmz service tcp port 80\n");
	/* the block now comes first: ports 22-25 are blocked */
	write_file("b.hvp", ZONES "block from lan to dmz service tcp port 22-30\npass from lan to "
				  "dmz service tcp port 20-25\n"
				  "pass from lan to dmz service tcp port 80\n");
	/* two lines inserted above, the order kept */
	write_file("c.hvp", ZONES "\n# comment\npass from lan to dmz service tcp port 20-25\nblock "
				  "from lan to dmz service tcp port 22-30\n"
				  "pass from lan to dmz service tcp port 80\n");
	/* the last rule edited in place and the first two swapped */
	write_file("d.hvp", ZONES "block from lan to dmz service tcp port 22-30\npass from lan to "
				  "dmz service tcp port 20-25\n"
				  "pass from lan to dmz service tcp port 81\n");
	snprintf(path, sizeof(path), "%s/a.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &a, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/b.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &b, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/c.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &c, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/d.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &d, err, sizeof(err)), 0);

	/* a.hvp and b.hvp are the same file name: compare by relative path */
	j = compare(a, b);
	mv = json_get(j, "moved");
	ck_assert_ptr_nonnull(mv);
	ck_assert_int_eq(mv->n, 1);
	ck_assert_int_eq(json_get(j, "added")->n, 0);
	ck_assert_int_eq(json_get(j, "removed")->n, 0);
	ck_assert_int_eq(json_get(j, "changed")->n, 0);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 2);
	json_free(j);

	j = compare(a, c);
	ck_assert_int_eq(json_get(j, "moved")->n, 0);
	ck_assert_int_eq(json_get(j, "changed")->n, 0);
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 3);
	json_free(j);

	j = compare(a, d);
	mv = json_get(j, "moved");
	ch = json_get(j, "changed");
	ck_assert_int_eq(mv->n, 1);
	ck_assert_int_eq(ch->n, 1);
	ck_assert_ptr_null(json_get(&ch->items[0], "moved"));
	ck_assert_ptr_nonnull(
	    strstr(json_get_str(json_get(&ch->items[0], "to"), "text"), "port 81"));
	ck_assert_int_eq(json_get_int(j, "unchanged", &same), 0);
	ck_assert_int_eq(same, 1);
	json_free(j);
	txn_policy_free(a);
	txn_policy_free(b);
	txn_policy_free(c);
	txn_policy_free(d);
}
END_TEST

START_TEST(bad_policy_message)
{
	struct txn_policy *p;
	char path[128], err[TXN_ERR_MAX];

	write_file("bad.hvp", ZONES "pass from nowhere to dmz\n");
	snprintf(path, sizeof(path), "%s/bad.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &p, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad.hvp:3:"));
	ck_assert_ptr_nonnull(strstr(err, "the policy has errors"));
}
END_TEST

/* A reload refused while a `commit confirmed` waits counts as a reload (and
 * an error) but changes nothing that runs: running_gen, which the daemon
 * watches to re-sync its VPNs and the fast path, stays. The changes of
 * `running` (start, reload, commit, revert) need the kernel: the
 * daemon_lifecycle and daemon_confirm suites run them. */
START_TEST(refused_reload_keeps_generation)
{
	struct txn_policy *p;
	char path[128], err[TXN_ERR_MAX];
	bool applied = true;

	write_file("a.hvp", ZONES "pass from lan to dmz service tcp port 80\n");
	snprintf(path, sizeof(path), "%s/a.hvp", dir);
	ck_assert_int_eq(txn_compile_path(&t, path, &p, err, sizeof(err)), 0);
	t.pending = true;
	ck_assert_int_eq(txn_reload(&t, p, &applied, err, sizeof(err)), -EBUSY);
	t.pending = false;
	ck_assert_ptr_nonnull(strstr(err, "pending"));
	ck_assert_uint_eq(t.stats.reloads, 1);
	ck_assert_uint_eq(t.stats.reload_errors, 1);
	ck_assert_uint_eq(t.running_gen, 0);
	ck_assert_ptr_null(t.running);
}
END_TEST

START_TEST(git_source)
{
	char cmd[512], err[256], *text, **paths;
	struct txn_policy *p;
	struct gitsrc *g;
	size_t len;
	int n;

	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && git init -q repo && cd repo && mkdir sub && printf '%s' > a.hvp && "
	    "printf 'pass from lan to dmz\\n' > sub/r.hvp && git add . && "
	    "git -c user.name=t -c user.email=t@e commit -qm one && git rev-parse HEAD > ../head && "
	    "echo broken > a.hvp",
	    dir, ZONES "include \"sub/*.hvp\"\\n");
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/repo", dir);
	ck_assert_int_eq(gitsrc_open(cmd, "HEAD", &g, err, sizeof(err)), 0);
	ck_assert_int_eq(strlen(gitsrc_commit(g)), 40);
	ck_assert_int_eq(gitsrc_fs(g)->read(gitsrc_fs(g)->ctx, "a.hvp", &text, &len), 0);
	ck_assert_ptr_nonnull(strstr(text, "zone lan")); /* the commit, not the work tree */
	free(text);
	ck_assert_int_eq(gitsrc_fs(g)->is_dir(gitsrc_fs(g)->ctx, "sub"), 1);
	ck_assert_int_eq(gitsrc_fs(g)->is_dir(gitsrc_fs(g)->ctx, "a.hvp"), 0);
	ck_assert_int_eq(gitsrc_fs(g)->is_dir(gitsrc_fs(g)->ctx, "nope"), -ENOENT);
	n = gitsrc_fs(g)->glob(gitsrc_fs(g)->ctx, "./sub/*.hvp", &paths);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(paths[0], "./sub/r.hvp");
	free(paths[0]);
	free(paths);
	gitsrc_close(g);
	ck_assert_int_eq(gitsrc_open(cmd, "no-such-ref", &g, err, sizeof(err)), -ENOENT);

	ck_assert_msg(txn_compile_git(&t, cmd, "HEAD", &p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(p->policy->n_rules, 1);
	ck_assert_int_eq(strlen(p->source_rev), 40);
	txn_policy_free(p);
}
END_TEST

START_TEST(log_bucket)
{
	struct nflogd_bucket b;
	int taken = 0;

	nflogd_bucket_init(&b, 10, 5, 100.0);
	for (int i = 0; i < 20; i++)
		taken += nflogd_bucket_take(&b, 100.0);
	ck_assert_int_eq(taken, 5); /* the burst */
	ck_assert(!nflogd_bucket_take(&b, 100.05));
	ck_assert(nflogd_bucket_take(&b, 100.15)); /* one token per 1/10 s */
	taken = 0;
	for (int i = 0; i < 100; i++)
		taken += nflogd_bucket_take(&b, 200.0); /* a long pause refills only to the burst */
	ck_assert_int_eq(taken, 5);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("txn");
	TCase *tc = tcase_create("txn");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, compile_and_compare);
	tcase_add_test(tc, compare_by_content);
	tcase_add_test(tc, redefined_is_changed);
	tcase_add_test(tc, vpn_compare);
	tcase_add_test(tc, labels);
	tcase_add_test(tc, reorder_is_moved);
	tcase_add_test(tc, bad_policy_message);
	tcase_add_test(tc, refused_reload_keeps_generation);
	tcase_add_test(tc, git_source);
	tcase_add_test(tc, log_bucket);
	suite_add_tcase(s, tc);
	return check_main(s);
}
