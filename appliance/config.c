/* Reads hvgate.conf with libconfig and validates every setting (config.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/config.h"
#include "appliance/control.h"

/* NFLOG groups are u16 (struct nfulnl_msg_config_cmd, linux/netfilter/nfnetlink_log.h). */
#define CONF_NFLOG_GROUP_MAX 65535
/* Event-rate bounds: above a million lines a second the log is no longer readable. */
#define CONF_LOG_RATE_MAX 1000000
/* Counter sampling: faster than 100 ms costs more netlink dumps than it shows. */
#define CONF_COUNTER_MS_MIN 100
#define CONF_COUNTER_MS_MAX 3600000
/* sun_path is 108 bytes (struct sockaddr_un, sys/un.h). */
#define CONF_SOCKET_PATH_MAX 107
/* Netns names are file names under /var/run/netns (NAME_MAX 255). */
#define CONF_NETNS_MAX 255

struct checker {
	const char *file;
	char *err;
	size_t errsz;
	int rc;
};

static int bad(struct checker *k, const config_setting_t *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(struct checker *k, const config_setting_t *s, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (k->rc)
		return k->rc;
	k->rc = -EINVAL;
	if (s)
		/* The file the setting is in: the main one, or an @include. */
		n = snprintf(k->err, k->errsz, "%s:%u: setting '%s': ",
			     config_setting_source_file(s) ? config_setting_source_file(s)
							   : k->file,
			     config_setting_source_line(s), path);
	else
		n = snprintf(k->err, k->errsz, "%s: setting '%s': ", k->file, path);
	if (n < 0 || (size_t)n >= k->errsz)
		return k->rc;
	va_start(ap, fmt);
	vsnprintf(k->err + n, k->errsz - (size_t)n, fmt, ap);
	va_end(ap);
	return k->rc;
}

enum kind { K_STRING, K_INT, K_BOOL, K_GROUP, K_LIST, K_ANY };

struct key {
	const char *name;
	enum kind kind;
};

static const char *kind_name(enum kind k)
{
	static const char *names[] = {
		"a string",        "an integer",     "a boolean (true/false)",
		"a group { ... }", "a list ( ... )", "anything"
	};
	return names[k];
}

static bool kind_ok(const config_setting_t *s, enum kind k)
{
	int t = config_setting_type(s);

	switch (k) {
	case K_STRING: return t == CONFIG_TYPE_STRING;
	case K_INT: return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case K_BOOL: return t == CONFIG_TYPE_BOOL;
	case K_GROUP: return t == CONFIG_TYPE_GROUP;
	case K_LIST: return t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY;
	case K_ANY: return true;
	}
	return false;
}

static void join(char *out, size_t size, const char *prefix, const char *name)
{
	if (prefix && *prefix)
		snprintf(out, size, "%s.%s", prefix, name);
	else
		snprintf(out, size, "%s", name);
}

/* Every member of group `g` must be one of `keys` and of its kind. With
 * `open`, unknown members are allowed (placeholder sections). */
static int check_keys(struct checker *k, const config_setting_t *g, const char *prefix,
		      const struct key *keys, bool open)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		const struct key *key = NULL;
		char path[256];

		join(path, sizeof(path), prefix, name ? name : "?");
		for (const struct key *x = keys; x->name; x++)
			if (name && !strcmp(x->name, name))
				key = x;
		if (!key) {
			if (open)
				continue;
			return bad(k, m, path, "unknown setting");
		}
		if (!kind_ok(m, key->kind))
			return bad(k, m, path, "must be %s", kind_name(key->kind));
	}
	return 0;
}

static const config_setting_t *member(const config_setting_t *g, const char *name)
{
	return g ? config_setting_get_member(g, name) : NULL;
}

static int get_string(struct checker *k, const config_setting_t *g, const char *prefix,
		      const char *name, bool required, bool allow_empty, char **out)
{
	const config_setting_t *s = member(g, name);
	char path[256];
	const char *v;

	join(path, sizeof(path), prefix, name);
	if (!s) {
		if (required)
			return bad(k, g, path, "is required");
		return 0;
	}
	v = config_setting_get_string(s);
	if (!*v && !allow_empty)
		return bad(k, s, path, "must not be empty");
	free(*out);
	*out = *v ? strdup(v) : NULL;
	if (*v && !*out)
		return bad(k, s, path, "out of memory");
	return 0;
}

