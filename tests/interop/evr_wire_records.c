/*  evr_wire_records.c: cases of evr-wire-audit inside the records a
    message carries: the pipeline spec of a `submit` (schema/PROTOCOL.md,
    "Pipeline spec") and the events of an `events` batch ("Events"). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evr_wire_audit.h"
#include "evr_wire_msgpack.h"

#define S_STEP "{name:\"s\",run:\"true\"}"

/*  A submit of a new job whose spec is the text given (a format). */
static void
s_spec(const char *what, const char *code, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
s_spec(const char *what, const char *code, const char *needle, const char *fmt, ...)
{
    va_list ap;
    char *spec, job[27];
    va_start(ap, fmt);
    if (vasprintf(&spec, fmt, ap) < 0)
        abort();
    va_end(ap);
    evr_wa_ulid(job);
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "{job:\"%s\",spec:%s}", job, spec);
    char label[300];
    snprintf(label, sizeof label, "submit spec %s", what);
    evr_wa_expect(evr_wa_client, label, "submit", b, l, code, needle);
    free(b);
    free(spec);
}

/*  n times "é" (2 bytes each), as \\x escapes of a body text. */
static const char *
s_e_acute(int n)
{
    static char t[4096 * 8 + 1];
    t[0] = '\0';
    for (int i = 0; i < n && i < 4096; i++)
        strcat(t, "\\xc3\\xa9");
    return t;
}

static void s_spec_checks(const char *img);

