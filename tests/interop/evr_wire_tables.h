/*  evr_wire_tables.h: the field tables of schema/PROTOCOL.md's messages,
    copied by hand from that document (not from evrun's C tables), for
    evr-wire-audit: the answers it checks, and the requests it sends in
    good and bad forms. */
#ifndef EVR_WIRE_TABLES_H_INCLUDED
#define EVR_WIRE_TABLES_H_INCLUDED

#include "evr_wire_msgpack.h"

/*  The values of the fields "checked: one of" (PROTOCOL.md). */
#define W_CODES " bad_request unknown_type not_found queue_full busy conflict too_large " \
                "unavailable internal "
#define W_STATUS " queued running paused succeeded failed cancelled timed_out lost "
#define W_STATES " idle busy draining lost stopped "
#define W_COMMANDS " cancel pause resume drain "

/*  Broker -> client or runner messages: what an answer may hold (a
    field's values, when the table gives them, last). */
typedef struct {
    const char *type;
    evr_wfield_t f[20];
} evr_wanswer_t;

static const evr_wanswer_t evr_w_answers[] = {
    { "accepted", { { "job", WT_ULID, 1, 26 }, { "existing", WT_BOOL, 0, 0 }, { 0 } } },
    { "ok", { { "job", WT_ULID, 0, 26 }, { "message", WT_STR, 0, 4096 }, { 0 } } },
    { "error", { { "code", WT_ENUM, 1, 32, W_CODES }, { "message", WT_STR, 1, 4096 }, { 0 } } },
    { "job", { { "job", WT_ULID, 1, 26 }, { "pipeline", WT_STR, 1, 64 },
               { "status", WT_ENUM, 1, 16, W_STATUS }, { "runner", WT_NAME, 0, 64 },
               { "steps_total", WT_U32, 0, 0 }, { "steps_done", WT_U32, 0, 0 },
               { "created", WT_UINT, 0, 0 }, { "started", WT_UINT, 0, 0 },
               { "finished", WT_UINT, 0, 0 }, { "reason", WT_STR, 0, 1024 },
               { "allowed_failures", WT_U32, 0, 0 }, { "outputs", WT_MSS, 0, 256 },
               { "steps", WT_MSS, 0, 257 }, { "labels", WT_ASTR, 0, 32 },
               { "parent_job", WT_ULID, 0, 26 }, { "parent_step", WT_STR, 0, 64 },
               { "children", WT_ASTR, 0, 64 }, { 0 } } },
    { "event", { { "event", WT_MAP, 1, 0 }, { 0 } } },
    { "runner", { { "runner", WT_NAME, 1, 64 }, { "labels", WT_ASTR, 0, 32 },
                  { "capacity", WT_U32, 1, 0 }, { "running", WT_U32, 0, 0 },
                  { "heartbeat", WT_UINT, 0, 0 }, { "state", WT_ENUM, 1, 16, W_STATES },
                  { "ephemeral", WT_BOOL, 0, 0 }, { "credit", WT_U32, 0, 0 }, { 0 } } },
    { "end", { { "count", WT_U32, 0, 0 }, { "more", WT_BOOL, 0, 0 },
               { "queue_limit", WT_U32, 0, 0 }, { 0 } } },
    { "welcome", { { "runner", WT_NAME, 1, 64 }, { "seq", WT_UINT, 1, 0 }, { 0 } } },
    { "dispatch", { { "job", WT_ULID, 1, 26 }, { "spec", WT_MAP, 1, 0 },
                    { "args", WT_MSS, 0, 64 }, { "source_tar", WT_BIN, 0, 1048576 },
                    { "ci_source_tar", WT_BIN, 0, 1048576 }, { "parent_job", WT_ULID, 0, 26 },
                    { "parent_step", WT_STR, 0, 64 }, { 0 } } },
    { "control", { { "command", WT_ENUM, 1, 16, W_COMMANDS }, { "job", WT_ULID, 0, 26 },
                   { "reason", WT_STR, 0, 1024 }, { "force", WT_BOOL, 0, 0 }, { 0 } } },
    { "ack", { { "seq", WT_UINT, 1, 0 }, { 0 } } },
    { "heartbeat", { { "running", WT_U32, 0, 0 }, { 0 } } },
    { "triggered", { { "job", WT_ULID, 1, 26 }, { "existing", WT_BOOL, 0, 0 },
                     { "code", WT_ENUM, 0, 32, W_CODES }, { "message", WT_STR, 0, 4096 }, { 0 } } },
    { "queried", { { "seq", WT_UINT, 1, 0 }, { "job", WT_ULID, 0, 26 },
                   { "pipeline", WT_STR, 0, 64 }, { "status", WT_ENUM, 0, 16, W_STATUS },
                   { "steps_total", WT_U32, 0, 0 }, { "steps_done", WT_U32, 0, 0 },
                   { "outputs", WT_MSS, 0, 256 }, { "steps", WT_MSS, 0, 257 },
                   { "waiting", WT_U32, 0, 0 }, { "running", WT_U32, 0, 0 },
                   { "parent_job", WT_ULID, 0, 26 }, { "code", WT_ENUM, 0, 32, W_CODES },
                   { "message", WT_STR, 0, 4096 }, { 0 } } },
    { "artifact_ack", { { "job", WT_ULID, 1, 26 }, { "step", WT_STR, 1, 64 },
                        { "path", WT_STR, 1, 1024 }, { "sha256", WT_STR, 1, 64 },
                        { "offset", WT_UINT, 1, 0 }, { "done", WT_BOOL, 0, 0 },
                        { "reason", WT_STR, 0, 1024 }, { 0 } } },
    { "artifact_data", { { "step", WT_STR, 1, 64 }, { "path", WT_STR, 1, 1024 },
                         { "size", WT_UINT, 1, 0 }, { "offset", WT_UINT, 1, 0 },
                         { "data", WT_BIN, 0, 1048576 }, { 0 } } },
    { "pipeline", { { "pipeline", WT_STR, 1, 64 }, { "file", WT_STR, 0, 255 },
                    { "concurrency", WT_U32, 0, 0 }, { "waiting", WT_U32, 0, 0 },
                    { "running", WT_U32, 0, 0 }, { "last_job", WT_ULID, 0, 26 },
                    { "last_status", WT_ENUM, 0, 16, W_STATUS }, { "schedule", WT_STR, 0, 256 },
                    { "timezone", WT_STR, 0, 64 }, { "next_run", WT_UINT, 0, 0 },
                    { "last_fire", WT_UINT, 0, 0 }, { "fire_job", WT_ULID, 0, 26 },
                    { "fire_status", WT_STR, 0, 1024 }, { "load_error", WT_STR, 0, 4096 },
                    { "github_events", WT_ASTR, 0, 3 }, { "github_branches", WT_ASTR, 0, 32 },
                    { "args", WT_MAP, 0, 64 }, { 0 } } },
    { "pruned", { { "jobs", WT_UINT, 0, 0 }, { "outputs", WT_UINT, 0, 0 },
                  { "events", WT_UINT, 0, 0 }, { "records", WT_UINT, 0, 0 },
                  { "bytes", WT_UINT, 0, 0 }, { "dry_run", WT_BOOL, 0, 0 },
                  { "more", WT_BOOL, 0, 0 }, { 0 } } },
    { "provider", { { "provider", WT_NAME, 1, 64 }, { "runner", WT_NAME, 0, 64 },
                    { "labels", WT_ASTR, 0, 32 }, { "reason", WT_STR, 0, 1024 },
                    { "running", WT_U32, 0, 0 }, { "max", WT_U32, 0, 0 },
                    { "starts", WT_U32, 0, 0 }, { "failed_starts", WT_U32, 0, 0 },
                    { "heartbeat", WT_UINT, 0, 0 }, { 0 } } },
    { "demand", { { "job", WT_ULID, 1, 26 }, { "labels", WT_ASTR, 0, 32 },
                  { "count", WT_U32, 0, 0 }, { "ttl", WT_U32, 0, 0 },
                  { "reason", WT_STR, 0, 1024 }, { "created", WT_UINT, 0, 0 }, { 0 } } },
    { NULL, { { 0 } } },
};

