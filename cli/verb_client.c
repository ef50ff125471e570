/* hvgate's one-shot verbs that talk to hvgated over the control socket:
 * status, show, load, compare, commit, confirm, rollback, history, reload,
 * block, unblock (and diff, in verb_diff.c). Each takes --json (print the
 * daemon's reply as is) and --socket PATH (else $HVGATE_SOCKET, else
 * /run/hvgate/control.sock). The protocol: docs/control-protocol.md. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "appliance/control.h"
#include "appliance/duration.h"
#include "appliance/json.h"
#include "appliance/txn.h"
#include "cli/cli.h"
#include "cli/client.h"

/* A commit may apply a large ruleset; the daemon answers within this. */
#define CLIENT_TIMEOUT_MS 120000
/* Replies (show conntrack) are bounded by the daemon's queue limit. */
#define CLIENT_REPLY_MAX CTL_OUT_MAX

int cli_client_opts(int *argc, char **argv, struct cli_client_opts *o)
{
	int n = 1;

	o->json = false;
	o->socket = getenv("HVGATE_SOCKET");
	if (!o->socket || !*o->socket)
		o->socket = CTL_DEFAULT_SOCKET;
	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--socket")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "hvgate: --socket needs a path\n");
				return -1;
			}
			o->socket = argv[++i];
		} else {
			argv[n++] = argv[i];
		}
	}
	*argc = n;
	argv[n] = NULL;
	return 0;
}

int cli_client_call(const struct cli_client_opts *o, const char *request, struct json **reply,
		    char **raw)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 65536;
	char *buf, err[256];
	int fd, rc, write_err = 0;

	*reply = NULL;
	*raw = NULL;
	if (strlen(o->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "hvgate: socket path too long\n");
		return CLI_EXIT_USAGE;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", o->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "hvgate: cannot reach hvgated at %s: %s\n", o->socket,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return CLI_EXIT_USAGE;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		write_err = errno;
		/* A daemon that turns the connection away (too many clients)
		 * says why before it closes: read that rather than the EPIPE. */
		if (write_err != EPIPE && write_err != ECONNRESET) {
			fprintf(stderr, "hvgate: write to %s: %s\n", o->socket,
				strerror(write_err));
			close(fd);
			return CLI_EXIT_USAGE;
		}
	}
	buf = malloc(cap);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		if (!buf || len + 1 >= CLIENT_REPLY_MAX) {
			fprintf(stderr, "hvgate: reply too large\n");
			goto fail;
		}
		int ready = poll(&p, 1, CLIENT_TIMEOUT_MS);
		if (ready < 0 && errno == EINTR) {
			/* Ctrl-C in the shell: the request is abandoned, the shell lives. */
			fprintf(stderr,
				"hvgate: interrupted (hvgated may still carry out the request)\n");
			goto fail;
		}
		if (ready <= 0) {
			fprintf(stderr, "hvgate: no reply from hvgated within %d s\n",
				CLIENT_TIMEOUT_MS / 1000);
			goto fail;
		}
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0 && write_err) {
			fprintf(stderr, "hvgate: write to %s: %s\n", o->socket,
				strerror(write_err));
			goto fail;
		}
		if (n <= 0) {
			fprintf(stderr, "hvgate: hvgated closed the connection\n");
			goto fail;
		}
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	len = (size_t)((char *)memchr(buf, '\n', len) - buf);
	buf[len] = 0;
	rc = json_parse(buf, len, reply, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "hvgate: bad reply from hvgated: %s\n", err);
		free(buf);
		return CLI_EXIT_USAGE;
	}
	*raw = buf;
	return CLI_EXIT_OK;
fail:
	free(buf);
	close(fd);
	return CLI_EXIT_USAGE;
}

/* Generic human output: "key: value", nested objects indented, arrays of
 * objects one line per element. */
static void print_scalar(const struct json *v)
{
	switch (v->type) {
	case JSON_NULL: fputs("-", stdout); break;
	case JSON_BOOL: fputs(v->boolean ? "yes" : "no", stdout); break;
	case JSON_NUMBER:
		if (v->is_integer)
			printf("%lld", v->integer);
		else
			printf("%g", v->number);
		break;
	case JSON_STRING: fputs(*v->string ? v->string : "\"\"", stdout); break;
	default: break;
	}
}

