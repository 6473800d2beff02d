/*  evr_test_bus.c: raw bus peers for the size-limit cases of test_bus.sh,
    sending what evrun's own tools refuse to build.

    evr-test-bus submit EP BYTES
        sends a valid `submit` whose body is BYTES bytes (a spec of big
        scripts) and prints the answer: "accepted JOB" or "error CODE:
        MESSAGE".
    evr-test-bus broker EP BIG IMAGE
        stands in for the broker on the runner endpoint EP (binds it):
        welcomes the first runner, dispatches a job whose `dispatch` body is
        BIG bytes (none when 0), then a small job of one step on IMAGE (none
        when "-"), acks and prints every event it gets as "event SEQ TYPE
        JOB status=.. reason=.. steps=N run0=LEN" and exits 0 once it holds
        the small job's job.finished (or, without one, every event the
        runner's log held at hello), 1 after 120 s (an ASan runner on a loaded machine).
    evr-test-bus old-log DIR BYTES
        appends to the store in DIR (a runner's state directory) a
        job.accepted whose spec is BYTES bytes and its job.finished, as a
        runner of an older version could have.
    evr-test-bus runner EP ID
        a runner (id ID) on the broker's runner endpoint EP: says hello with
        an empty log, then sends one batch of 11 events: jobs A and B
        interleaved, where A's seq 4 (a step.finished of a step never
        started) and seq 9 (B's event after B's job.finished{failed}) are illegal
        and seq 7 is the first event of a job D, not its job.accepted; then C's job.accepted and
        job.finished.  Prints "jobs A B C D", then every answer ("ack SEQ",
        "control CMD JOB reason=..", "error CODE: MESSAGE").  Once acked up
        to 11 and told to cancel A, it sends A's own job.finished (seq 12)
        and exits 0 when that is acked; 1 after 10 s.
    evr-test-bus submits|resubmits EP FILE CLIENTS N
        CLIENTS connections each submit N jobs of the pipeline FILE, one at
        a time, all at once; with resubmits one more connection resends
        each first client's submit (the same job id) right after it.  Prints each
        answer as it comes, "accepted JOB", "existing JOB" or "error CODE:
        MESSAGE", and exits 0 once all are answered, 1 when none comes for
        10 s.
    evr-test-bus old-runner EP ID
        a runner as one written before runners named their executors: says
        hello with no labels, gives credit 1, prints "dispatch JOB
        PIPELINE EXECUTOR" for the first `dispatch` it gets and exits 0
        (accepting nothing); 1 after 10 s.
    evr-test-bus rogue-trigger EP ID PARENT
        a runner that triggers a pipeline file's spec (evrun-job trigger
        --file) for job PARENT, which it does not run: prints the broker's
        answer, "triggered JOB" or "refused CODE: MESSAGE", exits 0 when
        one came; 1 after 10 s.
*/
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_bus.h"
#include "evr_diag.h"
#include "evr_store.h"
#include "evr_yaml.h"

#define S_IMAGE "localhost/evrun-busybox:latest"

/*  Adds to spec a step named sN with a script of len 'x's. */
static void
s_add_step(evr_spec_t *spec, size_t len)
{
    uint32_t i = spec->steps.n++;
    spec->steps.v = evr_realloc(spec->steps.v, spec->steps.n * sizeof(evr_step_t));
    evr_step_t *st = evr_spec_step(spec, i);
    memset(st, 0, sizeof *st);
    st->name = evr_asprintf("s%u", i);
    st->run = evr_malloc(len + 1);
    memset(st->run, 'x', len);
    st->run[len] = '\0';
}

/*  Size of what encode(rec) gives. */
static size_t
s_size(const evr_msg_t *m)
{
    uint8_t *buf;
    size_t len;
    evr_msg_encode(m, &buf, &len);
    free(buf);
    return len;
}

/*  Fills m->spec with steps until the body of m is exactly bytes long (or
    as close as the encoding allows). */
static void
s_fill(evr_msg_t *m, size_t bytes)
{
    m->spec = evr_spec_new();
    m->spec->pipeline = evr_strdup("big");
    m->spec->image = evr_strdup(S_IMAGE);
    while (s_size(m) + 60100 < bytes)
        s_add_step(m->spec, 60000);
    s_add_step(m->spec, 1000);
    for (int round = 0; round < 4; round++) {
        size_t now = s_size(m);
        evr_step_t *last = evr_spec_step(m->spec, m->spec->steps.n - 1);
        size_t len = strlen(last->run);
        if (now == bytes || len + bytes < now)
            break;
        len = len + bytes - now;
        free(last->run);
        last->run = evr_malloc(len + 1);
        memset(last->run, 'x', len);
        last->run[len] = '\0';
    }
}