static int get_int(struct checker *k, const config_setting_t *g, const char *prefix,
		   const char *name, long long lo, long long hi, long long *out)
{
	const config_setting_t *s = member(g, name);
	char path[256];
	long long v;

	if (!s)
		return 0;
	join(path, sizeof(path), prefix, name);
	v = config_setting_get_int64(s);
	if (v < lo || v > hi)
		return bad(k, s, path, "must be between %lld and %lld", lo, hi);
	*out = v;
	return 0;
}

static void get_bool(const config_setting_t *g, const char *name, bool *out)
{
	const config_setting_t *s = member(g, name);
	if (s)
		*out = config_setting_get_bool(s);
}

static const char *role_names[] = { "uplink", "tenant", "management", "vpn" };

const char *conf_role_name(enum conf_role r)
{
	return role_names[r];
}

static int read_interfaces(struct checker *k, const config_setting_t *list, struct conf *c)
{
	static const struct key keys[] = { { "name", K_STRING }, { "role", K_STRING }, { 0 } };
	int n = config_setting_length(list);

	c->ifaces = calloc(n ? (size_t)n : 1, sizeof(*c->ifaces));
	if (!c->ifaces)
		return bad(k, list, "interfaces", "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		struct conf_interface *ifc = &c->ifaces[c->n_ifaces];
		char path[64];
		const char *name, *role;
		size_t r;

		snprintf(path, sizeof(path), "interfaces.[%d]", i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return bad(k, e, path, "must be a group { name = ...; role = ...; }");
		if (check_keys(k, e, path, keys, false))
			return k->rc;
		if (!config_setting_lookup_string(e, "name", &name))
			return bad(k, e, path, "needs a name");
		if (!*name || strlen(name) >= IFNAMSIZ || strpbrk(name, "/ \t"))
			return bad(
			    k, member(e, "name"), path,
			    "interface name '%s' is not a valid name (1..%d characters, no '/' or space)",
			    name, IFNAMSIZ - 1);
		if (!config_setting_lookup_string(e, "role", &role))
			return bad(k, e, path, "needs a role");
		for (r = 0; r < sizeof(role_names) / sizeof(role_names[0]); r++)
			if (!strcmp(role, role_names[r]))
				break;
		if (r == sizeof(role_names) / sizeof(role_names[0]))
			return bad(k, member(e, "role"), path,
				   "role '%s' is not one of uplink, tenant, management, vpn", role);
		for (size_t j = 0; j < c->n_ifaces; j++)
			if (!strcmp(c->ifaces[j].name, name))
				return bad(k, e, path, "interface '%s' is listed twice", name);
		snprintf(ifc->name, sizeof(ifc->name), "%s", name);
		ifc->role = (enum conf_role)r;
		c->n_ifaces++;
	}
	return 0;
}

static int read_policy(struct checker *k, const config_setting_t *g, struct conf *c)
{
	static const struct key keys[] = {
		{ "source", K_STRING }, { "path", K_STRING }, { "ref", K_STRING }, { 0 }
	};
	char *source = NULL;

	if (!g)
		return bad(k, NULL, "policy", "is required");
	if (check_keys(k, g, "policy", keys, false))
		return k->rc;
	if (get_string(k, g, "policy", "source", false, false, &source))
		return k->rc;
	if (!source || !strcmp(source, "path")) {
		c->source = CONF_SOURCE_PATH;
	} else if (!strcmp(source, "git")) {
		c->source = CONF_SOURCE_GIT;
	} else {
		free(source);
		return bad(k, member(g, "source"), "policy.source", "must be \"path\" or \"git\"");
	}
	free(source);
	if (get_string(k, g, "policy", "path", true, false, &c->policy_path))
		return k->rc;
	if (c->policy_path[0] != '/')
		return bad(k, member(g, "path"), "policy.path", "must be an absolute path");
	if (get_string(k, g, "policy", "ref", false, false, &c->git_ref))
		return k->rc;
	if (c->git_ref && c->source != CONF_SOURCE_GIT)
		return bad(k, member(g, "ref"), "policy.ref", "only applies to source = \"git\"");
	if (c->source == CONF_SOURCE_GIT && !c->git_ref) {
		c->git_ref = strdup("HEAD");
		if (!c->git_ref)
			return bad(k, g, "policy.ref", "out of memory");
	}
	return 0;
}

static int read_group_name(struct checker *k, const config_setting_t *g, const char *name,
			   char **out, gid_t *gid)
{
	char path[64];
	struct group *gr;

	snprintf(path, sizeof(path), "control.%s", name);
	if (get_string(k, g, "control", name, false, true, out))
		return k->rc;
	if (!*out)
		return 0;
	errno = 0;
	gr = getgrnam(*out);
	if (!gr)
		return bad(k, member(g, name), path, "group '%s' does not exist", *out);
	*gid = gr->gr_gid;
	return 0;
}

static int read_control(struct checker *k, const config_setting_t *g, struct conf *c)
{
	static const struct key keys[] = { { "socket", K_STRING },
					   { "mode", K_STRING },
					   { "group", K_STRING },
					   { "admin_group", K_STRING },
					   { "idle_seconds", K_INT },
					   { "request_seconds", K_INT },
					   { "max_clients_per_uid", K_INT },
					   { 0 } };
	char *mode = NULL, *end;
	unsigned long m;
	long long v;

	if (!g)
		return 0;
	if (check_keys(k, g, "control", keys, false))
		return k->rc;
	if (get_string(k, g, "control", "socket", false, false, &c->socket_path))
		return k->rc;
	if (c->socket_path[0] != '/' || strlen(c->socket_path) > CONF_SOCKET_PATH_MAX)
		return bad(k, member(g, "socket"), "control.socket",
			   "must be an absolute path of at most %d bytes", CONF_SOCKET_PATH_MAX);
	if (get_string(k, g, "control", "mode", false, false, &mode))
		return k->rc;
	if (mode) {
		/* A string, because libconfig integers have no octal form. */
		errno = 0;
		m = strtoul(mode, &end, 8);
		bool ok = !errno && !*end && mode[0] == '0' && m <= 0777;
		free(mode);
		if (!ok)
			return bad(k, member(g, "mode"), "control.mode",
				   "must be an octal mode string such as \"0660\"");
		c->socket_mode = (mode_t)m;
	}
	v = c->control_idle_seconds;
	if (get_int(k, g, "control", "idle_seconds", 1, 86400, &v))
		return k->rc;
	c->control_idle_seconds = (unsigned)v;
	v = c->control_request_seconds;
	if (get_int(k, g, "control", "request_seconds", 1, 3600, &v))
		return k->rc;
	c->control_request_seconds = (unsigned)v;
	v = c->control_max_per_uid;
	if (get_int(k, g, "control", "max_clients_per_uid", 1,
		    CTL_MAX_CLIENTS - CTL_RESERVED_CLIENTS, &v))
		return k->rc;
	c->control_max_per_uid = (unsigned)v;
	if (read_group_name(k, g, "group", &c->socket_group, &c->socket_gid))
		return k->rc;
	return read_group_name(k, g, "admin_group", &c->admin_group, &c->admin_gid);
}

static int read_log(struct checker *k, const config_setting_t *g, struct conf *c)
{
	static const struct key keys[] = { { "file", K_STRING },     { "syslog", K_BOOL },
					   { "rate", K_INT },        { "burst", K_INT },
					   { "nflog_group", K_INT }, { 0 } };
	long long v;

	if (!g)
		return 0;
	if (check_keys(k, g, "log", keys, false))
		return k->rc;
	if (get_string(k, g, "log", "file", false, true, &c->log_file))
		return k->rc;
	if (c->log_file && c->log_file[0] != '/')
		return bad(k, member(g, "file"), "log.file", "must be an absolute path or \"\"");
	get_bool(g, "syslog", &c->log_syslog);
	v = c->log_rate;
	if (get_int(k, g, "log", "rate", 1, CONF_LOG_RATE_MAX, &v))
		return k->rc;
	c->log_rate = (uint32_t)v;
	v = c->log_burst;
	if (get_int(k, g, "log", "burst", 1, CONF_LOG_RATE_MAX, &v))
		return k->rc;
	c->log_burst = (uint32_t)v;
	v = c->nflog_group;
	if (get_int(k, g, "log", "nflog_group", 0, CONF_NFLOG_GROUP_MAX, &v))
		return k->rc;
	c->nflog_group = (int)v;
	return 0;
}

static int read_metrics(struct checker *k, const config_setting_t *g, struct conf *c)
{
	static const struct key keys[] = { { "enabled", K_BOOL }, { "listen", K_STRING }, { 0 } };
	char *listen = NULL, *colon, *end;
	unsigned char addr[16];
	unsigned long port;

	if (!g)
		return 0;
	if (check_keys(k, g, "metrics", keys, false))
		return k->rc;
	get_bool(g, "enabled", &c->metrics_enabled);
	if (get_string(k, g, "metrics", "listen", false, false, &listen))
		return k->rc;
	if (!listen)
		return 0;
	/* "ADDR:PORT" or "[V6ADDR]:PORT". */
	if (listen[0] == '[' && (colon = strstr(listen, "]:"))) {
		memmove(listen, listen + 1, (size_t)(colon - listen) - 1);
		colon[-1] = 0;
		colon++;
	} else {
		colon = strrchr(listen, ':');
	}
	if (!colon) {
		free(listen);
		return bad(k, member(g, "listen"), "metrics.listen", "must be \"ADDRESS:PORT\"");
	}
	*colon = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || port == 0 || port > 65535 ||
	    (inet_pton(AF_INET, listen, addr) != 1 && inet_pton(AF_INET6, listen, addr) != 1)) {
		free(listen);
		return bad(k, member(g, "listen"), "metrics.listen",
			   "must be a numeric address and a port 1..65535, \"127.0.0.1:9469\"");
	}
	free(c->metrics_addr);
	c->metrics_addr = listen;
	c->metrics_port = (uint16_t)port;
	return 0;
}