static void print_inline(const struct json *v)
{
	if (v->type == JSON_OBJECT) {
		for (size_t i = 0; i < v->n; i++) {
			printf("%s%s=", i ? " " : "", v->keys[i]);
			print_inline(&v->items[i]);
		}
	} else if (v->type == JSON_ARRAY) {
		fputs("[", stdout);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				fputs(",", stdout);
			print_inline(&v->items[i]);
		}
		fputs("]", stdout);
	} else {
		print_scalar(v);
	}
}

static void print_human(const struct json *v, int indent)
{
	if (v->type != JSON_OBJECT)
		return;
	for (size_t i = 0; i < v->n; i++) {
		const struct json *x = &v->items[i];
		if (!strcmp(v->keys[i], "ok"))
			continue;
		printf("%*s%s:", indent, "", v->keys[i]);
		if (x->type == JSON_OBJECT) {
			putchar('\n');
			print_human(x, indent + 2);
		} else if (x->type == JSON_ARRAY) {
			printf(" (%zu)\n", x->n);
			for (size_t k = 0; k < x->n; k++) {
				printf("%*s- ", indent + 2, "");
				print_inline(&x->items[k]);
				putchar('\n');
			}
		} else {
			putchar(' ');
			print_scalar(x);
			putchar('\n');
		}
	}
}

static void print_time(long long t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fputs(buf, stdout);
}

/* `show rules [tenant NAME] [rule ID]`: the daemon sends every rule, the
 * filters apply here. */
static int rule_wanted(const struct json *r, int argc, char **argv)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *v = json_get_str(r, argv[i][0] == 't' ? "tenant" : "id");
		if (!v || strcmp(v, argv[i + 1]))
			return 0;
	}
	return 1;
}

/* Packets, bytes, last hit, and since when the counters count (a commit
 * that did not send a rule again keeps its counters; "-": not known). */
static void print_hit_cells(const struct json *r, int pw, int bw)
{
	long long p = 0, b = 0, t = 0;

	json_get_int(r, "packets", &p);
	json_get_int(r, "bytes", &b);
	printf(" %*lld %*lld  ", pw, p, bw, b);
	if (!json_get_int(r, "last_hit", &t))
		print_time(t);
	else
		fputs("never              ", stdout);
	fputs("  ", stdout);
	if (!json_get_int(r, "counters_since", &t) && t > 0)
		print_time(t);
	else
		fputs("-", stdout);
	putchar('\n');
}

/* An id in at most w columns: a longer one loses its left part to "..."
 * so that the end (FILE:LINE:HASH, the part that says which rule) stays. */
static void print_fitted(const char *s, int w)
{
	int n = (int)strlen(s);

	if (w <= 0 || n <= w || w < 8)
		fputs(s, stdout);
	else
		printf("...%s", s + n - (w - 3));
}

struct rule_widths {
	int id, tenant, packets, bytes;
	int split; /* the id on a line of its own, the cells under it */
	int width; /* of the terminal, 0: no limit */
};

/* The widths of the rows shown (the filters of `show rules` applied). */
static void measure_rows(const struct json *rows, int argc, char **argv, struct rule_widths *w)
{
	char num[32];

	for (size_t i = 0; rows && i < rows->n; i++) {
		const struct json *r = &rows->items[i];
		const char *id = json_get_str(r, "id"), *t = json_get_str(r, "tenant");
		long long v = 0;
		if (!rule_wanted(r, argc, argv))
			continue;
		if (id && (int)strlen(id) > w->id)
			w->id = (int)strlen(id);
		if (t && (int)strlen(t) > w->tenant)
			w->tenant = (int)strlen(t);
		if (!json_get_int(r, "packets", &v) &&
		    snprintf(num, sizeof(num), "%lld", v) > w->packets)
			w->packets = (int)strlen(num);
		if (!json_get_int(r, "bytes", &v) &&
		    snprintf(num, sizeof(num), "%lld", v) > w->bytes)
			w->bytes = (int)strlen(num);
	}
}

