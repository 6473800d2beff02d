/*  cli_artifacts.c: evrun-cli artifacts, a job's artifact files fetched
    from the broker.

    The job's history names its files (step.artifact events: the latest
    of each step and path wins, as a retried step's files replace the
    earlier attempt's); each is fetched in pieces of at most 1 MiB
    (`fetch`, answered `artifact_data`) into DIR/STEP/PATH.evrun-partial,
    its size and sha256 checked against the event, then renamed to
    DIR/STEP/PATH: a file there is always whole.

    A file the events name but the broker does not hold yet (`not_found`:
    its runner ships it after the step, or at its next start when it is
    down) is asked for again, backing off from 50 to 500 ms, until --wait
    seconds have passed; so is one whose copy at the broker does not match
    its event (its size or sha256: an earlier attempt's copy, which the
    latest replaces once shipped; or a later attempt's, which the history
    read at the start did not name: the history is read on from where it
    was while a file is so, and a file a newer event names is fetched
    anew).  Any other failure is an error at
    once: a file the broker refused for good among them (each fetch names
    the sha256 the event records, and the broker answers the refusal it
    noted of that copy: too_large, with its reason).  The broker answers
    a fetch naming another sha256 than its copy's `not_found`, saying
    which copy it holds (evr_msg_other_copy): never that copy's bytes,
    even of the same size; a copy replaced while it is read (a later
    piece answered so) is read again from its start. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_sha256.h"

#define S_WAIT_DEFAULT 30      /* s: --wait */
#define S_WAIT_DEFAULT_S "30"
#define S_WAIT_MAX 3600
#define S_WAIT_MAX_S "3600"
#define S_SAY_AFTER_MS 1500     /* a wait this long is said on stderr */
#define S_POLL_MIN_MS 50        /* the first pause before asking again */
#define S_POLL_MAX_MS 500
#define S_SAY_FILES 3           /* files named in the line saying the wait */
#define S_REFETCH_MS 5000       /* a whole copy of another sha256: fetched again at most so often */

/*  What fetching one file came to. */
typedef enum { S_GOT, S_FAILED, S_ABSENT, S_STALE } s_got_t;

typedef struct {
    char *step, *path, *sha256;
    uint64_t size;
    bool absent;            /* not at the broker, or not this copy, when last asked */
    bool stale;             /* the broker held another copy when last asked */
    bool reading;           /* the broker was reading its copy's sha256 when last asked */
    uint64_t held;          /* its size */
    char held_sha[65];      /* and sha256 ("": not known) */
    int64_t not_before;     /* mono ms: a whole other copy was read; not asked again before */
} s_file_t;

typedef struct {
    const char *step;       /* --step, or NULL */
    s_file_t *v;
    size_t n, cap;
    uint32_t last;          /* jseq of the last event read */
    bool finished;          /* job.finished read */
} s_files_t;

static int
s_collect(const evr_msg_t *m, void *arg)
{
    s_files_t *fs = arg;
    const evr_event_t *ev = m->event;
    if (!ev)
        return 0;
    fs->last = ev->jseq;
    if (evr_event_kind(ev) == EVR_EV_JOB_FINISHED)
        fs->finished = true;
    if (evr_event_kind(ev) != EVR_EV_STEP_ARTIFACT
        || (fs->step && !evr_spec_step_matches(fs->step, ev->data.step)))
        return 0;
    s_file_t *f = NULL;
    for (size_t i = 0; i < fs->n && !f; i++)
        if (!strcmp(fs->v[i].step, ev->data.step) && !strcmp(fs->v[i].path, ev->data.path))
            f = &fs->v[i];
    if (!f) {
        if (fs->n == fs->cap) {
            fs->cap = fs->cap ? 2 * fs->cap : 16;
            fs->v = evr_realloc(fs->v, fs->cap * sizeof *fs->v);
        }
        f = &fs->v[fs->n++];
        *f = (s_file_t) { .step = evr_strdup(ev->data.step), .path = evr_strdup(ev->data.path),
                          .absent = true };
    }
    else if (strcmp(f->sha256, ev->data.sha256) || f->size != ev->data.size) {
        /* a later attempt's copy, read again while waiting: fetched anew */
        f->absent = true;
        f->stale = false;
        f->not_before = 0;
    }
    free(f->sha256);
    f->sha256 = evr_strdup(ev->data.sha256);
    f->size = ev->data.size;
    return 0;
}

