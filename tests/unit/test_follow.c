/*  test_follow: evr_follow against a fake broker (a ROUTER answering as
    each test scripts it and an XPUB publishing events, in a thread, on
    ipc:// sockets in a temporary directory) that does not answer some
    requests, cuts a history short (error{unavailable}) or keeps the
    event stream busy: a follower asks again what it is owed, whatever
    else the broker answers or publishes meanwhile, and says when the
    broker is back.  A follow the tests expect to go on forever (--pipeline)
    is stopped by the fake broker once it served what the test waits for,
    or after S_DEADLINE_MS: the checks then fail on what was not printed,
    never on how long anything took. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_follow.h"
#include "evr_test.h"

#define JOBA "01ARYZ6S41TSV4RRFFQ69G5FA1"
#define JOBC "01ARYZ6S41TSV4RRFFQ69G5FAC"
#define S_DEADLINE_MS 15000

static char s_dir[] = "/tmp/evr-follow-XXXXXX";

typedef struct s_fake s_fake_t;
/*  Answers req (or not); returns true when the test has what it waits for. */
typedef bool (s_handle_fn)(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req);

struct s_fake {
    zsock_t *router, *pub;
    s_handle_fn *handle;
    bool busy;              /* publish job C's output every 50 ms */
    bool publish_a;         /* publish job A's events 1, 2 once subscribed */
    bool subscribed;
    int nhist, njobs, nstatus;
    uint64_t hist_ns[32];   /* when each history request came */
    volatile sig_atomic_t stop;
    uint32_t cseq;
    FILE *out_fp;           /* evr_follow's out, when not a memory stream */
    const char *out_path;   /* ... or this file (read into *out after) */
    uint64_t rest_at;       /* mono ns: read out_path into seen, then publish job
                               A's rest (test_partial_live) */
    bool rest_sent;
    bool cut_line;          /* a stderr line before the rest */
    char seen[256];
};

static void s_partial_events(s_fake_t *fk, zframe_t *rid, uint32_t from);

static void
s_send_event(s_fake_t *fk, zframe_t *rid, const char *job, uint32_t jseq, bool finished)
{
    char text[64];
    snprintf(text, sizeof text, "line %c%u\n", strcmp(job, JOBA) ? 'c' : 'a', jseq);
    evr_event_t ev = { .seq = jseq, .job = (char *) job, .jseq = jseq, .time = evr_now_ns(),
                       .type = finished ? EVR_EV_JOB_FINISHED : EVR_EV_STEP_OUTPUT };
    if (finished)
        ev.data.status = "succeeded";
    else {
        ev.data.step = "count";
        ev.data.stream = "stdout";
        ev.data.bytes.data = (uint8_t *) text;
        ev.data.bytes.len = ev.data.raw = (uint32_t) strlen(text);
    }
    evr_err_t err;
    if (rid) {
        evr_msg_t m = { .type = EVR_MSG_EVENT, .event = &ev };
        evr_bus_send(fk->router, rid, &m, &err);
    }
    else
        evr_bus_publish_event(fk->pub, &ev, &err);
}

static void
s_end(s_fake_t *fk, zframe_t *rid)
{
    evr_msg_t end = { .type = EVR_MSG_END };
    evr_err_t err;
    evr_bus_send(fk->router, rid, &end, &err);
}

/*  job A's whole history from `from`: lines 1, 2, job.finished 3. */
static void
s_history_a(s_fake_t *fk, zframe_t *rid, uint32_t from)
{
    for (uint32_t s = from ? from : 1; s <= 3; s++)
        s_send_event(fk, rid, JOBA, s, s == 3);
    s_end(fk, rid);
}