static int
s_submit(const char *ep, size_t bytes)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_connect(s, "%s", ep);
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = job };
    s_fill(&m, bytes);
    fprintf(stderr, "submit of %zu bytes\n", s_size(&m));
    evr_err_t err;
    int rc = 1;
    if (evr_bus_send(s, NULL, &m, &err))
        printf("not sent: %s\n", err.msg);
    else {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        evr_msg_t rep = { 0 };
        const char *code;
        if (zmq_poll(&it, 1, 10000) <= 0)
            printf("no answer\n");
        else if (evr_bus_recv(s, NULL, &rep, &code, &err))
            printf("malformed answer: %s\n", err.msg);
        else {
            if (rep.type == EVR_MSG_ERROR)
                printf("error %s: %s\n", rep.code, rep.message);
            else
                printf("%s %s\n", evr_msgtype_name(rep.type), rep.job ? rep.job : "");
            rc = 0;
        }
        evr_msg_clear(&rep);
    }
    m.job = NULL;
    evr_msg_clear(&m);
    zsock_destroy(&s);
    return rc;
}

/*  One submit of spec with a new id on sock; the id into job. */
static bool
s_submit_one(zsock_t *sock, evr_spec_t *spec, char job[EVR_ULID_LEN + 1])
{
    evr_ulid_new(job);
    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = job, .spec = spec };
    evr_err_t err;
    if (evr_bus_send(sock, NULL, &m, &err) == EVR_OK)
        return true;
    printf("not sent: %s\n", err.msg);
    return false;
}

static void
s_print_answer(zsock_t *sock)
{
    evr_msg_t rep = { 0 };
    const char *code;
    evr_err_t err;
    if (evr_bus_recv(sock, NULL, &rep, &code, &err))
        printf("malformed answer: %s\n", err.msg);
    else if (rep.type == EVR_MSG_ERROR)
        printf("error %s: %s\n", rep.code, rep.message);
    else
        printf("%s %s\n", rep.existing ? "existing" : evr_msgtype_name(rep.type),
               rep.job ? rep.job : "");
    fflush(stdout);
    evr_msg_clear(&rep);
}

static int
s_submits(const char *ep, const char *file, int clients, int n, bool resend)
{
    if (clients < 1 || clients > 64 || n < 1) {
        printf("submits: CLIENTS 1..64, N at least 1\n");
        return 2;
    }
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *d = evr_diag_new(file);
    if (evr_yaml_load_file(spec, d)) {
        printf("%s: %s\n", file, evr_diag_count(d) ? evr_diag_get(d, 0) : "cannot load");
        evr_diag_destroy(&d);
        evr_spec_destroy(&spec);
        return 1;
    }
    evr_diag_destroy(&d);
    zsock_t *socks[65];
    zmq_pollitem_t it[65];
    int left[65], waiting = 0;
    for (int i = 0; i <= clients; i++) {
        socks[i] = zsock_new(ZMQ_DEALER);
        evr_bus_setup(socks[i]);
        zsock_set_linger(socks[i], 0);  /* gone at once after the last answer */
        zsock_connect(socks[i], "%s", ep);
        it[i] = (zmq_pollitem_t) { zsock_resolve(socks[i]), 0, ZMQ_POLLIN, 0 };
        left[i] = n;
    }
    int rc = 0;
    char job[EVR_ULID_LEN + 1];
    for (int i = 0; i < clients && !rc; i++) {
        rc = !s_submit_one(socks[i], spec, job);
        waiting++;
        if (i == 0 && resend) {   /* the resend, on the extra connection */
            evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = job, .spec = spec };
            rc = rc || evr_bus_send(socks[clients], NULL, &m, NULL);
            waiting++;
        }
    }
    while (!rc && waiting) {
        if (zmq_poll(it, clients + 1, 10000) <= 0) {
            printf("no answer for 10 s (%d awaited)\n", waiting);
            rc = 1;
            break;
        }
        for (int i = 0; i <= clients && !rc; i++)
            while (!rc && evr_bus_readable(socks[i])) {
                s_print_answer(socks[i]);
                waiting--;
                if (i == clients || --left[i] == 0)
                    continue;
                rc = !s_submit_one(socks[i], spec, job);
                waiting++;
                if (i == 0 && resend) {
                    evr_msg_t m = { .type = EVR_MSG_SUBMIT, .job = job, .spec = spec };
                    rc = rc || evr_bus_send(socks[clients], NULL, &m, NULL);
                    waiting++;
                }
            }
    }
    for (int i = 0; i <= clients; i++)
        zsock_destroy(&socks[i]);
    evr_spec_destroy(&spec);
    return rc;
}