/*  Reads the whole history of job into fs; 0, or the exit status (said). */
static int
s_history(evr_cli_t *cli, const char *job, s_files_t *fs)
{
    for (;;) {
        evr_msg_t req = { .type = EVR_MSG_HISTORY, .job = (char *) job, .from = fs->last + 1 };
        evr_msg_t end = { 0 };
        evr_err_t err;
        evr_rc_t rc = evr_client_stream_end(cli->client, &req, s_collect, fs, &end, &err);
        bool more = end.more;
        evr_msg_clear(&end);
        if (rc) {
            fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
            return 2;   /* no such job, or the broker unreachable */
        }
        if (!more)
            return 0;
    }
}

/*  Fetches f into out (through out.evrun-partial): S_GOT; S_ABSENT when the
    broker does not hold it (`not_found` for its first piece); S_STALE
    when it holds another copy (its size or sha256 not the event's; the
    size in f->held); nothing said, nothing left for either; S_FAILED
    (said). */
static s_got_t
s_fetch(evr_cli_t *cli, const char *job, s_file_t *f, const char *out)
{
    char *tmp = evr_asprintf("%s.evrun-partial", out);
    char *dir = evr_strdup(out);
    *strrchr(dir, '/') = '\0';
    evr_err_t err;
    int status = 0, fd = -1;   /* 1 failed, 2 absent, 3 stale */
    evr_sha256_t *h = evr_sha256_new();
    f->reading = false;
    if (evr_mkdirs(dir, &err)) {
        fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        status = 1;
        goto out;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "%s: %s: %s\n", cli->prog, tmp, strerror(errno));
        status = 1;
        goto out;
    }
    uint64_t off = 0;
    do {
        evr_msg_t req = { .type = EVR_MSG_FETCH, .job = (char *) job, .step = f->step,
                          .path = f->path, .offset = off, .sha256 = f->sha256 };
        evr_msg_t rep = { 0 };
        evr_rc_t rc = evr_client_call(cli->client, &req, &rep, &err);
        if (rc)
            fprintf(stderr, "%s: %s/%s: %s\n", cli->prog, f->step, f->path, err.msg);
        else if (evr_msg_other_copy(&rep, f->held_sha, &f->held)) {
            evr_msg_clear(&rep);
            status = 3;
            break;
        }
        else if (evr_msg_reading(&rep)) {   /* its copy's sha256 not known yet: again */
            f->reading = true;
            evr_msg_clear(&rep);
            status = 2;
            break;
        }
        else if (rep.type == EVR_MSG_ERROR && !off && !strcmp(rep.code, EVR_CODE_NOT_FOUND)) {
            evr_msg_clear(&rep);
            status = 2;
            break;
        }
        else if (rep.type == EVR_MSG_ERROR)
            fprintf(stderr, "%s: %s/%s: %s: %s\n", cli->prog, f->step, f->path, rep.code,
                    rep.message);
        else if (rep.type != EVR_MSG_ARTIFACT_DATA || rep.offset != off)
            fprintf(stderr, "%s: %s/%s: an unexpected answer from the broker\n", cli->prog,
                    f->step, f->path);
        else if (rep.size != f->size) {   /* a broker that does not check the sha256 */
            f->held = rep.size;
            f->held_sha[0] = '\0';
            evr_msg_clear(&rep);
            status = 3;
            break;
        }
        else if (!rep.data.len && off < f->size)
            fprintf(stderr, "%s: %s/%s: the broker sent no bytes at %llu\n", cli->prog,
                    f->step, f->path, (unsigned long long) off);
        else if (write(fd, rep.data.data, rep.data.len) != (ssize_t) rep.data.len) {
            evr_err_write(&err, tmp, errno ? errno : ENOSPC);
            fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        }
        else {
            evr_sha256_update(h, rep.data.data, rep.data.len);
            off += rep.data.len;
            evr_msg_clear(&rep);
            continue;
        }
        evr_msg_clear(&rep);
        status = 1;
    } while (!status && off < f->size);
    char hex[EVR_SHA256_HEX];
    if (!status) {
        evr_sha256_finish(&h, hex);
        if (strcmp(hex, f->sha256) != 0) {   /* read whole: not again at every poll */
            f->held = f->size;
            snprintf(f->held_sha, sizeof f->held_sha, "%s", hex);
            f->not_before = zclock_mono() + S_REFETCH_MS;
            status = 3;
        }
    }
    if (!status && (fsync(fd) != 0 || rename(tmp, out) != 0)) {
        fprintf(stderr, "%s: %s: %s\n", cli->prog, out, strerror(errno));
        status = 1;
    }
