/*  evrun-replay: read any runner's or broker's event store, read-only.

    Lists jobs, shows one job's steps and events, prints raw events, the
    stored output, the state as of a seq, and verifies the stored
    projections against a rebuild from the events alone.  Opens the store
    with MDB_RDONLY, so it runs beside a live writer.
*/
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evr_json.h"
#include "evr_getopt.h"
#include "evr_prune.h"
#include "evr_rebuild.h"
#include "evr_store.h"
#include "evr_ulid.h"

/*  Set by SIGINT/SIGTERM: the views stop at their next row, so that the
    store is closed (its reader slot freed) rather than left by a killed
    process.  A second signal ends the process at once. */
static volatile sig_atomic_t s_interrupted;

static void
s_on_signal(int sig)
{
    s_interrupted = sig;
    signal(sig, SIG_DFL);
}

/*  True when the views should stop: interrupted, or stdout's reader gone
    (SIGPIPE is ignored: a write then fails with EPIPE). */
static bool
s_stop(void)
{
    return s_interrupted || ferror(stdout);
}

typedef struct {
    bool json;
    bool as_of_given;   /* --as-of 0 is a state too: before any event, no jobs */
    bool to_given;      /* --to 0 likewise: no event */
    uint64_t from, to, as_of;
} s_opts_t;

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-replay DIR [--json] [--as-of SEQ]\n"
            "       evrun-replay DIR --job ID [--json] [--as-of SEQ]\n"
            "       evrun-replay DIR --events [--from SEQ] [--to SEQ] [--json]\n"
            "       evrun-replay DIR --output ID[/STEP] [--json]\n"
            "       evrun-replay DIR --verify [--json]\n"
            "       evrun-replay DIR --compact OUT [--json]\n"
            "\n"
            "Reads the event store in DIR (a runner's --state-dir store, or a broker's)\n"
            "read-only; safe while its owner is writing.\n"
            "\n"
            "  (no view)         a table of jobs: id, pipeline, status, steps, start, duration\n"
            "  --job ID          the job's steps (status, exit code, duration, container,\n"
            "                    outputs) and its events in order\n"
            "  --events          the raw events, one per line (--from/--to bound the seq;\n"
            "                    --to 0: none, as --as-of 0)\n"
            "  --as-of SEQ       the jobs (or --job) rebuilt from events up to SEQ only\n"
            "                    (0: before the first event, so no jobs; jobs retention\n"
            "                    removed are not among them, a note on stderr says)\n"
            "  --output ID[/STEP] the stored (masked) output; with /STEP the raw bytes\n"
            "                    of that step, else every line prefixed with its step\n"
            "  --verify          rebuild every job from the events alone and compare with\n"
            "                    the stored projections; print each difference (every\n"
            "                    event decoded whole, the by_job index checked against\n"
            "                    the events, no event past the last seq the store\n"
            "                    records, each database's pages checked first)\n"
            "  --compact OUT     write a compacted copy of the store into OUT (made when\n"
            "                    missing; it must hold no data.mdb): the pages in use\n"
            "                    only, so the file is as small as the store can be (the\n"
            "                    store's own file never shrinks: retention frees pages\n"
            "                    for reuse); a snapshot of one moment.  Put OUT/data.mdb\n"
            "                    in place of DIR/data.mdb while no process uses DIR\n"
            "  --json            JSON lines instead of tables, for every view\n"
            "  -h, --help        this text\n"
            "  --version         print the version, exit (given alone)\n"
            "\n"
            "exit status: 0 ok; 1 a difference (--verify), or no such job (or step of\n"
            "it) in the store, or one removed while read (what was printed, cut short);\n"
            "2 usage error (an unknown option, a bad SEQ, --from above --to, an ID that\n"
            "is no job id, a STEP no step could be named), or DIR missing, not an evrun\n"
            "store or not searchable by this user, or a store error (an event that does\n"
            "not decode, a damaged page of a database the view walks whole: each view\n"
            "checks those first; --compact: OUT unusable, a full disk), or stdout not\n"
            "writable;\n"
            "a reader that stops reading (| head) ends it quietly, status 0\n");
}

