/*  evr_soak.c: drives a running evrun-broker with the clients and runners
    that used to hurt it, and watches its memory (VmRSS in /proc/PID).

    evr_soak slow-history CLIENTS RUNNERS PID REQUESTS BOUND_MIB
        a fake runner stores a chatty job (2 MiB of output); a DEALER
        asks its history REQUESTS times and never reads; the broker's RSS
        must stay within BOUND_MIB of what it was before, and come back
        near it once that client has gone.
    evr_soak churn RUNNERS N
        N runners with fresh ids say hello one after another on one
        connection (each replaces the one before), then one more; every
        hello must be welcomed.
    evr_soak starve CLIENTS RUNNERS EVENTS N
        a subscriber to every event never reads while N jobs whose specs
        are near the 1 MiB limit are accepted, and N of 60 kB after them
        (filling what is left of a shared budget); then a fake runner stores
        a job, and a second subscriber, which reads, must get all of its
        events live: the one that does not read starves no other.
    evr_soak soak CLIENTS RUNNERS EVENTS PID SECONDS BOUND_MIB
        for SECONDS at once: readers that never read (history and jobs
        requests, a subscriber to every event), runner-id churn, submits
        just under the size limit, and a client that asks status, jobs,
        runners and history in turn and must get every answer within 5 s;
        the broker's anonymous memory (RssAnon: VmRSS less the store's
        mapped file) must stay under BOUND_MIB throughout.
        EVR_SOAK_ROLES=0123 picks roles: 0 readers that never read, 1
        churn, 2 submits, 3 the reading client.

    Each role of `soak` is a child process (forked before any ZeroMQ
    context exists); the parent samples the broker's RSS.  Exit status 0
    when every check holds, 1 otherwise, saying which.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_synth.h"
#include "evr_ulid.h"

#define S_ANSWER_MS 5000            /* a well-behaved client's patience */
#define S_CHATTY_BYTES (2u << 20)   /* output of the chatty job */

static volatile sig_atomic_t s_stop;

static void
s_on_term(int sig)
{
    (void) sig;
    s_stop = 1;
}

/*  One line of /proc/PID/status in KiB ("VmRSS:", "RssAnon:"); -1 when
    the process is gone. */
static long
s_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *fp = fopen(path, "r");
    long kib = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, key, strlen(key)) == 0)
            kib = strtol(line + strlen(key), NULL, 10);
    if (fp)
        fclose(fp);
    return kib;
}

static long
s_rss_kib(pid_t pid)
{
    return s_status_kib(pid, "VmRSS:");
}

static zsock_t *
s_dealer(const char *ep)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_set_linger(s, 0);
    zsock_connect(s, "%s", ep);
    return s;
}

/*  The next message on s other than a heartbeat, within ms; false when
    none came. */
static bool
s_recv(zsock_t *s, int ms, evr_msg_t *m)
{
    uint64_t until = evr_mono_ns() + (uint64_t) ms * 1000000ull;
    memset(m, 0, sizeof *m);
    for (;;) {
        uint64_t now = evr_mono_ns();
        if (now >= until)
            return false;
        zmq_pollitem_t it = { zsock_resolve(s), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, (long) ((until - now) / 1000000)) <= 0)
            continue;
        const char *code;
        evr_err_t err;
        memset(m, 0, sizeof *m);
        if (evr_bus_recv(s, NULL, m, &code, &err)) {
            fprintf(stderr, "evr_soak: a bad message: %s\n", err.msg);
            continue;
        }
        if (m->type != EVR_MSG_HEARTBEAT)
            return true;
        evr_msg_clear(m);
    }
}