out:
    if (fd >= 0)
        close(fd);
    if (status)
        unlink(tmp);
    evr_sha256_destroy(&h);
    free(dir);
    free(tmp);
    return status == 3 ? S_STALE : status == 2 ? S_ABSENT : status ? S_FAILED : S_GOT;
}

static void
s_print(const evr_cli_t *cli, const s_file_t *f, const char *out)
{
    json_t *j = cli->json ? json_pack("{s:s, s:s, s:I, s:s, s:s}", "step", f->step, "path",
                                      f->path, "size", (json_int_t) f->size, "sha256",
                                      f->sha256, "file", out)
                          : NULL;
    if (j) {
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
    }
    else   /* text, or JSON of a DIR that is not UTF-8 */
        printf("%s  %llu bytes  sha256 %s\n", out, (unsigned long long) f->size, f->sha256);
}

/*  Says once on stderr what the fetch waits for: the files not at the
    broker yet (the first S_SAY_FILES named) and why they may come. */
static void
s_say_wait(const evr_cli_t *cli, const s_files_t *fs, size_t absent, unsigned wait_s)
{
    fprintf(stderr, "%s: waiting up to %u s (--wait) for %zu file%s not at the broker yet:",
            cli->prog, wait_s, absent, absent == 1 ? "" : "s");
    size_t named = 0;
    for (size_t i = 0; i < fs->n && named < S_SAY_FILES; i++)
        if (fs->v[i].absent)
            fprintf(stderr, "%s %s of step %s%s", named++ ? "," : "", fs->v[i].path,
                    fs->v[i].step, fs->v[i].stale ? " (an earlier attempt's copy there)" : "");
    if (absent > named)
        fprintf(stderr, " and %zu more", absent - named);
    fprintf(stderr, " (the runner that ran a step ships its files after the step)\n");
}

/*  Fetches each file of fs into DIR/STEP/PATH, printing a line for each;
    the files not at the broker yet are asked for again, backing off from
    S_POLL_MIN_MS to S_POLL_MAX_MS, until wait_s seconds have passed (said
    once the wait passes S_SAY_AFTER_MS), then each is named with what to
    do.  0 every file fetched; 1 one failed or is still not at the broker. */
