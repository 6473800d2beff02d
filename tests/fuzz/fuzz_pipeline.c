/*  fuzz_pipeline: libFuzzer target for the pipeline file loader.

    The input is a pipeline file, loaded with evr_yaml_load into a fresh
    spec and diagnostics list.  Checked beyond "no crash, no leak":
    - a failed load leaves at least one error in the diag, each a
      non-empty line;
    - an accepted spec validates again, copies to an equal spec, encodes
      to msgpack that decodes back to an equal spec, and is accepted on
      the wire inside a `submit` message (what the file loader takes, the
      broker must take too).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_diag.h"
#include "evr_msg.h"
#include "evr_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_CHECK(cond, ...)                                                                       \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_pipeline: check failed: %s: ", #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                        \
            fprintf(stderr, "\n");                                                               \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#define S_JOB "01JQ7ZK3M8X2V9T4B6N0C5D7EF"

/*  The spec as the payload of a submit message, through the message codec. */
static void
s_check_submit(const evr_spec_t *spec)
{
    evr_msg_t *msg = evr_msg_new(EVR_MSG_SUBMIT);
    msg->job = evr_strdup(S_JOB);
    msg->spec = evr_calloc(1, sizeof(evr_spec_t));
    evr_rec_copy(&evr_spec_type, msg->spec, spec);
    uint8_t *buf = NULL;
    size_t len = 0;
    evr_msg_encode(msg, &buf, &len);
    char hdr[EVR_MSG_HEADER_MAX];
    evr_msg_header(EVR_MSG_SUBMIT, hdr);
    evr_msg_t back = { 0 };
    evr_err_t err = { "" };
    evr_rc_t rc = evr_msg_decode(hdr, strlen(hdr), buf, len, &back, NULL, &err);
    S_CHECK(rc == EVR_OK, "loaded spec rejected in a submit message: %s", err.msg);
    S_CHECK(evr_rec_equal(&evr_spec_type, spec, back.spec), "submit changed the spec");
    evr_msg_clear(&back);
    free(buf);
    evr_msg_destroy(&msg);
}

static void
s_check_spec(const evr_spec_t *spec)
{
    evr_diag_t *diag = evr_diag_new("again.yml");
    evr_rc_t rc = evr_spec_validate(spec, diag);
    S_CHECK(rc == EVR_OK, "loaded spec fails validation: %s", evr_diag_get(diag, 0));
    evr_diag_destroy(&diag);

    evr_spec_t copy = { 0 };
    evr_rec_copy(&evr_spec_type, &copy, spec);
    S_CHECK(evr_rec_equal(&evr_spec_type, spec, &copy), "copy differs");
    evr_rec_free(&evr_spec_type, &copy);

    uint8_t *buf = NULL;
    size_t len = 0;
    evr_codec_encode(&evr_spec_type, spec, &buf, &len);
    evr_spec_t back = { 0 };
    evr_err_t err = { "" };
    rc = evr_codec_decode(buf, len, &evr_spec_type, &back, "spec", &err);
    S_CHECK(rc == EVR_OK, "encoded spec rejected: %s", err.msg);
    S_CHECK(evr_rec_equal(&evr_spec_type, spec, &back), "msgpack round trip changed the spec");
    evr_rec_free(&evr_spec_type, &back);
    free(buf);

    s_check_submit(spec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);   /* exact size: over-reads are caught */
    if (!buf)
        abort();
    memcpy(buf, data, size);

    evr_spec_t spec = { 0 };
    evr_diag_t *diag = evr_diag_new("fuzz.yml");
    evr_rc_t rc = evr_yaml_load(buf, size, &spec, diag);
    size_t n = evr_diag_count(diag);
    if (rc) {
        S_CHECK(n > 0, "load failed (%s) with no error in the diag", evr_strerror(rc));
        for (size_t i = 0; i < n && i < EVR_DIAG_MAX; i++) {
            const char *line = evr_diag_get(diag, i);
            S_CHECK(line && *line, "error %zu of %zu is empty", i, n);
        }
    }
    else {
        S_CHECK(n == 0, "load succeeded with %zu errors: %s", n, evr_diag_get(diag, 0));
        s_check_spec(&spec);
    }
    evr_rec_free(&evr_spec_type, &spec);
    evr_diag_destroy(&diag);
    free(buf);
    return 0;
}