static void print_rule_row(const struct json *r, const char *action, const struct rule_widths *w)
{
	const char *id = json_get_str(r, "id"), *tenant = json_get_str(r, "tenant"),
		   *text = json_get_str(r, "text");

	if (!id)
		id = "?";
	if (w->split) {
		print_fitted(id, w->width);
		printf("\n  %-*s %-7s", w->tenant, tenant && *tenant ? tenant : "-",
		       action ? action : "?");
	} else {
		printf("%-*s %-*s %-7s", w->id, id, w->tenant, tenant && *tenant ? tenant : "-",
		       action ? action : "?");
	}
	print_hit_cells(r, w->packets, w->bytes);
	if (text && *text)
		printf("    %s\n", text);
}

/* One line per rule, the rule's text under it; then the drops no rule
 * names (defaults, block list, invalid state, anti-spoofing, inter-tenant;
 * the id says which), with their tenant (a tenant's default, a segment's
 * anti-spoofing) or "-". Columns as wide as their longest cell; when the
 * row does not fit the terminal, the id goes on a line of its own (its
 * left part cut to "..." if even that is too long) and the cells under it. */
static void print_rules(const struct json *reply, int argc, char **argv)
{
	const struct json *rules = json_get(reply, "rules"),
			  *implicit = json_get(reply, "implicit");
	struct rule_widths w = {
		.id = 4, .tenant = 6, .packets = 7, .bytes = 5, .width = cli_table_width()
	};
	int rest;

	measure_rows(rules, argc, argv, &w);
	measure_rows(implicit, argc, argv, &w);
	/* " TENANT ACTION PACKETS BYTES  LAST HIT  COUNTING SINCE" */
	rest = 1 + w.tenant + 1 + 7 + 1 + w.packets + 1 + w.bytes + 2 + 19 + 2 + 19;
	w.split = w.width > 0 && w.id + rest > w.width;
	if (w.split)
		printf("RULE\n  %-*s", w.tenant, "TENANT");
	else
		printf("%-*s %-*s", w.id, "RULE", w.tenant, "TENANT");
	printf(" %-7s %*s %*s  %-19s  %s\n", "ACTION", w.packets, "PACKETS", w.bytes, "BYTES",
	       "LAST HIT", "COUNTING SINCE");
	for (size_t i = 0; rules && i < rules->n; i++)
		if (rule_wanted(&rules->items[i], argc, argv))
			print_rule_row(&rules->items[i], json_get_str(&rules->items[i], "action"),
				       &w);
	for (size_t i = 0; implicit && i < implicit->n; i++)
		if (rule_wanted(&implicit->items[i], argc, argv)) /* `tenant T`: T's rows only */
			print_rule_row(&implicit->items[i], "drop", &w);
}

/* Like `wg show`: one block per VPN, one per peer. */
static void print_vpn(const struct json *reply, const char *ifname)
{
	const struct json *vpns = json_get(reply, "vpns");

	if (!vpns || !vpns->n)
		puts("no vpn in the running policy");
	for (size_t i = 0; vpns && i < vpns->n; i++) {
		const struct json *v = &vpns->items[i], *peers = json_get(v, "peers");
		long long port = 0;
		if (ifname && strcmp(ifname, json_get_str(v, "ifname")))
			continue;
		json_get_int(v, "listen_port", &port);
		printf("vpn %s: %s", json_get_str(v, "ifname"),
		       json_get_str(v, "error") ? "DOWN" : "up");
		if (json_get_str(v, "error"))
			printf(" (%s)", json_get_str(v, "error"));
		if (json_get_str(v, "public_key"))
			printf(", public key %s, port %lld", json_get_str(v, "public_key"), port);
		putchar('\n');
		for (size_t j = 0; peers && j < peers->n; j++) {
			const struct json *p = &peers->items[j], *ips = json_get(p, "allowed_ips");
			long long hs = 0, age = 0, rx = 0, tx = 0;
			json_get_int(p, "last_handshake", &hs);
			json_get_int(p, "rx_bytes", &rx);
			json_get_int(p, "tx_bytes", &tx);
			printf("  peer %s\n    endpoint: %s\n    allowed ips:",
			       json_get_str(p, "public_key"),
			       json_get_str(p, "endpoint") ? json_get_str(p, "endpoint")
							   : "(none)");
			for (size_t k = 0; ips && k < ips->n; k++)
				printf("%s %s", k ? "," : "", ips->items[k].string);
			fputs("\n    latest handshake: ", stdout);
			if (hs && !json_get_int(p, "key_age_seconds", &age)) {
				print_time(hs);
				printf(" (keys %lld s old)", age);
			} else {
				fputs("never", stdout);
			}
			printf("\n    transfer: %lld B received, %lld B sent\n", rx, tx);
		}
	}
}

