/* hvgate vpn: the WireGuard-compatible engine as a stand-in for
 * wireguard-go (run), its state (show), and keys (genkey, pubkey). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "vpn/vpn.h"

#define UAPI_DIR "/var/run/wireguard"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int usage(FILE *out)
{
	fprintf(out,
		"usage: hvgate vpn run IFNAME [-f]     run the engine (daemonizes unless -f)\n"
		"       hvgate vpn show [IFNAME] [--json]  peers, endpoints, handshakes, bytes\n"
		"       hvgate vpn genkey                 print a new private key\n"
		"       hvgate vpn pubkey < private       print the public key of a private key\n"
		"Environment: HVGATE_VPN_TIME_SCALE multiplies protocol timers (tests);\n"
		"HVGATE_VPN_STATE_DIR holds the last sent handshake timestamp.\n");
	return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* Prints a key in base64 on a line of its own; the text is wiped after
 * (it may be a private key). */
static void print_key(const uint8_t key[VPN_KEY_LEN])
{
	char b64[VPN_KEY_BASE64_LEN + 1];

	vpn_key_to_base64(b64, key);
	printf("%s\n", b64);
	sodium_memzero(b64, sizeof(b64));
}

static int genkey(void)
{
	uint8_t k[VPN_KEY_LEN];

	if (vpn_key_generate(k))
		return CLI_EXIT_FAIL;
	print_key(k);
	sodium_memzero(k, sizeof(k));
	return CLI_EXIT_OK;
}

static int pubkey(void)
{
	char line[128];
	uint8_t k[VPN_KEY_LEN], pub[VPN_KEY_LEN];

	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "hvgate vpn pubkey: no key on standard input\n");
		return CLI_EXIT_USAGE;
	}
	line[strcspn(line, "\r\n")] = 0;
	if (vpn_key_from_base64(k, line) || vpn_key_public(pub, k)) {
		fprintf(stderr, "hvgate vpn pubkey: not a base64 key of 32 bytes\n");
		sodium_memzero(line, sizeof(line));
		return CLI_EXIT_FAIL;
	}
	print_key(pub);
	sodium_memzero(line, sizeof(line));
	sodium_memzero(k, sizeof(k));
	return CLI_EXIT_OK;
}

static void print_metric(void *ctx, const char *name, const char *labels, double value)
{
	if (value != 0)
		fprintf(ctx, "%s{%s} %.0f\n", name, labels, value);
}

/* wireguard-go's behaviour: create the interface and the UAPI socket, then
 * (unless -f) detach, so that the socket exists when the starter returns. */
static int run(const char *ifname, bool foreground)
{
	struct vpn_device *dev;
	struct vpn_device_options opts = { .ifname = ifname,
					   .uapi = true,
					   .state_dir = getenv("HVGATE_VPN_STATE_DIR") };
	int ret = vpn_device_create(&dev, &opts);

	if (ret) {
		fprintf(stderr, "hvgate vpn: cannot create %s: %s\n", ifname, strerror(-ret));
		return CLI_EXIT_FAIL;
	}
	if (!foreground) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "hvgate vpn: fork: %s\n", strerror(errno));
			vpn_device_destroy(dev);
			return CLI_EXIT_FAIL;
		}
		if (pid > 0)
			_exit(CLI_EXIT_OK); /* the child owns the device now */
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "hvgate vpn: %s up\n", vpn_device_ifname(dev));
	while (!stop_signal) {
		ret = vpn_device_run_once(dev, 1000);
		if (ret == -ENODEV) {
			fprintf(stderr, "hvgate vpn: %s went away\n", vpn_device_ifname(dev));
			break;
		}
	}
	if (foreground)
		vpn_device_metrics(dev, print_metric, stderr);
	vpn_device_destroy(dev);
	return CLI_EXIT_OK;
}

/* ---- show: a UAPI client ---- */

struct show_peer {
	char public_key[VPN_KEY_BASE64_LEN + 1];
	char endpoint[80];
	char allowed[1024];
	long long hs_sec;
	unsigned long long rx, tx;
	unsigned keepalive;
};

static char *uapi_get(const char *ifname)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t cap = 8192, len = 0;
	char *buf;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), UAPI_DIR "/%s.sock", ifname);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, "get=1\n\n", 7) != 7) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	buf = malloc(cap);
	while (buf) {
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = 0;
		if (strstr(buf, "\n\n"))
			break;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	close(fd);
	if (buf)
		buf[len] = 0;
	return buf;
}

static void hex_to_b64(const char *hex, char *out)
{
	uint8_t k[VPN_KEY_LEN];

	if (vpn_key_from_hex(k, hex))
		snprintf(out, VPN_KEY_BASE64_LEN + 1, "(invalid)");
	else
		vpn_key_to_base64(out, k);
}

