/* The shell's grammar table and the walk that matches words against it
 * (prefixes, errors, what may come next). See cli/grammar.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli/grammar.h"

#define KW(w, h, nx, fl)                                                                           \
	{                                                                                          \
		w, CLI_KW, h, nx, fl, 0                                                            \
	}
#define ARG(w, k, h, nx, fl)                                                                       \
	{                                                                                          \
		w, k, h, nx, fl, 0                                                                 \
	}
#define KWM(w, h, nx, fl, m)                                                                       \
	{                                                                                          \
		w, CLI_KW, h, nx, fl, m                                                            \
	}
#define LIST_END                                                                                   \
	{                                                                                          \
		NULL, CLI_KW, NULL, NULL, 0, 0                                                     \
	}

/* Option lists loop back on themselves (`show rules tenant a rule b`), so
 * they are declared with their size before the nodes that point at them. */
static const struct cli_node show_rules_opts[3];
static const struct cli_node show_ct_opts[3];
static const struct cli_node commit_opts[4];
static const struct cli_node block_opts[4];

static const struct cli_node tenant_then_rules[] = {
	ARG("TENANT", CLI_TENANT, "a tenant of the running policy", show_rules_opts, CLI_END),
	LIST_END
};
static const struct cli_node rule_then_rules[] = {
	ARG("RULE", CLI_RULE, "a rule id of the running policy", show_rules_opts, CLI_END), LIST_END
};
static const struct cli_node show_rules_opts[3] = {
	KW("tenant", "only the rules of this tenant", tenant_then_rules, 0),
	KW("rule", "only this rule", rule_then_rules, 0),
	LIST_END,
};

static const struct cli_node tenant_then_ct[] = {
	ARG("TENANT", CLI_TENANT, "a tenant of the running policy", show_ct_opts, CLI_END), LIST_END
};
static const struct cli_node addr_then_ct[] = {
	ARG("ADDR", CLI_ADDR, "an address on either side of the flow", show_ct_opts, CLI_END),
	LIST_END
};
static const struct cli_node show_ct_opts[3] = {
	KW("tenant", "only this tenant's flows", tenant_then_ct, 0),
	KW("addr", "only flows with this address", addr_then_ct, 0),
	LIST_END,
};

static const struct cli_node log_lines[] = {
	ARG("N", CLI_NUMBER, "how many events (at most 200)", NULL, CLI_END), LIST_END
};
static const struct cli_node show_log_opts[] = { KW("lines", "the newest N events", log_lines, 0),
						 LIST_END };
static const struct cli_node show_vpn_opts[] = {
	ARG("IFNAME", CLI_VPN_IF, "only this VPN interface", NULL, CLI_END), LIST_END
};

static const struct cli_node revision_end[2];
static const struct cli_node show_running_opts[] = {
	KW("revision", "the source of stored revision N", revision_end, 0), LIST_END
};
static const struct cli_node show_iface_opts[] = {
	ARG("IFNAME", CLI_IFACE, "only this interface", NULL, CLI_END),
	LIST_END,
};
static const struct cli_node show_what[] = {
	KW("rules", "rules with their counters and last hit", show_rules_opts,
	   CLI_END | CLI_PREFER),
	KW("tenants", "tenants, their segments and traffic", NULL, CLI_END),
	KW("nat", "NAT rules and current translations", show_ct_opts, CLI_END),
	KW("conntrack", "tracked connections", show_ct_opts, CLI_END),
	KW("log", "the newest events of the event log", show_log_opts, CLI_END),
	KW("blocked", "the dynamic block list", NULL, CLI_END),
	KW("vpn", "VPN interfaces and peers, like wg show", show_vpn_opts, CLI_END),
	KW("running", "the source of the running revision", show_running_opts, CLI_END),
	KW("interfaces", "the configured interfaces, their role and presence", show_iface_opts,
	   CLI_END),
	LIST_END,
};

static const struct cli_node load_repo_path[] = {
	ARG("PATH", CLI_PATH, "the git repository", NULL, CLI_END), LIST_END
};
static const struct cli_node load_git_opts[] = {
	KW("repo", "another repository than the configured one", load_repo_path, 0), LIST_END
};
static const struct cli_node load_git_ref[] = { ARG("REF", CLI_WORD,
						    "a branch, tag or commit of the git repository",
						    load_git_opts, CLI_END),
						LIST_END };
static const struct cli_node revision_end[2] = {
	ARG("REVISION", CLI_REVISION, "a stored revision", NULL, CLI_END), LIST_END
};
static const struct cli_node load_what[] = {
	KW("git", "a ref of the configured git repository", load_git_ref, 0),
	KW("revision", "a stored revision", revision_end, 0),
	ARG("PATH", CLI_PATH, "a policy file or a directory of *.hvp", NULL, CLI_END),
	LIST_END,
};

