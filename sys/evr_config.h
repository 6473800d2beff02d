/*  evr_config.h: the effective configuration of a binary (DESIGN §9).

    Defaults < config file (evrun.yml, a YAML mapping; `retention:` may be a
    mapping of its own, its keys read as retention_KEY) < environment
    (EVRUN_<KEY> with the key upper-cased) < command-line flags.  Each
    binary declares its keys in a table; values are strings, checked by
    the binary where it uses them.  Every value remembers where it came
    from, which --print-config shows.
*/
#ifndef EVR_CONFIG_H_INCLUDED
#define EVR_CONFIG_H_INCLUDED

#define EVR_CONFIG_FILE_MAX (1u << 20)     /* bytes of a settings file, as of a pipeline file */

#include <stdio.h>

#include "evr_common.h"

typedef struct {
    const char *key;    /* "client_endpoint"; env EVRUN_CLIENT_ENDPOINT */
    const char *def;    /* default, or NULL (derived later, or none) */
    const char *help;   /* one line for --print-config */
} evr_config_key_t;

typedef struct evr_config evr_config_t;

/*  keys must outlive the config (a static table).  Caller owns the result. */
evr_config_t *evr_config_new(const evr_config_key_t *keys, size_t n);
void evr_config_destroy(evr_config_t **self_p);

/*  A copy of self: its table, every value with its source, its file.
    Caller owns the result. */
evr_config_t *evr_config_dup(const evr_config_t *self);

/*  Reads a config file: a YAML mapping of keys to scalars.  An unknown key
    (with "did you mean KEY?" for a near-miss), a non-scalar value or a
    malformed file is EVR_ERR_CONFIG with "FILE:LINE:COL: key: what is
    wrong": each recorded (evr_config_report) and in err, one a line (as
    many as it holds).  Keys of other binaries listed in
    also (NULL-terminated, may be NULL) are accepted and ignored, so one
    file serves every binary. */
evr_rc_t evr_config_load_file(evr_config_t *self, const char *path, const char *const *also,
                              evr_err_t *err);

/*  Takes EVRUN_<KEY> from the environment for every key. */
void evr_config_load_env(evr_config_t *self);

/*  Sets key (which must be in the table) from a flag. */
void evr_config_set(evr_config_t *self, const char *key, const char *value, const char *source);

/*  Sets key only when it has no value yet (a derived default). */
void evr_config_default(evr_config_t *self, const char *key, const char *value);

/*  Value of key, or NULL when unset. */
const char *evr_config_get(const evr_config_t *self, const char *key);

/*  Where key's value came from: "default", "file", "env", "flag",
    "derived" (filled in by the program), or "unset". */
const char *evr_config_source(const evr_config_t *self, const char *key);

/*  Where key's value came from, as a problem says it: the source, for
    the environment its variable ("env EVRUN_LEASE_MS"), for a file the
    place ("file evrun.yml:3:11"); in buf (size bytes) when made there.
    Returns the text. */
const char *evr_config_from(const evr_config_t *self, const char *key, char *buf, size_t size);

/*  Value of key as an unsigned number in [min, max]; EVR_ERR_CONFIG
    naming the key and its source otherwise. */
evr_rc_t evr_config_uint(const evr_config_t *self, const char *key, uint64_t min, uint64_t max,
                         uint64_t *out, evr_err_t *err);

/*  Value of key as a duration (evr_duration_parse: "30d", "12h", "90",
    "0") in ms, from min_ms (0: 0 is allowed, and means off) to max_ms;
    EVR_ERR_CONFIG naming the key, its value and its source otherwise
    ("expected at least 100ms" below min_ms). */
evr_rc_t evr_config_duration(const evr_config_t *self, const char *key, uint64_t min_ms,
                             uint64_t max_ms,
                             uint64_t *out, evr_err_t *err);

/*  Value of key as a boolean (true/false/yes/no/1/0); false when unset. */
evr_rc_t evr_config_bool(const evr_config_t *self, const char *key, bool *out, evr_err_t *err);

/*  Value of key as the index of one of choices[0..n) (exact match) in
    *out; EVR_ERR_CONFIG naming the key, its value, its source and the
    choices otherwise ("log_level = \"loud\" (from env EVRUN_LOG_LEVEL):
    expected one of error, warn, info, debug").  The getters' errors name
    an environment variable where the value came from one, and are
    recorded for evr_config_report. */
evr_rc_t evr_config_choice(const evr_config_t *self, const char *key, const char *const *choices,
                           size_t n, size_t *out, evr_err_t *err);