/*  Submits whose spec breaks its tables. */
void
evr_wa_submit_specs(void)
{
    const char *img = "image:\"img:1\",labels:[\"audit-none\"]";
    s_spec("without pipeline", "bad_request", "pipeline", "{%s,steps:[" S_STEP "]}", img);
    s_spec("without steps", "bad_request", "steps", "{pipeline:\"p\",%s}", img);
    s_spec("with no step", "bad_request", "step", "{pipeline:\"p\",%s,steps:[]}", img);
    s_spec("step without run", "bad_request",
           "submit.spec.steps[0]: missing required field \"run\"",
           "{pipeline:\"p\",%s,steps:[{name:\"s\"}]}", img);
    s_spec("steps[1].run an int", "bad_request", "submit.spec.steps[1].run",
           "{pipeline:\"p\",%s,steps:[" S_STEP ",{name:\"t\",run:7}]}", img);
    s_spec("pipeline of 65 bytes", "too_large", "submit.spec.pipeline",
           "{pipeline:S(65),%s,steps:[" S_STEP "]}", img);
    s_spec("pipeline not a name", "bad_request", "pipeline",
           "{pipeline:\"a b\",%s,steps:[" S_STEP "]}", img);
    s_spec("run of 65537 bytes", "too_large", "submit.spec.steps[0].run",
           "{pipeline:\"p\",%s,steps:[{name:\"s\",run:S(65537)}]}", img);
    s_spec("image of 513 bytes", "too_large", "submit.spec.image",
           "{pipeline:\"p\",image:S(513),steps:[" S_STEP "]}");
    s_spec("257 steps", "too_large", "submit.spec.steps",
           "{pipeline:\"p\",%s,steps:A(257)}", img);
    s_spec("33 labels", "too_large", "submit.spec.labels",
           "{pipeline:\"p\",image:\"i\",labels:L(33),steps:[" S_STEP "]}");
    s_spec("257 env entries", "too_large", "submit.spec.env",
           "{pipeline:\"p\",%s,env:M(257),steps:[" S_STEP "]}", img);
    s_spec("an env value an int", "bad_request", "submit.spec.env",
           "{pipeline:\"p\",%s,env:{A:1},steps:[" S_STEP "]}", img);
    s_spec("two steps of one name", "bad_request", "s",
           "{pipeline:\"p\",%s,steps:[" S_STEP "," S_STEP "]}", img);
    s_spec("needs an unknown step", "bad_request", "needs",
           "{pipeline:\"p\",%s,steps:[{name:\"s\",run:\"x\",needs:[\"nope\"]}]}", img);
    s_spec("a cycle of needs", "bad_request", "cycle",
           "{pipeline:\"p\",%s,steps:[{name:\"a\",run:\"x\",needs:[\"b\"]},"
           "{name:\"b\",run:\"x\",needs:[\"a\"]}]}", img);
    s_spec("no image anywhere", "bad_request", "image",
           "{pipeline:\"p\",labels:[\"audit-none\"],steps:[" S_STEP "]}");
    s_spec("executor unknown", "bad_request", "executor",
           "{pipeline:\"p\",%s,executor:\"vm\",steps:[" S_STEP "]}", img);
    s_spec("process executor with an image", "bad_request", "image",
           "{pipeline:\"p\",%s,executor:\"process\",steps:[" S_STEP "]}", img);
    s_spec("timeout a float", "bad_request", "submit.spec.timeout",
           "{pipeline:\"p\",%s,timeout:1.5,steps:[" S_STEP "]}", img);
    s_spec("timeout -1", "bad_request", "submit.spec.timeout",
           "{pipeline:\"p\",%s,timeout:-1,steps:[" S_STEP "]}", img);
    s_spec("concurrency 2^32", "too_large", "submit.spec.concurrency",
           "{pipeline:\"p\",%s,concurrency:4294967296,steps:[" S_STEP "]}", img);
    s_spec("a nil", "bad_request", "submit.spec.image",
           "{pipeline:\"p\",image:nil,steps:[" S_STEP "]}");
    /* durations at most 10 years (ms * 10^6 fits a clock), limits in range */
    s_spec("timeout 18446744073710 (over 2^64 ns)", "bad_request",
           "timeout: 18446744073710 ms (213503d23h34m33s710ms) is over the longest duration, "
           "315360000000 ms", "{pipeline:\"p\",%s,timeout:18446744073710,steps:[" S_STEP "]}",
           img);
    s_spec("start_delay 2^64-1", "bad_request", "start_delay: 18446744073709551615 ms",
           "{pipeline:\"p\",%s,start_delay:18446744073709551615,steps:[" S_STEP "]}", img);
    s_spec("a step's timeout 2^63", "bad_request", "steps[0].timeout: 9223372036854775808 ms",
           "{pipeline:\"p\",%s,steps:[{name:\"a\",run:\"x\",timeout:9223372036854775808}]}",
           img);
    s_spec("limits.pids 2^64-1", "bad_request",
           "limits.pids: 18446744073709551615 is over the maximum, 4194304",
           "{pipeline:\"p\",%s,limits:{pids:18446744073709551615},steps:[" S_STEP "]}", img);
    /* on_error's name: no step takes it, and on_error takes none */
    s_spec("a step named on_error, no on_error", "bad_request",
           "steps[0].name: \"on_error\" is the name of the pipeline's on_error step",
           "{pipeline:\"p\",%s,steps:[{name:\"on_error\",run:\"x\"}]}", img);
    s_spec("on_error with a name", "bad_request", "on_error.name: on_error takes no name",
           "{pipeline:\"p\",%s,on_error:{name:\"zz\",run:\"x\"},steps:[" S_STEP "]}", img);
    s_spec_checks(img);
}

/*  The whole-spec checks of PROTOCOL.md's "Pipeline spec", its size, and
    submit's parent fields. */