/*  hello as runner id on s; true when welcomed (why set otherwise). */
static bool
s_hello(zsock_t *s, const char *id, char *why, size_t whylen)
{
    evr_msg_t h = { .type = EVR_MSG_HELLO, .runner = (char *) id, .capacity = 1,
                    .version = "soak" }, w;
    evr_bus_send(s, NULL, &h, NULL);
    if (!s_recv(s, S_ANSWER_MS, &w)) {
        snprintf(why, whylen, "no answer to hello %s", id);
        return false;
    }
    bool ok = w.type == EVR_MSG_WELCOME;
    if (!ok)
        snprintf(why, whylen, "hello %s: %s: %s", id, w.code ? w.code : evr_msgtype_name(w.type),
                 w.message ? w.message : "");
    evr_msg_clear(&w);
    return ok;
}

/*  A fake runner stores a job with `bytes` of output; its id in job. */
static bool
s_chatty(const char *runners_ep, uint32_t bytes, char job[EVR_ULID_LEN + 1])
{
    zsock_t *s = s_dealer(runners_ep);
    char id[64], why[EVR_ERR_MAX];
    snprintf(id, sizeof id, "chatty-%d", (int) getpid());
    evr_ulid_new(job);
    bool ok = s_hello(s, id, why, sizeof why);
    size_t n = 0;
    evr_event_t **evs = ok ? evr_synth_job(job, 1, bytes, 64u * 1024u, &n) : NULL;
    for (size_t i = 0; i < n; i++) {
        evs[i]->seq = i + 1;
        evs[i]->jseq = (uint32_t) i + 1;
        evs[i]->time = evr_now_ns();
    }
    for (size_t at = 0; ok && at < n; at += 16) {
        evr_msg_t m = { .type = EVR_MSG_EVENTS }, a;
        m.events.n = (uint32_t) (n - at < 16 ? n - at : 16);
        m.events.v = evr_calloc(m.events.n, sizeof(evr_event_t));
        for (uint32_t k = 0; k < m.events.n; k++)
            evr_rec_copy(&evr_event_type, (evr_event_t *) m.events.v + k, evs[at + k]);
        evr_bus_send(s, NULL, &m, NULL);
        evr_msg_clear(&m);
        ok = s_recv(s, S_ANSWER_MS, &a) && a.type == EVR_MSG_ACK;
        if (!ok)
            snprintf(why, sizeof why, "events not acknowledged (%s: %s)",
                     evr_msgtype_name(a.type), a.message ? a.message : "");
        evr_msg_clear(&a);
    }
    if (!ok)
        fprintf(stderr, "evr_soak: the chatty runner: %s\n", why);
    evr_synth_free(evs, n);
    zsock_destroy(&s);
    return ok;
}

/*  One request and its whole answer within S_ANSWER_MS; false (said)
    when it did not come. */
static bool
s_ask(zsock_t *s, const evr_msg_t *req, uint32_t *items)
{
    bool stream = req->type == EVR_MSG_JOBS || req->type == EVR_MSG_HISTORY
               || req->type == EVR_MSG_RUNNERS;
    evr_err_t err;
    *items = 0;
    if (evr_bus_send(s, NULL, req, &err)) {
        fprintf(stderr, "evr_soak: cannot send %s: %s\n", evr_msgtype_name(req->type), err.msg);
        return false;
    }
    for (;;) {
        evr_msg_t m;
        if (!s_recv(s, S_ANSWER_MS, &m)) {
            fprintf(stderr, "evr_soak: no answer to %s within %d ms\n",
                    evr_msgtype_name(req->type), S_ANSWER_MS);
            return false;
        }
        bool last = !stream || m.type == EVR_MSG_END || m.type == EVR_MSG_ERROR;
        if (m.type == EVR_MSG_ERROR)
            fprintf(stderr, "evr_soak: %s answered %s: %s\n", evr_msgtype_name(req->type),
                    m.code, m.message);
        else if (!last)
            (*items)++;
        evr_msg_clear(&m);
        if (last)
            return true;
    }
}