static void
s_print_event(const evr_event_t *ev)
{
    const evr_evdata_t *d = &ev->data;
    printf("event %llu %s %s status=%s reason=%s steps=%u run0=%zu\n",
           (unsigned long long) ev->seq, evr_evtype_name(evr_event_kind(ev)),
           ev->job ? ev->job : "-", d->status ? d->status : "-", d->reason ? d->reason : "-",
           d->spec ? d->spec->steps.n : 0,
           d->spec && d->spec->steps.n ? strlen(evr_spec_step(d->spec, 0)->run) : 0);
    fflush(stdout);
}

/*  Sends the dispatches once the runner is welcomed. */
static void
s_dispatch(zsock_t *s, zframe_t *rid, size_t big, const char *image, char job[], char small[])
{
    evr_err_t err;
    if (big) {
        if (!*job)
            evr_ulid_new(job);
        evr_msg_t m = { .type = EVR_MSG_DISPATCH, .job = job };
        s_fill(&m, big);
        printf("dispatch %s of %zu bytes\n", job, s_size(&m));
        if (evr_bus_send(s, rid, &m, &err))
            printf("dispatch not sent: %s\n", err.msg);
        m.job = NULL;
        evr_msg_clear(&m);
    }
    if (strcmp(image, "-") != 0) {
        if (!*small)
            evr_ulid_new(small);
        evr_msg_t m = { .type = EVR_MSG_DISPATCH, .job = small, .spec = evr_spec_new() };
        m.spec->pipeline = evr_strdup("small");
        m.spec->image = evr_strdup(image);
        s_add_step(m.spec, 0);
        free(evr_spec_step(m.spec, 0)->run);
        evr_spec_step(m.spec, 0)->run = evr_strdup("echo small");
        printf("dispatch %s (small)\n", small);
        if (evr_bus_send(s, rid, &m, &err))
            printf("dispatch not sent: %s\n", err.msg);
        m.job = NULL;
        evr_msg_clear(&m);
    }
    fflush(stdout);
}

static int
s_broker(const char *ep, size_t big, const char *image)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    evr_bus_setup(s);
    if (zsock_bind(s, "%s", ep) < 0) {
        fprintf(stderr, "cannot bind %s\n", ep);
        zsock_destroy(&s);
        return 1;
    }
    char small[EVR_ULID_LEN + 1] = "", job[EVR_ULID_LEN + 1] = "";
    bool seen = false;  /* an event of a dispatched job came */
    uint64_t until = evr_mono_ns() + 120000000000ull, held = 0, need = 0;
    zframe_t *runner = NULL;
    int rc = 1;
    while (rc && evr_mono_ns() < until) {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) > 0) {
            zframe_t *rid = NULL;
            evr_msg_t m = { 0 };
            const char *code;
            evr_err_t err;
            if (evr_bus_recv(s, &rid, &m, &code, &err))
                printf("malformed: %s\n", err.msg);
            else if (m.type == EVR_MSG_HELLO) {
                /* a runner that gave up waiting (a loaded machine) says
                   hello again on a new socket: it is the runner now, and
                   the dispatches go again unless one was already heard of */
                if (!runner)
                    need = m.seq;
                else
                    printf("hello again from %s at seq %llu\n", m.runner,
                           (unsigned long long) m.seq);
                zframe_destroy(&runner);
                runner = zframe_dup(rid);
                evr_msg_t w = { .type = EVR_MSG_WELCOME, .runner = m.runner, .seq = held };
                evr_bus_send(s, rid, &w, NULL);
                printf("hello from %s at seq %llu\n", m.runner, (unsigned long long) m.seq);
                if (!seen)
                    s_dispatch(s, rid, big, image, job, small);
            }
            else if (m.type == EVR_MSG_EVENTS) {
                for (uint32_t i = 0; i < m.events.n; i++) {
                    const evr_event_t *ev = evr_reclist_at(&evr_event_type, &m.events, i);
                    s_print_event(ev);
                    if (ev->job && ((*job && !strcmp(ev->job, job))
                                    || (*small && !strcmp(ev->job, small))))
                        seen = true;
                    if (ev->seq == held + 1)
                        held = ev->seq;
                    if (*small && ev->job && !strcmp(ev->job, small)
                        && evr_event_kind(ev) == EVR_EV_JOB_FINISHED)
                        rc = 0;
                }
                evr_msg_t a = { .type = EVR_MSG_ACK, .seq = held };
                evr_bus_send(s, rid, &a, NULL);
                if (!*small && held >= need)
                    rc = 0;
            }
            zframe_destroy(&rid);
            evr_msg_clear(&m);
        }
        if (runner) {
            evr_msg_t h = { .type = EVR_MSG_HEARTBEAT };
            evr_bus_send(s, runner, &h, NULL);
        }
    }
    if (rc)
        printf("timed out\n");
    zframe_destroy(&runner);
    zsock_destroy(&s);
    return rc;
}