static void
s_fake(zsock_t *pipe, void *arg)
{
    s_fake_t *fk = arg;
    char ep[128];
    snprintf(ep, sizeof ep, "ipc://%s/clients", s_dir);
    fk->router = zsock_new_router(ep);
    snprintf(ep, sizeof ep, "ipc://%s/events", s_dir);
    fk->pub = zsock_new(ZMQ_XPUB);
    zsock_bind(fk->pub, "%s", ep);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, fk->router, fk->pub, NULL);
    uint64_t until = evr_mono_ns() + S_DEADLINE_MS * 1000000ull, done_at = 0;
    uint64_t next_pub = 0;
    for (;;) {
        void *which = zpoller_wait(poller, 20);
        if (which == pipe || zpoller_terminated(poller))
            break;
        if (which == fk->pub) {
            zframe_t *f = zframe_recv(fk->pub);
            if (f && zframe_size(f) && zframe_data(f)[0] == 1)
                fk->subscribed = true;
            zframe_destroy(&f);
        }
        if (which == fk->router) {
            zframe_t *rid = NULL;
            evr_msg_t m = { 0 };
            const char *code;
            evr_err_t err;
            if (evr_bus_recv(fk->router, &rid, &m, &code, &err) == EVR_OK) {
                if (m.type == EVR_MSG_HISTORY && fk->nhist < 32)
                    fk->hist_ns[fk->nhist] = evr_mono_ns();
                if (fk->handle(fk, rid, &m) && !done_at)
                    done_at = evr_mono_ns() + 300000000ull;   /* its answer printed */
                fk->nhist += m.type == EVR_MSG_HISTORY;
                fk->njobs += m.type == EVR_MSG_JOBS;
                fk->nstatus += m.type == EVR_MSG_STATUS;
            }
            evr_msg_clear(&m);
            zframe_destroy(&rid);
        }
        uint64_t now = evr_mono_ns();
        if (fk->subscribed && fk->busy && now >= next_pub) {
            s_send_event(fk, NULL, JOBC, ++fk->cseq, false);
            next_pub = now + 50000000ull;
        }
        if (fk->rest_at && now >= fk->rest_at) {
            fk->rest_at = 0;
            FILE *fp = fopen(fk->out_path, "r");
            if (fp) {
                size_t got = fread(fk->seen, 1, sizeof fk->seen - 1, fp);
                fk->seen[got] = 0;
                fclose(fp);
            }
            s_partial_events(fk, NULL, 2);
            fk->rest_sent = true;
        }
        if (fk->subscribed && fk->publish_a) {
            fk->publish_a = false;
            s_send_event(fk, NULL, JOBA, 1, false);
            s_send_event(fk, NULL, JOBA, 2, false);
            s_send_event(fk, NULL, JOBA, 3, true);
        }
        if (now >= until || (done_at && now >= done_at))
            fk->stop = 1;
    }
    zpoller_destroy(&poller);
    zsock_destroy(&fk->router);
    zsock_destroy(&fk->pub);
}

/*  Runs evr_follow against fk (timeout_ms ms), its stdout into *out and
    its stderr into *errs (both the caller's); returns its exit status. */
static int
s_follow(s_fake_t *fk, evr_follow_opts_t *o, int timeout_ms, char **out, char **errs)
{
    char ep[128], ev[128], ms[16], errf[128];
    snprintf(ep, sizeof ep, "ipc://%s/clients", s_dir);
    snprintf(ev, sizeof ev, "ipc://%s/events", s_dir);
    snprintf(ms, sizeof ms, "%d", timeout_ms);
    snprintf(errf, sizeof errf, "%s/stderr", s_dir);
    zactor_t *actor = zactor_new(s_fake, fk);
    evr_config_t *cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(cfg, "client_endpoint", ep, "test");
    evr_config_set(cfg, "events_endpoint", ev, "test");
    evr_config_set(cfg, "timeout_ms", ms, "test");
    evr_client_t *c = NULL;
    evr_err_t err;
    int status = -1;
    size_t n;
    if (fk->out_fp)
        o->out = fk->out_fp;
    else if (fk->out_path)
        o->out = fopen(fk->out_path, "w");
    else
        o->out = open_memstream(out, &n);
    fflush(stderr);
    int saved = dup(2), fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    if (evr_client_new(cfg, &c, &err) == EVR_OK)
        status = evr_follow("test", cfg, c, o, &fk->stop);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(o->out);
    if (fk->out_path) {
        FILE *fp = fopen(fk->out_path, "r");
        *out = evr_calloc(1, 65536);
        size_t got = fp ? fread(*out, 1, 65535, fp) : 0;
        (*out)[got] = 0;
        if (fp)
            fclose(fp);
        unlink(fk->out_path);
    }
    else if (fk->out_fp)
        *out = evr_strdup("");
    evr_client_destroy(&c);
    evr_config_destroy(&cfg);
    zactor_destroy(&actor);
    FILE *fp = fopen(errf, "r");
    *errs = evr_calloc(1, 65536);
    if (fp) {
        size_t got = fread(*errs, 1, 65535, fp);
        (*errs)[got] = 0;
        fclose(fp);
    }
    unlink(errf);
    printf("--- stdout\n%s--- stderr\n%s---\n", *out, *errs);
    return status;
}

