/*
 * chand_main.c - chand's entry point: parse the flags, start the server,
 * run until SIGTERM/SIGINT; a service manager learns when it is ready
 * (chand_notify.h).
 *
 * Exit status: 0 after a clean shutdown (and for --help/--version), 1 if the
 * server could not start (an address in use, an unreadable --auth-file),
 * 2 for a bad command line.
 */
#include "config.h"

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
    chand_log_level = opts.log_level;
    if (opts.check)
        return chand_journal_check(opts.data_dir);
    chand_server_t *s = chand_server_new(&opts);
    if (!s)
        return 1;
    chand_notify("READY=1");   /* listening, the data dir loaded */
    int rc = chand_server_run(s);
    chand_server_free(s);
    return rc;
}
