/*  evr_step_artifact.c: a step's artifacts, after its exit.

    Each path of the step's `artifacts` is copied out of its unit as a tar
    stream (the executor's get) into a temporary file, counted against
    artifact_max_bytes as it streams, then unpacked into
    STATE/artifacts/JOB/STEP/ (evr_artifact.c: checked whole first,
    nothing partial left), its files counted against the room the job has
    left of artifact_job_max_bytes.  The unpack (libarchive, a sha256 and
    an fsync per file) runs in a child process (evr_offload.h), one at a
    time for the engine (the room a job has left is measured by the
    unpack that uses it), the files it wrote listed in a file of its own
    (a .download-XXXXXX too) that the loop reads back.  Each file written
    becomes a step.artifact event (path, size, sha256), queued for the
    broker first when the engine ships (evr_ship.h): the same child
    writes the files' queue entries once the unpack is whole, then syncs
    them (each one's data, then the queue directory once), so that every
    entry is durable before the loop, reading the list, appends the first
    event that names one; the loop then appends the events in the list's
    order.  When every path is done, the step finishes
    (evr_eng_step_finish).  `when` decides after which outcome this
    happens; a cancelled or lost step keeps none.

    A path that fails (missing, a link itself, over a limit, ...) is kept
    in st->artifact_why until every path is done; then each is noted in
    the step's stderr, and the step's reason names a few only when
    nothing else failed it (its command's failure stays its reason).
    Symbolic links, FIFOs and devices inside a directory are left out
    (evr_artifact_unpack_list; a hard link is a copy of its file; no tar
    holds a socket), noted in the step's stderr; the step does not fail
    for them.
*/
#define _XOPEN_SOURCE 700   /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evr_artifact.h"
#include "evr_engine_int.h"
#include "evr_ship.h"

typedef struct evr_eng_artifact s_artifact_t;

struct evr_eng_artifact {
    evr_eng_step_t *st;
    uint32_t idx;       /* of the path in the step's artifacts */
    char *path;         /* inside /workspace */
    char *tmpfile;
    FILE *fp;
    uint64_t bytes;     /* of the tar stream so far */
    bool over;          /* the stream passed artifact_max_bytes: aborted */
    int werr;           /* errno of a failed write: the download was aborted for it */
    char *sub, *dest;   /* the path's directory in /workspace; where it is unpacked */
    char *list_file;    /* what the unpack wrote, listed by its child */
    evr_offload_t *work;    /* the unpack under way */
    bool started;       /* its unpack under way (or its failure to start on its way) */
    uint64_t timer;     /* the failure to start, reported from the loop */
    struct s_unpacked *refused;     /* ... and what it was */
    s_artifact_t *next;     /* in the engine's unpacks */
};

bool
evr_eng_step_wants_artifacts(const evr_eng_step_t *st)
{
    const evr_artifacts_t *a = &st->spec->artifacts;
    if (!a->paths.n || !st->unit_id || st->cancelled || st->lost)
        return false;
    bool ok = st->exit_code == 0 && !st->reason && !st->timed_out;
    return a->when == EVR_ARTIFACTS_ALWAYS
        || a->when == (ok ? EVR_ARTIFACTS_ON_SUCCESS : EVR_ARTIFACTS_ON_FAILURE);
}

/*  Path a failed, why: kept for s_path_done (the first reason of a path),
    its control characters and bytes that are not UTF-8 escaped (\x1b,
    \n): a name it quotes (a file's, a link's target, in a system error
    too) is the step's code's choice, and goes to the reason and the
    screen. */