/*  A problem of key's value the typed getters cannot see (a lower bound
    of the binary's, a value checked against another): in err as theirs
    are, "KEY = \"VALUE\" (from SOURCE): " and fmt's text, and recorded
    for evr_config_report.  Returns EVR_ERR_CONFIG. */
evr_rc_t evr_config_problem(const evr_config_t *self, const char *key, evr_err_t *err,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*  Records msg (each of its lines) among the problems for
    evr_config_report: a part of the settings file a binary reads itself
    (evrun-runner's `hooks:`). */
void evr_config_note(const evr_config_t *self, const char *msg);

/*  The retention settings of the broker and the runner (README
    "Retention"): retention_max_age, retention_keep_per_pipeline,
    retention_output_max_age (durations, at most ten years; 0 off) and
    retention_interval (at least 100ms, at most a day), each checked
    whatever the others are (their errors recorded for evr_config_report);
    EVR_ERR_CONFIG when any is wrong. */
typedef struct {
    uint64_t max_age_ms, output_max_age_ms;
    uint32_t keep_per_pipeline, interval_ms;
} evr_config_retention_t;
evr_rc_t evr_config_retention(const evr_config_t *self, evr_config_retention_t *out,
                              evr_err_t *err);

/*  Prints "PROG: ERROR" for every problem found so far (each once): those
    of the file (evr_config_load_file, evr_config_layer: all of them, not
    only the first) and of the typed getters above that failed.  A binary
    that calls all its getters before giving up thus says every error of
    its settings at once.  Returns whether there was any. */
bool evr_config_report(const evr_config_t *self, const char *prog, FILE *out);

/*  Prints "key: value   # source" for every key. */
void evr_config_print(const evr_config_t *self, FILE *out);

/*  Adds the flag key = val to flags (nflags pairs, room for max): a key
    given before has its value replaced (the last wins), so a command
    line never holds more than one pair per key, however long (a key
    past the room was dropped in silence).  Returns the new count; a new
    key with no room left is a programmer error (max below the keys). */
size_t evr_config_flag(const char **flags, size_t nflags, size_t max, const char *key,
                       const char *val);

/*  Loads the layers over the defaults: the file (file, else
    evr_config_default_file(), else none), the environment, then flags
    (nflags key/value pairs: flags[2i] the key, flags[2i+1] the value);
    a state_dir still unset becomes evr_config_state_dir().  A bad file,
    or no file given and EVRUN_CONFIG set but empty, is EVR_ERR_CONFIG,
    returned after the other layers are loaded. */
evr_rc_t evr_config_layer(evr_config_t *self, const char *file, const char *const *flags,
                          size_t nflags, evr_err_t *err);

/*  Every key any evrun binary reads (NULL-terminated): the `also` of
    evr_config_load_file, so one evrun.yml serves them all. */
extern const char *const evr_config_known[];

/*  Keys whose value is not a single value, read by their own module from
    the same file (hooks: runner/evr_hooks.c): let through whatever their
    value is. */
extern const char *const evr_config_own[];

/*  Fills the unset endpoint keys present in the table (client_endpoint,
    runner_endpoint, events_endpoint): in local mode ipc:// sockets under
    STATE_DIR/bus, else the loopback TCP ports 7700, 7701, 7702. */
void evr_config_endpoints(evr_config_t *self, bool local);

/*  True while a local broker (started by `evrun-cli up` or `evrun-broker
    --local`) that has made state_dir/bus runs (the pid in its lock file,
    STATE/broker/evrun.lock), its client socket bound or not yet, or when
    that socket, state_dir/bus/clients, takes a connection (a broker whose
    pid is not visible here).  A socket left by a broker that exited or
    was killed (connection refused) is no broker. */
bool evr_config_local_up(const char *state_dir);

/*  The position (from 1) of the first empty item of the comma-separated
    list (nothing but spaces between two commas, or before the first or
    after the last: "a,,b" is 2, "a," is 2), 0 when none is (an empty
    list has no item). */
size_t evr_config_list_empty(const char *list);

/*  The config file to read: $EVRUN_CONFIG, else $XDG_CONFIG_HOME/evrun/
    evrun.yml (XDG_CONFIG_HOME unset or empty: ~/.config/evrun/evrun.yml)
    when it exists; NULL when none, and when EVRUN_CONFIG is set but empty
    (an error evr_config_layer records).  Caller frees. */
char *evr_config_default_file(void);

/*  The default state directory: $EVRUN_STATE_DIR, else $XDG_STATE_HOME/
    evrun, else ~/.local/state/evrun.  Caller frees. */
char *evr_config_state_dir(void);

#endif
