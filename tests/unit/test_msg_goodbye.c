/*  test_msg_goodbye: the runner's `goodbye` (schema/PROTOCOL.md): its seq
    and reason through the codec, the reason bounded (1024 bytes), its
    direction; and the runner states of a runner not connected
    (evr_msg_state_away: lost, stopped), as evrun-cli, evrun-cli up and
    evrun-provisioner tell them. */
#include <stdlib.h>
#include <string.h>

#include "evr_common.h"
#include "evr_msg.h"
#include "evr_test.h"

static void
test_goodbye(void)
{
    char reason[1026];
    memset(reason, 'x', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    for (int over = 0; over < 2; over++) {
        reason[1024] = over ? 'x' : '\0';   /* 1024 bytes, then 1025 */
        evr_msg_t m = { .type = EVR_MSG_GOODBYE, .seq = 7, .reason = reason };
        uint8_t *buf;
        size_t len;
        evr_msg_encode(&m, &buf, &len);
        char hdr[EVR_MSG_HEADER_MAX];
        evr_msg_header(m.type, hdr);
        CHECK(strcmp(hdr, "evrun1 goodbye") == 0);
        evr_msg_t back = { 0 };
        const char *code = NULL;
        evr_err_t err = { "" };
        evr_rc_t rc = evr_msg_decode(hdr, strlen(hdr), buf, len, &back, &code, &err);
        if (!over)
            CHECK(rc == EVR_OK && back.type == EVR_MSG_GOODBYE && back.seq == 7
                  && back.reason && strlen(back.reason) == 1024);
        else
            CHECK(rc && !strcmp(code, EVR_CODE_TOO_LARGE) && strstr(err.msg, "goodbye.reason"));
        evr_msg_clear(&back);
        free(buf);
    }
    CHECK(!strcmp(evr_msgtype_direction(EVR_MSG_GOODBYE), "runner -> broker"));
    evr_msg_t none = { .type = EVR_MSG_GOODBYE };   /* seq is required, even 0 */
    uint8_t *buf;
    size_t len;
    evr_msg_encode(&none, &buf, &len);
    evr_msg_t back = { 0 };
    evr_err_t err = { "" };
    CHECK(evr_msg_decode("evrun1 goodbye", 14, buf, len, &back, NULL, &err) == EVR_OK
          && back.seq == 0 && !back.reason);
    evr_msg_clear(&back);
    free(buf);
}

static void
test_state_away(void)
{
    CHECK(evr_msg_state_away("lost") && evr_msg_state_away("stopped") && evr_msg_state_away(NULL));
    CHECK(!evr_msg_state_away("idle") && !evr_msg_state_away("busy")
          && !evr_msg_state_away("draining"));
}

int
main(void)
{
    EVR_TEST_RUN(test_goodbye);
    EVR_TEST_RUN(test_state_away);
    EVR_TEST_END();
}