/* `show interfaces [IFNAME]`: the configured interfaces (status). */
static void print_interfaces(const struct json *reply, const char *only)
{
	const struct json *ifs = json_get(reply, "interfaces");

	printf("%-16s %-10s %s\n", "INTERFACE", "ROLE", "PRESENT");
	for (size_t i = 0; ifs && i < ifs->n; i++) {
		const struct json *it = &ifs->items[i], *present = json_get(it, "present");
		const char *name = json_get_str(it, "name");
		if (only && (!name || strcmp(name, only)))
			continue;
		printf("%-16s %-10s %s\n", name ? name : "?",
		       json_get_str(it, "role") ? json_get_str(it, "role") : "-",
		       present && present->type == JSON_BOOL ? (present->boolean ? "yes" : "no")
							     : "-");
	}
}

/* `show running [revision N]`: each file of the revision, as committed. */
static void print_source(const struct json *reply)
{
	const struct json *files = json_get(reply, "files");
	long long rev = 0;

	json_get_int(reply, "revision", &rev);
	for (size_t i = 0; files && i < files->n; i++) {
		const char *text = json_get_str(&files->items[i], "text");
		printf("# revision %lld: %s\n", rev, json_get_str(&files->items[i], "path"));
		fputs(text ? text : "", stdout);
		if (text && *text && text[strlen(text) - 1] != '\n')
			putchar('\n');
	}
}

static void print_history(const struct json *reply)
{
	const struct json *revs = json_get(reply, "revisions");
	long long running = 0;
	int width = cli_table_width();

	json_get_int(reply, "running", &running);
	printf("%-5s %-19s %6s  %-16s %s\n", "REV", "TIME", "UID", "HASH", "SOURCE / COMMENT");
	for (size_t i = 0; revs && i < revs->n; i++) {
		const struct json *r = &revs->items[i];
		long long id = 0, t = 0, uid = 0;
		const char *rev = json_get_str(r, "source_rev");
		json_get_int(r, "revision", &id);
		json_get_int(r, "time", &t);
		json_get_int(r, "uid", &uid);
		printf("%-4lld%s ", id, id == running ? "*" : " ");
		print_time(t);
		const struct json *reverted = json_get(r, "reverted");
		const char *src = json_get_str(r, "source"), *comment = json_get_str(r, "comment");
		const char *rv = reverted && reverted->type == JSON_BOOL && reverted->boolean
				     ? "  [reverted: not confirmed]"
				     : "";
		/* the source loses its left part when the line would not fit */
		int room = width - 51 - (rev && *rev ? 2 + (int)strnlen(rev, 12) : 0) - 2 -
			   (comment ? (int)strlen(comment) : 0) - (int)strlen(rv);
		printf(" %6lld  %-16s ", uid,
		       json_get_str(r, "hash") ? json_get_str(r, "hash") : "-");
		print_fitted(src ? src : "-", width > 0 ? (room < 16 ? 16 : room) : 0);
		printf("%s%.12s  %s%s\n", rev && *rev ? " @" : "", rev ? rev : "",
		       comment ? comment : "", rv);
	}
}

/* Where an item is (FILE:LINE); a label or a VPN name first, with the
 * place in parentheses. An id that is only FILE:LINE:HASH is not shown:
 * the text says which rule it is. */
static void print_id(const struct json *it)
{
	const char *id = json_get_str(it, "id"), *loc = json_get_str(it, "location");

	if (id && loc && !strncmp(id, loc, strlen(loc)) && id[strlen(loc)] == ':')
		fputs(loc, stdout);
	else if (id && loc && *loc)
		printf("%s (%s)", id, loc);
	else
		fputs(id ? id : loc ? loc : "?", stdout);
}