static void __attribute__((format(printf, 2, 3)))
s_fail(const s_artifact_t *a, const char *fmt, ...)
{
    char **why = &a->st->artifact_why[a->idx];
    if (*why)
        return;
    char buf[EVR_REASON_MAX + 1], shown[EVR_REASON_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *why = evr_strdup(evr_text_escape_ctl(buf, shown, sizeof shown));
}

void
evr_eng_artifact_why_free(evr_eng_step_t *st)
{
    if (!st->artifact_why)
        return;
    for (uint32_t i = 0; i < st->spec->artifacts.paths.n; i++)
        free(st->artifact_why[i]);
    free(st->artifact_why);
    st->artifact_why = NULL;
}

/*  Paths named in a reason before "and N more". */
#define S_NAMED 3
/*  A file's path quoted escaped in a reason: at most this many bytes. */
#define S_SHOWN 256

/*  Every path done: each that failed noted in the step's stderr, a few in
    its reason when nothing else failed it; then the step's end. */
static void
s_all_done(evr_eng_step_t *st)
{
    const evr_strlist_t *paths = &st->spec->artifacts.paths;
    bool ok = st->exit_code == 0 && !st->reason && !st->timed_out;
    char reason[EVR_REASON_MAX + 1] = "";
    size_t len = 0;
    uint32_t failed = 0;
    for (uint32_t i = 0; i < paths->n; i++) {
        const char *why = st->artifact_why[i];
        if (!why)
            continue;
        char *about = evr_asprintf("artifact %s", paths->v[i]);
        evr_eng_step_note(st, about, why);
        if (++failed <= S_NAMED && len < sizeof reason)
            len += (size_t) snprintf(reason + len, sizeof reason - len, "%s%s: %s",
                                     failed > 1 ? "; " : "", about, why);
        free(about);
    }
    if (ok && failed > S_NAMED)
        evr_eng_set_reason(st, "%s; and %u more (the step's output names each)", reason,
                           failed - S_NAMED);
    else if (ok && failed)
        evr_eng_set_reason(st, "%s", reason);
    evr_eng_artifact_why_free(st);
    evr_eng_step_finish(st);
}

/*  One path done (copied, or failed): the step's end after the last. */
static void
s_path_done(evr_eng_step_t *st)
{
    if (--st->artifacts_left == 0)
        s_all_done(st);
}

/*  A piece of the tar stream: to the temporary file, counted; false (the
    copy ends) once it would pass the limit, so no more is written. */
static bool
s_data(const uint8_t *p, size_t n, void *arg)
{
    s_artifact_t *a = arg;
    uint64_t max = a->st->job->eng->opts.artifact_max_bytes;
    if (n > max - a->bytes) {
        a->over = true;
        return false;
    }
    a->bytes += n;
    bool ok = fwrite(p, 1, n, a->fp) == n;
    if (!ok && !a->werr)
        a->werr = errno ? errno : EIO;
    if (!a->st->artifact_paused) {
        a->st->artifact_paused = true;
        fflush(a->fp);   /* a partial download on disk when the test kills here */
        evr_eng_test_pause("artifact", a->st);
    }
    return ok;
}

/*  Bytes of the job's artifact files (nftw has no argument: the engine
    has one thread). */
static uint64_t s_walk_total;

static int
s_walk_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    if (type == FTW_F && S_ISREG(sb->st_mode) && strncmp(base, ".download-", 10) != 0)
        s_walk_total += (uint64_t) sb->st_size;
    return 0;
}

/*  The room the job has left of artifact_job_max_bytes (what its steps
    hold now, earlier attempts included). */
static uint64_t
s_job_room(const evr_eng_step_t *st, uint64_t *held)
{
    const evr_engine_t *e = st->job->eng;
    char *dir = evr_asprintf("%s/%s", e->opts.artifacts_dir, st->job->id);
    s_walk_total = 0;
    nftw(dir, s_walk_one, 16, FTW_PHYS);
    free(dir);
    *held = s_walk_total;
    uint64_t cap = e->opts.artifact_job_max_bytes;
    return s_walk_total < cap ? cap - s_walk_total : 0;
}

/*  A file's path in /workspace: sub ("" for a top-level path), then its
    path below it.  Caller frees. */
static char *
s_path(const char *sub, const char *path)
{
    return evr_asprintf("%s%s%s", sub, *sub ? "/" : "", path);
}

/*  path masked with the job's secrets when it holds one (caller frees),
    else NULL: such a file is neither recorded nor shipped, its name would
    carry the secret into the event log and the broker's store. */
static char *
s_secret_path(const evr_eng_job_t *job, const char *path)
{
    char *m = evr_mask_text((const char *const *) job->secrets, job->nsecrets, path);
    if (!strcmp(m, path)) {
        free(m);
        return NULL;
    }
    return m;
}

/*  The directories whose path holds a secret, or that a step.artifact
    event could not name, for s_rm_refused_dirs (nftw has no argument:
    the engine has one thread). */
static const evr_eng_job_t *s_rm_job;
static size_t s_rm_skip;   /* the step directory's path and its '/' */

