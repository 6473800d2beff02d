/*  evr_step_chan.c: a step's control channel (evr_chan.h) and the job's
    dynamic secrets.

    Each unit of a step gets a directory of its own under the runner's
    control directory, named by a hash of the unit's name (short, so that
    the socket's path fits a socket address, and the same after a
    restart, so that a recovered runner listens where the unit looks):
    DIR/control.sock and DIR/bin/evrun-job (a link to the runner's copy of
    the static client).  The executor shows DIR to the unit (podman:
    mounted read-only at /run/evrun; the process executor: EVRUN_CONTROL).
    Only that unit sees the directory, so a connection to it acts for
    that step of that job and no other.

    A secret a step registers (`evrun-job secret NAME`) is masked from
    the next byte on in every stream of every step of the job, and given
    to the steps created later as the variable NAME.  Its value never goes
    to the event log: it is appended (NAME and the value in hex) to an
    owner-only file of the job under the runner's job secrets directory,
    written before the answer, read again when recovery takes the job up,
    and removed when the job is done. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_chan.h"
#include "evr_codec.h"
#include "evr_engine_int.h"
#include "evr_paths.h"
#include "evr_sha256.h"

#define S_NAME_MAX 128
#define S_SECRETS_MAX 64    /* names per job */
#define S_VALUES_MAX 256    /* registrations per job (each a value masked from then on) */
/*  Most bytes of registered secrets given to one step as variables (NAME=VALUE
    and a NUL each): 64 names of 32 KiB would be 2 MiB, all of exec's
    ARG_MAX with an 8 MiB stack, and no later step could start ("exec
    /bin/sh: Argument list too long"); with EVRUN_OUT_*'s 1 MiB they fit. */
#define S_ENV_MAX (512u * 1024u)

/*  The unit's directory (caller owns it), or NULL without a control
    directory. */
static char *
s_dir(const evr_eng_step_t *st)
{
    const char *base = st->job->eng->opts.control_dir;
    if (!base || !st->unit)
        return NULL;
    char hex[EVR_SHA256_HEX];
    evr_sha256_t *h = evr_sha256_new();
    evr_sha256_update(h, st->unit, strlen(st->unit));
    evr_sha256_finish(&h, hex);
    return evr_asprintf("%s/%.16s", base, hex);
}

/*  The runner's copy of evrun-job in the control directory, made once
    per engine (a copy, so that each unit's link is on the same file
    system).  False when there is none (a warning, once). */
static bool
s_bin(evr_engine_t *e, const char *base)
{
    if (e->chan_bin)
        return e->chan_bin > 0;
    e->chan_bin = -1;
    const char *src = e->opts.job_bin;
    if (!src)
        return false;
    char *dst = evr_asprintf("%s/evrun-job", base);
    char *tmp = evr_asprintf("%s/evrun-job.new", base);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0755);
    bool ok = out >= 0;
    char buf[65536];
    ssize_t r;
    while (ok && (r = read(in, buf, sizeof buf)) != 0)
        ok = r > 0 && write(out, buf, (size_t) r) == r;
    if (out >= 0 && close(out))
        ok = false;
    if (ok && rename(tmp, dst) == 0)
        e->chan_bin = 1;
    else
        evr_eng_warn("the job client %s cannot be copied to %s (%s): steps get the control "
                     "channel without evrun-job", src, dst, strerror(errno));
    if (e->chan_bin < 0)
        unlink(tmp);
    if (in >= 0)
        close(in);
    free(dst);
    free(tmp);
    return e->chan_bin > 0;
}

/*  Whether name may be registered: a variable name, not one of evrun's
    nor one that changes how programs run. */