/* One compared item: its id, then its text (the rule as written). */
static void print_item(char mark, const struct json *it)
{
	const char *text = json_get_str(it, "text");

	printf("%c %s ", mark, json_get_str(it, "kind"));
	print_id(it);
	if (text && *text)
		printf("\n    %s", text);
	putchar('\n');
}

void cli_client_print_compare(const struct json *reply)
{
	const struct json *a = json_get(reply, "added"), *r = json_get(reply, "removed");
	const struct json *c = json_get(reply, "changed"), *m = json_get(reply, "moved");
	long long same = 0;

	for (size_t i = 0; a && i < a->n; i++)
		print_item('+', &a->items[i]);
	for (size_t i = 0; r && i < r->n; i++)
		print_item('-', &r->items[i]);
	for (size_t i = 0; c && i < c->n; i++) {
		const struct json *from = json_get(&c->items[i], "from"),
				  *to = json_get(&c->items[i], "to");
		const char *ft = json_get_str(from, "text"), *tt = json_get_str(to, "text");
		printf("~ %s ", json_get_str(to, "kind"));
		print_id(from);
		fputs(" -> ", stdout);
		print_id(to);
		putchar('\n');
		const struct json *redef = json_get(&c->items[i], "redefined");
		if (redef && redef->type == JSON_OBJECT) {
			/* the same text, another meaning: a definition it uses changed */
			const struct json *parts = json_get(redef, "parts");
			const char *uses = json_get_str(redef, "uses");
			if (tt && *tt)
				printf("    = %s\n", tt);
			fputs("    same text, but what it matches changed (", stdout);
			for (size_t k = 0; parts && parts->type == JSON_ARRAY && k < parts->n; k++)
				printf("%s%s", k ? ", " : "",
				       parts->items[k].type == JSON_STRING ? parts->items[k].string
									   : "?");
			printf("): a definition it uses changed%s%s\n", uses && *uses ? ": " : "",
			       uses && *uses ? uses : "");
		} else {
			if (ft && *ft)
				printf("    - %s\n", ft);
			if (tt && *tt)
				printf("    + %s\n", tt);
		}
		const struct json *moved = json_get(&c->items[i], "moved");
		if (moved && moved->type == JSON_BOOL && moved->boolean)
			puts("    and moved: its place in the order changed");
		const struct json *fields = json_get(&c->items[i], "fields");
		for (size_t k = 0; fields && fields->type == JSON_ARRAY && k < fields->n; k++)
			printf("%s%s%s", k ? ", " : "    changed: ",
			       fields->items[k].type == JSON_STRING ? fields->items[k].string : "?",
			       k + 1 == fields->n ? "\n" : "");
	}
	/* Moved: the same text in another place among the rules; the order
	 * decides (first match). */
	for (size_t i = 0; m && i < m->n; i++) {
		const struct json *from = json_get(&m->items[i], "from"),
				  *to = json_get(&m->items[i], "to");
		const char *tt = json_get_str(to, "text");
		printf("> %s ", json_get_str(to, "kind"));
		print_id(from);
		fputs(" moved to ", stdout);
		print_id(to);
		putchar('\n');
		if (tt && *tt)
			printf("    %s\n", tt);
	}
	json_get_int(reply, "unchanged", &same);
	printf("%zu added, %zu removed, %zu changed, ", a ? a->n : 0, r ? r->n : 0, c ? c->n : 0);
	if (m && m->n)
		printf("%zu moved, ", m->n);
	printf("%lld unchanged\n", same);
}

/* `load`, `rollback`: the new candidate on one line, then how it compares
 * with the running policy. */
static void print_candidate(const struct json *reply)
{
	const struct json *c = json_get(reply, "candidate"), *cmp = json_get(reply, "compare");
	long long rules = 0;
	const char *rev = c ? json_get_str(c, "source_rev") : NULL;

	if (!c || c->type != JSON_OBJECT) {
		print_human(reply, 0);
		return;
	}
	if (json_get_str(reply, "warning"))
		fprintf(stderr, "hvgate: warning: %s\n", json_get_str(reply, "warning"));
	json_get_int(c, "rules", &rules);
	printf("candidate: %s%s%.12s (%lld rules, hash %s)\n", json_get_str(c, "source"),
	       rev && *rev ? " @" : "", rev ? rev : "", rules, json_get_str(c, "hash"));
	if (cmp && cmp->type == JSON_OBJECT)
		cli_client_print_compare(cmp);
}