static void
s_spec_checks(const char *img)
{
    s_spec("a key twice", "bad_request", "pipeline",
           "{pipeline:\"p\",pipeline:\"q\",%s,steps:[" S_STEP "]}", img);
    s_spec("an artifact path with ..", "bad_request", "artifacts",
           "{pipeline:\"p\",%s,steps:[{name:\"s\",run:\"x\",artifacts:[\"../etc\"]}]}", img);
    s_spec("a resource URL ftp://", "bad_request", "url",
           "{pipeline:\"p\",%s,resources:[{name:\"r\",url:\"ftp://h/x\",path:\"x\"}],"
           "steps:[" S_STEP "]}", img);
    s_spec("a matrix (the loader's only)", "bad_request", "matrix",
           "{pipeline:\"p\",%s,steps:[{name:\"s\",run:\"x\",matrix:{OS:{values:[\"a\"]}}}]}",
           img);
    s_spec("a copy source without its tar", "bad_request", "source_tar",
           "{pipeline:\"p\",%s,source:{copy:\"dir\"},steps:[" S_STEP "]}", img);
    s_spec("a label of 2000 two-byte characters", "bad_request", "labels",
           "{pipeline:\"p\",image:\"i\",labels:[\"%s\"],steps:[" S_STEP "]}", s_e_acute(2000));
    /* a spec over 1 MiB as msgpack: too_large naming both sizes */
    s_spec("of 1.2 MiB", "too_large", "1048576",
           "{pipeline:\"p\",%s,steps:[{name:\"a\",run:S(60000)},{name:\"b\",run:S(60000)},"
           "{name:\"c\",run:S(60000)},{name:\"d\",run:S(60000)},{name:\"e\",run:S(60000)},"
           "{name:\"f\",run:S(60000)},{name:\"g\",run:S(60000)},{name:\"h\",run:S(60000)},"
           "{name:\"i\",run:S(60000)},{name:\"j\",run:S(60000)},{name:\"k\",run:S(60000)},"
           "{name:\"l\",run:S(60000)},{name:\"m\",run:S(60000)},{name:\"n\",run:S(60000)},"
           "{name:\"o\",run:S(60000)},{name:\"p\",run:S(60000)},{name:\"q\",run:S(60000)},"
           "{name:\"r\",run:S(60000)},{name:\"s\",run:S(60000)},{name:\"t\",run:S(60000)}]}",
           img);
    /* submit's parent fields are the broker's: a client's are ignored */
    char job[27];
    evr_wa_ulid(job);
    size_t l;
    evr_wa_answer_t a;
    uint8_t *b = evr_wmp_body(&l, "{job:\"%s\",spec:{pipeline:\"p\",%s,steps:[" S_STEP "]},"
                                  "parent_job:\"%s\",parent_step:\"x\"}", job, img, job);
    evr_wa_request(evr_wa_client, "submit with parent_job", "submit", b, l, &a);
    free(b);
    evr_wa_answer_clear(&a);
    b = evr_wmp_body(&l, "{job:\"%s\"}", job);
    evr_wa_request(evr_wa_client, "status", "status", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "job") && !evr_wmp_get(a.obj, "parent_job"),
                 "submit: a client's parent_job is ignored (status shows none)");
    evr_wa_answer_clear(&a);
}

/*  An events batch on the rogue runner's socket (the rogue has said
    hello by then, or not: the record is decoded first). */
static void
s_events(const char *what, const char *code, const char *needle, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
s_events(const char *what, const char *code, const char *needle, const char *fmt, ...)
{
    va_list ap;
    char *evs, job[27];
    va_start(ap, fmt);
    if (vasprintf(&evs, fmt, ap) < 0)
        abort();
    va_end(ap);
    evr_wa_ulid(job);
    char *text;
    if (asprintf(&text, "{events:[%s]}", evs) < 0)
        abort();
    /* "JOB" in the text: a fresh job id */
    for (char *p; (p = strstr(text, "JOB"));) {
        char *t;
        *p = '\0';
        if (asprintf(&t, "%s%s%s", text, job, p + 3) < 0)
            abort();
        free(text);
        text = t;
    }
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "%s", text);
    char label[300];
    snprintf(label, sizeof label, "events %s", what);
    evr_wa_expect(evr_wa_rogue, label, "events", b, l, code, needle);
    free(b);
    free(text);
    free(evs);
}