static bool
s_name_ok(const char *name, evr_err_t *err)
{
    static const char *const denied[] = { "PATH", "HOME", "IFS", "ENV", "BASH_ENV", "SHELL" };
    size_t n = strlen(name);
    bool ok = n > 0 && n <= S_NAME_MAX && !(name[0] >= '0' && name[0] <= '9');
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z')
             || (name[i] >= '0' && name[i] <= '9') || name[i] == '_';
    if (!ok) {
        evr_err_set(err, EVR_ERR_PROTO, "\"name\": \"%.64s\" is not a variable name (letters, "
                    "digits and _, not starting with a digit, at most %d)", name, S_NAME_MAX);
        return false;
    }
    bool bad = !strncmp(name, "EVRUN_", 6) || !strncmp(name, "LD_", 3);
    for (size_t i = 0; i < EVR_ARRAY_LEN(denied); i++)
        bad |= !strcmp(name, denied[i]);
    if (bad)
        evr_err_set(err, EVR_ERR_PROTO, "\"name\": %s is reserved (EVRUN_*, LD_*, PATH, HOME, "
                    "IFS, ENV, BASH_ENV, SHELL): choose another name", name);
    return !bad;
}

static char *
s_file(const evr_engine_t *e, const char *job_id)
{
    return e->opts.job_secrets_dir ? evr_asprintf("%s/%s", e->opts.job_secrets_dir, job_id) : NULL;
}

/*  Appends "NAME HEX\n" to the job's file and syncs it. */
static evr_rc_t
s_save(const evr_eng_job_t *job, const char *name, const char *value, evr_err_t *err)
{
    char *path = s_file(job->eng, job->id);
    if (!path)
        return evr_err_set(err, EVR_ERR_CONFIG, "this runner keeps no job secrets");
    evr_rc_t rc = evr_paths_dir(job->eng->opts.job_secrets_dir, true, err);
    int fd = rc ? -1 : evr_paths_open(path, O_WRONLY | O_CREAT | O_APPEND, err);
    if (!rc && fd < 0)
        rc = EVR_ERR_IO;
    if (!rc) {
        size_t vl = strlen(value), nl = strlen(name);
        char *line = evr_malloc(nl + 2 * vl + 3);
        memcpy(line, name, nl);
        line[nl] = ' ';
        for (size_t i = 0; i < vl; i++)
            snprintf(line + nl + 1 + 2 * i, 3, "%02x", (unsigned char) value[i]);
        line[nl + 1 + 2 * vl] = '\n';
        size_t len = nl + 2 * vl + 2;
        if (write(fd, line, len) != (ssize_t) len || fsync(fd))
            rc = evr_err_write(err, path, errno);
        free(line);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/*  The value masked from now on in every stream of the job, and NAME
    given to the steps created from now on. */
static void
s_add(evr_eng_job_t *job, const char *name, const char *value)
{
    job->dyn_count++;
    evr_strmap_set(&job->dyn_secrets, name, value);
    for (size_t i = 0; i < job->nsecrets; i++)
        if (!strcmp(job->secrets[i], value))
            return;
    job->secrets = evr_realloc(job->secrets, (job->nsecrets + 1) * sizeof(char *));
    job->secrets[job->nsecrets++] = evr_strdup(value);
    for (uint32_t i = 0; i < job->n; i++)
        for (int si = 0; si < 2; si++)
            if (job->steps[i].out[si].mask)
                evr_mask_add(job->steps[i].out[si].mask, value);
    if (job->n && job->steps[0].out[0].mask)
        evr_eng_job_masks_dropped(job, job->steps[0].out[0].mask);
}

void
evr_eng_secrets_load(evr_eng_job_t *job)
{
    char *path = s_file(job->eng, job->id);
    evr_err_t err;
    int fd = path ? evr_paths_open(path, O_RDONLY, &err) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (f && (len = getline(&line, &cap, f)) > 0) {
        char *sp = strchr(line, ' ');
        if (!sp || line[len - 1] != '\n' || (line + len - 1 - sp - 1) % 2)
            continue;   /* torn by a crash while written: not answered, not registered */
        *sp = '\0';
        size_t vl = (size_t) (line + len - 1 - sp - 1) / 2;
        char *value = evr_malloc(vl + 1);
        bool ok = vl > 0;
        for (size_t i = 0; ok && i < vl; i++) {
            unsigned v;
            ok = sscanf(sp + 1 + 2 * i, "%2x", &v) == 1 && v;
            value[i] = (char) v;
        }
        value[vl] = '\0';
        evr_err_t nerr;
        if (ok && s_name_ok(line, &nerr))
            s_add(job, line, value);
        free(value);
    }
    free(line);
    if (f)
        fclose(f);
    free(path);
}

void
evr_eng_secrets_remove(const evr_eng_job_t *job)
{
    char *path = s_file(job->eng, job->id);
    if (path)
        unlink(path);
    free(path);
}

/*  name taken out of env (the job's own value of a name whose registered
    one is left out: not given in its place, stale). */
static void
s_unset(evr_strmap_t *env, const char *name)
{
    for (uint32_t i = 0; i < env->n; i++)
        if (!strcmp(env->k[i], name)) {
            free(env->k[i]);
            free(env->v[i]);
            memmove(env->k + i, env->k + i + 1, (env->n - i - 1) * sizeof *env->k);
            memmove(env->v + i, env->v + i + 1, (env->n - i - 1) * sizeof *env->v);
            env->n--;
            return;
        }
}

void
evr_eng_secrets_env(const evr_eng_step_t *st, evr_strmap_t *env)
{
    if (st->spec->untrusted)
        return;
    const evr_strmap_t *dyn = &st->job->dyn_secrets;
    size_t total = 0, left_out = 0;
    char names[256] = "";
    for (uint32_t i = 0; i < dyn->n; i++) {
        size_t n = strlen(dyn->k[i]) + strlen(dyn->v[i]) + 2;
        if (n > S_ENV_MAX - total) {   /* in the order registered: the later ones */
            if (left_out++ < 8)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         left_out > 1 ? ", " : "", dyn->k[i]);
            s_unset(env, dyn->k[i]);
            continue;
        }
        total += n;
        evr_strmap_set(env, dyn->k[i], dyn->v[i]);
    }
    if (left_out)
        evr_eng_step_log(st, "%zu registered secret%s left out of its environment (over %u "
                         "bytes of them in all; masked all the same; not set, nor the job's "
                         "own of that name): %s%s", left_out,
                         left_out == 1 ? "" : "s", S_ENV_MAX, names, left_out > 8 ? ", ..." : "");
}

/* -------------------------------------------------------------- commands */

/*  hex[0,n) decoded (caller frees), or NULL when it is not hex pairs.
    A NUL decoded stops the string short: the caller's length check
    refuses it. */
static char *
s_unhex(const char *hex, size_t n)
{
    if (n % 2)
        return NULL;
    char *v = evr_malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int d[2];
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t) k];
            d[k] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        }
        if (d[0] < 0 || d[1] < 0) {
            free(v);
            return NULL;
        }
        v[i] = (char) (d[0] << 4 | d[1]);
    }
    v[n / 2] = '\0';
    return v;
}