static int
s_fetch_all(evr_cli_t *cli, const char *job, s_files_t *fs, const char *dir, unsigned wait_s)
{
    bool failed = false, said = false;
    size_t absent = 0;
    int64_t start = zclock_mono(), pause = S_POLL_MIN_MS;
    for (size_t i = 0; i < fs->n; i++)
        fs->v[i].absent = true;
    for (;;) {
        absent = 0;
        for (size_t i = 0; i < fs->n; i++) {
            s_file_t *f = &fs->v[i];
            if (!f->absent)
                continue;
            if (zclock_mono() < f->not_before) {    /* a whole copy read in vain lately */
                absent++;
                continue;
            }
            char *out = evr_asprintf("%s/%s/%s", dir, f->step, f->path);
            s_got_t got = s_fetch(cli, job, f, out);
            if (got == S_GOT)
                s_print(cli, f, out);
            free(out);
            fflush(stdout);
            f->absent = got == S_ABSENT || got == S_STALE;
            f->stale = got == S_STALE;
            failed |= got == S_FAILED;
            absent += f->absent;
        }
        bool stale = false;
        for (size_t i = 0; i < fs->n; i++)
            stale |= fs->v[i].absent && fs->v[i].stale;
        if (stale && !s_history(cli, job, fs)) {
            /* the broker holds another copy: a later attempt's, maybe, that
               the history read at the start did not name yet */
            absent = 0;
            for (size_t i = 0; i < fs->n; i++)
                absent += fs->v[i].absent;
        }
        int64_t waited = zclock_mono() - start, left = (int64_t) wait_s * 1000 - waited;
        if (!absent || left <= 0)
            break;
        if (!said && waited + pause >= S_SAY_AFTER_MS) {
            s_say_wait(cli, fs, absent, wait_s);
            said = true;
        }
        zclock_sleep((int) (pause < left ? pause : left));
        pause = pause * 2 < S_POLL_MAX_MS ? pause * 2 : S_POLL_MAX_MS;
    }
    for (size_t i = 0; i < fs->n; i++) {
        const s_file_t *f = &fs->v[i];
        if (!f->absent)
            continue;
        if (f->stale) {
            fprintf(stderr, "%s: %s/%s: the broker holds another copy (%llu bytes%s%s; the "
                    "step recorded %llu bytes, sha256 %s)", cli->prog, f->step, f->path,
                    (unsigned long long) f->held, f->held_sha[0] ? ", sha256 " : "",
                    f->held_sha, (unsigned long long) f->size, f->sha256);
            if (wait_s)
                fprintf(stderr, " after %u s (--wait)", wait_s);
            else
                fprintf(stderr, " (--wait 0)");
            fprintf(stderr, ": an earlier attempt's, until the runner that ran step %s ships "
                    "the latest after the step, or at its next start when it is down; try "
                    "again later, or raise --wait\n", f->step);
            continue;
        }
        if (f->reading) {
            fprintf(stderr, "%s: %s/%s: the broker is still reading its copy (to tell whether "
                    "it is the one the step recorded, sha256 %s) after %u s (--wait); try "
                    "again later, or raise --wait\n", cli->prog, f->step, f->path, f->sha256,
                    wait_s);
            continue;
        }
        if (wait_s)
            fprintf(stderr, "%s: %s/%s: not at the broker after %u s (--wait)", cli->prog,
                    f->step, f->path, wait_s);
        else
            fprintf(stderr, "%s: %s/%s: not at the broker yet (--wait 0)", cli->prog, f->step,
                    f->path);
        fprintf(stderr, ": the runner that ran step %s ships it after the step, or at its "
                "next start when it is down (a file the broker refused without noting it "
                "never comes: that runner's log says why); try again later, or raise "
                "--wait\n", f->step);
    }
    return failed || absent ? 1 : 0;
}

/*  --wait's value: whole seconds 0..S_WAIT_MAX into *wait_s; false (said)
    when it is not one. */
static bool
s_wait_arg(const evr_cli_t *cli, const char *arg, unsigned *wait_s)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] < '0' || arg[0] > '9' || v > S_WAIT_MAX) {
        fprintf(stderr, "%s: --wait %s: expected whole seconds, 0.." S_WAIT_MAX_S " (how long "
                "to wait for files not at the broker yet; 0: not at all; see --help)\n",
                cli->prog, arg[0] ? arg : "\"\"");
        return false;
    }
    *wait_s = (unsigned) v;
    return true;
}