/*  Never reads: asks `history` of job (and `jobs`, when mixed) n times. */
static zsock_t *
s_slow_reader(const char *ep, const char *job, int n, bool mixed)
{
    zsock_t *s = zsock_new(ZMQ_DEALER);
    evr_bus_setup(s);
    zsock_set_linger(s, 0);
    zsock_set_rcvhwm(s, 1);
    zsock_set_rcvbuf(s, 4096);
    zsock_set_sndhwm(s, 0);
    zsock_connect(s, "%s", ep);
    for (int i = 0; i < n; i++) {
        evr_msg_t h = { .type = EVR_MSG_HISTORY, .job = (char *) job, .from = 1 };
        evr_msg_t j = { .type = EVR_MSG_JOBS, .limit = 10000 };
        evr_bus_send(s, NULL, mixed && i % 2 ? &j : &h, NULL);
    }
    return s;
}

static int
s_slow_history(char **argv)
{
    const char *clients = argv[0], *runners = argv[1];
    pid_t pid = (pid_t) atoi(argv[2]);
    int n = atoi(argv[3]);
    long bound = atol(argv[4]) * 1024;
    char job[EVR_ULID_LEN + 1];
    if (!s_chatty(runners, S_CHATTY_BYTES, job))
        return 1;
    /* one full read first: the store's pages of that job are in memory */
    zsock_t *good = s_dealer(clients);
    evr_msg_t h = { .type = EVR_MSG_HISTORY, .job = job, .from = 1 };
    uint32_t items;
    if (!s_ask(good, &h, &items) || items == 0)
        return 1;
    zclock_sleep(500);
    long before = s_rss_kib(pid), peak = before;
    zsock_t *slow = s_slow_reader(clients, job, n, false);
    bool answered = true;
    for (int i = 0; i < 40; i++) {   /* 4 s: the broker works through the requests */
        zclock_sleep(100);
        long r = s_rss_kib(pid);
        if (r > peak)
            peak = r;
        if (i % 10 == 9)
            answered &= s_ask(good, &h, &items);
    }
    zsock_destroy(&slow);
    zclock_sleep(2500);   /* the broker notices, releases, trims */
    long after = s_rss_kib(pid);
    printf("slow-history: %d requests unread: broker RSS %ld KiB before, peak %ld KiB "
           "(+%ld), %ld KiB after the client left (bound +%ld KiB)\n", n, before, peak,
           peak - before, after, bound);
    zsock_destroy(&good);
    bool ok = answered && peak - before <= bound && after - before <= bound / 2;
    if (!ok)
        printf("slow-history: FAILED%s\n", answered ? "" : " (a client was not answered)");
    return ok ? 0 : 1;
}

static int
s_churn(char **argv)
{
    const char *runners = argv[0];
    int n = atoi(argv[1]);
    zsock_t *s = s_dealer(runners);
    char id[64], why[EVR_ERR_MAX];
    int refused = 0;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "churn-%d-%d", (int) getpid(), i);
        if (!s_hello(s, id, why, sizeof why) && refused++ < 3)
            printf("churn: %s\n", why);
    }
    zsock_destroy(&s);
    zsock_t *late = s_dealer(runners);
    snprintf(id, sizeof id, "late-%d", (int) getpid());
    bool ok = s_hello(late, id, why, sizeof why);
    zsock_destroy(&late);
    printf("churn: %d fresh runner ids, %d refused; a new runner after them: %s\n", n, refused,
           ok ? "welcomed" : why);
    return ok && !refused ? 0 : 1;
}

/*  A SUB socket on ep subscribed to every event; rcvhwm 1 when it is
    not to read (libzmq then holds what it cannot deliver in the broker). */
static zsock_t *
s_sub(const char *ep, bool reads)
{
    zsock_t *s = zsock_new(ZMQ_SUB);
    evr_bus_setup(s);
    zsock_set_linger(s, 0);
    if (!reads) {
        zsock_set_rcvhwm(s, 1);
        zsock_set_rcvbuf(s, 4096);
    }
    zsock_set_subscribe(s, "ev.");
    zsock_connect(s, "%s", ep);
    return s;
}

static evr_msg_t *s_big_submit(size_t size);