/* Before `commit`: one line saying what is about to be committed. 0, or
 * the exit status when hvgated cannot be reached (said on stderr). */
static int commit_preview(const struct cli_client_opts *o)
{
	static const char *const parts[] = { "added", "removed", "changed", "moved" };
	struct json *st = NULL, *cmp = NULL;
	const struct json *cand;
	long long rules = 0;
	size_t n[4] = { 0, 0, 0, 0 };
	char *raw = NULL;
	int rc = cli_client_call(o, "{\"cmd\":\"status\"}", &st, &raw);

	free(raw);
	if (rc)
		return rc;
	cand = json_get(st, "candidate");
	/* The daemon keeps the counts of the candidate's `load`; an older one
	 * (or a candidate from before a change of the running policy) is
	 * compared again. */
	const struct json *known = json_get(st, "candidate_changes");
	bool counted = known && known->type == JSON_OBJECT;
	if (cand && cand->type == JSON_OBJECT && counted) {
		for (int i = 0; i < 4; i++) {
			long long v = 0;
			json_get_int(known, parts[i], &v);
			n[i] = v > 0 ? (size_t)v : 0;
		}
	} else if (cand && cand->type == JSON_OBJECT &&
		   !cli_client_call(o, "{\"cmd\":\"compare\"}", &cmp, &raw)) {
		free(raw);
		for (int i = 0; i < 4; i++) {
			const struct json *a = json_get(cmp, parts[i]);
			n[i] = a && a->type == JSON_ARRAY ? a->n : 0;
		}
	}
	if (cand && cand->type == JSON_OBJECT && (counted || cmp)) {
		json_get_int(cand, "rules", &rules);
		printf("Committing %s (%lld rules): %zu added, %zu removed, %zu changed",
		       json_get_str(cand, "source"), rules, n[0], n[1], n[2]);
		if (n[3])
			printf(", %zu moved", n[3]);
		putchar('\n');
		fflush(stdout);
	}
	json_free(cmp);
	json_free(st);
	return 0;
}

/* `unlock`: whose lock was broken, if any. */
static void print_unlock(const struct json *reply)
{
	const struct json *b = json_get(reply, "broken"),
			  *alive = b ? json_get(b, "was_alive") : NULL;
	long long uid = 0, pid = 0;

	if (!b || b->type != JSON_OBJECT) {
		puts("The candidate is not locked.");
		return;
	}
	json_get_int(b, "uid", &uid);
	json_get_int(b, "pid", &pid);
	printf("Broke the configure lock of uid %lld (pid %lld, %s); the candidate is kept: "
	       "'compare' shows it, 'load' or 'rollback' replaces it.\n",
	       uid, pid,
	       alive && alive->type == JSON_BOOL && alive->boolean ? "still running" : "gone");
}