void
evr_wa_bad_events(void)
{
    s_events("event without seq", "bad_request", "events.events[0]: missing required field \"seq\"",
             "{job:\"JOB\",jseq:1,type:\"job.started\",time:1,data:{}}");
    s_events("event without type", "bad_request",
             "events.events[0]: missing required field \"type\"",
             "{seq:1,job:\"JOB\",jseq:1,time:1,data:{}}");
    s_events("event without time", "bad_request",
             "events.events[0]: missing required field \"time\"",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.started\",data:{}}");
    s_events("event without data", "bad_request",
             "events.events[0]: missing required field \"data\"",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.started\",time:1}");
    s_events("an event of seq 0", "bad_request",
             "events.events[0].seq: expected 1 or more (a runner's log counts from 1), got 0",
             "{seq:0,job:\"JOB\",jseq:1,type:\"job.paused\",time:1,data:{}}");
    s_events("a batch out of seq order", "bad_request",
             "events.events[1].seq: 1 after 2: a batch is in seq order",
             "{seq:2,job:\"JOB\",jseq:2,type:\"job.paused\",time:1,data:{}},"
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.paused\",time:1,data:{}}");
    s_events("an unknown event type", "bad_request", "events.events[0].type",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.exploded\",time:1,data:{}}");
    s_events("a job event without job", "bad_request", "job",
             "{seq:1,jseq:1,type:\"job.started\",time:1,data:{}}");
    s_events("a job event with jseq 0", "bad_request", "jseq",
             "{seq:1,job:\"JOB\",type:\"job.started\",time:1,data:{}}");
    s_events("a runner event with a job", "bad_request", "job",
             "{seq:1,job:\"JOB\",type:\"runner.started\",time:1,"
             "data:{runner:\"x\",version:\"v\"}}");
    s_events("job.finished without status", "bad_request", "status",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.finished\",time:1,data:{}}");
    s_events("job.finished with status running", "bad_request", "status",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.finished\",time:1,"
             "data:{status:\"running\"}}");
    s_events("a data field of the wrong type", "bad_request", "reason",
             "{seq:1,job:\"JOB\",jseq:1,type:\"job.paused\",time:1,data:{reason:7}}");
    s_events("step.output of 128 KiB + 1", "too_large", "bytes",
             "{seq:1,job:\"JOB\",jseq:1,type:\"step.output\",time:1,"
             "data:{step:\"s\",stream:\"stdout\",offset:0,raw:1,bytes:B(131073)}}");
    s_events("jseq 2^32", "too_large", "jseq",
             "{seq:1,job:\"JOB\",jseq:4294967296,type:\"job.started\",time:1,data:{}}");
    char many[1025 * 3 + 1] = "{}";
    for (int i = 1; i < 1025; i++)
        strcat(many, ",{}");
    s_events("1025 events", "too_large", "events", "%s", many);
    /* 1100 runner ids said on one connection: each hello takes the
       connection from the one before, so the broker's 1024 ids make room
       (the longest silent, not connected, forgotten) and a new runner is
       still welcome */
    evr_wa_answer_t a;
    int welcomed = 0;
    for (int i = 0; i < 1100; i++) {
        size_t l;
        uint8_t *b = evr_wmp_body(&l, "{runner:\"audit-many-%d\",capacity:1,version:\"v\"}", i);
        evr_wa_request(evr_wa_rogue, "hello", "hello", b, l, &a);
        free(b);
        welcomed += !strcmp(a.type, "welcome");
        evr_wa_answer_clear(&a);
    }
    evr_wa_check(welcomed == 1100, "1100 runner ids said on one connection: each welcomed (%d)",
                 welcomed);
    void *fresh = evr_wa_dealer(1);
    size_t l;
    uint8_t *b = evr_wmp_body(&l, "{runner:\"audit-late\",capacity:1,version:\"v\"}");
    evr_wa_request(fresh, "hello", "hello", b, l, &a);
    free(b);
    evr_wa_check(!strcmp(a.type, "welcome"), "a new runner after them: welcome (got %s %s)",
                 a.type, evr_wa_str(&a, "message"));
    evr_wa_answer_clear(&a);
    zmq_close(fresh);
}