/*  The next event of the fake runner's batch: seq, job (NULL: none),
    jseq and type. */
static evr_event_t *
s_fake_event(evr_msg_t *m, const char *job, uint32_t jseq, evr_evtype_t type)
{
    evr_event_t *ev = &((evr_event_t *) m->events.v)[m->events.n++];
    ev->seq = m->events.n;
    ev->job = job ? evr_strdup(job) : NULL;
    ev->jseq = jseq;
    ev->type = type;
    ev->time = evr_now_ns();
    return ev;
}

static void
s_fake_accepted(evr_msg_t *m, const char *job, const char *runner)
{
    evr_event_t *ev = s_fake_event(m, job, 1, EVR_EV_JOB_ACCEPTED);
    ev->data.pipeline = evr_strdup("fake");
    ev->data.runner = evr_strdup(runner);
    ev->data.spec = evr_spec_new();
    ev->data.spec->pipeline = evr_strdup("fake");
    ev->data.spec->image = evr_strdup(S_IMAGE);
    s_add_step(ev->data.spec, 4);
}

/*  The fake runner's batch (see the top of the file). */
static void
s_fake_batch(evr_msg_t *m, char ids[4][EVR_ULID_LEN + 1], const char *runner)
{
    m->type = EVR_MSG_EVENTS;
    m->events.v = evr_calloc(16, sizeof(evr_event_t));
    s_fake_accepted(m, ids[0], runner);                                   /* 1 */
    s_fake_event(m, ids[0], 2, EVR_EV_JOB_STARTED)->data.runner = evr_strdup(runner);
    s_fake_accepted(m, ids[1], runner);                                   /* 3 */
    evr_event_t *ev = s_fake_event(m, ids[0], 3, EVR_EV_STEP_FINISHED);   /* 4: illegal */
    ev->data.step = evr_strdup("s0");
    ev->data.attempt = 1;
    ev->data.status = evr_strdup("succeeded");
    ev = s_fake_event(m, ids[0], 4, EVR_EV_STEP_QUEUED);                  /* 5: dropped */
    ev->data.step = evr_strdup("s0");
    ev->data.attempt = 1;
    s_fake_event(m, ids[1], 2, EVR_EV_JOB_STARTED)->data.runner = evr_strdup(runner);
    s_fake_event(m, ids[3], 1, EVR_EV_JOB_STARTED)->data.runner = evr_strdup(runner);   /* 7 */
    ev = s_fake_event(m, ids[1], 3, EVR_EV_JOB_FINISHED);   /* not succeeded: s0 never ran */
    ev->data.status = evr_strdup("failed");
    ev->data.reason = evr_strdup("B-made-by-evr-test-bus");
    s_fake_event(m, ids[1], 4, EVR_EV_JOB_PAUSED);                        /* 9: illegal */
    s_fake_accepted(m, ids[2], runner);                                   /* 10 */
    ev = s_fake_event(m, ids[2], 2, EVR_EV_JOB_FINISHED);
    ev->data.status = evr_strdup("cancelled");
    ev->data.reason = evr_strdup("made by evr-test-bus");
}

/*  Prints one answer of the broker; sets *acked and *told (a cancel of job). */
static void
s_fake_answer(const evr_msg_t *m, const char *job, uint64_t *acked, bool *told)
{
    if (m->type == EVR_MSG_ACK) {
        printf("ack %llu\n", (unsigned long long) m->seq);
        *acked = m->seq;
    }
    else if (m->type == EVR_MSG_CONTROL) {
        printf("control %s %s reason=%s\n", m->command, m->job ? m->job : "-",
               m->reason ? m->reason : "-");
        if (m->job && !strcmp(m->job, job) && !strcmp(m->command, "cancel"))
            *told = true;
    }
    else if (m->type == EVR_MSG_ERROR)
        printf("error %s: %s\n", m->code, m->message);
    else if (m->type != EVR_MSG_HEARTBEAT)
        printf("%s\n", evr_msgtype_name(m->type));
    fflush(stdout);
}