/* Builds the request for argv; returns 0, or prints usage and returns -1. */
static int build_request(int argc, char **argv, struct json_buf *b)
{
	const char *verb = argv[0];

	json_obj_begin(b);
	if (!strcmp(verb, "compare") && argc == 3 && !strcmp(argv[1], "revision")) {
		json_kv_str(b, "cmd", verb);
		json_kv_int(b, "revision", atoll(argv[2]));
	} else if (!strcmp(verb, "show") && argc >= 2 && !strcmp(argv[1], "interfaces")) {
		/* show interfaces [IFNAME]: from status, filtered when printed */
		if (argc > 3)
			return -1;
		json_kv_str(b, "cmd", "status");
	} else if (!strcmp(verb, "show") && argc >= 2 && !strcmp(argv[1], "running")) {
		/* show running [revision N]: the source of a revision */
		json_kv_str(b, "cmd", "show");
		json_kv_str(b, "what", "source");
		if (argc == 4 && !strcmp(argv[2], "revision"))
			json_kv_int(b, "revision", atoll(argv[3]));
		else if (argc != 2)
			return -1;
	} else if (!strcmp(verb, "status") || !strcmp(verb, "compare") ||
		   !strcmp(verb, "confirm") || !strcmp(verb, "history") ||
		   !strcmp(verb, "reload")) {
		if (argc != 1)
			return -1;
		json_kv_str(b, "cmd", verb);
	} else if (!strcmp(verb, "show")) {
		const char *what = argc > 1 ? argv[1] : "rules";
		json_kv_str(b, "cmd", strcmp(what, "blocked") ? "show" : "blocked");
		json_kv_str(b, "what", what);
		if (!strcmp(what, "vpn") && argc <= 3)
			goto done; /* show vpn [IFNAME]: filtered when printed */
		for (int i = 2; i + 1 < argc; i += 2) {
			if (!strcmp(what, "rules") &&
			    (!strcmp(argv[i], "tenant") || !strcmp(argv[i], "rule")))
				continue; /* filters of the printed table */
			if (!strcmp(argv[i], "tenant") || !strcmp(argv[i], "addr"))
				json_kv_str(b, argv[i], argv[i + 1]);
			else if (!strcmp(argv[i], "lines"))
				json_kv_int(b, "lines", atoll(argv[i + 1]));
			else
				return -1;
		}
		if (argc > 2 && argc % 2)
			return -1;
	} else if (!strcmp(verb, "load")) {
		json_kv_str(b, "cmd", "load");
		if (argc == 2) {
			char *abs = realpath(argv[1], NULL);
			if (!abs) {
				fprintf(stderr, "hvgate: %s: %s\n", argv[1], strerror(errno));
				return -2;
			}
			json_kv_str(b, "path", abs);
			free(abs);
		} else if (argc >= 3 && !strcmp(argv[1], "git")) {
			json_kv_str(b, "git", argv[2]);
			if (argc == 5 && !strcmp(argv[3], "repo"))
				json_kv_str(b, "repo", argv[4]);
			else if (argc != 3)
				return -1;
		} else if (argc == 3 && !strcmp(argv[1], "revision")) {
			json_kv_int(b, "revision", atoll(argv[2]));
		} else if (argc != 1) {
			return -1;
		}
	} else if (!strcmp(verb, "commit")) {
		json_kv_str(b, "cmd", "commit");
		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "confirmed") && i + 1 < argc) {
				uint64_t seconds;
				if (duration_parse(argv[++i], TXN_CONFIRM_MAX_SECONDS, &seconds)) {
					fprintf(
					    stderr,
					    "hvgate: commit confirmed '%s': a duration of 1 s to 1 day "
					    "is needed: 90 (seconds), 90s, 10m, 1h\n",
					    argv[i]);
					return -2;
				}
				json_kv_uint(b, "confirmed", seconds);
			} else if (!strcmp(argv[i], "force")) {
				json_kv_bool(b, "force", true);
			} else if (!strcmp(argv[i], "comment") && i + 1 < argc) {
				char text[1024] = "";
				for (i++; i < argc; i++)
					snprintf(text + strlen(text), sizeof(text) - strlen(text),
						 "%s%s", *text ? " " : "", argv[i]);
				json_kv_str(b, "comment", text);
			} else {
				return -1;
			}
		}
	} else if (!strcmp(verb, "unlock")) {
		/* unlock [force]: break the configure lock of another session */
		if (argc > 2 || (argc == 2 && strcmp(argv[1], "force")))
			return -1;
		json_kv_str(b, "cmd", "unlock");
		if (argc == 2)
			json_kv_bool(b, "force", true);
	} else if (!strcmp(verb, "rollback")) {
		if (argc != 2)
			return -1;
		json_kv_str(b, "cmd", "rollback");
		json_kv_int(b, "revision", atoll(argv[1]));
	} else if (!strcmp(verb, "block") || !strcmp(verb, "unblock")) {
		/* ADDR[/LEN] [tenant NAME | zone NAME] [for DURATION] (for: block only) */
		const char *tenant = NULL, *zone = NULL, *dur = NULL;
		if (argc < 2 || argc % 2)
			return -1;
		for (int i = 2; i < argc; i += 2) {
			if (!strcmp(argv[i], "tenant") && !tenant)
				tenant = argv[i + 1];
			else if (!strcmp(argv[i], "zone") && !zone)
				zone = argv[i + 1];
			else if (!strcmp(argv[i], "for") && !dur && !strcmp(verb, "block"))
				dur = argv[i + 1];
			else
				return -1;
		}
		json_kv_str(b, "cmd", verb);
		json_kv_str(b, "addr", argv[1]);
		if (tenant)
			json_kv_str(b, "tenant", tenant);
		if (zone)
			json_kv_str(b, "zone", zone);
		if (dur) {
			uint64_t seconds;
			if (duration_parse(dur, TXN_BLOCK_MAX_SECONDS, &seconds)) {
				fprintf(
				    stderr,
				    "hvgate: block for '%s': a duration of 1 s to a year is needed: "
				    "90 (seconds), 90s, 10m, 2h, 1d\n",
				    dur);
				return -2;
			}
			json_kv_str(b, "for", dur);
		}
	} else {
		return -1;
	}