/*  evr_soak starve (see the top of this file). */
static int
s_starve(char **argv)
{
    int n = atoi(argv[3]), accepted = 0;
    zsock_t *stuck = s_sub(argv[2], false), *s = s_dealer(argv[0]);
    zclock_sleep(300);   /* the subscription reaches the broker */
    for (int i = 0; i < 2 * n; i++) {   /* n near 1 MiB, then n of 60 kB fill up the rest */
        evr_msg_t *m = s_big_submit(i < n ? EVR_SPEC_MAX_BYTES - 4096 : 60100), a;
        evr_bus_send(s, NULL, m, NULL);
        evr_msg_destroy(&m);
        if (!s_recv(s, S_ANSWER_MS, &a))
            break;
        accepted += a.type == EVR_MSG_ACCEPTED;
        evr_msg_clear(&a);
    }
    zsock_destroy(&s);
    zsock_t *reader = s_sub(argv[2], true);
    zclock_sleep(300);
    char job[EVR_ULID_LEN + 1];
    bool stored = s_chatty(argv[1], 256u * 1024u, job);
    size_t nev = 0;   /* as many events as s_chatty stored */
    evr_event_t **evs = evr_synth_job(job, 1, 256u * 1024u, 64u * 1024u, &nev);
    evr_synth_free(evs, nev);
    int got = 0, want = (int) nev;
    zpoller_t *p = zpoller_new(reader, NULL);
    int64_t until = zclock_mono() + S_ANSWER_MS;
    while (stored && got < want && zclock_mono() < until) {
        if (!zpoller_wait(p, 100))
            continue;
        char *topic;
        evr_msg_t m = { 0 };
        evr_err_t err;
        if (evr_bus_recv_pub(reader, &topic, &m, &err) == EVR_OK) {
            got += m.event && m.event->job && !strcmp(m.event->job, job);
            free(topic);
            evr_msg_clear(&m);
        }
    }
    zpoller_destroy(&p);
    zsock_destroy(&reader);
    zsock_destroy(&stuck);
    printf("starve: %d of %d submits (%d near 1 MiB, %d of 60 kB) accepted while a subscriber "
           "did not read; then a reading subscriber got %d of the %d events of a new job live\n",
           accepted, 2 * n, n, n, got, want);
    bool ok = stored && accepted == 2 * n && got == want;
    if (!ok)
        printf("starve: FAILED\n");
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------ soak roles */

/*  Readers that never read: a few connections at a time, each renewed
    every few seconds (the broker must release what it held for them). */
static int
s_role_slow(const char *clients, const char *events, const char *job)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    evr_bus_setup(sub);
    zsock_set_linger(sub, 0);
    zsock_set_rcvhwm(sub, 1);
    zsock_set_rcvbuf(sub, 4096);
    zsock_set_subscribe(sub, "");
    zsock_connect(sub, "%s", events);
    while (!s_stop) {
        zsock_t *s[4];
        for (int i = 0; i < 4; i++)
            s[i] = s_slow_reader(clients, job, 500, true);
        for (int t = 0; t < 50 && !s_stop; t++)
            zclock_sleep(100);
        for (int i = 0; i < 4; i++)
            zsock_destroy(&s[i]);
    }
    zsock_destroy(&sub);
    return 0;
}

static int
s_role_churn(const char *runners)
{
    zsock_t *s = s_dealer(runners);
    char id[64], why[EVR_ERR_MAX];
    int n = 0, refused = 0;
    while (!s_stop) {
        snprintf(id, sizeof id, "churn-%d-%d", (int) getpid(), n++);
        if (!s_hello(s, id, why, sizeof why) && refused++ < 3)
            fprintf(stderr, "evr_soak: churn: %s\n", why);
        zclock_sleep(10);
    }
    zsock_destroy(&s);
    printf("soak: churn: %d fresh runner ids, %d refused\n", n, refused);
    return refused ? 1 : 0;
}