static int read_placeholders(struct checker *k, const config_setting_t *root, struct conf *c)
{
	/* The known keys are checked; others are accepted so that a newer
	 * file still loads. */
	static const struct key fp_keys[] = { { "enabled", K_BOOL },
					      { "queue", K_INT },
					      { "workers", K_INT },
					      { "fail_closed", K_BOOL },
					      { 0 } };
	static const struct key vpn_keys[] = { { "enabled", K_BOOL }, { 0 } };
	const config_setting_t *fp = member(root, "fastpath"), *vpn = member(root, "vpn");
	long long v = CONF_FASTPATH_QUEUE_DEFAULT;

	if (fp && check_keys(k, fp, "fastpath", fp_keys, true))
		return k->rc;
	get_bool(fp, "enabled", &c->fastpath_enabled);
	get_bool(fp, "fail_closed", &c->fastpath_fail_closed);
	if (get_int(k, fp, "fastpath", "queue", 0, 65535, &v))
		return k->rc;
	c->fastpath_queue = (uint16_t)v;
	v = 1;
	if (get_int(k, fp, "fastpath", "workers", 1, 64, &v))
		return k->rc;
	c->fastpath_workers = (unsigned)v;
	if (c->fastpath_queue + c->fastpath_workers - 1 > 65535)
		return bad(k, member(fp, "workers"), "fastpath.workers",
			   "queues %u to %u: the last queue number is 65535", c->fastpath_queue,
			   c->fastpath_queue + c->fastpath_workers - 1);
	if (vpn && check_keys(k, vpn, "vpn", vpn_keys, true))
		return k->rc;
	get_bool(vpn, "enabled", &c->vpn_enabled);
	return 0;
}