/*  --pipeline on a bus never quiet (job C's output every 50 ms): job A's
    first history is not answered; the status of job C is, as are C's
    publications.  A's history is still asked again.  Before, an answered
    status ended the outage and only a quiet second asked again: never. */
static bool
s_busy_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    evr_err_t err;
    if (req->type == EVR_MSG_JOBS) {
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = JOBA, .status = "running",
                        .pipeline = "p" };
        evr_bus_send(fk->router, rid, &j, &err);
        s_end(fk, rid);
    }
    else if (req->type == EVR_MSG_STATUS) {
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = req->job, .status = "running",
                        .pipeline = "q" };
        evr_bus_send(fk->router, rid, &j, &err);
    }
    else if (req->type == EVR_MSG_HISTORY && !strcmp(req->job, JOBA) && fk->nhist > 0) {
        s_history_a(fk, rid, req->from);
        return true;
    }
    return false;   /* A's first history: no answer */
}

static void
test_busy_bus_owed_history(void)
{
    s_fake_t fk = { .handle = s_busy_handle, .busy = true };
    evr_follow_opts_t o = { .pipeline = "p", .follow = true, .job_prefix = true };
    char *out = NULL, *errs = NULL;
    s_follow(&fk, &o, 300, &out, &errs);
    CHECK_CONTAINS(out, JOBA "/count | line a1\n" JOBA "/count | line a2\n");
    CHECK(!strstr(out, JOBC));     /* pipeline q: not followed */
    CHECK_CONTAINS(errs, "history of " JOBA ": no answer from the broker");
    CHECK_CONTAINS(errs, "answers again");
    free(out);
    free(errs);
}

/*  --pipeline: job A is not in the `jobs` answer; its publications (jseq
    1 to 3, none job.accepted) ask its status, which gets no answer the
    first time.  Its pipeline is asked again, then its history from 1.
    Before, it was asked only at A's next event: never. */
static bool
s_status_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    evr_err_t err;
    if (req->type == EVR_MSG_JOBS)
        s_end(fk, rid);
    else if (req->type == EVR_MSG_STATUS && fk->nstatus > 0) {
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = req->job, .status = "running",
                        .pipeline = "p" };
        evr_bus_send(fk->router, rid, &j, &err);
    }
    else if (req->type == EVR_MSG_HISTORY) {
        s_history_a(fk, rid, req->from);
        return true;
    }
    return false;
}

static void
test_owed_pipeline(void)
{
    s_fake_t fk = { .handle = s_status_handle };
    evr_follow_opts_t o = { .pipeline = "p", .follow = true, .job_prefix = true };
    char *out = NULL, *errs = NULL;
    fk.publish_a = true;    /* A's events come live once subscribed */
    s_follow(&fk, &o, 300, &out, &errs);
    CHECK_CONTAINS(out, JOBA "/count | line a1\n" JOBA "/count | line a2\n");
    CHECK_CONTAINS(errs, "status of " JOBA ": no answer from the broker");
    free(out);
    free(errs);
}