/*  Whether name holds a secret of job, or value (the one it names), or
    what output masks of one (a line of a secret of several). */
static bool
s_name_holds_secret(const evr_eng_job_t *job, const char *name, const char *value)
{
    evr_mask_t *m = evr_mask_new((const char *const *) job->secrets, job->nsecrets);
    evr_mask_add(m, value);
    uint8_t *out = NULL;
    size_t len = 0, cap = 0;
    evr_mask_feed(m, (const uint8_t *) name, strlen(name), true, &out, &len, &cap);
    bool hit = len != strlen(name) || (len && memcmp(out, name, len));
    free(out);
    evr_mask_destroy(&m);
    return hit;
}

static evr_rc_t
s_cmd_secret(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    (void) ans;
    evr_eng_step_t *st = arg;
    evr_eng_job_t *job = st->job;
    const json_t *jn = json_object_get(req, "name"), *jv = json_object_get(req, "value");
    const json_t *jh = json_object_get(req, "value_hex");
    if (st->spec->untrusted)
        return evr_err_set(err, EVR_ERR_STATE, "step %s runs untrusted code: it cannot "
                           "register secrets", st->spec->name);
    if (!json_is_string(jn) || (jv && jh) || !(json_is_string(jv) ^ json_is_string(jh)))
        return evr_err_set(err, EVR_ERR_PROTO, "expected {\"cmd\": \"secret\", \"name\": NAME, "
                           "\"value\": VALUE} (or \"value_hex\": HEX instead of \"value\") with "
                           "strings NAME and VALUE");
    const char *name = json_string_value(jn);
    if (!s_name_ok(name, err))
        return EVR_ERR_PROTO;
    char *value = jv ? evr_strndup(json_string_value(jv), json_string_length(jv))
                     : s_unhex(json_string_value(jh), json_string_length(jh));
    size_t vl = jv ? json_string_length(jv) : json_string_length(jh) / 2;
    evr_rc_t rc = EVR_OK;
    if (!value)
        rc = evr_err_set(err, EVR_ERR_PROTO, "\"value_hex\": expected an even number of hex "
                         "digits (0-9, a-f, A-F)");
    else if (vl == 0 || vl > EVR_JOB_SECRET_MAX || strlen(value) != vl)
        rc = evr_err_set(err, EVR_ERR_PROTO, "\"value\": %zu bytes: expected 1 to %d bytes "
                         "without NUL", vl, EVR_JOB_SECRET_MAX);
    else if (job->spec->executor != EVR_EXECUTOR_PROCESS && !evr_utf8_valid(value, vl))
        /* podman takes a container's environment as JSON strings: the
           later steps would run without the variable, silently */
        rc = evr_err_set(err, EVR_ERR_PROTO, "the value is not valid UTF-8, which a container's "
                         "environment cannot carry (podman takes it as JSON text), so the "
                         "later steps of this podman pipeline could not get %s: not registered, "
                         "nor masked; register it encoded (base64, for one) and decode it in "
                         "the step", name);
    else if (s_name_holds_secret(job, name, value))
        rc = evr_err_set(err, EVR_ERR_PROTO, "\"name\": holds the value of a secret of job %s "
                         "(or of this one): a name cannot be masked (its secret.registered "
                         "event, the runner's log would show it)", job->id);
    else if (job->dyn_secrets.n >= S_SECRETS_MAX && !evr_strmap_get(&job->dyn_secrets, name))
        rc = evr_err_set(err, EVR_ERR_LIMIT, "job %s has %d secrets registered, the most it "
                         "may: register again under a name it has", job->id, S_SECRETS_MAX);
    else if (job->dyn_count >= S_VALUES_MAX)
        rc = evr_err_set(err, EVR_ERR_LIMIT, "job %s has registered %d values, the most it may "
                         "(each registration counts, a name registered again too): register "
                         "each value once", job->id, S_VALUES_MAX);
    else if ((rc = s_save(job, name, value, err)))
        evr_err_set(err, rc, "not registered: %s", err->msg);
    if (!rc) {
        s_add(job, name, value);
        evr_eng_emit(job, EVR_EV_SECRET_REGISTERED, st)->data.name = evr_strdup(name);
        evr_eng_step_log(st, "secret %s registered", name);
        evr_eng_test_pause("secret", st);   /* crash tests: registered, not answered */
    }
    if (value)
        memset(value, 0, vl);
    free(value);
    return rc;
}