done:
	json_obj_end(b);
	return 0;
}

static void usage(FILE *out, const char *verb)
{
	fprintf(out,
		"usage: hvgate %s [--json] [--socket PATH]\n"
		"  status | history | compare [revision N] | confirm | reload\n"
		"  show running [revision N]   (the source of a revision)\n"
		"  show interfaces [IFNAME]    (the configured interfaces)\n"
		"  show rules [tenant NAME] [rule ID] | tenants | blocked | vpn [IFNAME]\n"
		"  show nat|conntrack [tenant NAME] [addr ADDR] | log [lines N]\n"
		"  load [PATH | git REF [repo PATH] | revision N]\n"
		"  commit [confirmed DURATION] [force] [comment TEXT...]\n"
		"  rollback N\n"
		"  unlock [force]              (break a configure lock; force: of a live session)\n"
		"  block ADDR[/LEN] [tenant NAME | zone NAME] [for DURATION]\n"
		"  (DURATION: 90 = 90s, 10m, 2h, 1d)\n"
		"  unblock ADDR[/LEN] [tenant NAME | zone NAME]\n",
		verb);
}

int cli_daemon_client(int argc, char **argv)
{
	struct cli_client_opts o;
	struct json_buf req;
	struct json *reply;
	const struct json *ok;
	char *raw;
	int rc;

	if (cli_wants_help(argc, argv)) {
		usage(stdout, argv[0]);
		return CLI_EXIT_OK;
	}
	if (cli_client_opts(&argc, argv, &o))
		return CLI_EXIT_USAGE;
	json_buf_init(&req);
	rc = build_request(argc, argv, &req);
	if (rc || req.oom) {
		if (rc == -1)
			usage(stderr, argv[0]);
		json_buf_free(&req);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[0], "commit") && !o.json && (rc = commit_preview(&o))) {
		json_buf_free(&req);
		return rc;
	}
	rc = cli_client_call(&o, req.s, &reply, &raw);
	json_buf_free(&req);
	if (rc)
		return rc;
	ok = json_get(reply, "ok");
	if (o.json) {
		puts(raw);
	} else if (!ok || ok->type != JSON_BOOL || !ok->boolean) {
		fprintf(stderr, "hvgate: %s\n",
			json_get_str(reply, "error") ? json_get_str(reply, "error") : raw);
	} else if (!strcmp(argv[0], "show") && (argc == 1 || !strcmp(argv[1], "rules"))) {
		print_rules(reply, argc, argv);
	} else if (!strcmp(argv[0], "show") && argc <= 3 && !strcmp(argv[1], "vpn")) {
		print_vpn(reply, argc == 3 ? argv[2] : NULL);
	} else if (!strcmp(argv[0], "history")) {
		print_history(reply);
	} else if (!strcmp(argv[0], "show") && argc >= 2 && !strcmp(argv[1], "running")) {
		print_source(reply);
	} else if (!strcmp(argv[0], "show") && argc >= 2 && !strcmp(argv[1], "interfaces")) {
		print_interfaces(reply, argc == 3 ? argv[2] : NULL);
	} else if (!strcmp(argv[0], "compare")) {
		cli_client_print_compare(reply);
	} else if (!strcmp(argv[0], "unlock")) {
		print_unlock(reply);
	} else if (!strcmp(argv[0], "load") || !strcmp(argv[0], "rollback")) {
		print_candidate(reply);
	} else {
		print_human(reply, 0);
	}
	rc = ok && ok->type == JSON_BOOL && ok->boolean ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	json_free(reply);
	free(raw);
	return rc;
}