/*  --all with 20 jobs running and caught up (one line each) and one owed
    (its first history got no answer; the oldest, last in the follower's
    list): the owed one is asked first.  Before, each pass asked the first
    16 followed, caught-up ones included: never the owed one. */
static const char s_b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static bool
s_many_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    evr_err_t err;
    char id[32];
    if (req->type == EVR_MSG_JOBS) {
        for (int i = 0; i < 20; i++) {  /* newest first, A the oldest */
            snprintf(id, sizeof id, "01ARYZ6S41TSV4RRFFQ69G5FB%c", s_b32[19 - i]);
            evr_msg_t j = { .type = EVR_MSG_JOB, .job = id, .status = "running",
                            .pipeline = "p" };
            evr_bus_send(fk->router, rid, &j, &err);
        }
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = JOBA, .status = "running", .pipeline = "p" };
        evr_bus_send(fk->router, rid, &j, &err);
        s_end(fk, rid);
    }
    else if (req->type == EVR_MSG_HISTORY && !strcmp(req->job, JOBA)) {
        if (fk->nhist == 0)
            return false;   /* its first: no answer */
        s_history_a(fk, rid, req->from);
        return true;
    }
    else if (req->type == EVR_MSG_HISTORY) {
        if (req->from <= 1)
            s_send_event(fk, rid, req->job, 1, false);
        s_end(fk, rid);
    }
    return false;
}

static void
test_owed_first(void)
{
    s_fake_t fk = { .handle = s_many_handle };
    evr_follow_opts_t o = { .follow = true, .job_prefix = true };
    char *out = NULL, *errs = NULL;
    s_follow(&fk, &o, 300, &out, &errs);
    CHECK_CONTAINS(out, JOBA "/count | line a1\n" JOBA "/count | line a2\n");
    CHECK_CONTAINS(out, "01ARYZ6S41TSV4RRFFQ69G5FB0/count | line c1\n");
    free(out);
    free(errs);
}

/*  One job: its first history is cut short (event 1, then
    error{unavailable}); asked again from 2, the follow ends with the
    job.  Before, the `error` ended the follow: exit 2. */
static bool
s_cut_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    if (req->type != EVR_MSG_HISTORY)
        return false;
    if (fk->nhist == 0) {
        s_send_event(fk, rid, JOBA, 1, false);
        evr_bus_send_error(fk->router, rid, EVR_CODE_UNAVAILABLE, "history of %s cut at jseq "
                           "2: the answer could not be queued; ask again from there", req->job);
        return false;
    }
    s_history_a(fk, rid, req->from);
    return true;
}

static void
test_cut_history(void)
{
    s_fake_t fk = { .handle = s_cut_handle };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 2000, &out, &errs) == 0);
    CHECK_STR(out, "count | line a1\ncount | line a2\n");
    CHECK(fk.nhist == 2);
    free(out);
    free(errs);
}

/*  A line longer than evr_follow's 64 KiB is printed in pieces, each cut
    on a character boundary: a 3-byte character at bytes 65535..65537 of
    step three's line and a 4-byte one at 65534..65537 of step four's go
    whole into the next piece.  Before, the piece ended with the
    character's first bytes and the next began with its last. */
#define S_LONG (64u * 1024u)

static void
s_send_output(s_fake_t *fk, zframe_t *rid, uint32_t jseq, const char *step, const char *b,
              size_t n)
{
    evr_event_t ev = { .seq = jseq, .job = JOBA, .jseq = jseq, .time = evr_now_ns(),
                       .type = EVR_EV_STEP_OUTPUT };
    ev.data.step = (char *) step;
    ev.data.stream = "stdout";
    ev.data.bytes.data = (uint8_t *) b;
    ev.data.bytes.len = ev.data.raw = (uint32_t) n;
    evr_msg_t m = { .type = EVR_MSG_EVENT, .event = &ev };
    evr_err_t err;
    evr_bus_send(fk->router, rid, &m, &err);
}