static int
s_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) sb;
    if (type == FTW_DP && ftw->level > 0) {
        char *masked = s_secret_path(s_rm_job, path + s_rm_skip);
        if (masked || evr_event_artifact_path_problem(path + s_rm_skip))
            rmdir(path);   /* empty: its files, refused alike, are not kept */
        free(masked);
    }
    return 0;
}

/*  The step's directories of artifacts whose path holds a secret of the
    job (their names would keep the secret on the runner), or, when
    s_record refused a file's name (refused), is refused as a file's is
    (not UTF-8, a control character), removed when empty (unpacked so,
    or emptied by s_record). */
static void
s_rm_refused_dirs(const evr_eng_step_t *st, bool refused)
{
    const char *art = st->job->eng->opts.artifacts_dir;
    if (!art || (!st->job->nsecrets && !refused))
        return;
    char *dir = evr_asprintf("%s/%s/%s", art, st->job->id, st->spec->name);
    s_rm_job = st->job;
    s_rm_skip = strlen(dir) + 1;
    nftw(dir, s_rm_one, 16, FTW_PHYS | FTW_DEPTH);
    s_rm_job = NULL;
    free(dir);
}

/*  The files of one unpacked path, queued for the broker already (when
    shipping: the unpack's child did, see s_queue): a step.artifact each,
    in the list's order.  q[i] '!': file i could not be queued (qmsg: why,
    of the first such file; the step fails with it).  sub: the path's
    directory in /workspace ("" for a top-level path).  Returns whether
    it refused a file for its name. */
static bool
s_record(const s_artifact_t *a, const char *sub, const evr_artifact_list_t *list,
         const char *q, const char *qmsg)
{
    evr_eng_step_t *st = a->st;
    bool refused = false;
    for (uint32_t i = 0; i < list->n; i++) {
        const evr_artifact_file_t *f = &list->v[i];
        char *path = s_path(sub, f->path);
        const char *bad = evr_event_artifact_path_problem(path);
        char *masked = s_secret_path(st->job, path);
        if (masked || bad) {   /* removed from the runner's artifacts too */
            refused = true;
            const char *art = st->job->eng->opts.artifacts_dir;
            char *file = art ? evr_asprintf("%s/%s/%s/%s", art, st->job->id, st->spec->name,
                                            path) : NULL;
            if (file)
                unlink(file);
            free(file);
        }
        /* quoted escaped (\xHH): no raw byte in a reason or on a screen */
        char shown[S_SHOWN];
        evr_text_escape_ctl(masked ? masked : path, shown, sizeof shown);
        if (masked)
            s_fail(a, "file %s: its name holds a secret: not recorded, not kept", shown);
        else if (bad)   /* a name an event cannot carry */
            s_fail(a, "file %s: %s: not recorded, not kept (rename it)", shown, bad);
        else if (q[i] == '!')
            s_fail(a, "file %s: queueing it for the broker: %s", path, qmsg);
        else {
            evr_event_t *ev = evr_eng_emit(st->job, EVR_EV_STEP_ARTIFACT, st);
            ev->data.path = evr_strdup(path);
            ev->data.size = f->size;
            ev->data.sha256 = evr_strdup(f->sha256);
        }
        free(masked);
        free(path);
    }
    return refused;
}

/*  What the unpack's child reports; the files' list is in a->list_file,
    one "SIZE SHA256 PATH" each, NUL-ended. */
typedef struct s_unpacked {
    int32_t rc;
    uint64_t held;      /* bytes the job's artifacts held before */
    uint32_t n;         /* files written */
    char msg[EVR_ERR_MAX];
    char qmsg[EVR_ERR_MAX];     /* why the first file not queued was not */
    uint32_t nlinks;            /* links left out */
    char links[EVR_ERR_MAX];    /* the first few named, paths in /workspace */
    uint32_t nspecials;         /* FIFOs and devices left out */
    char specials[EVR_ERR_MAX]; /* alike */
} s_unpacked_t;
EVR_OFFLOAD_FITS(s_unpacked_t);

/*  A few of names (n of them; relative to the path's directory) named
    in out (cap bytes): paths in /workspace, escaped, ", " between, "and
    N more" after them. */
