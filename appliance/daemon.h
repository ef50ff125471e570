/* hvgated's lifecycle: read the configuration, compile and apply the policy,
 * serve the control socket, logs and metrics in one poll loop, reload on
 * SIGHUP or `reload`, stop cleanly on SIGTERM (the ruleset stays unless
 * on_stop = "flush"). Readiness goes to systemd (sd_notify) when
 * NOTIFY_SOCKET is set, else to the log as "hvgated: ready".
 */
#ifndef HVGATE_APPLIANCE_DAEMON_H
#define HVGATE_APPLIANCE_DAEMON_H

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int daemon_run(const char *conf_file);

#endif