static bool
s_long_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    if (req->type != EVR_MSG_HISTORY)
        return false;
    char *b = evr_malloc(S_LONG + 8);
    memset(b, 'a', S_LONG - 1);
    memcpy(b + S_LONG - 1, "\xe2\x82\xacx\n", 5);
    s_send_output(fk, rid, 1, "three", b, S_LONG + 4);
    memset(b, 'b', S_LONG - 2);
    memcpy(b + S_LONG - 2, "\xf0\x9f\x98\x80\n", 5);
    s_send_output(fk, rid, 2, "four", b, S_LONG + 3);
    free(b);
    s_send_event(fk, rid, JOBA, 3, true);
    s_end(fk, rid);
    return true;
}

static void
test_long_line_utf8(void)
{
    s_fake_t fk = { .handle = s_long_handle };
    evr_follow_opts_t o = { .job = JOBA };
    char *out = NULL, *errs = NULL;
    s_follow(&fk, &o, 2000, &out, &errs);
    size_t n = 2 * S_LONG + 64;
    char *want = evr_malloc(n), *w = want;
    w += sprintf(w, "three | ");
    memset(w, 'a', S_LONG - 1), w += S_LONG - 1;
    w += sprintf(w, "\nthree | \xe2\x82\xacx\nfour | ");
    memset(w, 'b', S_LONG - 2), w += S_LONG - 2;
    sprintf(w, "\nfour | \xf0\x9f\x98\x80\n");
    CHECK(out && !strcmp(out, want));
    free(want);
    free(out);
    free(errs);
}

/*  --pipeline: the first `jobs` gets no answer; it is asked again.
    Before: exit 2. */
static bool
s_jobs_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    evr_err_t err;
    if (req->type == EVR_MSG_JOBS && fk->njobs > 0) {
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = JOBA, .status = "running",
                        .pipeline = "p" };
        evr_bus_send(fk->router, rid, &j, &err);
        s_end(fk, rid);
    }
    else if (req->type == EVR_MSG_HISTORY) {
        s_history_a(fk, rid, req->from);
        return true;
    }
    return false;
}

static void
test_jobs_asked_again(void)
{
    s_fake_t fk = { .handle = s_jobs_handle };
    evr_follow_opts_t o = { .pipeline = "p", .follow = true, .job_prefix = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 300, &out, &errs) == 0);
    CHECK_CONTAINS(out, JOBA "/count | line a1\n" JOBA "/count | line a2\n");
    CHECK_CONTAINS(errs, "jobs: no answer from the broker");
    CHECK(fk.njobs == 2);
    free(out);
    free(errs);
}

/*  One job: its history never answered; its events come live.  The
    follower says the broker is back (it publishes) before it ends.
    Before, it ended with the job without saying so. */
static bool
s_mute_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    (void) rid;
    if (req->type == EVR_MSG_HISTORY)
        fk->publish_a = true;   /* once subscribed */
    return false;
}

static void
test_back_on_publication(void)
{
    s_fake_t fk = { .handle = s_mute_handle };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 300, &out, &errs) == 0);
    CHECK_STR(out, "count | line a1\ncount | line a2\n");
    CHECK_CONTAINS(errs, "no answer from the broker");
    CHECK_CONTAINS(errs, "answers again");
    free(out);
    free(errs);
}

/*  One job whose history is not answered four times: each wait is twice
    the last (200, 400, 800 ms), each retry a second after the failure, so
    the fourth request comes at least 3.2 s after the second.  Before, each
    wait was 200 ms (2.4 s after). */
static bool
s_slow_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    if (req->type != EVR_MSG_HISTORY || fk->nhist < 4)
        return false;
    s_history_a(fk, rid, req->from);
    return true;
}

static void
test_backoff(void)
{
    s_fake_t fk = { .handle = s_slow_handle };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 200, &out, &errs) == 0);
    CHECK(fk.nhist == 5);
    /* from the second request to the fourth: 1.4 + 1.8 s of waits now,
       2.4 s before; the times are the fake broker's receipts, and a
       loaded machine may receive one late (only the second's lateness
       shortens this span): 0.4 s allowed for it */
    CHECK(fk.hist_ns[3] - fk.hist_ns[1] >= 2800000000ull);
    CHECK_STR(out, "count | line a1\ncount | line a2\n");
    free(out);
    free(errs);
}