static void
s_few_named(const s_artifact_t *a, char *const *names, uint32_t n, char *out, size_t cap)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n && i < S_NAMED && len < cap; i++) {
        char *path = s_path(a->sub, names[i]), shown[S_SHOWN];
        evr_text_escape_ctl(path, shown, sizeof shown);
        len += (size_t) snprintf(out + len, cap - len, "%s%s", i ? ", " : "", shown);
        free(path);
    }
    if (n > S_NAMED && len < cap)
        snprintf(out + len, cap - len, " and %u more", n - S_NAMED);
}

/*  What list left out (links, FIFOs and devices), a few of each named
    in u. */
static void
s_left_out_named(const s_artifact_t *a, const evr_artifact_list_t *list, s_unpacked_t *u)
{
    u->nlinks = list->nlinks;
    s_few_named(a, list->links, list->nlinks, u->links, sizeof u->links);
    u->nspecials = list->nspecials;
    s_few_named(a, list->specials, list->nspecials, u->specials, sizeof u->specials);
}

/*  The list written in one go, with write(2) (no stdio in the child):
    "SIZE SHA256 Q PATH" per file, Q its q[i]. */
static bool
s_list_write(const char *file, const evr_artifact_list_t *list, const char *q)
{
    size_t cap = 4096, len = 0;
    char *buf = evr_malloc(cap);
    for (uint32_t i = 0; i < list->n; i++) {
        const evr_artifact_file_t *f = &list->v[i];
        size_t need = strlen(f->path) + 100;
        while (len + need > cap)
            buf = evr_realloc(buf, cap *= 2);
        len += (size_t) snprintf(buf + len, cap - len, "%llu %s %c %s",
                                 (unsigned long long) f->size, f->sha256, q[i], f->path) + 1;
    }
    int fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);   /* made by the parent */
    size_t at = 0;
    while (fd >= 0 && at < len) {
        ssize_t n = write(fd, buf + at, len - at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        at += (size_t) n;
    }
    bool ok = fd >= 0 && at == len;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    free(buf);
    return ok;
}

/*  In the child, once the unpack is whole: its files queued for the
    broker (those whose name the wire takes), each entry written
    unsynced, then all synced at once (evr_ship_sync), before the loop
    appends an event.  q[i] (list->n of them): '!' for a file left
    unqueued (the sync failed: none is; the entries written are removed),
    its reason in msg (cap bytes) when it is the first; '+' else.
    entries[i]: the entry of file i (NULL: none), for the caller to free
    (and to remove, should the list not be written). */
static void
s_queue(const s_artifact_t *a, const evr_artifact_list_t *list, char *q, char *msg, size_t cap,
        char **entries)
{
    const evr_eng_step_t *st = a->st;
    const char *ship = st->job->eng->opts.ship_dir, *art = st->job->eng->opts.artifacts_dir;
    uint32_t queued = 0, first = list->n;   /* the first file left unqueued */
    evr_err_t err;
    for (uint32_t i = 0; i < list->n; i++) {
        const evr_artifact_file_t *f = &list->v[i];
        char *path = s_path(a->sub, f->path);
        q[i] = '+';
        char *masked = ship ? s_secret_path(st->job, path) : NULL;
        bool secret = masked != NULL;
        free(masked);
        if (ship && !secret && !evr_event_artifact_path_problem(path)) {
            char *file = evr_asprintf("%s/%s/%s/%s", art, st->job->id, st->spec->name, path);
            if (evr_ship_enqueue_unsynced(ship, file, st->job->id, st->spec->name, path, f->size,
                                          f->sha256, &entries[i], &err) == EVR_OK)
                queued++;
            else {
                q[i] = '!';
                if (i < first)
                    snprintf(msg, cap, "%s", err.msg);
                first = i < first ? i : first;
            }
            free(file);
        }
        free(path);
    }
    if (queued && evr_ship_sync(ship, entries, list->n, &err) != EVR_OK)
        for (uint32_t i = 0; i < list->n; i++) {
            if (!entries[i])
                continue;
            evr_ship_unqueue(entries[i]);
            free(entries[i]);
            entries[i] = NULL;
            q[i] = '!';
            if (i < first)
                snprintf(msg, cap, "%s", err.msg);
            first = i < first ? i : first;
        }
}

/*  In the child: the tar of a unpacked (a is its snapshot, read only),
    its files queued for the broker (s_queue) and listed, the tar
    removed. */
