/*
 * ping.c: `mitogen ping`: whether each target answers, how long the
 * connect took and the round trip of mg.ping once connected.
 */
#include <errno.h>
#include <stdio.h>

#include "cli.h"

static int ping_args(struct cli *cli, int argc, char **argv)
{
	if (argc != 0)
		return usage_error("takes no arguments ('%s' given)", argv[0]);
	return 0;
}

static void ping_target(struct cli *cli, struct target *t)
{
	double connect_ms = (double)(now_ns() - t->t_start) / 1e6, best = -1, sum = 0;
	struct mg_msg *reply;
	int i, rc;

	for (i = 0; i < cli->count && !cli_cancelled(cli); i++) {
		int64_t start = now_ns();
		double ms;

		if ((rc = mg_call(t->ctx, "mg.ping", &reply, "")) != 0) {
			target_fail(t, RES_FAILED, "mg.ping: %s", mg_strerror(rc));
			return;
		}
		ms = (double)(now_ns() - start) / 1e6;
		mg_msg_free(reply);
		sum += ms;
		if (best < 0 || ms < best)
			best = ms;
	}
	if (i < cli->count)
		return; /* interrupted */
	target_ok(t);
	sb_printf(&t->json, ",\"connect_ms\":%.3f,\"rtt_ms\":%.3f,\"rtt_min_ms\":%.3f", connect_ms,
	          sum / i, best);
	if (!cli->json)
		output_line(cli, t, "ok: connect %.1f ms, rtt %.3f ms%s", connect_ms, sum / i,
		            i > 1 ? " (mean)" : "");
}

const struct verb verb_ping = {
        .name = "ping",
        .synopsis = "",
        .summary = "check every target answers; connect time and round trip",
        .help = "Connects to each target and calls mg.ping; prints the connect time and\n"
                "the round trip of the call.\n"
                "Options of ping:\n"
                "  -c, --count N           N round trips per target (the mean is shown)\n",
        .opts = OPT_COUNT | OPT_ANYWHERE,
        .args = ping_args,
        .run = ping_target,
};