static int read_top(struct checker *k, const config_setting_t *root, struct conf *c)
{
	static const struct key keys[] = {
		{ "interfaces", K_LIST }, { "policy", K_GROUP },   { "state_dir", K_STRING },
		{ "control", K_GROUP },   { "log", K_GROUP },      { "metrics", K_GROUP },
		{ "netns", K_STRING },    { "on_stop", K_STRING }, { "counter_interval_ms", K_INT },
		{ "fastpath", K_GROUP },  { "vpn", K_GROUP },      { 0 }
	};
	char *on_stop = NULL;
	long long v;

	if (check_keys(k, root, "", keys, false))
		return k->rc;
	if (member(root, "interfaces") && read_interfaces(k, member(root, "interfaces"), c))
		return k->rc;
	if (read_policy(k, member(root, "policy"), c))
		return k->rc;
	if (get_string(k, root, "", "state_dir", false, false, &c->state_dir))
		return k->rc;
	if (c->state_dir[0] != '/')
		return bad(k, member(root, "state_dir"), "state_dir", "must be an absolute path");
	if (read_control(k, member(root, "control"), c) || read_log(k, member(root, "log"), c) ||
	    read_metrics(k, member(root, "metrics"), c))
		return k->rc;
	if (get_string(k, root, "", "netns", false, true, &c->netns))
		return k->rc;
	if (c->netns && (strlen(c->netns) > CONF_NETNS_MAX || strchr(c->netns, '/') ||
			 !strcmp(c->netns, ".") || !strcmp(c->netns, "..")))
		return bad(k, member(root, "netns"), "netns", "must be a namespace name (no '/')");
	if (get_string(k, root, "", "on_stop", false, false, &on_stop))
		return k->rc;
	if (on_stop) {
		bool keep = !strcmp(on_stop, "keep"), flush = !strcmp(on_stop, "flush");
		free(on_stop);
		if (!keep && !flush)
			return bad(k, member(root, "on_stop"), "on_stop",
				   "must be \"keep\" or \"flush\"");
		c->flush_on_stop = flush;
	}
	v = c->counter_interval_ms;
	if (get_int(k, root, "", "counter_interval_ms", CONF_COUNTER_MS_MIN, CONF_COUNTER_MS_MAX,
		    &v))
		return k->rc;
	c->counter_interval_ms = (uint32_t)v;
	return read_placeholders(k, root, c);
}

