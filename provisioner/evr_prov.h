/*  evr_prov.h: evrun-provisioner's model: its configuration (a providers
    table), the matching of waiting jobs against idle runners and
    providers, the start rate (a token bucket) and the pause of a provider
    whose starts keep failing.  All of it is pure (no I/O but reading the
    config file, the time passed in), so that tests/unit/test_provisioner
    drives it directly; evr_prov_run.c starts and stops the runners
    (evr_prov_pass.c: the passes that decide it),
    main.c wires it to the broker.
*/
#ifndef EVR_PROV_H_INCLUDED
#define EVR_PROV_H_INCLUDED

#include "evr_common.h"
#include "evr_diag.h"
#include "evr_field.h"

#define EVR_PROV_MAX_PROVIDERS 64
#define EVR_PROV_MAX_RUNNERS 1024       /* max_runners, and a provider's max, at most */
#define EVR_PROV_MAX_CONFIG_BYTES (256u << 10)
#define EVR_PROV_FAILS_TO_PAUSE 3       /* failed starts in a row that pause a provider */
#define EVR_PROV_MAX_TEMPLATE 4096
#define EVR_PROV_PODMAN_IMAGE "localhost/evrun-runner:latest"   /* kind podman's default image */

typedef enum { EVR_PROV_PROCESS, EVR_PROV_PODMAN, EVR_PROV_COMMAND } evr_prov_kind_t;

typedef struct {
    char *name;
    evr_prov_kind_t kind;
    evr_strlist_t labels;       /* as given: the runner's --labels */
    evr_strlist_t executors;    /* the runner's --executors (default podman) */
    evr_strlist_t match;        /* labels + executor:NAME for each executor: what jobs need */
    evr_strlist_t args;         /* process: more evrun-runner arguments */
    char *start, *stop;         /* command: templates */
    char *image, *network;      /* podman: the runner's image; host, bridge or none */
    evr_strlist_t volumes;      /* podman: SRC:DEST[:ro] more mounts */
    evr_strlist_t env;          /* podman: NAME=value for the runner */
    uint32_t max;
    /* state */
    uint32_t running;           /* instances started and not gone */
    uint32_t fails;             /* failed starts in a row */
    uint32_t started, failed;   /* counts since the start */
    char *paused;               /* why it is paused; NULL: active */
} evr_prov_provider_t;

typedef struct {
    uint32_t max_runners;       /* default 10 */
    double rate;                /* starts per second (start_rate); default 1 */
    double burst;               /* the bucket's size: the N of N/s or N/min (at least 1) */
    uint32_t register_timeout_s;   /* default 60 */
    char *runner;               /* the evrun-runner executable (NULL: beside this one) */
    char *runner_endpoint;      /* {broker}, and the process runners' --broker (NULL: default) */
    char *podman_url;           /* podman providers' service (NULL: evr_prov_podman_default_url) */
    evr_prov_provider_t *providers;
    uint32_t nproviders;
} evr_prov_config_t;

/*  Loads FILE: YAML with top-level max_runners, start_rate ("N/s", "N/min",
    or a number: per second), register_timeout (seconds, or "Ns", "Nm"),
    runner, runner_endpoint, podman_url and providers (a list of maps: name,
    labels, kind process|podman|command, executors, args, start, stop, max;
    podman: image, network, volumes, env).  Each
    problem is one `FILE:LINE:COL: FIELD: message` line in diag (a list's
    item named FIELD[I]; a key given twice is one; evr_yaml_precheck's
    before anything else).  EVR_OK, or EVR_ERR_CONFIG (diag holds the
    errors; cfg is freed). */
evr_rc_t evr_prov_config_load(const char *file, evr_prov_config_t *cfg, evr_diag_t *diag);
/*  The same from text (file names the errors). */
evr_rc_t evr_prov_config_parse(const char *text, size_t len, const char *file,
                               evr_prov_config_t *cfg, evr_diag_t *diag);
void evr_prov_config_free(evr_prov_config_t *cfg);

/*  True when every label of need is in have. */
bool evr_prov_subset(const evr_strlist_t *need, const evr_strlist_t *have);

/*  The first provider that can start a runner for a job needing labels,
    with total runners running now (all providers); -1 when none.  why
    (size n) says, one line per provider passed over, why it did not
    match ("NAME: labels lack X", "NAME: full (max N)", "NAME: paused:
    R"), and "max_runners N reached" when that stopped it. */
int evr_prov_match(const evr_prov_config_t *cfg, const evr_strlist_t *labels, uint32_t total,
                   char *why, size_t n);

/*  The token bucket of start_rate. */
typedef struct {
    double tokens;
    uint64_t at;        /* ns of the last refill */
} evr_prov_bucket_t;

/*  Refills by the time since the last call (now, ns); true (a token
    taken) when a start may go now. */
bool evr_prov_bucket_take(evr_prov_bucket_t *b, const evr_prov_config_t *cfg, uint64_t now);

/*  A start of p ended: ok (its runner said hello) resets the count of
    failures in a row; a failure counts (why: for people), and the
    EVR_PROV_FAILS_TO_PAUSE-th in a row pauses p with that reason (cut
    to EVR_REASON_MAX bytes, as the provider report's reason is).
    Returns true when this call paused it. */
bool evr_prov_start_done(evr_prov_provider_t *p, bool ok, const char *why);

/*  "active" or "paused: REASON" (static or p's). */
const char *evr_prov_state(const evr_prov_provider_t *p, char *buf, size_t n);

#endif