/*  Job A's step prints "wait..." and, a while later, "done\n": the
    follower shows "wait..." before the rest comes, and the rest goes on
    the same line.  Before, nothing showed until the newline.  With
    cut_line, a line of stderr comes between: it ends the shown part
    there, and the rest is a line of its own, prefixed again. */
static void
s_output_ev(s_fake_t *fk, zframe_t *rid, uint32_t jseq, const char *text)
{
    evr_event_t ev = { .seq = jseq, .job = JOBA, .jseq = jseq, .time = evr_now_ns(),
                       .type = EVR_EV_STEP_OUTPUT };
    ev.data.step = "count";
    ev.data.stream = strncmp(text, "err", 3) ? "stdout" : "stderr";
    ev.data.bytes.data = (uint8_t *) text;
    ev.data.bytes.len = ev.data.raw = (uint32_t) strlen(text);
    evr_err_t err;
    if (rid) {
        evr_msg_t m = { .type = EVR_MSG_EVENT, .event = &ev };
        evr_bus_send(fk->router, rid, &m, &err);
    }
    else
        evr_bus_publish_event(fk->pub, &ev, &err);
}

/*  Job A's events from jseq `from`: "wait...", then once sent, the rest
    (rid NULL: published). */
static void
s_partial_events(s_fake_t *fk, zframe_t *rid, uint32_t from)
{
    static const char *const rest[] = { "wait...", "done\n" };
    static const char *const cut[] = { "wait...", "err\n", "done\n" };
    const char *const *texts = fk->cut_line ? cut : rest;
    uint32_t n = fk->cut_line ? 3 : 2;
    for (uint32_t s = from ? from : 1; s <= n; s++)
        if (s == 1 ? rid != NULL : fk->rest_sent || !rid)
            s_output_ev(fk, rid, s, texts[s - 1]);
    if (fk->rest_sent || !rid)
        s_send_event(fk, rid, JOBA, n + 1, true);
}

static bool
s_partial_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    if (req->type != EVR_MSG_HISTORY)
        return false;
    s_partial_events(fk, rid, req->from);
    s_end(fk, rid);
    if (!fk->rest_sent && !fk->rest_at)
        fk->rest_at = evr_mono_ns() + 900000000ull;
    return false;
}

static void
test_partial_live(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/out", s_dir);
    s_fake_t fk = { .handle = s_partial_handle, .out_path = path };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 2000, &out, &errs) == 0);
    CHECK_STR(fk.seen, "count | wait...");
    CHECK_STR(out, "count | wait...done\n");
    free(out);
    free(errs);
}

static void
test_partial_cut(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/out", s_dir);
    s_fake_t fk = { .handle = s_partial_handle, .out_path = path, .cut_line = true };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    CHECK(s_follow(&fk, &o, 2000, &out, &errs) == 0);
    CHECK_STR(fk.seen, "count | wait...");
    CHECK_STR(out, "count | wait...\ncount | err\ncount | done\n");
    free(out);
    free(errs);
}

/*  The reader of the output goes away (EPIPE): the follow ends at once,
    quietly, as if interrupted (*stop set).  Before, evrun-tail --all |
    head went on until a signal, writing nowhere. */
static bool
s_gone_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    evr_err_t err;
    if (req->type == EVR_MSG_JOBS) {
        evr_msg_t j = { .type = EVR_MSG_JOB, .job = JOBA, .status = "running", .pipeline = "p" };
        evr_bus_send(fk->router, rid, &j, &err);
        s_end(fk, rid);
    }
    else if (req->type == EVR_MSG_HISTORY) {
        s_send_event(fk, rid, JOBA, 1, false);
        s_end(fk, rid);
    }
    return false;   /* never done: the fake stops the follow at S_DEADLINE_MS */
}

