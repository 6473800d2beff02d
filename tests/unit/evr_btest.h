/*  evr_btest.h: a broker for the broker's unit tests: on a real store in
    ROOT/NAME, its client, runner and event sockets ipc:// endpoints
    there, reclaim_ms 1000, no flushes (nosync).  A name made again
    opens the same store (a broker started again). */
#ifndef EVR_BTEST_H_INCLUDED
#define EVR_BTEST_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

#include "evr_broker_int.h"
#include "evr_test.h"

/*  The broker over ROOT/NAME (NULL, said, when it cannot be made); its
    runner endpoint into runner_ep (len bytes) when not NULL. */
static inline evr_broker_t *
evr_btest_broker(const char *root, const char *name, char *runner_ep, size_t len)
{
    char *dir = evr_asprintf("%s/%s", root, name);
    char *cep = evr_asprintf("ipc://%s/c", dir), *rep = evr_asprintf("ipc://%s/r", dir);
    char *pep = evr_asprintf("ipc://%s/p", dir), *store = evr_asprintf("%s/store", dir);
    evr_err_t err;
    CHECK(evr_mkdirs(dir, &err) == EVR_OK);
    if (runner_ep)
        snprintf(runner_ep, len, "%s", rep);
    evr_broker_opts_t o = { .store_dir = store, .client_ep = cep, .runner_ep = rep,
                            .pub_ep = pep, .reclaim_ms = 1000, .nosync = true };
    evr_broker_t *b = NULL;
    CHECK(evr_broker_new(&o, &b, &err) == EVR_OK);
    if (!b)
        fprintf(stderr, "evr_btest_broker %s: %s\n", name, err.msg);
    free(cep);
    free(rep);
    free(pep);
    free(store);
    free(dir);
    return b;
}

#endif