static const struct cli_node commit_duration[] = {
	ARG("DURATION", CLI_DURATION, "time to confirm: 90 (seconds), 90s, 10m, 1h", commit_opts,
	    CLI_END),
	LIST_END
};
static const struct cli_node commit_text[] = {
	ARG("TEXT", CLI_TEXT, "the comment, to the end of the line", NULL, CLI_END), LIST_END
};
static const struct cli_node commit_opts[4] = {
	KW("confirmed", "revert unless confirmed within DURATION", commit_duration, 0),
	KW("force", "apply even if the hvgate table changed outside hvgated", commit_opts, CLI_END),
	KW("comment", "a comment stored with the revision", commit_text, 0),
	LIST_END,
};

static const struct cli_node diff_to[] = {
	ARG("REV2", CLI_REVISION, "a revision number or git:REF", NULL, CLI_END), LIST_END
};
static const struct cli_node diff_from[] = {
	ARG("REV1", CLI_REVISION, "a revision number or git:REF", diff_to, 0), LIST_END
};

static const struct cli_node block_tenant[] = {
	ARG("TENANT", CLI_TENANT, "block only inside this tenant", block_opts, CLI_END), LIST_END
};
static const struct cli_node block_zone[] = {
	ARG("ZONE", CLI_ZONE, "drop ADDR into this zone or segment only", block_opts, CLI_END),
	LIST_END
};
static const struct cli_node block_for[] = {
	ARG("DURATION", CLI_DURATION, "90 (seconds), 90s, 10m, 2h, 1d", block_opts, CLI_END),
	LIST_END
};
static const struct cli_node block_opts[4] = {
	KW("tenant", "scope the entry to a tenant", block_tenant, 0),
	KW("zone", "scope the entry to a zone or segment (tenant.segment)", block_zone, 0),
	KW("for", "expire the entry after DURATION", block_for, 0),
	LIST_END,
};
static const struct cli_node block_addr[] = {
	ARG("ADDR", CLI_ADDR, "ADDR or ADDR/LEN", block_opts, CLI_END), LIST_END
};
static const struct cli_node unblock_tenant[] = {
	ARG("TENANT", CLI_TENANT, "a tenant", NULL, CLI_END), LIST_END
};
static const struct cli_node unblock_zone[] = {
	ARG("ZONE", CLI_ZONE, "a zone or segment", NULL, CLI_END), LIST_END
};
static const struct cli_node unblock_opts[] = {
	KW("tenant", "the tenant the entry was scoped to", unblock_tenant, 0),
	KW("zone", "the zone the entry was scoped to", unblock_zone, 0), LIST_END
};
static const struct cli_node unblock_addr[] = {
	ARG("ADDR", CLI_ADDR, "the blocked ADDR or ADDR/LEN", unblock_opts, CLI_END), LIST_END
};

/* Offline verbs: files and their options, any number. */
static const struct cli_node file_args[2] = {
	ARG("ARG", CLI_PATH, "a file, or an option of the verb (VERB --help)", file_args, CLI_END),
	LIST_END
};

/* explain: a policy file then the packet, or (without a policy: hvgated's
 * running revision) the packet itself, whose first word is its protocol.
 * The protocols are matched only whole, so a file named "t" stays a file. */
static const struct cli_node packet_words[] = {
	ARG("PACKET", CLI_TEXT, "the rest of the packet: SRC -> DST in IFACE ... (explain --help)",
	    NULL, CLI_END),
	LIST_END
};
static const struct cli_node explain_args[] = {
	KW("tcp", "a TCP packet, against the running policy", packet_words, CLI_EXACT),
	KW("udp", "a UDP packet, against the running policy", packet_words, CLI_EXACT),
	KW("icmp", "an ICMP packet, against the running policy", packet_words, CLI_EXACT),
	KW("icmpv6", "an ICMPv6 packet, against the running policy", packet_words, CLI_EXACT),
	KW("sctp", "an SCTP packet, against the running policy", packet_words, CLI_EXACT),
	ARG("POLICY", CLI_PATH, "a policy file or directory, then the packet", file_args, CLI_END),
	LIST_END
};

static const struct cli_node unlock_opts[] = {
	KW("force", "also the lock of a session that is still running", NULL, CLI_END), LIST_END
};

static const struct cli_node exit_opts[] = {
	KWM("discard", "drop the candidate's uncommitted changes and leave", NULL, CLI_END,
	    CLI_MODE_CONF),
	LIST_END
};