static int
s_runner(const char *ep, const char *id)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_connect(s, "%s", ep);
    char ids[4][EVR_ULID_LEN + 1];
    for (int i = 0; i < 4; i++)
        evr_ulid_new(ids[i]);
    printf("jobs %s %s %s %s\n", ids[0], ids[1], ids[2], ids[3]);
    evr_msg_t hello = { .type = EVR_MSG_HELLO, .runner = (char *) id, .capacity = 1,
                        .version = EVR_VERSION, .seq = 0 };
    evr_bus_send(s, NULL, &hello, NULL);
    uint64_t until = evr_mono_ns() + 10000000000ull, acked = 0;
    bool welcomed = false, told = false, sent_end = false;
    int rc = 1;
    while (rc && evr_mono_ns() < until) {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) > 0) {
            evr_msg_t m = { 0 };
            const char *code;
            evr_err_t err;
            if (evr_bus_recv(s, NULL, &m, &code, &err))
                printf("malformed: %s\n", err.msg);
            else if (m.type == EVR_MSG_WELCOME && !welcomed) {
                welcomed = true;
                evr_msg_t b = { 0 };
                s_fake_batch(&b, ids, id);
                if (evr_bus_send(s, NULL, &b, &err))
                    printf("batch not sent: %s\n", err.msg);
                evr_msg_clear(&b);
            }
            else
                s_fake_answer(&m, ids[0], &acked, &told);
            evr_msg_clear(&m);
        }
        if (acked >= 11 && told && !sent_end) {   /* the runner ends its copy of A */
            evr_msg_t b = { .type = EVR_MSG_EVENTS };
            b.events.v = evr_calloc(1, sizeof(evr_event_t));
            evr_event_t *ev = s_fake_event(&b, ids[0], 5, EVR_EV_JOB_FINISHED);
            ev->seq = 12;
            ev->data.status = evr_strdup("cancelled");
            evr_bus_send(s, NULL, &b, NULL);
            evr_msg_clear(&b);
            sent_end = true;
        }
        if (acked >= 12)
            rc = 0;
        evr_msg_t h = { .type = EVR_MSG_HEARTBEAT };
        evr_bus_send(s, NULL, &h, NULL);
    }
    if (rc)
        printf("timed out: acked %llu, cancel of A %s\n", (unsigned long long) acked,
               told ? "told" : "not told");
    zsock_destroy(&s);
    return rc;
}

static int
s_old_runner(const char *ep, const char *id)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_connect(s, "%s", ep);
    evr_msg_t hello = { .type = EVR_MSG_HELLO, .runner = (char *) id, .capacity = 1,
                        .version = EVR_VERSION, .seq = 0 };
    evr_bus_send(s, NULL, &hello, NULL);
    uint64_t until = evr_mono_ns() + 10000000000ull;
    int rc = 1;
    while (rc && evr_mono_ns() < until) {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) > 0) {
            evr_msg_t m = { 0 };
            const char *code;
            evr_err_t err;
            if (evr_bus_recv(s, NULL, &m, &code, &err))
                printf("malformed: %s\n", err.msg);
            else if (m.type == EVR_MSG_WELCOME) {
                evr_msg_t c = { .type = EVR_MSG_CREDIT, .credit = 1 };
                evr_bus_send(s, NULL, &c, NULL);
            }
            else if (m.type == EVR_MSG_DISPATCH) {
                printf("dispatch %s %s %s\n", m.job, m.spec->pipeline,
                       evr_executor_names[m.spec->executor]);
                rc = 0;
            }
            evr_msg_clear(&m);
        }
        evr_msg_t h = { .type = EVR_MSG_HEARTBEAT };
        evr_bus_send(s, NULL, &h, NULL);
    }
    if (rc)
        printf("timed out: no dispatch\n");
    fflush(stdout);
    zsock_destroy(&s);
    return rc;
}

