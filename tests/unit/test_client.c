/*  test_client: evr_client against a fake broker (a ROUTER in a thread,
    on an ipc:// socket in a temporary directory) that answers its first
    request late, after the client gave up waiting: answers carry no
    request id, so only evr_client_reconnect keeps that late answer from
    being read as the next request's; with nothing owed it keeps the
    connection. */
#include <string.h>
#include <unistd.h>

#include "evr_bus.h"
#include "evr_client.h"
#include "evr_test.h"

#define LATE_MS 1000    /* the first answer's delay; the client waits 100 for it
                           (then 5000: a loaded machine is slow, never that slow) */
#define JOB1 "01ARYZ6S41TSV4RRFFQ69G5FA1"
#define JOB2 "01ARYZ6S41TSV4RRFFQ69G5FA2"
#define JOB3 "01ARYZ6S41TSV4RRFFQ69G5FA3"

static char s_dir[] = "/tmp/evr-client-XXXXXX";

/*  The fake broker: answers each request `ok` with the request's job as
    message, the first one LATE_MS late. */
static void
s_broker(zsock_t *pipe, void *arg)
{
    zsock_t *router = zsock_new_router((const char *) arg);
    zsock_signal(pipe, router ? 0 : 1);
    int n = 0;
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    for (;;) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break;      /* $TERM or interrupted */
        zframe_t *rid = NULL;
        evr_msg_t m = { 0 };
        const char *code;
        evr_err_t err;
        if (evr_bus_recv(router, &rid, &m, &code, &err) == EVR_OK) {
            if (n++ == 0)
                zclock_sleep(LATE_MS);
            evr_msg_t ok = { .type = EVR_MSG_OK, .message = m.job };
            evr_bus_send(router, rid, &ok, &err);
        }
        evr_msg_clear(&m);
        zframe_destroy(&rid);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

/*  One status call for job; its answer's message ("" for a failure),
    rc in *rc.  A fresh connection not made in time fails ("cannot
    send"): asked again for up to 2 s. */
static char *
s_ask(evr_client_t *c, const char *job, evr_rc_t *rc)
{
    evr_msg_t req = { .type = EVR_MSG_STATUS, .job = (char *) job };
    for (int i = 0; i < 100; i++) {
        evr_msg_t rep = { 0 };
        evr_err_t err;
        *rc = evr_client_call(c, &req, &rep, &err);
        char *got = evr_strdup(rep.message ? rep.message : "");
        evr_msg_clear(&rep);
        if (*rc != EVR_ERR_IO || !strstr(err.msg, "cannot send"))
            return got;
        free(got);
        zclock_sleep(20);
    }
    return evr_strdup("");
}

/*  The stand-in broker on s_dir/NAME and a client of it (timeout 100
    ms; *c NULL when it could not be made, said by CHECK). */
static void
s_setup(const char *name, zactor_t **broker, evr_config_t **cfg, evr_client_t **c)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc://%s/%s", s_dir, name);
    *broker = zactor_new(s_broker, ep);
    *cfg = evr_config_new(evr_client_keys, evr_client_nkeys);
    evr_config_set(*cfg, "client_endpoint", ep, "test");
    evr_config_set(*cfg, "timeout_ms", "100", "test");
    *c = NULL;
    evr_err_t err;
    CHECK(evr_client_new(*cfg, c, &err) == EVR_OK);
}

static void
test_late_answer_dropped(void)
{
    zactor_t *broker;
    evr_config_t *cfg;
    evr_client_t *c;
    evr_err_t err;
    s_setup("clients", &broker, &cfg, &c);
    evr_rc_t rc;
    char *got = s_ask(c, JOB1, &rc);
    CHECK(rc == EVR_ERR_IO);    /* no answer within 100 ms */
    CHECK(evr_client_sent(c));  /* it went out: the broker may have done it */
    free(got);
    CHECK(evr_client_set_timeout(c, 5000) == 100);  /* only that call must time out */
    zclock_sleep(LATE_MS + 200);    /* the late answer is on its way, or in */
    CHECK(evr_client_reconnect(c, &err) == EVR_OK);
    got = s_ask(c, JOB2, &rc);
    CHECK(rc == EVR_OK);
    CHECK_STR(got, JOB2);    /* not JOB1: that answer went with the old connection */
    free(got);
    /* nothing owed: the connection is kept, the next call goes at once */
    CHECK(evr_client_reconnect(c, &err) == EVR_OK);
    evr_msg_t req = { .type = EVR_MSG_STATUS, .job = JOB3 }, rep = { 0 };
    CHECK(evr_client_call(c, &req, &rep, &err) == EVR_OK);
    CHECK_STR(rep.message, JOB3);
    evr_msg_clear(&rep);
    evr_client_destroy(&c);
    evr_config_destroy(&cfg);
    zactor_destroy(&broker);
}

/*  A call with no broker to send it to fails unsent: the gateway then
    says no "outcome unknown" for a submit (before, it did for any
    failure). */
static void
test_unsent(void)
{
    zactor_t *broker;
    evr_config_t *cfg;
    evr_client_t *c;
    evr_err_t err;
    s_setup("gone", &broker, &cfg, &c);
    zactor_destroy(&broker);    /* the broker stopped: no connection */
    zclock_sleep(100);
    if (!c)
        return;
    evr_msg_t req = { .type = EVR_MSG_STATUS, .job = JOB1 }, rep = { 0 };
    CHECK(evr_client_call(c, &req, &rep, &err) == EVR_ERR_IO);
    CHECK_CONTAINS(err.msg, "cannot send");
    CHECK(!evr_client_sent(c));
    evr_msg_clear(&rep);
    evr_client_destroy(&c);
    evr_config_destroy(&cfg);
}

int
main(void)
{
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    EVR_TEST_RUN(test_late_answer_dropped);
    EVR_TEST_RUN(test_unsent);
    char sock[64];
    snprintf(sock, sizeof sock, "%s/clients", s_dir);
    unlink(sock);
    snprintf(sock, sizeof sock, "%s/gone", s_dir);
    unlink(sock);
    rmdir(s_dir);
    EVR_TEST_END();
}