static void
s_unpack_work(void *arg, void *out, size_t size)
{
    (void) size;
    const s_artifact_t *a = arg;
    s_unpacked_t *u = out;
    const evr_engine_t *e = a->st->job->eng;
    uint64_t room = s_job_room(a->st, &u->held);
    evr_artifact_list_t list = { 0 };
    evr_err_t err = { 0 };
    const char *top = strrchr(a->path, '/');
    top = top ? top + 1 : a->path;
    u->rc = (int32_t) evr_artifact_unpack_list(a->tmpfile, a->dest, e->opts.artifact_max_bytes,
                                               room, top, &list, &err);
    if (!u->rc)
        s_left_out_named(a, &list, u);
    /* the tar removed first (freeing a large file's blocks takes its
       time): between the entries' renames and the list read back, as
       little as can be, lest a kill leave entries no event names */
    unlink(a->tmpfile);
    char *q = evr_calloc(list.n ? list.n : 1, 1);
    char **entries = evr_calloc(list.n ? list.n : 1, sizeof *entries);
    if (!u->rc)
        s_queue(a, &list, q, u->qmsg, sizeof u->qmsg, entries);
    if (!u->rc && !s_list_write(a->list_file, &list, q)) {
        u->rc = (int32_t) evr_err_set(&err, EVR_ERR_IO, "listing its files in %s: %s",
                                      a->list_file, strerror(errno ? errno : EIO));
        for (uint32_t i = 0; i < list.n; i++)   /* no event will name them */
            if (entries[i])
                evr_ship_unqueue(entries[i]);
    }
    if (u->rc)
        snprintf(u->msg, sizeof u->msg, "%s", err.msg);
    u->n = list.n;
    for (uint32_t i = 0; i < list.n; i++)
        free(entries[i]);
    free(entries);
    free(q);
    evr_artifact_list_free(&list);
}

/*  The child's list read back (n files; *q their queueing, n chars,
    caller frees); false when it is not whole. */
static bool
s_list_read(const char *file, uint32_t n, evr_artifact_list_t *list, char **q)
{
    FILE *fp = fopen(file, "rbe");
    bool ok = fp != NULL;
    list->v = evr_calloc(n ? n : 1, sizeof *list->v);
    *q = evr_calloc(n ? n : 1, 1);
    list->cap = n;
    char rec[8192];
    while (ok && list->n < n) {
        size_t k = 0;
        int c;
        while ((c = getc(fp)) != EOF && c != '\0' && k < sizeof rec - 1)
            rec[k++] = (char) c;
        rec[k] = '\0';
        evr_artifact_file_t *f = &list->v[list->n];
        char *end;
        unsigned long long size = strtoull(rec, &end, 10);
        ok = c == '\0' && *end == ' ' && strlen(end + 1) > 67 && end[65] == ' '
             && (end[66] == '+' || end[66] == '!') && end[67] == ' ';
        if (ok) {   /* SIZE, a space, 64 hex digits, a space, Q, a space, the path */
            f->size = size;
            memcpy(f->sha256, end + 1, 64);
            f->sha256[64] = '\0';
            (*q)[list->n] = end[66];
            f->path = evr_strdup(end + 68);
            list->n++;
        }
    }
    if (fp)
        fclose(fp);
    return ok;
}

static void s_unpack_next(evr_engine_t *e);

/*  a is done with: its files removed, off the engine's unpacks (the
    next one started when kick and a was under way). */