/*  The record `event` (envelope). */
static const evr_wfield_t evr_w_event[] = {
    { "seq", WT_UINT, 1, 0 }, { "job", WT_ULID, 0, 26 }, { "jseq", WT_U32, 0, 0 },
    { "type", WT_STR, 1, 32 }, { "time", WT_UINT, 1, 0 }, { "data", WT_MAP, 1, 0 }, { 0 },
};

/*  Requests: the fields the generated bad variants go through.  good is
    the text of a valid value (%s: a fresh ULID); the body made of the
    required fields' good values is a valid request. */
typedef struct {
    const char *name;
    int type;
    int required;
    size_t limit;
    const char *good;
} evr_wreq_field_t;

typedef struct {
    const char *type;
    int runner_side;   /* sent on the runner socket */
    evr_wreq_field_t f[12];
} evr_wrequest_t;

#define W_SPEC "{pipeline:\"audit\",image:\"img:1\",labels:[\"audit-none\"]," \
               "steps:[{name:\"s\",run:\"true\"}]}"
#define W_ULID "\"%s\""

static const evr_wrequest_t evr_w_requests[] = {
    { "submit", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "spec", WT_MAP, 1, 0, W_SPEC },
                     { "args", WT_MSS, 0, 64, "{A:\"1\"}" },
                     { "labels", WT_ASTR, 0, 32, "[\"x\"]" },
                     { "source_tar", WT_BIN, 0, 1048576, "B(1)" },
                     { "ci_source_tar", WT_BIN, 0, 1048576, "B(1)" },
                     { "parent_job", WT_ULID, 0, 26, W_ULID },
                     { "parent_step", WT_NAME, 0, 64, "\"s\"" }, { 0 } } },
    { "cancel", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "reason", WT_STR, 0, 1024, "\"r\"" },
                     { 0 } } },
    { "pause", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { 0 } } },
    { "resume", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { 0 } } },
    { "status", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { 0 } } },
    { "jobs", 0, { { "pipeline", WT_STR, 0, 64, "\"p\"" },
                   { "status", WT_ENUM, 0, 16, "\"queued\"" },
                   { "limit", WT_U32, 0, 0, "5" }, { "before", WT_ULID, 0, 26, W_ULID }, { 0 } } },
    { "history", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "from", WT_UINT, 0, 0, "1" },
                      { "limit", WT_U32, 0, 0, "5" }, { 0 } } },
    { "runners", 0, { { 0 } } },
    { "drain", 0, { { "runner", WT_NAME, 1, 64, "\"nobody-here\"" }, { 0 } } },
    { "fetch", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "step", WT_NAME, 1, 64, "\"s\"" },
                    { "path", WT_PATH, 1, 1024, "\"a/b\"" }, { "offset", WT_UINT, 0, 0, "1" },
                    { 0 } } },
    { "pipelines", 0, { { 0 } } },
    { "start", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "pipeline", WT_NAME, 1, 64, "\"nope\"" },
                    { "args", WT_MSS, 0, 64, "{A:\"1\"}" }, { "labels", WT_ASTR, 0, 32, "[\"x\"]" },
                    { "source_url", WT_STR, 0, 2048, "\"https://h/r\"" },
                    { "source_ref", WT_STR, 0, 256, "\"main\"" },
                    { "ci_source_url", WT_STR, 0, 2048, "\"https://h/r\"" },
                    { "ci_source_ref", WT_STR, 0, 256, "\"main\"" }, { 0 } } },
    { "prune", 0, { { "dry_run", WT_BOOL, 0, 0, "true" }, { 0 } } },
    { "provider", 0, { { "provider", WT_NAME, 1, 64, "\"audit-p\"" },
                       { "runner", WT_NAME, 0, 64, "\"audit-prov\"" },
                       { "labels", WT_ASTR, 0, 32, "[\"x\"]" },
                       { "reason", WT_STR, 0, 1024, "\"r\"" },
                       { "running", WT_U32, 0, 0, "1" }, { "max", WT_U32, 0, 0, "2" },
                       { "starts", WT_U32, 0, 0, "1" }, { "failed_starts", WT_U32, 0, 0, "1" },
                       { "heartbeat", WT_UINT, 0, 0, "1" }, { 0 } } },
    { "providers", 0, { { 0 } } },
    { "demand", 0, { { "job", WT_ULID, 1, 26, W_ULID }, { "labels", WT_ASTR, 0, 32, "[\"x\"]" },
                     { "count", WT_U32, 0, 0, "1" }, { "ttl", WT_U32, 0, 0, "5" },
                     { "reason", WT_STR, 0, 1024, "\"r\"" }, { "created", WT_UINT, 0, 0, "1" },
                     { 0 } } },
    { "demands", 0, { { 0 } } },
    { "hello", 1, { { "runner", WT_NAME, 1, 64, "\"audit-rogue\"" },
                    { "labels", WT_ASTR, 0, 32, "[\"x\"]" },
                    { "capacity", WT_U32, 1, 0, "1" }, { "version", WT_STR, 1, 64, "\"v\"" },
                    { "seq", WT_UINT, 0, 0, "0" }, { "ephemeral", WT_BOOL, 0, 0, "true" },
                    { 0 } } },
    { "credit", 1, { { "credit", WT_U32, 1, 0, "0" }, { 0 } } },
    { "goodbye", 1, { { "seq", WT_UINT, 1, 0, "0" }, { "reason", WT_STR, 0, 1024, "\"r\"" },
                      { 0 } } },
    { "events", 1, { { "events", WT_AMAP, 1, 1024,
                       "[{seq:1,job:\"%s\",jseq:1,type:\"job.started\",time:1,data:{}}]" },
                     { 0 } } },
    { "heartbeat", 1, { { "running", WT_U32, 0, 0, "1" }, { 0 } } },
    { "trigger", 1, { { "job", WT_ULID, 1, 26, W_ULID }, { "pipeline", WT_NAME, 1, 64, "\"nope\"" },
                      { "spec", WT_MAP, 0, 0, W_SPEC }, { "file", WT_PATH, 0, 256, "\"a.yml\"" },
                      { "args", WT_MSS, 0, 64, "{A:\"1\"}" },
                      { "parent_job", WT_ULID, 1, 26, W_ULID },
                      { "parent_step", WT_NAME, 1, 64, "\"s\"" }, { 0 } } },
    { "query", 1, { { "seq", WT_UINT, 1, 0, "1" }, { "job", WT_ULID, 0, 26, W_ULID },
                    { "pipeline", WT_NAME, 0, 64, "\"p\"" }, { 0 } } },
    { "artifact_chunk", 1, { { "job", WT_ULID, 1, 26, W_ULID }, { "step", WT_NAME, 1, 64, "\"s\"" },
                             { "path", WT_PATH, 1, 1024, "\"a/b\"" },
                             { "sha256", WT_STR, 1, 64, "\"" "e3b0c44298fc1c149afbf4c8996fb924"
                                                        "27ae41e4649b934ca495991b7852b855" "\"" },
                             { "size", WT_UINT, 1, 0, "0" }, { "offset", WT_UINT, 1, 0, "0" },
                             { "data", WT_BIN, 0, 1048576, "B(1)" }, { 0 } } },
    { NULL, 0, { { 0 } } },
};

#endif