static evr_rc_t s_cmd_hello(const json_t *req, json_t *ans, evr_err_t *err, void *arg);

static const evr_chan_cmd_t s_cmds[] = {
    { "hello", s_cmd_hello },
    { "secret", s_cmd_secret },
    { "trigger", evr_eng_cmd_trigger },
    { "result", evr_eng_cmd_result },
    { "running", evr_eng_cmd_running },
    { NULL, NULL },
};

static evr_rc_t
s_cmd_hello(const json_t *req, json_t *ans, evr_err_t *err, void *arg)
{
    (void) req;
    (void) err;
    evr_eng_step_t *st = arg;
    json_t *cmds = json_array();
    for (const evr_chan_cmd_t *c = s_cmds; c->name; c++)
        json_array_append_new(cmds, json_string(c->name));
    json_object_set_new(ans, "protocol", json_integer(1));
    json_object_set_new(ans, "job", json_string(st->job->id));
    json_object_set_new(ans, "pipeline", json_string(st->job->spec->pipeline
                                                     ? st->job->spec->pipeline : ""));
    json_object_set_new(ans, "step", json_string(st->spec->name));
    json_object_set_new(ans, "attempt", json_integer(st->attempt));
    json_object_set_new(ans, "commands", cmds);
    return EVR_OK;
}

