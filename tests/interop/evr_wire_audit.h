/*  evr_wire_audit.h: what evr-wire-audit's files share: sockets, checks,
    requests and the groups of cases (evr_wire_cases.c). */
#ifndef EVR_WIRE_AUDIT_H_INCLUDED
#define EVR_WIRE_AUDIT_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int frames;
    char header[128];
    char type[64];        /* after "evrun1 " */
    uint8_t *body;        /* the last frame */
    size_t len;
    int unpacked;
    msgpack_unpacked up;
    msgpack_object *obj;  /* the body, when it is one msgpack object */
} evr_wa_answer_t;

extern int evr_wa_fails, evr_wa_passes;
extern void *evr_wa_client, *evr_wa_rogue;
extern char evr_wa_control[2048];   /* the last control the rogue got */
int evr_wa_stream_item(const char *type);

void evr_wa_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void evr_wa_ulid(char out[27]);
void *evr_wa_dealer(int runner_side);
void evr_wa_send_frames(void *s, int n, const void **frames, const size_t *lens);
void evr_wa_send(void *s, const char *type, const uint8_t *body, size_t len);
int evr_wa_recv(void *s, evr_wa_answer_t *a, int timeout_ms);
void evr_wa_answer_clear(evr_wa_answer_t *a);
void evr_wa_pump(void);
const char *evr_wa_conform(const evr_wa_answer_t *a);
const char *evr_wa_str(const evr_wa_answer_t *a, const char *key);
uint64_t evr_wa_uint(const evr_wa_answer_t *a, const char *key);
int evr_wa_expect(void *s, const char *what, const char *type, const uint8_t *body, size_t len,
                  const char *code, const char *needle);
int evr_wa_request(void *s, const char *what, const char *type, const uint8_t *body, size_t len,
                   evr_wa_answer_t *last);

void evr_wa_valid_requests(const char *good_job);
void evr_wa_bad_fields(void);
void evr_wa_bad_envelopes(void);
void evr_wa_rogue_runner(const char *good_job);
void evr_wa_still_serving(void);
void evr_wa_paging(const char *good_job);
void evr_wa_submit_specs(void);
void evr_wa_bad_events(void);
void evr_wa_one_turn(void);
int evr_wa_odd_submit(const char *file);
int evr_wa_odd_check(const char *file);

#endif