static void
test_reader_gone(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    close(p[0]);
    s_fake_t fk = { .handle = s_gone_handle, .out_fp = fdopen(p[1], "w") };
    evr_follow_opts_t o = { .follow = true, .job_prefix = true };
    char *out = NULL, *errs = NULL;
    uint64_t t0 = evr_mono_ns();
    CHECK(s_follow(&fk, &o, 2000, &out, &errs) == 0);
    CHECK(evr_mono_ns() - t0 < 5000000000ull);
    CHECK(fk.stop);
    CHECK(!strstr(errs, "writing"));
    free(out);
    free(errs);
}

/*  A write that fails otherwise (a full disk) is said, exit 2.  Before:
    nothing said, exit 0. */
static bool
s_full_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    if (req->type == EVR_MSG_HISTORY)
        s_history_a(fk, rid, req->from);
    return false;
}

static void
test_output_full(void)
{
    s_fake_t fk = { .handle = s_full_handle, .out_fp = fopen("/dev/full", "w") };
    evr_follow_opts_t o = { .job = JOBA };
    char *out = NULL, *errs = NULL;
    CHECK(fk.out_fp != NULL);
    CHECK(s_follow(&fk, &o, 2000, &out, &errs) == 2);
    CHECK_CONTAINS(errs, "test: writing the output: No space left on device");
    free(out);
    free(errs);
}

/*  *stop set (a signal caught) while the broker owes an answer that
    never comes: the follow ends within a slice of that wait, not at its
    end (timeout_ms), and says no outage.  Before, a signal that came
    between two polls of the wait (no EINTR then: the process runnable,
    not waiting, as it often is on a loaded machine) was seen only after
    timeout_ms: `evrun-cli logs --follow --timeout-ms 20000` went on for
    20 s after a Ctrl-C.  Here *stop is set by the fake, with no signal. */
static bool
s_unanswered_handle(s_fake_t *fk, zframe_t *rid, const evr_msg_t *req)
{
    (void) fk;
    (void) rid;
    return req->type == EVR_MSG_HISTORY;    /* not answered; done: *stop in 300 ms */
}

static void
test_stop_in_wait(void)
{
    s_fake_t fk = { .handle = s_unanswered_handle };
    evr_follow_opts_t o = { .job = JOBA, .follow = true };
    char *out = NULL, *errs = NULL;
    uint64_t t0 = evr_mono_ns();
    CHECK(s_follow(&fk, &o, 60000, &out, &errs) == 0);
    CHECK(evr_mono_ns() - t0 < 10000000000ull);     /* 0.3 s, not 60 */
    CHECK(fk.stop);
    CHECK(fk.nhist == 1);
    CHECK(!strstr(errs, "following on"));
    free(out);
    free(errs);
}

int
main(void)
{
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    zsys_init();
    zsys_handler_set(NULL);
    signal(SIGPIPE, SIG_IGN);   /* as evrun-tail: a reader gone is EPIPE */
    EVR_TEST_RUN(test_partial_live);
    EVR_TEST_RUN(test_partial_cut);
    EVR_TEST_RUN(test_reader_gone);
    EVR_TEST_RUN(test_stop_in_wait);
    EVR_TEST_RUN(test_output_full);
    EVR_TEST_RUN(test_cut_history);
    EVR_TEST_RUN(test_long_line_utf8);
    EVR_TEST_RUN(test_jobs_asked_again);
    EVR_TEST_RUN(test_back_on_publication);
    EVR_TEST_RUN(test_busy_bus_owed_history);
    EVR_TEST_RUN(test_owed_pipeline);
    EVR_TEST_RUN(test_owed_first);
    EVR_TEST_RUN(test_backoff);
    char sock[64];
    snprintf(sock, sizeof sock, "%s/clients", s_dir);
    unlink(sock);
    snprintf(sock, sizeof sock, "%s/events", s_dir);
    unlink(sock);
    rmdir(s_dir);
    EVR_TEST_END();
}