static void
s_help_cb(FILE *out, const void *arg)
{
    (void) arg;
    s_help(out);
}

static void
s_span(uint64_t from, uint64_t to, char *buf, size_t size)
{
    if (!from || !to || to < from) {
        snprintf(buf, size, "-");
        return;
    }
    uint64_t ms = (to - from) / 1000000u;
    snprintf(buf, size, "%llu.%03llus", (unsigned long long) (ms / 1000),
             (unsigned long long) (ms % 1000));
}

static void
s_print_json(const evr_rectype_t *type, const void *rec)
{
    json_t *j = evr_json_from_rec(type, rec);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

/*  True when msg names dir as a path: after a space or at its start, and
    before ':', '/', a space or its end (not a word that contains it: a
    directory "c", or "spec" in "event.data.spec.steps"). */
static bool
s_names_dir(const char *msg, const char *dir)
{
    size_t n = strlen(dir);
    for (const char *p = msg; n && (p = strstr(p, dir)); p++) {
        char after = p[n];
        if ((p == msg || p[-1] == ' ')
            && (after == ':' || after == '/' || after == ' ' || after == '\0'))
            return true;
    }
    return false;
}

/*  A store's error, naming DIR when the message does not (LMDB's own, as
    "store: mdb_dbi_open meta: MDB_CORRUPTED: ...", name no directory). */
static void
s_store_error(const char *dir, const evr_err_t *err)
{
    if (s_names_dir(err->msg, dir))
        fprintf(stderr, "evrun-replay: %s\n", err->msg);
    else
        fprintf(stderr, "evrun-replay: %s: %s\n", dir, err->msg);
}

/*  For a job the store does not know: says when retention removed jobs
    up to one as old as id (ids order by creation), so it may have been one. */
static void
s_pruned_note(evr_store_t *store, const char *id)
{
    evr_prune_meta_t pm;
    evr_err_t ignored;
    if (evr_store_pruned(store, &pm, &ignored) == EVR_OK && pm.upto[0] && strcmp(id, pm.upto) <= 0)
        fprintf(stderr, "evrun-replay: note: retention removed %llu finished jobs of this "
                "store, up to %s: this may have been one\n", (unsigned long long) pm.jobs,
                pm.upto);
}

/*  --as-of: the jobs retention removed are in no rebuild (their events
    went with them), so a state as of a seq lacks those that existed then. */
static void
s_pruned_asof_note(evr_store_t *store, uint64_t as_of)
{
    evr_prune_meta_t pm;
    evr_err_t ignored;
    if (evr_store_pruned(store, &pm, &ignored) == EVR_OK && pm.jobs)
        fprintf(stderr, "evrun-replay: note: retention removed %llu finished jobs of this "
                "store, up to %s: any of them that existed at seq %llu is not shown\n",
                (unsigned long long) pm.jobs, pm.upto, (unsigned long long) as_of);
}

/*  After a read of job id's events: true (said) when retention removed
    the job meanwhile, so that what was printed of it is cut short (the
    read goes on in new transactions, each seeing the log as it is then). */
static bool
s_removed_while_read(evr_store_t *store, const char *id, const char *what)
{
    bool has = true;
    evr_err_t ignored;
    if (evr_store_has_job(store, id, &has, &ignored) != EVR_OK || has)
        return false;
    fprintf(stderr, "evrun-replay: job %s was removed by retention while it was read: %s "
            "above may be cut short\n", id, what);
    return true;
}

/* ----------------------------------------------------------------- jobs */

static void
s_jobs_header(void)
{
    printf("%-26s  %-20s  %-10s  %-5s  %-19s  %s\n", "ID", "PIPELINE", "STATUS", "STEPS",
           "START", "DURATION");
}

static int
s_job_row(const evr_job_t *job, void *arg)
{
    const s_opts_t *o = arg;
    if (s_stop())
        return 1;
    if (o->json) {
        s_print_json(&evr_job_type, job);
        return 0;
    }
    char start[32], dur[32], steps[16];
    evr_time_format(job->started ? job->started : job->created, start, sizeof start);
    s_span(job->started, job->finished, dur, sizeof dur);
    snprintf(steps, sizeof steps, "%u/%u", evr_job_steps_done(job), job->steps.n);
    printf("%-26s  %-20.20s  %-10s  %-5s  %-19s  %s%s\n", job->id,
           job->pipeline ? job->pipeline : "-", evr_job_status_name(job->status), steps, start,
           dur, job->compacted ? "  (compacted)" : "");
    return 0;
}

static int
s_list(evr_store_t *store, const s_opts_t *o)
{
    evr_err_t err;
    if (!o->json)
        s_jobs_header();
    if (!o->as_of_given) {
        if (evr_store_jobs(store, EVR_JOB_NONE, s_job_row, (void *) o, &err)) {
            s_store_error(evr_store_dir(store), &err);
            return 2;
        }
        return 0;
    }
    if (!o->as_of)   /* evr_rebuild_new takes 0 as "all": no event applied is no job */
        return 0;
    evr_rebuild_t *rb;
    if (evr_rebuild_new(store, o->as_of, NULL, NULL, &rb, &err)) {
        s_store_error(evr_store_dir(store), &err);
        return 2;
    }
    for (size_t i = 0; i < evr_rebuild_count(rb); i++)
        s_job_row(evr_rebuild_at(rb, i), (void *) o);
    evr_rebuild_destroy(&rb);
    s_pruned_asof_note(store, o->as_of);
    return 0;
}

/* --------------------------------------------------------------- events */

static int
s_event_line(const evr_event_t *ev, void *arg)
{
    const s_opts_t *o = arg;
    if ((o->to && ev->seq > o->to) || s_stop())
        return 1;
    if (o->json) {
        s_print_json(&evr_event_type, ev);
        return 0;
    }
    char t[32];
    evr_time_format(ev->time, t, sizeof t);
    json_t *d = evr_json_from_rec(evr_evtype_data(evr_event_kind(ev)), &ev->data);
    char *ds = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%8llu  %s.%03u  %-26s  %4u  %-20s  %s\n", (unsigned long long) ev->seq, t,
           (unsigned) (ev->time / 1000000u % 1000), ev->job ? ev->job : "-", ev->jseq, evr_evtype_name(evr_event_kind(ev)),
           ds ? ds : "{}");
    free(ds);
    json_decref(d);
    return 0;
}