/* --------------------------------------------------------------- opening */

/*  Any user of the step's unit reaches its channel (a container's USER
    other than root maps to another uid of the host): the unit's directory
    and bin/ searchable by all (not listable, not writable), the socket
    writable by all.  Nobody else reaches them: control_dir above is
    private (evr_paths_dir) and the unit's directory is mounted into its
    unit only. */
static evr_rc_t
s_open_up(const char *dir, const char *bin, evr_err_t *err)
{
    char *sock = evr_asprintf("%s/%s", dir, EVR_CHAN_SOCKET);
    evr_rc_t rc = EVR_OK;
    if (chmod(dir, 0711) || chmod(bin, 0711) || chmod(sock, 0666))
        rc = evr_err_set(err, EVR_ERR_IO, "%s: chmod: %s", dir, strerror(errno));
    free(sock);
    return rc;
}

const char *
evr_eng_chan_open(evr_eng_step_t *st)
{
    evr_engine_t *e = st->job->eng;
    if (st->chan)
        return st->chan_dir;
    char *dir = s_dir(st);
    if (!dir)
        return NULL;
    evr_err_t err;
    char *bin = evr_asprintf("%s/bin", dir);
    char *link_to = evr_asprintf("%s/bin/evrun-job", dir);
    char *copy = evr_asprintf("%s/evrun-job", e->opts.control_dir);
    evr_rc_t rc = evr_paths_dir(e->opts.control_dir, true, &err);
    if (!rc && mkdir(dir, 0700) && errno != EEXIST)
        rc = evr_err_set(&err, EVR_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!rc)
        rc = evr_paths_dir(dir, false, &err);   /* ours, private, not a link */
    if (!rc && mkdir(bin, 0700) && errno != EEXIST)
        rc = evr_err_set(&err, EVR_ERR_IO, "%s: %s", bin, strerror(errno));
    if (!rc && s_bin(e, e->opts.control_dir) && link(copy, link_to) && errno != EEXIST)
        evr_eng_warn("%s: %s (the step has no evrun-job)", link_to, strerror(errno));
    if (!rc && !(st->chan = evr_chan_new(e->loop, dir, s_cmds, st, &err)))
        rc = EVR_ERR_IO;
    if (!rc && s_open_up(dir, bin, &err)) {
        evr_chan_destroy(&st->chan);
        rc = EVR_ERR_IO;
    }
    if (rc) {
        evr_eng_warn("step %s of job %s runs without its control channel: %s", st->spec->name,
                     st->job->id, err.msg);
        free(dir);
    }
    else {
        free(st->chan_dir);
        st->chan_dir = dir;
    }
    free(bin);
    free(link_to);
    free(copy);
    return st->chan ? st->chan_dir : NULL;
}

void
evr_eng_chan_close(evr_eng_step_t *st)
{
    evr_chan_destroy(&st->chan);
    char *dir = st->chan_dir ? st->chan_dir : s_dir(st);
    st->chan_dir = NULL;
    if (!dir)
        return;
    char *p = evr_asprintf("%s/bin/evrun-job", dir);
    unlink(p);
    free(p);
    p = evr_asprintf("%s/bin", dir);
    rmdir(p);
    free(p);
    p = evr_asprintf("%s/%s", dir, EVR_CHAN_SOCKET);
    unlink(p);   /* a socket an earlier runner left */
    free(p);
    rmdir(dir);
    free(dir);
}
