/*
 * chand_main.c - chand's entry point: read the configuration (defaults,
 * config file, CHAND_* environment, flags), set up the log, start the
 * server, run until SIGTERM/SIGINT; a service manager learns when it is
 * ready (chand_notify.h).
 *
 * Exit status: 0 after a clean shutdown (and for --help, --version and
 * --print-config), 1 if the server could not start (an address in use, an
 * unreadable --auth-file, a --log-file that cannot be opened), 2 for a bad
 * command line, config file or CHAND_* variable.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#include "config.h"

#include <stdio.h>

#include "chand_journal.h"
#include "chand_log.h"
#include "chand_notify.h"
#include "chand_opts.h"
#include "chand_server.h"

int main(int argc, char **argv)
{
    chand_opts_t opts;
    switch (chand_opts_parse(argc, argv, &opts)) {
    case OPTS_EXIT_OK:
        return 0;
    case OPTS_USAGE:
        return 2;
    }
    char err[512];
    if (chand_log_setup(opts.log_level, opts.log_format, opts.log_file, err, sizeof err) < 0) {
        fprintf(stderr, "chand: %s\n", err);
        chand_opts_free(&opts);
        return 1;
    }
    chand_opts_log_sources(&opts);
    if (opts.check) {
        int rc = chand_journal_check(opts.data_dir);
        chand_opts_free(&opts);
        return rc;
    }
    chand_server_t *s = chand_server_new(&opts);   /* takes opts' strings */
    if (!s)
        return 1;
    chand_notify("READY=1");   /* listening, the data dir loaded */
    int rc = chand_server_run(s);
    chand_server_free(s);
    return rc;
}