/*  -o DIR: false (said) when DIR is empty (DIR/STEP/PATH would be
    /STEP/PATH, at the root: `-o "$OUT"` with OUT unset) or a file there
    that is no directory (each file's mkdir would fail alike). */
static bool
s_output_arg(const evr_cli_t *cli, const char *dir)
{
    struct stat st;
    if (!*dir) {
        fprintf(stderr, "%s: -o \"\": expected a directory (. for this one; see --help)\n",
                cli->prog);
        return false;
    }
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: -o %s: not a directory (the files go to DIR/STEP/PATH)\n",
                cli->prog, dir);
        return false;
    }
    return true;
}

int
evr_cli_artifacts(int argc, char **argv)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "step", required_argument, NULL, 's' },
        { "output", required_argument, NULL, 'o' }, { "wait", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    evr_cli_t cli = { .prog = "evrun-cli artifacts" };
    s_files_t fs = { 0 };
    const char *dir = ".";
    unsigned wait_s = S_WAIT_DEFAULT;
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "o:h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        switch (c) {
        case 's':
            fs.step = optarg;
            status = evr_cli_step_arg(cli.prog, optarg) ? 0 : 2;
            break;
        case 'o': dir = optarg; break;
        case 'w': status = s_wait_arg(&cli, optarg, &wait_s) ? 0 : 2; break;
        case 'h':
            printf("usage: evrun-cli artifacts JOB_ID [--step S] [-o DIR] [--wait SECONDS] "
                   "[options]\n\n"
                   "Fetches a job's artifact files from the broker (their runner ships them "
                   "there\nafter each step) into DIR/STEP/PATH, each checked against the "
                   "size and sha256\nits step.artifact event recorded; prints one line per "
                   "file. A job still running:\nthe files its events name so far (of the "
                   "steps that ended),\nwith a note on stderr.\n\n"
                   "  --step S             only step S's files (a matrix step's name: "
                   "all its\n                       combinations)\n"
                   "  -o, --output DIR     where to put them (default .)\n"
                   "  --wait SECONDS       wait up to SECONDS for files not at the broker "
                   "yet, or there\n                       as an earlier attempt's copy "
                   "(their runner ships them\n                       after the step); "
                   "0: not at all (default " S_WAIT_DEFAULT_S ", at most\n"
                   "                       " S_WAIT_MAX_S ")\n%s\n"
                   "exit status: 0 every file fetched; 1 none to fetch, or a file still not "
                   "at the\nbroker (or not matching its event) after --wait, or failed; "
                   "2 no such job, "
                   "usage, or the\nbroker unreachable\n", EVR_CLI_COMMON_HELP);
            return 0;
        default: status = 2; break;
        }
    }
    char *job = status ? NULL : evr_cli_job_operand(&cli, argc, argv, optind);
    if (!status && !job)
        status = 2;
    if (!status && !s_output_arg(&cli, dir))
        status = 2;
    if (!status)
        status = evr_cli_connect(&cli);
    if (!status)
        status = s_history(&cli, job, &fs);
    if (!status && !fs.n) {
        fprintf(stderr, "%s: job %s has no artifact files%s%s%s\n", cli.prog, job,
                fs.step ? " of step " : "", fs.step ? fs.step : "",
                fs.finished ? "" : " (yet: it has not finished)");
        status = 1;
    }
    if (!status)
        status = s_fetch_all(&cli, job, &fs, dir, wait_s);
    if (!status && !fs.finished)    /* the steps still to end may add files */
        fprintf(stderr, "%s: note: job %s has not finished: these are the files of the steps "
                "that ended; fetch again once it has\n", cli.prog, job);
    for (size_t i = 0; i < fs.n; i++) {
        free(fs.v[i].step);
        free(fs.v[i].path);
        free(fs.v[i].sha256);
    }
    free(fs.v);
    free(job);
    evr_cli_done(&cli);
    return status;
}