/*  A submit of about `size` bytes: steps of 60000-byte scripts. */
static evr_msg_t *
s_big_submit(size_t size)
{
    evr_msg_t *m = evr_msg_new(EVR_MSG_SUBMIT);
    char id[EVR_ULID_LEN + 1];
    evr_ulid_new(id);
    m->job = evr_strdup(id);
    evr_spec_t *sp = m->spec = evr_spec_new();
    sp->pipeline = evr_strdup("soak-big");
    sp->image = evr_strdup("localhost/evrun-busybox:latest");
    sp->labels.n = 1;
    sp->labels.v = evr_calloc(1, sizeof(char *));
    sp->labels.v[0] = evr_strdup("nowhere");
    sp->queue.present = true;
    sp->queue.limit = (evr_u32opt_t) { true, 2 };
    sp->queue.strategy = evr_strdup("replace");
    uint32_t steps = (uint32_t) (size / 60100);
    steps = steps < 1 ? 1 : steps > 256 ? 256 : steps;
    sp->steps.n = steps;
    sp->steps.v = evr_calloc(steps, sizeof(evr_step_t));
    for (uint32_t i = 0; i < steps; i++) {
        evr_step_t *st = evr_spec_step(sp, i);
        st->name = evr_asprintf("s%u", i);
        st->run = evr_malloc(60001);
        memset(st->run, '#', 60000);
        st->run[60000] = '\0';
    }
    return m;
}

/*  Submits just under the size limit: too_large makes the next one 5%
    smaller, so the sizes settle right under whatever the broker takes. */
static int
s_role_submit(const char *clients)
{
    zsock_t *s = s_dealer(clients);
    size_t size = EVR_MSG_MAX_BYTES - 8192;
    int sent = 0, accepted = 0, missed = 0;
    while (!s_stop && missed == 0) {
        evr_msg_t *m = s_big_submit(size), a;
        evr_bus_send(s, NULL, m, NULL);
        evr_msg_destroy(&m);
        sent++;
        if (!s_recv(s, S_ANSWER_MS, &a)) {
            fprintf(stderr, "evr_soak: no answer to a submit within %d ms\n", S_ANSWER_MS);
            missed++;
            continue;
        }
        if (a.type == EVR_MSG_ACCEPTED)
            accepted++;
        else if (a.code && !strcmp(a.code, EVR_CODE_TOO_LARGE))
            size -= size / 20;
        else
            fprintf(stderr, "evr_soak: submit: %s: %s\n", a.code, a.message);
        evr_msg_clear(&a);
        zclock_sleep(100);
    }
    zsock_destroy(&s);
    printf("soak: %d submits near the limit (last about %zu bytes), %d accepted\n", sent, size,
           accepted);
    return missed ? 1 : 0;
}

/*  The client that reads: every answer within S_ANSWER_MS. */
static int
s_role_good(const char *clients, const char *job)
{
    zsock_t *s = s_dealer(clients);
    int asked = 0, missed = 0;
    uint64_t worst = 0;
    for (uint32_t i = 0; !s_stop; i++) {
        evr_msg_t reqs[4] = {
            { .type = EVR_MSG_STATUS, .job = (char *) job },
            { .type = EVR_MSG_JOBS, .limit = 50 },
            { .type = EVR_MSG_RUNNERS },
            { .type = EVR_MSG_HISTORY, .job = (char *) job, .from = 1 },
        };
        uint32_t items;
        uint64_t t0 = evr_mono_ns();
        asked++;
        if (!s_ask(s, &reqs[i % 4], &items)) {
            missed++;
            zsock_destroy(&s);   /* a late answer must not pass for the next one */
            s = s_dealer(clients);
        }
        if (evr_mono_ns() - t0 > worst)
            worst = evr_mono_ns() - t0;
        zclock_sleep(20);
    }
    zsock_destroy(&s);
    printf("soak: the reading client: %d requests, %d unanswered, slowest answer %llu ms\n",
           asked, missed, (unsigned long long) (worst / 1000000));
    return missed ? 1 : 0;
}