static void
s_artifact_end(s_artifact_t *a, bool kick)
{
    evr_eng_step_t *st = a->st;
    evr_engine_t *e = st->job->eng;
    for (s_artifact_t **p = &e->unpacks; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    evr_offload_cancel(&a->work);
    evr_loop_timer_cancel(e->loop, a->timer);
    free(a->refused);
    unlink(a->tmpfile);
    if (a->list_file)
        unlink(a->list_file);
    free(a->list_file);
    free(a->tmpfile);
    free(a->path);
    free(a->sub);
    free(a->dest);
    free(a);
    if (kick)
        s_unpack_next(e);
}

/*  Back on the loop: the files the unpack wrote recorded (or why not). */
static void
s_unpacked(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    s_artifact_t *a = arg;
    const s_unpacked_t *u = out;
    evr_eng_step_t *st = a->st;
    const evr_engine_t *e = st->job->eng;
    a->work = NULL;
    evr_artifact_list_t list = { 0 };
    char *q = NULL;
    if (rc)
        s_fail(a, "unpacking it: %s", msg);
    else if (u->rc == EVR_ERR_LIMIT && strstr(u->msg, "over the room of"))
        s_fail(a, "%s left of the job's limit of %llu bytes (its artifacts hold %llu bytes "
               "already; the runner's artifact_job_max_bytes setting)", u->msg,
               (unsigned long long) e->opts.artifact_job_max_bytes,
               (unsigned long long) u->held);
    else if (u->rc == EVR_ERR_LIMIT && strstr(u->msg, "over the limit of"))
        s_fail(a, "%s (the runner's artifact_max_bytes setting)", u->msg);
    else if (u->rc)
        s_fail(a, "%s", u->msg);
    else if (!s_list_read(a->list_file, u->n, &list, &q))
        s_fail(a, "the list of its %u files in %s is not whole", u->n, a->list_file);
    else {
        evr_eng_step_log(st, "artifact %s: %u file%s in %s", a->path, list.n,
                         list.n == 1 ? "" : "s", a->dest);
        s_rm_refused_dirs(a->st, s_record(a, a->sub, &list, q, u->qmsg));
        char *about = evr_asprintf("artifact %s", a->path);
        if (u->nlinks) {
            char *text = evr_asprintf("%u symbolic link%s left out (links are not followed, "
                                      "nor copied): %s", u->nlinks, u->nlinks == 1 ? "" : "s",
                                      u->links);
            evr_eng_step_note(st, about, text);
            free(text);
        }
        if (u->nspecials) {
            char *text = evr_asprintf("%u FIFO%s or device%s left out (only files and "
                                      "directories are copied): %s", u->nspecials,
                                      u->nspecials == 1 ? "" : "s", u->nspecials == 1 ? "" : "s",
                                      u->specials);
            evr_eng_step_note(st, about, text);
            free(text);
        }
        free(about);
    }
    free(q);
    evr_artifact_list_free(&list);
    s_artifact_end(a, true);
    s_path_done(st);
}

/*  From the loop: a's unpack that could not start, reported as its
    failure (never from inside an engine call: the engine is not entered
    again). */
static void
s_unpack_refused(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_artifact_t *a = arg;
    a->timer = 0;
    s_unpacked_t u = *a->refused;
    free(a->refused);
    a->refused = NULL;
    s_unpacked(EVR_OK, "", &u, a);
}

/*  Starts the unpack of a (its list file made first). */
static void
s_unpack_start(evr_engine_t *e, s_artifact_t *a)
{
    a->started = true;
    char *dir = evr_asprintf("%s/%s", e->opts.artifacts_dir, a->st->job->id);
    a->list_file = evr_asprintf("%s/.download-XXXXXX", dir);
    free(dir);
    int fd = mkstemp(a->list_file);
    if (fd < 0) {
        a->refused = evr_calloc(1, sizeof *a->refused);
        a->refused->rc = EVR_ERR_IO;
        snprintf(a->refused->msg, sizeof a->refused->msg, "%s: %s", a->list_file,
                 strerror(errno));
        free(a->list_file);
        a->list_file = NULL;
        a->timer = evr_loop_timer_add(e->loop, 0, s_unpack_refused, a);
        return;
    }
    close(fd);
    a->work = evr_offload_start(e->loop, s_unpack_work, sizeof(s_unpacked_t), s_unpacked, a);
    evr_offload_what(a->work, "unpacking artifact %s into %s", a->path, a->dest);
    evr_offload_temp(a->work, a->list_file);
}

/*  Starts each job's first waiting unpack, where none of that job's is
    under way: one at a time for a job (the room left of its
    artifact_job_max_bytes is what its unpacks before left), side by side
    for different jobs. */
static void
s_unpack_next(evr_engine_t *e)
{
    if (e->closing)
        return;
    for (s_artifact_t *a = e->unpacks; a; a = a->next) {
        bool first = true;   /* of its job's in the list */
        for (const s_artifact_t *b = e->unpacks; b != a && first; b = b->next)
            first = b->st->job != a->st->job;
        if (first && !a->started)
            s_unpack_start(e, a);
    }
}

/*  The downloaded tar of a: unpacked below the step's directory where the
    path says (the archive holds the path's last component), recorded,
    once the unpacks before it are done. */
static void
s_unpack(s_artifact_t *a)
{
    evr_eng_step_t *st = a->st;
    evr_engine_t *e = st->job->eng;
    a->sub = evr_strdup(a->path);
    char *slash = strrchr(a->sub, '/');
    if (slash)
        *slash = '\0';
    else
        *a->sub = '\0';
    a->dest = evr_asprintf("%s/%s/%s%s%s", e->opts.artifacts_dir, st->job->id, st->spec->name,
                           *a->sub ? "/" : "", a->sub);
    s_artifact_t **p = &e->unpacks;
    while (*p)
        p = &(*p)->next;
    *p = a;
    s_unpack_next(e);
}

void
evr_eng_artifacts_drop(evr_eng_job_t *job)
{
    evr_engine_t *e = job->eng;
    for (s_artifact_t *a = e->unpacks, *next; a; a = next) {
        next = a->next;
        if (a->st->job == job)
            s_artifact_end(a, false);
    }
    s_unpack_next(e);   /* another job's, if one waits */
}

/*  Whether a path the unit lacks is worth a hint: in the /job layout a
    path outside src/ and ci/ was likely meant in the source. */
static bool
s_hint(const evr_eng_step_t *st, const char *path, const evr_exec_result_t *r)
{
    return r->not_found && st->job->spec->source.present && strcmp(path, "src") != 0
           && strncmp(path, "src/", 4) != 0 && strcmp(path, "ci") != 0
           && strncmp(path, "ci/", 3) != 0;
}

static void
s_done(const evr_exec_result_t *r, void *arg)
{
    s_artifact_t *a = arg;
    evr_eng_step_t *st = a->st;
    uint64_t max = st->job->eng->opts.artifact_max_bytes;
    errno = 0;
    if (fclose(a->fp) != 0 && !a->werr)
        a->werr = errno ? errno : EIO;
    if (a->over)
        s_fail(a, "larger than the limit of %llu bytes (as a tar stream; the runner's "
               "artifact_max_bytes setting)", (unsigned long long) max);
    else if (a->werr) {   /* the cause, not the aborted download it made */
        evr_err_t err;
        evr_err_write(&err, a->tmpfile, a->werr);
        s_fail(a, "%s", err.msg);
    }
    else if (r->rc && s_hint(st, a->path, r))
        s_fail(a, "%s (artifact paths are relative to /job: src/%s in the source)", r->msg,
               a->path);
    else if (r->rc)
        s_fail(a, "%s", r->msg);
    else {
        s_unpack(a);   /* ends in s_unpacked */
        return;
    }
    unlink(a->tmpfile);
    free(a->tmpfile);
    free(a->path);
    free(a);
    s_path_done(st);
}

void
evr_eng_step_artifacts(evr_eng_step_t *st)
{
    evr_engine_t *e = st->job->eng;
    const evr_strlist_t *paths = &st->spec->artifacts.paths;
    st->artifacts_left = paths->n;
    evr_eng_artifact_why_free(st);
    st->artifact_why = evr_calloc(paths->n, sizeof *st->artifact_why);
    for (uint32_t i = 0; i < paths->n; i++) {
        s_artifact_t *a = evr_calloc(1, sizeof *a);
        a->st = st;
        a->idx = i;
        a->path = evr_strdup(paths->v[i]);
        char *dir = evr_asprintf("%s/%s", e->opts.artifacts_dir, st->job->id);
        evr_err_t err;
        bool made = evr_mkdirs(dir, &err) == EVR_OK;
        a->tmpfile = evr_asprintf("%s/.download-XXXXXX", dir);
        free(dir);
        int fd = made ? mkstemp(a->tmpfile) : -1;
        if (made && fd < 0)     /* the runner's place for it, named: not the step's path */
            evr_err_set(&err, EVR_ERR_IO, "the runner cannot write %s: %s", a->tmpfile,
                        strerror(errno));
        a->fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (!a->fp && fd >= 0) {
            evr_err_set(&err, EVR_ERR_IO, "fdopen %s: %s", a->tmpfile, strerror(errno));
            close(fd);
        }
        if (!a->fp) {
            evr_exec_result_t r = { .rc = EVR_ERR_IO, .msg = err.msg };
            a->fp = fopen("/dev/null", "wb");
            s_done(&r, a);
            continue;
        }
        st->job->ex->ops->get(st->job->ex, st->unit, st->job->id,
                              evr_spec_has_source(st->job->spec) ? EVR_EXEC_LAYOUT_JOB
                                                                 : EVR_EXEC_LAYOUT_WORKSPACE,
                              a->path, s_data, s_done, a);
    }
}