static int
s_events(evr_store_t *store, const s_opts_t *o)
{
    evr_err_t err;
    if (o->to_given && !o->to)
        return 0;   /* --to 0: before the first event (as --as-of 0), none */
    if (evr_store_scan(store, o->from, o->to, s_event_line, (void *) o, &err)) {
        s_store_error(evr_store_dir(store), &err);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ job */

static void
s_steps_table(const evr_job_t *job)
{
    const char *cancel = job->cancel_forced      ? " (cancel requested twice)"
                       : job->cancel_requested ? " (cancel requested)"
                                               : "";
    printf("job %s  pipeline %s  status %s%s\n", job->id, job->pipeline ? job->pipeline : "-",
           evr_job_status_name(job->status), cancel);
    if (job->reason)
        printf("reason: %s\n", job->reason);
    /* STEP as wide as the longest name (a matrix combination's is up to 64
       bytes: cut, two of them would read the same); STATUS fits the
       longest, "timed_out (allowed)" */
    int w = 24;
    for (uint32_t i = 0; i < job->steps.n; i++) {
        const char *name = evr_job_step(job, i)->name;
        if (name && strlen(name) > (size_t) w)
            w = (int) strlen(name);
    }
    printf("\n%-*s  %-19s  %-7s  %4s  %10s  %s\n", w, "STEP", "STATUS", "ATTEMPT", "EXIT",
           "DURATION", "CONTAINER");
    for (uint32_t i = 0; i < job->steps.n; i++) {
        const evr_stepstate_t *st = evr_job_step(job, i);
        char exit[16] = "-", dur[32] = "-";
        bool ran = st->status >= EVR_STEP_SUCCEEDED && st->status <= EVR_STEP_LOST;
        if (ran) {
            if (st->exit_code != EVR_STEP_NO_EXIT)   /* "-" for a step that never started */
                snprintf(exit, sizeof exit, "%lld", (long long) st->exit_code);
            if (st->started)   /* one that never started had no duration: "-" */
                snprintf(dur, sizeof dur, "%llu.%03llus",
                         (unsigned long long) (st->duration / 1000),
                         (unsigned long long) (st->duration % 1000));
        }
        char status[32];
        snprintf(status, sizeof status, "%s%s", evr_step_status_name(st->status),
                 st->allowed ? " (allowed)" : "");
        printf("%-*s  %-19s  %7u  %4s  %10s  %s\n", w, st->name ? st->name : "-", status, st->attempt, exit, dur,
               st->container ? st->container : "-");
    }
    for (uint32_t i = 0; i < job->steps.n; i++) {   /* step.outputs, masked */
        const evr_stepstate_t *st = evr_job_step(job, i);
        if (st->outputs.n)
            printf("\noutputs of %s:\n", st->name);
        for (uint32_t k = 0; k < st->outputs.n; k++)
            printf("  %s=%s\n", st->outputs.k[k], st->outputs.v[k]);
    }
    printf("\n");
}

static int
s_job(evr_store_t *store, const char *id, const s_opts_t *o)
{
    evr_err_t err;
    evr_job_t job = { 0 };
    evr_rebuild_t *rb = NULL;
    evr_rc_t rc;
    const evr_job_t *shown = &job;
    if (o->as_of_given) {
        rc = o->as_of ? evr_rebuild_new(store, o->as_of, NULL, NULL, &rb, &err) : EVR_OK;
        if (rc == EVR_OK && !(shown = rb ? evr_rebuild_job(rb, id) : NULL))
            rc = evr_err_set(&err, EVR_ERR_NOTFOUND, "no job %s as of seq %llu", id,
                             (unsigned long long) o->as_of);
    }
    else
        rc = evr_store_get_job(store, id, &job, &err);
    int status = 0;
    if (rc) {
        if (rc == EVR_ERR_NOTFOUND) {   /* no such job: the store is fine */
            fprintf(stderr, "evrun-replay: %s\n", err.msg);
            s_pruned_note(store, id);
        }
        else
            s_store_error(evr_store_dir(store), &err);
        status = rc == EVR_ERR_NOTFOUND ? 1 : 2;
        goto out;
    }
    if (o->json)
        s_print_json(&evr_job_type, shown);
    else {
        s_steps_table(shown);
        printf("%8s  %-23s  %-26s  %4s  %-20s  %s\n", "SEQ", "TIME", "JOB", "JSEQ", "TYPE",
               "DATA");
    }
    s_opts_t eo = *o;
    eo.to = o->as_of;
    if (shown->compacted && !o->json)
        printf("(events removed by retention; the state above is the kept summary)\n");
    rc = evr_store_job_events(store, id, 1, s_event_line, &eo, &err);
    if ((rc == EVR_OK || rc == EVR_ERR_NOTFOUND) && s_removed_while_read(store, id, "its events"))
        status = 1;
    else if (rc) {
        s_store_error(evr_store_dir(store), &err);
        status = 2;
    }
out:
    evr_rebuild_destroy(&rb);
    evr_rec_free(&evr_job_type, &job);
    return status;
}

/* --------------------------------------------------------------- output */

/*  --json: the last bytes of a chunk that begin a UTF-8 character the
    chunk cuts (its next bytes open the stream's next chunk), per stream
    of the step and attempt printed last. */
typedef struct {
    uint8_t b[4];
    size_t n;
} s_carry_t;

typedef struct {
    const s_opts_t *o;
    bool raw;
    char last_step[128];
    bool at_line_start;
    uint32_t last_attempt;
    int last_stream;        /* prefixed lines: 0 stdout, 1 stderr */
    s_carry_t carry[2];    /* stdout, stderr */
} s_out_t;

/*  How many of the last bytes of p[0..len) begin a character that needs
    more bytes than are left (0 when it ends on a boundary). */
static size_t
s_utf8_tail(const uint8_t *p, size_t len)
{
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        uint8_t c = p[len - k];
        if ((c & 0xc0) == 0x80)
            continue;   /* a continuation byte: its lead is further back */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

static void
s_output_json(const char *step, uint32_t attempt, const char *stream, const uint8_t *bytes,
              size_t len)
{
    json_t *j = json_pack("{s:s, s:i, s:s, s:o}", "step", step, "attempt",
                          (json_int_t) attempt, "stream", stream, "bytes",
                          evr_json_bin(bytes, len));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

/*  Prints what a stream's carry holds on its own (its chunks ended inside
    a character: base64). */
static void
s_carry_flush(s_out_t *ctx)
{
    for (int i = 0; i < 2; i++) {
        if (ctx->carry[i].n)
            s_output_json(ctx->last_step, ctx->last_attempt, i ? "stderr" : "stdout",
                          ctx->carry[i].b, ctx->carry[i].n);
        ctx->carry[i].n = 0;
    }
}

/*  A JSON line per chunk, "bytes" a string when the chunk is UTF-8 text
    (as evrun-cli logs --json prints a step.output's bytes, else
    {"base64": ...}): a character cut at a chunk's end is carried into the
    stream's next chunk, so that text stays text. */
static void
s_output_chunk_json(s_out_t *ctx, const char *step, uint32_t attempt, const char *stream,
                    const uint8_t *bytes, size_t len)
{
    if (strcmp(ctx->last_step, step) != 0 || ctx->last_attempt != attempt) {
        s_carry_flush(ctx);
        snprintf(ctx->last_step, sizeof ctx->last_step, "%s", step);
        ctx->last_attempt = attempt;
    }
    s_carry_t *c = &ctx->carry[strcmp(stream, "stderr") == 0];
    uint8_t *buf = NULL;
    if (c->n) {
        buf = evr_malloc(c->n + len);
        memcpy(buf, c->b, c->n);
        memcpy(buf + c->n, bytes, len);
        len += c->n;
        bytes = buf;
        c->n = 0;
    }
    size_t tail = s_utf8_tail(bytes, len);   /* <= 3, and a chunk of only those waits */
    memcpy(c->b, bytes + len - tail, tail);
    c->n = tail;
    len -= tail;
    if (len)
        s_output_json(step, attempt, stream, bytes, len);
    free(buf);
}

static int
s_output_chunk(const char *step, uint32_t attempt, const char *stream, const uint8_t *bytes,
               size_t len, void *arg)
{
    s_out_t *ctx = arg;
    if (s_stop())
        return 1;
    if (ctx->o->json) {
        s_output_chunk_json(ctx, step, attempt, stream, bytes, len);
        return 0;
    }
    if (ctx->raw) {
        fwrite(bytes, 1, len, stdout);
        return 0;
    }
    /* another step's, attempt's or stream's bytes end a line left open:
       its rest is a line of its own, as --exec and evrun-cli logs print it */
    int si = strcmp(stream, "stderr") == 0;
    if (strcmp(ctx->last_step, step) != 0 || ctx->last_attempt != attempt
        || ctx->last_stream != si) {
        if (!ctx->at_line_start)
            fputc('\n', stdout);
        snprintf(ctx->last_step, sizeof ctx->last_step, "%s", step);
        ctx->last_attempt = attempt;
        ctx->last_stream = si;
        ctx->at_line_start = true;
    }
    for (size_t i = 0; i < len && !s_stop(); i++) {   /* (a write a signal cut: no more) */
        if (ctx->at_line_start)
            printf("%s | ", step);
        fputc(bytes[i], stdout);
        ctx->at_line_start = bytes[i] == '\n';
    }
    return 0;
}

static int
s_output(evr_store_t *store, const char *spec, const s_opts_t *o)
{
    char id[EVR_ULID_LEN + 1];
    const char *slash = strchr(spec, '/');
    size_t idlen = slash ? (size_t) (slash - spec) : strlen(spec);
    if (idlen != EVR_ULID_LEN) {
        fprintf(stderr, "evrun-replay: --output %s: expected JOB_ID or JOB_ID/STEP\n", spec);
        return 2;
    }
    memcpy(id, spec, idlen);
    id[idlen] = '\0';
    const char *step = slash ? slash + 1 : NULL;
    evr_job_t job = { 0 };
    evr_err_t err;
    evr_rc_t rc = evr_store_get_job(store, id, &job, &err);
    bool unknown = rc == EVR_ERR_NOTFOUND;   /* the job, not a step of it */
    if (rc == EVR_OK && step && !evr_job_find_step(&job, step))
        rc = evr_err_set(&err, EVR_ERR_NOTFOUND, "job %s has no step \"%s\"", id, step);
    if (rc == EVR_OK && job.output_dropped)
        fprintf(stderr, "evrun-replay: note: the output of job %s was removed by retention\n",
                id);
    evr_rec_free(&evr_job_type, &job);
    if (rc) {
        if (rc == EVR_ERR_NOTFOUND)
            fprintf(stderr, "evrun-replay: %s\n", err.msg);
        else
            s_store_error(evr_store_dir(store), &err);
        if (unknown)
            s_pruned_note(store, id);
        return rc == EVR_ERR_NOTFOUND ? 1 : 2;
    }
    s_out_t ctx = { .o = o, .raw = step != NULL, .at_line_start = true };
    rc = evr_store_output(store, id, step, s_output_chunk, &ctx, &err);
    if (o->json && !s_stop())
        s_carry_flush(&ctx);
    if (!ctx.raw && !o->json && !ctx.at_line_start)
        fputc('\n', stdout);
    if ((rc == EVR_OK || rc == EVR_ERR_NOTFOUND) && s_removed_while_read(store, id, "its output"))
        return 1;
    if (rc) {
        s_store_error(evr_store_dir(store), &err);
        return 2;
    }
    return 0;
}

/* --------------------------------------------------------------- verify */

static void
s_difference(const char *line, void *arg)
{
    const s_opts_t *o = arg;
    if (o->json) {
        json_t *j = json_pack("{s:s}", "difference", line);
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
    }
    else
        printf("%s\n", line);
}

static int
s_verify(evr_store_t *store, const s_opts_t *o)
{
    evr_rebuild_verify_t v;
    evr_err_t err;
    if (evr_rebuild_verify(store, s_difference, (void *) o, &v, &err)) {
        s_store_error(evr_store_dir(store), &err);
        return 2;
    }
    if (o->json)
        printf("{\"events\":%llu,\"jobs\":%llu,\"compacted\":%llu,\"changed\":%llu,"
               "\"differences\":%llu,\"pruned\":%llu}\n",
               (unsigned long long) v.events, (unsigned long long) v.jobs,
               (unsigned long long) v.compacted, (unsigned long long) v.changed,
               (unsigned long long) v.differences, (unsigned long long) v.pruned);
    else
        printf("%s: %llu events, %llu jobs verified, %llu compacted, %llu changed while "
               "checking, %llu differences\n",
               v.differences ? "FAILED" : "verified", (unsigned long long) v.events,
               (unsigned long long) v.jobs, (unsigned long long) v.compacted,
               (unsigned long long) v.changed, (unsigned long long) v.differences);
    if (!o->json && v.pruned)
        printf("(%llu earlier jobs were removed by retention)\n", (unsigned long long) v.pruned);
    return v.differences ? 1 : 0;
}

/* -------------------------------------------------------------- compact */

static int
s_compact(evr_store_t *store, const char *out, const s_opts_t *o)
{
    uint64_t bytes = 0;
    evr_err_t err;
    if (evr_store_compact_copy(store, out, &bytes, &err)) {
        s_store_error(evr_store_dir(store), &err);
        return 2;
    }
    char *was_path = evr_asprintf("%s/data.mdb", evr_store_dir(store));
    struct stat sb;
    unsigned long long was = stat(was_path, &sb) == 0 ? (unsigned long long) sb.st_size : 0;
    free(was_path);
    if (o->json)
        printf("{\"bytes\":%llu,\"was_bytes\":%llu}\n", (unsigned long long) bytes, was);
    else
        printf("compacted: %s/data.mdb, %llu bytes (the store's file: %llu bytes)\n", out,
               (unsigned long long) bytes, was);
    return 0;
}

/* ----------------------------------------------------------------- main */

/*  The exit status once the store is closed: a signal's own (the default
    action, now that no read holds a slot of the store), 0 when stdout's
    reader went away (EPIPE: `| head`), 2 when stdout could not be
    written. */
static int
s_finish(int status)
{
    if (s_interrupted)
        raise(s_interrupted);   /* its handler was reset to the default */
    if (fflush(stdout) == 0 && !ferror(stdout))
        return status;
    int e = errno;
    struct pollfd p = { .fd = STDOUT_FILENO, .events = POLLOUT };
    if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
        return 0;   /* a pipe whose reader is gone (EPIPE) */
    fprintf(stderr, "evrun-replay: writing to stdout: %s\n", strerror(e));
    return 2;
}

/*  A SEQ: decimal digits only (no sign, no space), at most UINT64_MAX. */
static bool
s_seq_arg(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!isdigit((unsigned char) *s) || *end || errno) {
        fprintf(stderr, "evrun-replay: %s \"%s\": expected a sequence number (digits only, "
                "at most %llu)\n", opt, s, (unsigned long long) UINT64_MAX);
        return false;
    }
    *out = v;
    return true;
}

/*  The job id of --job ID or --output ID[/STEP], upper-cased in place:
    false (said) when it is none, or STEP no step name (--job ID/x and
    --output ID/ were looked up, and said as no job or no step, exit 1);
    a usage error, as evrun-cli's. */
static bool
s_id_arg(const char *opt, char *arg)
{
    char *slash = strchr(arg, '/');
    bool output = !strcmp(opt, "--output");
    if (slash && !output) {
        fprintf(stderr, "evrun-replay: %s %s: not a job id (a job id alone: %d characters; "
                "--output ID/STEP for a step's output)\n", opt, arg, EVR_ULID_LEN);
        return false;
    }
    if (slash && !evr_spec_step_name_ok(slash + 1)) {
        fprintf(stderr, "evrun-replay: %s %s: \"%s\" is no step name: letters, digits, _ . - "
                "(at most %d bytes), or one combination of a matrix step, NAME[K=v,...]\n",
                opt, arg, slash + 1, EVR_SPEC_MAX_NAME);
        return false;
    }
    size_t n = slash ? (size_t) (slash - arg) : strlen(arg);
    char id[EVR_ULID_LEN + 2] = "";
    evr_err_t err;
    if (n <= EVR_ULID_LEN)
        memcpy(id, arg, n);
    else
        memcpy(id, arg, EVR_ULID_LEN + 1);   /* too long: parse says so */
    if (evr_ulid_parse(id, NULL, &err)) {
        fprintf(stderr, "evrun-replay: %s %s: not a job id (%s)\n", opt, arg, err.msg);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        arg[i] = (char) toupper((unsigned char) arg[i]);
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "job", required_argument, NULL, 'j' }, { "events", no_argument, NULL, 'e' },
        { "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' },
        { "as-of", required_argument, NULL, 'a' }, { "output", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'J' }, { "verify", no_argument, NULL, 'v' },
        { "compact", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    s_opts_t o = { 0 };
    char *job = NULL, *output = NULL, *compact = NULL;
    bool events = false, verify = false;
    int c, views;
    while ((c = evr_getopt("evrun-replay", argc, argv, "h", opts)) != -1) {
        switch (c) {
        case 'j': job = optarg; break;      /* given twice: the last, as any option */
        case 'e': events = true; break;
        case 'o': output = optarg; break;
        case 'v': verify = true; break;
        case 'c': compact = optarg; break;
        case 'J': o.json = true; break;
        case 'f': if (!s_seq_arg("--from", optarg, &o.from)) return 2; break;
        case 't':
            if (!s_seq_arg("--to", optarg, &o.to))
                return 2;
            o.to_given = true;
            break;
        case 'a':
            if (!s_seq_arg("--as-of", optarg, &o.as_of))
                return 2;
            o.as_of_given = true;
            break;
        case 'h': s_help(stdout); return 0;
        default: evr_usage_brief("evrun-replay", s_help_cb, NULL); return 2;
        }
    }
    views = (job != NULL) + events + (output != NULL) + verify + (compact != NULL);
    if (optind != argc - 1 || views > 1) {
        fprintf(stderr, optind != argc - 1 ? "evrun-replay: give exactly one DIR\n"
                                           : "evrun-replay: choose one of --job, --events, "
                                             "--output, --verify, --compact\n");
        evr_usage_brief("evrun-replay", s_help_cb, NULL);
        return 2;
    }
    if ((job && !s_id_arg("--job", job)) || (output && !s_id_arg("--output", output)))
        return 2;
    if (!*argv[optind]) {   /* else "store: : No such file", naming nothing */
        fprintf(stderr, "evrun-replay: \"\": expected a state directory (DIR, where a store "
                "is)\n");
        return 2;
    }
    if (o.to_given && o.from > o.to) {
        fprintf(stderr, "evrun-replay: --from %llu is above --to %llu: no event lies between\n",
                (unsigned long long) o.from, (unsigned long long) o.to);
        return 2;
    }
    if ((o.from || o.to_given) && !events) {
        fprintf(stderr, "evrun-replay: --from and --to go with --events\n");
        return 2;
    }
    if (compact && !*compact) {
        fprintf(stderr, "evrun-replay: --compact \"\": expected a directory for the copy\n");
        return 2;
    }
    if (o.as_of_given && (events || output || verify || compact)) {
        fprintf(stderr, "evrun-replay: --as-of goes with the job list or --job\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);   /* a reader gone: EPIPE, the store closed, a quiet end */
    /* no SA_RESTART: a write blocked on a reader that does not read (a
       full pipe, `| less` at its prompt) ends with EINTR, the view stops
       there (s_stop); signal()'s restarted it, so one Ctrl-C did nothing */
    struct sigaction sa = { .sa_handler = s_on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    evr_store_t *store;
    evr_err_t err;
    if (evr_store_open(argv[optind], EVR_STORE_RDONLY, &store, &err)) {
        s_store_error(argv[optind], &err);
        return 2;
    }
    /* the databases a view walks, their pages checked first: LMDB trusts
       them, and a damaged one crashed the view (--verify checks every
       database and says each difference; --compact, before its copy).
       A view that reads a part of the events and their index checks the
       projections only: a check reads every page of a tree (0.45 s over
       a million events, for a read of 0.01 s) */
    static const char *const for_list[] = { "jobs", "meta", NULL };
    static const char *const for_events[] = { "events", "meta", NULL };
    bool part = job || output || (events && (o.from || o.to_given));
    const char *const *dbs = verify || compact ? NULL
                           : part              ? for_list
                           : events || o.as_of_given ? for_events
                                               : for_list;
    int status;
    if (dbs && evr_store_check_pages(store, dbs, "not read", &err)) {
        s_store_error(argv[optind], &err);
        status = 2;
    }
    else if (job)
        status = s_job(store, job, &o);
    else if (events)
        status = s_events(store, &o);
    else if (output)
        status = s_output(store, output, &o);
    else if (verify)
        status = s_verify(store, &o);
    else if (compact)
        status = s_compact(store, compact, &o);
    else
        status = s_list(store, &o);
    evr_store_destroy(&store);
    return s_finish(status);
}