static pid_t
s_spawn(int role, char **argv, const char *job)
{
    pid_t p = fork();
    if (p != 0)
        return p;
    signal(SIGTERM, s_on_term);
    int rc = role == 0 ? s_role_slow(argv[0], argv[2], job)
           : role == 1 ? s_role_churn(argv[1])
           : role == 2 ? s_role_submit(argv[0])
                       : s_role_good(argv[0], job);
    fflush(stdout);
    zsys_shutdown();
    _exit(rc);
}

static int
s_soak(char **argv)
{
    pid_t pid = (pid_t) atoi(argv[3]);
    int secs = atoi(argv[4]);
    long bound = atol(argv[5]) * 1024;
    char job[EVR_ULID_LEN + 1];
    /* the chatty job, from a child: no ZeroMQ context in this process */
    int fd[2];
    if (pipe(fd))
        return 1;
    pid_t c = fork();
    if (c == 0) {
        close(fd[0]);
        bool ok = s_chatty(argv[1], S_CHATTY_BYTES, job);
        if (ok && write(fd[1], job, EVR_ULID_LEN) != EVR_ULID_LEN)
            ok = false;
        zsys_shutdown();
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], job, EVR_ULID_LEN);
    close(fd[0]);
    int st;
    waitpid(c, &st, 0);
    if (got != EVR_ULID_LEN)
        return 1;
    job[EVR_ULID_LEN] = '\0';
    long start = s_rss_kib(pid), peak = start, anon = s_status_kib(pid, "RssAnon:");
    long start_anon = anon;
    /* EVR_SOAK_ROLES (digits 0-3) runs only some roles: to tell which costs what */
    const char *roles = getenv("EVR_SOAK_ROLES");
    pid_t kids[4] = { 0 };
    for (int r = 0; r < 4; r++)
        if (!roles || strchr(roles, '0' + r))
            kids[r] = s_spawn(r, argv, job);
    for (int t = 0; t < secs * 20; t++) {
        usleep(50000);
        long r = s_rss_kib(pid);
        if (r < 0) {
            printf("soak: FAILED: the broker (pid %d) is gone\n", (int) pid);
            peak = -1;
            break;
        }
        if (r > peak)
            peak = r;
        long a = s_status_kib(pid, "RssAnon:");
        if (a > anon)
            anon = a;
    }
    int bad = 0;
    for (int r = 0; r < 4; r++)
        if (kids[r])
            kill(kids[r], SIGTERM);
    for (int r = 0; r < 4; r++)
        if (kids[r] && (waitpid(kids[r], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
            bad++;
    sleep(3);
    long after = s_rss_kib(pid), after_anon = s_status_kib(pid, "RssAnon:");
    printf("soak: %d s: broker RSS %ld KiB at the start, peak %ld KiB, %ld KiB 3 s after; "
           "of it anonymous memory %ld, peak %ld, after %ld KiB (bound %ld KiB); %d role%s "
           "failed\n", secs, start, peak, after, start_anon, anon, after_anon, bound, bad,
           bad == 1 ? "" : "s");
    bool ok = peak > 0 && anon <= bound && !bad;
    if (!ok)
        printf("soak: FAILED\n");
    return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("ZSYS_SIGHANDLER", "false", 1);   /* SIGTERM is the roles' own */
    if (argc == 7 && !strcmp(argv[1], "slow-history"))
        return s_slow_history(argv + 2);
    if (argc == 4 && !strcmp(argv[1], "churn"))
        return s_churn(argv + 2);
    if (argc == 6 && !strcmp(argv[1], "starve"))
        return s_starve(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "soak"))
        return s_soak(argv + 2);
    fprintf(stderr, "usage: evr_soak slow-history CLIENTS RUNNERS PID REQUESTS BOUND_MIB\n"
                    "       evr_soak churn RUNNERS N\n"
                    "       evr_soak starve CLIENTS RUNNERS EVENTS N\n"
                    "       evr_soak soak CLIENTS RUNNERS EVENTS PID SECONDS BOUND_MIB\n");
    return 2;
}
