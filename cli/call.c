/*
 * call.c: `mitogen call FUNCTION [JSON...]`: an exported function on
 * every target.  Each argument is one JSON value; they are packed once as
 * the call's MessagePack argument array (json.c), and each reply is shown
 * as JSON: "target: <value>".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int call_args(struct cli *cli, int argc, char **argv)
{
	struct sbuf one = {0};
	char err[256];
	int i;
	uint8_t hdr[5];

	if (argc == 0)
		return usage_error("no function given (for example: mg.ping, mg.sysinfo)");
	if (argv[0][0] == '\0' || strlen(argv[0]) >= MG_FUNCTION_NAME_MAX)
		return usage_error("bad function name '%s'", argv[0]);
	cli->function = argv[0];
	for (i = 1; i < argc; i++) {
		if (json_to_msgpack(argv[i], &one, err, sizeof(err)) != 0) {
			sb_free(&one);
			return usage_error("argument %d is not JSON: %s: %s", i, err, argv[i]);
		}
	}
	/* The array header: fixarray up to 15 elements, else array 16. */
	if (argc - 1 < 16) {
		hdr[0] = (uint8_t)(0x90 | (argc - 1));
		sb_put(&cli->packed_args, hdr, 1);
	} else {
		hdr[0] = 0xdc;
		hdr[1] = (uint8_t)((argc - 1) >> 8);
		hdr[2] = (uint8_t)(argc - 1);
		sb_put(&cli->packed_args, hdr, 3);
	}
	if (one.len > 0)
		sb_put(&cli->packed_args, one.p, one.len);
	sb_free(&one);
	return 0;
}

static void call_target(struct cli *cli, struct target *t)
{
	struct mg_receiver *rx;
	struct mg_msg *reply;
	struct sbuf out = {0};
	int rc;

	rc = mg_call_packed_async(t->ctx, cli->function, cli->packed_args.p, cli->packed_args.len,
	                          &rx);
	if (rc != 0) {
		target_fail(t, RES_FAILED, "cannot call %s: %s", cli->function, mg_strerror(rc));
		return;
	}
	rc = cli_wait(cli, rx, &reply);
	mg_receiver_free(rx);
	if (rc == -ECANCELED)
		return;
	if (rc != 0) {
		/* No reply came (the context went away): what mg_call_wait()
		 * calls a channel error. */
		const char *why = *mg_errdetail() ? mg_errdetail() : mg_strerror(rc);

		target_fail(t, RES_FAILED, "mitogen.ChannelError: %s", why);
		sb_puts(&t->json, ",\"error_type\":\"mitogen.ChannelError\"");
		return;
	}
	if ((rc = mg_call_result(reply)) != 0) {
		const struct mg_error *e = mg_last_error();
		target_fail(t, RES_FAILED, "%s: %s", e->type[0] ? e->type : mg_strerror(rc),
		            e->message[0] ? e->message : mg_strerror(rc));
		if (e->type[0] != '\0') {
			sb_puts(&t->json, ",\"error_type\":");
			json_str(&t->json, e->type, strlen(e->type));
		}
		return;
	}
	if (msgpack_to_json(mg_msg_data(reply), mg_msg_len(reply), &out) != 0) {
		target_fail(t, RES_FAILED, "the reply is not valid MessagePack");
	} else {
		target_ok(t);
		if (cli->json) {
			sb_puts(&t->json, ",\"result\":");
			sb_put(&t->json, out.p, out.len);
		} else {
			output_line(cli, t, "%s", out.p);
		}
	}
	sb_free(&out);
	mg_msg_free(reply);
}

const struct verb verb_call = {
        .name = "call",
        .synopsis = "FUNCTION [JSON-ARG...]",
        .summary = "call an exported function on every target, arguments and result as JSON",
        .help = "Each JSON-ARG is one JSON value (quote it for the shell: '{\"a\": [1, 2]}'),\n"
                "passed as MessagePack; the result is printed as JSON.  The stock agent\n"
                "exports mg.ping and mg.sysinfo among others.  A remote error is reported\n"
                "with its type and message.\n",
        .args = call_args,
        .run = call_target,
};