static int
s_rogue_trigger(const char *ep, const char *id, const char *parent)
{
    static const char yml[] = "pipeline: rogue\nimage: " S_IMAGE "\nsteps:\n"
                              "  - name: x\n    run: echo rogue\n";
    evr_spec_t *spec = evr_spec_new();
    evr_diag_t *diag = evr_diag_new("rogue.yml");
    evr_yaml_load(yml, sizeof yml - 1, spec, diag);
    evr_diag_destroy(&diag);
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_connect(s, "%s", ep);
    evr_msg_t hello = { .type = EVR_MSG_HELLO, .runner = (char *) id, .capacity = 1,
                        .version = EVR_VERSION, .seq = 0 };
    evr_bus_send(s, NULL, &hello, NULL);
    uint64_t until = evr_mono_ns() + 10000000000ull;
    int rc = 1;
    while (rc && evr_mono_ns() < until) {
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 200) <= 0)
            continue;
        evr_msg_t m = { 0 };
        const char *code;
        evr_err_t err;
        if (evr_bus_recv(s, NULL, &m, &code, &err))
            printf("malformed: %s\n", err.msg);
        else if (m.type == EVR_MSG_WELCOME) {
            evr_msg_t t = { .type = EVR_MSG_TRIGGER, .job = job, .pipeline = "rogue",
                            .spec = spec, .file = "deploy.yml", .parent_job = (char *) parent,
                            .parent_step = "build" };
            evr_bus_send(s, NULL, &t, NULL);
        }
        else if (m.type == EVR_MSG_TRIGGERED) {
            if (m.code)
                printf("refused %s: %s\n", m.code, m.message ? m.message : "");
            else
                printf("triggered %s\n", m.job);
            rc = 0;
        }
        evr_msg_clear(&m);
    }
    if (rc)
        printf("timed out: no answer\n");
    fflush(stdout);
    zsock_destroy(&s);
    evr_spec_destroy(&spec);
    return rc;
}

static int
s_old_log(const char *dir, size_t bytes)
{
    evr_store_t *store;
    evr_err_t err;
    if (evr_store_open(dir, EVR_STORE_NOSYNC, &store, &err)) {
        fprintf(stderr, "%s: %s\n", dir, err.msg);
        return 1;
    }
    char job[EVR_ULID_LEN + 1];
    evr_ulid_new(job);
    evr_msg_t m = { .type = EVR_MSG_DISPATCH, .job = job };
    s_fill(&m, bytes);
    evr_event_t *evs[2] = { evr_event_new(EVR_EV_JOB_ACCEPTED),
                            evr_event_new(EVR_EV_JOB_FINISHED) };
    evs[0]->data.pipeline = evr_strdup("big");
    evs[0]->data.spec = m.spec;
    m.spec = NULL;
    evs[1]->data.status = evr_strdup("failed");
    evs[1]->data.reason = evr_strdup("made by evr-test-bus");
    for (int i = 0; i < 2; i++)
        evs[i]->job = evr_strdup(job);
    int rc = evr_store_append(store, evs, 2, &err) ? 1 : 0;
    if (rc)
        fprintf(stderr, "append: %s\n", err.msg);
    else
        printf("old-log %s\n", job);
    for (int i = 0; i < 2; i++)
        evr_event_destroy(&evs[i]);
    evr_store_destroy(&store);
    return rc;
}

int
main(int argc, char **argv)
{
    evr_bus_init();   /* czmq set up, its signal handlers off (evr_bus.h) */
    if (argc == 4 && !strcmp(argv[1], "submit"))
        return s_submit(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 5 && !strcmp(argv[1], "broker"))
        return s_broker(argv[2], strtoul(argv[3], NULL, 10), argv[4]);
    if (argc == 4 && !strcmp(argv[1], "old-log"))
        return s_old_log(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 4 && !strcmp(argv[1], "runner"))
        return s_runner(argv[2], argv[3]);
    if (argc == 6 && (!strcmp(argv[1], "submits") || !strcmp(argv[1], "resubmits")))
        return s_submits(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]),
                         !strcmp(argv[1], "resubmits"));
    if (argc == 4 && !strcmp(argv[1], "old-runner"))
        return s_old_runner(argv[2], argv[3]);
    if (argc == 5 && !strcmp(argv[1], "rogue-trigger"))
        return s_rogue_trigger(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: evr-test-bus submit EP BYTES | broker EP BIG IMAGE | "
                    "old-log DIR BYTES | runner EP ID | old-runner EP ID | rogue-trigger EP ID "
                    "PARENT | submits|resubmits EP "
                    "FILE CLIENTS N\n");
    return 2;
}