const struct cli_node cli_grammar_root[] = {
	KW("status", "the daemon's state: running revision, candidate, pending confirm", NULL,
	   CLI_END),
	KWM("show", "running state: rules, tenants, nat, conntrack, log, blocked, vpn", show_what,
	    0, CLI_MODE_OP),
	KWM("show", "the candidate (| compare: against the running policy), or running state",
	    show_what, CLI_END, CLI_MODE_CONF),
	KWM("configure", "configure mode: lock the candidate for this session", NULL,
	    CLI_END | CLI_PREFER, CLI_MODE_OP),
	KWM("unlock", "break the configure lock of a session that is gone", unlock_opts, CLI_END,
	    CLI_MODE_OP),
	KWM("edit", "edit the candidate's files in $EDITOR, checked on save", NULL, CLI_END,
	    CLI_MODE_CONF),
	KWM("discard", "drop the candidate's changes (back to the running revision)", NULL, CLI_END,
	    CLI_MODE_CONF),
	KW("history", "the committed revisions", NULL, CLI_END),
	KW("compare", "the candidate against the running policy (or revision N), rule by rule",
	   show_running_opts, CLI_END),
	KW("diff", "what changed between two revisions, rule by rule", diff_from, 0),
	KW("load", "make a policy the candidate (file, directory, git ref, revision)", load_what,
	   CLI_END),
	KW("commit", "apply the candidate", commit_opts, CLI_END),
	KW("confirm", "keep a commit made with 'commit confirmed'", NULL, CLI_END),
	KW("rollback", "make a stored revision the candidate", revision_end, 0),
	KW("reload", "re-read the configuration and the configured policy", NULL, CLI_END),
	KW("block", "add an address to the dynamic block list", block_addr, 0),
	KW("unblock", "remove an address from the dynamic block list", unblock_addr, 0),
	KWM("check", "validate a policy file or directory", file_args, 0, CLI_MODE_OP),
	KWM("check", "check the candidate (or a policy file or directory)", file_args, CLI_END,
	    CLI_MODE_CONF),
	KW("compile", "print what a policy would apply (--emit nft|summary)", file_args, 0),
	KW("explain", "which rule decides a packet, and why", explain_args, 0),
	KW("replay", "evaluate the packets of a capture against a policy", file_args, 0),
	KW("help", "the commands of this shell, and its keys", NULL, CLI_END),
	KWM("exit", "leave the shell", NULL, CLI_END, CLI_MODE_OP),
	KWM("exit", "leave configure mode (refused with uncommitted changes)", exit_opts, CLI_END,
	    CLI_MODE_CONF),
	KW("quit", "leave the shell", NULL, CLI_END),
	LIST_END,
};

static const struct cli_node match_regex[] = {
	ARG("REGEX", CLI_REGEX, "an extended regular expression (quote blanks)", NULL, CLI_END),
	LIST_END
};
const struct cli_node cli_grammar_pipe[] = {
	KW("match", "only the lines that match REGEX", match_regex, 0),
	KW("except", "only the lines that do not match REGEX", match_regex, 0),
	KW("count", "the number of lines instead of the lines", NULL, CLI_END),
	KW("json", "the daemon's reply as JSON", NULL, CLI_END),
	KW("no-more", "no pager, even for long output", NULL, CLI_END),
	KWM("compare", "after show: the candidate against the running policy (or revision N)",
	    show_running_opts, CLI_END, CLI_MODE_CONF),
	LIST_END,
};

