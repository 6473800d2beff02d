/*  evr_runner_id.c: evrun-runner's id (see evr_runner_id.h). */
#include "evr_runner_id.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_spec.h"
#include "evr_ulid.h"

evr_rc_t
evr_runner_id_check(const evr_config_t *cfg, evr_err_t *err)
{
    const char *v = evr_config_get(cfg, "runner_id");
    if (!v || evr_spec_name_ok(v))
        return EVR_OK;
    return evr_config_problem(cfg, "runner_id", err, "expected a runner id: 1-%d letters, "
                              "digits, _ . - (starting with a letter or digit)%s",
                              EVR_SPEC_MAX_NAME, *v ? "" : "; leave it out for the one "
                              "made once and kept in the store");
}

char *
evr_runner_id(evr_config_t *cfg, evr_store_t *store, const char *state_dir)
{
    const char *v = evr_config_get(cfg, "runner_id");
    evr_err_t err;
    char *kept = NULL;
    if (evr_runner_id_check(cfg, &err)) {
        fprintf(stderr, "evrun-runner: %s\n", err.msg);
        return NULL;
    }
    if (evr_store_meta_get(store, "runner_id", &kept, &err) != EVR_OK)
        kept = NULL;
    /* the kept id binds only when this check kept it (an older runner
       kept a made id but never a given one: a store it ran under --id
       holds a made id that is no one's) and the log holds events */
    char *marked = NULL;
    uint64_t last = 0;
    bool binds = kept && evr_store_meta_get(store, "runner_id_kept", &marked, &err) == EVR_OK
                 && evr_store_last_seq(store, &last, &err) == EVR_OK && last > 0;
    free(marked);
    if (v && *v && kept && strcmp(v, kept) != 0 && !binds) {
        free(kept);
        kept = NULL;    /* the given one is kept instead */
    }
    if (v && *v && kept && strcmp(v, kept) != 0) {
        fprintf(stderr, "evrun-runner: --id %s: the state directory %s holds the log of runner "
                "%s; its jobs are that runner's (another id would have the broker refuse and "
                "cancel them): start it with --id %s, or give the new runner a state directory "
                "of its own\n", v, state_dir, kept, kept);
        free(kept);
        return NULL;
    }
    if (kept && !binds && evr_store_meta_set(store, "runner_id_kept", "1", &err)) {
        fprintf(stderr, "evrun-runner: keeping the runner id in the store: %s\n", err.msg);
        free(kept);
        return NULL;
    }
    if (kept)
        return kept;
    char *id;
    if (v && *v)
        id = evr_strdup(v);
    else {
        char host[64] = "runner", ulid[EVR_ULID_LEN + 1];
        gethostname(host, sizeof host - 1);
        for (char *p = host; *p; p++)
            if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9'))
                *p = '-';
        host[32] = '\0';
        evr_ulid_new(ulid);
        id = evr_asprintf("%s-%s", host[0] == '-' ? "runner" : host, ulid + 20);
    }
    if (evr_store_meta_set(store, "runner_id", id, &err)
        || evr_store_meta_set(store, "runner_id_kept", "1", &err)) {
        fprintf(stderr, "evrun-runner: keeping the runner id in the store: %s\n", err.msg);
        free(id);
        return NULL;
    }
    return id;
}