static void print_peer(const struct show_peer *p, bool json, bool first, time_t now)
{
	if (json) {
		printf(
		    "%s{\"public_key\":\"%s\",\"endpoint\":\"%s\",\"allowed_ips\":\"%s\","
		    "\"last_handshake\":%lld,\"rx_bytes\":%llu,\"tx_bytes\":%llu,\"keepalive\":%u}",
		    first ? "" : ",", p->public_key, p->endpoint, p->allowed, p->hs_sec, p->rx,
		    p->tx, p->keepalive);
		return;
	}
	printf("  peer %s\n    endpoint: %s\n    allowed ips: %s\n", p->public_key,
	       p->endpoint[0] ? p->endpoint : "(none)", p->allowed[0] ? p->allowed : "(none)");
	if (p->hs_sec)
		printf("    last handshake: %lld s ago (the current key is as old)\n",
		       (long long)(now - p->hs_sec));
	else
		printf("    last handshake: never\n");
	printf("    transfer: %llu B received, %llu B sent\n", p->rx, p->tx);
	if (p->keepalive)
		printf("    persistent keepalive: every %u s\n", p->keepalive);
}

static int show_one(const char *ifname, bool json, bool first_if)
{
	char *text = uapi_get(ifname), *save = NULL;
	struct show_peer p;
	bool have_peer = false, first = true;
	time_t now = time(NULL);

	if (!text) {
		fprintf(stderr, "hvgate vpn: no engine answers for %s\n", ifname);
		return CLI_EXIT_FAIL;
	}
	if (json)
		printf("%s{\"ifname\":\"%s\",", first_if ? "" : ",", ifname);
	else
		printf("interface %s\n", ifname);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');
		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(line, "private_key")) {
			continue; /* never shown */
		} else if (!strcmp(line, "listen_port")) {
			printf(json ? "\"listen_port\":%s," : "  listening port: %s\n", v);
		} else if (!strcmp(line, "public_key")) {
			if (have_peer) {
				if (first && json)
					printf("\"peers\":[");
				print_peer(&p, json, first, now);
				first = false;
			}
			memset(&p, 0, sizeof(p));
			hex_to_b64(v, p.public_key);
			have_peer = true;
		} else if (!strcmp(line, "endpoint")) {
			snprintf(p.endpoint, sizeof(p.endpoint), "%s", v);
		} else if (!strcmp(line, "allowed_ip")) {
			size_t l = strlen(p.allowed);
			snprintf(p.allowed + l, sizeof(p.allowed) - l, "%s%s", l ? ", " : "", v);
		} else if (!strcmp(line, "last_handshake_time_sec")) {
			p.hs_sec = atoll(v);
		} else if (!strcmp(line, "rx_bytes")) {
			p.rx = strtoull(v, NULL, 10);
		} else if (!strcmp(line, "tx_bytes")) {
			p.tx = strtoull(v, NULL, 10);
		} else if (!strcmp(line, "persistent_keepalive_interval")) {
			p.keepalive = (unsigned)atoi(v);
		}
	}
	if (have_peer) {
		if (first && json)
			printf("\"peers\":[");
		print_peer(&p, json, first, now);
		first = false;
	}
	if (json)
		printf("%s]}", first ? "\"peers\":[" : "");
	sodium_memzero(text, strlen(text));
	free(text);
	return CLI_EXIT_OK;
}

static int show(const char *ifname, bool json)
{
	int ret = CLI_EXIT_OK;
	bool first = true;

	if (json)
		printf("[");
	if (ifname) {
		ret = show_one(ifname, json, true);
	} else {
		DIR *d = opendir(UAPI_DIR);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l < 6 || strcmp(e->d_name + l - 5, ".sock"))
				continue;
			e->d_name[l - 5] = 0;
			if (show_one(e->d_name, json, first) == CLI_EXIT_OK)
				first = false;
		}
		if (d)
			closedir(d);
	}
	if (json)
		printf("]\n");
	return ret;
}

int cli_vpn(int argc, char **argv)
{
	if (argc < 2 || cli_wants_help(argc, argv))
		return usage(argc < 2 ? stderr : stdout);
	if (!strcmp(argv[1], "genkey"))
		return genkey();
	if (!strcmp(argv[1], "pubkey"))
		return pubkey();
	if (!strcmp(argv[1], "run")) {
		if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "-f")))
			return usage(stderr);
		return run(argv[2], argc == 4 || getenv("WG_PROCESS_FOREGROUND"));
	}
	if (!strcmp(argv[1], "show")) {
		const char *ifname = NULL;
		bool json = false;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json"))
				json = true;
			else if (!ifname)
				ifname = argv[i];
			else
				return usage(stderr);
		}
		return show(ifname, json);
	}
	return usage(stderr);
}