static int set_defaults(struct conf *c, const char *file)
{
	*c = (struct conf){
		.file = strdup(file),
		.state_dir = strdup("/var/lib/hvgate"),
		.socket_path = strdup("/run/hvgate/control.sock"),
		.metrics_addr = strdup("127.0.0.1"),
		.socket_mode = 0660,
		.control_idle_seconds = CTL_IDLE_SECONDS,
		.control_request_seconds = CTL_REQUEST_SECONDS,
		.control_max_per_uid = CTL_MAX_PER_UID,
		.log_syslog = true,
		.log_rate = 100,
		.log_burst = 200,
		.nflog_group = 1,
		.metrics_port = 9469, /* hvgate's own choice; no registered exporter uses it */
		.counter_interval_ms = 1000,
	};
	if (!c->file || !c->state_dir || !c->socket_path || !c->metrics_addr)
		return -ENOMEM;
	return 0;
}

int conf_load(const char *file, struct conf *out, char *err, size_t errsz)
{
	struct checker k = { .file = file, .err = err, .errsz = errsz };
	struct conf c;
	config_t cfg;

	if (errsz)
		err[0] = 0;
	if (set_defaults(&c, file)) {
		conf_free(&c);
		snprintf(err, errsz, "%s: out of memory", file);
		return -ENOMEM;
	}
	config_init(&cfg);
	{
		/* libconfig's own @include "FILE" is resolved beside the file. */
		char dir[PATH_MAX], *slash;
		snprintf(dir, sizeof(dir), "%s", file);
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = 0;
			config_set_include_dir(&cfg, *dir ? dir : "/");
		}
	}
	if (!config_read_file(&cfg, file)) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
			snprintf(err, errsz, "%s: cannot read: %s", file, strerror(errno));
			k.rc = -ENOENT;
		} else {
			snprintf(err, errsz, "%s:%d: syntax error: %s",
				 config_error_file(&cfg) ? config_error_file(&cfg) : file,
				 config_error_line(&cfg), config_error_text(&cfg));
			k.rc = -EINVAL;
		}
	} else {
		read_top(&k, config_root_setting(&cfg), &c);
	}
	config_destroy(&cfg);
	if (k.rc) {
		conf_free(&c);
		return k.rc;
	}
	conf_free(out);
	*out = c;
	return 0;
}

void conf_free(struct conf *c)
{
	free(c->file);
	free(c->ifaces);
	free(c->policy_path);
	free(c->git_ref);
	free(c->state_dir);
	free(c->socket_path);
	free(c->socket_group);
	free(c->admin_group);
	free(c->log_file);
	free(c->metrics_addr);
	free(c->netns);
	memset(c, 0, sizeof(*c));
}
