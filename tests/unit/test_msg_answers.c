/*  test_msg_answers: the broker's answers that clients tell apart by
    their beginning (schema/evr_msg.h): another copy of an artifact than
    the one asked for (its sha256 and size read back), and a copy the
    broker is reading, or is busy before reading. */
#include <stdlib.h>
#include <string.h>

#include "evr_common.h"
#include "evr_msg.h"
#include "evr_test.h"

#define JOB_ID "01JQ7ZK3M8X2V9T4B6N0C5D7EF"

/*  The broker's answer to a fetch of another copy than it holds, told
    from "none held" by its beginning, its copy's sha256 and size read. */
static void
test_other_copy(void)
{
    const char *h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    char msg[512], hex[65];
    snprintf(msg, sizeof msg, EVR_MSG_OTHER_COPY "sha256 %s, 3 bytes) of artifact f of step "
             "a of job %s, not the copy of sha256 %064d (not shipped by its runner yet; or a "
             "later copy replaced it)", h, JOB_ID, 0);
    evr_msg_t m = { .type = EVR_MSG_ERROR, .code = EVR_CODE_NOT_FOUND, .message = msg };
    uint64_t size = 0;
    CHECK(evr_msg_other_copy(&m, hex, &size));
    CHECK_STR(hex, h);
    CHECK(size == 3);
    m.code = EVR_CODE_INTERNAL;
    CHECK(!evr_msg_other_copy(&m, hex, &size));   /* not_found only */
    m.code = EVR_CODE_NOT_FOUND;
    m.message = "the broker holds no artifact f of step a of job X (not shipped by its "
                "runner yet, or never)";
    CHECK(!evr_msg_other_copy(&m, hex, &size));
    m.message = EVR_MSG_OTHER_COPY "sha256 abc, 3 bytes) of artifact f";  /* a short digest */
    CHECK(!evr_msg_other_copy(&m, hex, &size));
    /* a whole digest but no size: the caller's digest is left as it was */
    char other[65];
    memset(other, 'z', 64);
    other[64] = '\0';
    char *txt = evr_asprintf(EVR_MSG_OTHER_COPY "sha256 %s, many bytes)", h);
    m.message = txt;
    memcpy(hex, other, sizeof other);
    CHECK(!evr_msg_other_copy(&m, hex, &size));
    CHECK_STR(hex, other);
    free(txt);
    m.message = NULL;
    CHECK(!evr_msg_other_copy(&m, hex, &size));
    evr_msg_t d = { .type = EVR_MSG_ARTIFACT_DATA };
    CHECK(!evr_msg_other_copy(&d, hex, &size));
}

/*  The broker's answer while it reads (or is busy before reading) its
    copy's sha256, told from "none held" and "another copy" */
static void
test_reading(void)
{
    evr_msg_t m = { .type = EVR_MSG_ERROR, .code = EVR_CODE_NOT_FOUND,
                    .message = EVR_MSG_READING "5 bytes) of artifact f of step a of job X "
                               "again, to tell whether it is the copy of sha256 S: ask again "
                               "shortly" };
    CHECK(evr_msg_reading(&m));
    m.message = EVR_MSG_BUSY_READING "5 bytes) of artifact f: busy, ask again later";
    CHECK(evr_msg_reading(&m));
    m.message = "the broker holds no artifact f of step a of job X (not shipped by its "
                "runner yet, or never)";
    CHECK(!evr_msg_reading(&m));
    m.message = EVR_MSG_OTHER_COPY "sha256 abc, 3 bytes) of artifact f";
    CHECK(!evr_msg_reading(&m));
    m.message = EVR_MSG_READING "5 bytes)";
    m.code = EVR_CODE_INTERNAL;
    CHECK(!evr_msg_reading(&m));   /* not_found only */
    m.code = EVR_CODE_NOT_FOUND;
    m.message = NULL;
    CHECK(!evr_msg_reading(&m));
}

int
main(void)
{
    EVR_TEST_RUN(test_other_copy);
    EVR_TEST_RUN(test_reading);
    EVR_TEST_END();
}