static int in_mode(const struct cli_node *n, unsigned mode)
{
	return !n->modes || (n->modes & mode);
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Whether `w` can be the value of an argument node; the daemon and the verbs
 * check values fully, this only catches the obvious slip (a word where a
 * number belongs) so the error can say what was expected. */
static int arg_accepts(enum cli_arg kind, const char *w)
{
	size_t len = strlen(w);

	switch (kind) {
	case CLI_NUMBER: return all_digits(w);
	case CLI_REVISION: return all_digits(w) || (!strncmp(w, "git:", 4) && w[4]);
	case CLI_DURATION:
		return len && isdigit((unsigned char)w[0]) &&
		       (all_digits(w) || (strchr("smhd", w[len - 1]) && len > 1 &&
					  w[len - 2] >= '0' && w[len - 2] <= '9'));
	case CLI_ADDR: return len && strspn(w, "0123456789abcdefABCDEF.:/") == len;
	default: return len > 0;
	}
}

/* Appends "a|b|C" (the words of a level) to buf. */
static void expected_words(const struct cli_node *level, unsigned mode, char *buf, size_t size)
{
	size_t used = strlen(buf);

	for (const struct cli_node *c = level; c && c->word; c++) {
		if (!in_mode(c, mode))
			continue;
		int k = snprintf(buf + used, size - used, "%s%s",
				 used && buf[used - 1] != ' ' ? "|" : "", c->word);
		if (k < 0 || (size_t)k >= size - used)
			return;
		used += (size_t)k;
	}
}

/* The words so far, for "after 'show rules'". */
static void words_before(int i, char **words, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = 0;
	for (int k = 0; k < i && used + 1 < size; k++) {
		int w = snprintf(buf + used, size - used, "%s%s", k ? " " : "", words[k]);
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Matches one word in a level: the node, or NULL with the reason in err. */
static const struct cli_node *match_word(const struct cli_node *level, unsigned mode, int i,
					 char **words, char *err, size_t errlen)
{
	const struct cli_node *prefix = NULL, *arg = NULL, *preferred = NULL;
	const char *w = words[i];
	int nprefix = 0;
	char before[256], exp[512] = "";

	for (const struct cli_node *c = level; c && c->word; c++) {
		if (!in_mode(c, mode))
			continue;
		if (c->arg != CLI_KW) {
			if (!arg)
				arg = c;
			continue;
		}
		if (!strcmp(c->word, w))
			return c;
		if (!(c->flags & CLI_EXACT) && !strncmp(c->word, w, strlen(w))) {
			prefix = c;
			nprefix++;
			if (c->flags & CLI_PREFER)
				preferred = c;
		}
	}
	if (nprefix == 1)
		return prefix;
	if (preferred)
		return preferred;
	words_before(i, words, before, sizeof(before));
	if (nprefix > 1) {
		for (const struct cli_node *c = level; c && c->word; c++)
			if (in_mode(c, mode) && c->arg == CLI_KW && !strncmp(c->word, w, strlen(w)))
				expected_words((const struct cli_node[]){ *c, LIST_END }, mode, exp,
					       sizeof(exp));
		snprintf(err, errlen, "'%s' is ambiguous%s%s%s: %s", w, *before ? " after '" : "",
			 before, *before ? "'" : "", exp);
		return NULL;
	}
	if (arg && arg_accepts(arg->arg, w))
		return arg;
	expected_words(level, mode, exp, sizeof(exp));
	if (!*before)
		snprintf(err, errlen, "unknown command '%s' ('help' lists the commands)", w);
	else
		snprintf(err, errlen, "after '%s': expected %s, got '%s'", before, exp, w);
	return NULL;
}

/* Walks n words; returns the level that follows them (NULL: nothing may
 * follow) and the last node matched in *last, or sets err and returns
 * (void *)-1 ... written as a status to keep the types plain. */
static int walk(const struct cli_node *root, unsigned mode, int n, char **words,
		const struct cli_node **level, const struct cli_node **last, char *err,
		size_t errlen)
{
	*level = root;
	*last = NULL;
	for (int i = 0; i < n; i++) {
		if (*last && (*last)->arg == CLI_TEXT)
			continue; /* free text to the end of the line */
		const struct cli_node *m = match_word(*level, mode, i, words, err, errlen);
		if (!m && !*level) {
			char before[256];
			words_before(i, words, before, sizeof(before));
			snprintf(err, errlen, "after '%s': nothing more expected, got '%s'", before,
				 words[i]);
		}
		if (!m)
			return -1;
		if (m->arg == CLI_KW)
			words[i] = (char *)m->word;
		*last = m;
		*level = m->next;
	}
	return 0;
}

int cli_grammar_resolve(const struct cli_node *root, unsigned mode, int n, char **words, char *err,
			size_t errlen)
{
	const struct cli_node *level, *last;
	char before[256], exp[512] = "";

	if (walk(root, mode, n, words, &level, &last, err, errlen))
		return -1;
	if (!n || (last->flags & CLI_END))
		return 0;
	words_before(n, words, before, sizeof(before));
	expected_words(level, mode, exp, sizeof(exp));
	snprintf(err, errlen, "after '%s': expected %s", before, exp);
	return -1;
}

int cli_grammar_next(const struct cli_node *root, unsigned mode, int n, char **words,
		     const char *partial, const struct cli_node **out, int max, int *can_end)
{
	const struct cli_node *level, *last;
	char err[512];
	int k = 0;

	*can_end = 0;
	if (walk(root, mode, n, words, &level, &last, err, sizeof(err)))
		return -1;
	*can_end = n && (last->flags & CLI_END);
	if (last && last->arg == CLI_TEXT) {
		if (max > 0)
			out[k++] = last;
		return k;
	}
	for (const struct cli_node *c = level; c && c->word && k < max; c++) {
		if (!in_mode(c, mode))
			continue;
		if (c->arg == CLI_KW && strncmp(c->word, partial, strlen(partial)))
			continue;
		out[k++] = c;
	}
	return k;
}

size_t cli_common_prefix(const char *const *s, size_t n)
{
	size_t len;

	if (!n)
		return 0;
	len = strlen(s[0]);
	for (size_t i = 1; i < n; i++) {
		size_t k = 0;
		while (k < len && s[i][k] == s[0][k])
			k++;
		len = k;
	}
	return len;
}
