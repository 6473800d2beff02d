/*  evr_gw.h: evrun-gateway, the HTTP gateway (issue 16): one more client
    of the broker that serves a JSON API under /api/v1.

    libmicrohttpd runs a thread per connection; each request is routed by
    the table evr_gw_routes (schema/openapi.yaml describes the same
    routes: a unit test holds them equal), authenticated (evr_gw_auth.h),
    its body read up to EVR_MSG_MAX_BYTES (413 past it), then handled.
    Handlers talk to the broker through one shared client connection
    (evr_gw_call, serialized by a mutex; a connection that timed out is
    dropped and made anew, so a late answer is never taken for the next
    one), which a thread of its own makes, choosing the endpoint again at
    each attempt, and makes again while no broker answers (evr_gw_bus.c);
    a log stream has its own SUB socket on the event stream.
*/
#ifndef EVR_GW_H_INCLUDED
#define EVR_GW_H_INCLUDED

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>

#include "evr_client.h"
#include "evr_gw_auth.h"

#define EVR_GW_PREFIX "/api/v1"
/*  The prefixes of the Idempotency-Key records the webhooks and demands
    make (POST /api/v1/jobs names its records by the key alone, and
    refuses a key that begins with one of these): "hook:NAME:K",
    "demand:K", "github:DELIVERY:PIPELINE", "github-demand:...". */
#define EVR_GW_KEY_HOOK "hook:"
#define EVR_GW_KEY_DEMAND "demand:"
#define EVR_GW_KEY_GITHUB "github:"
#define EVR_GW_KEY_GH_DEMAND "github-demand:"
#define EVR_GW_PARAMS 3         /* {id} and the like in one route */
#define EVR_GW_LOG_MAX (64u << 20)      /* bytes of one plain-text log answer */

typedef struct evr_gw_metrics evr_gw_metrics_t;
typedef struct evr_gw_conn evr_gw_conn_t;
struct evr_gw_views;

typedef struct evr_gw {
    evr_config_t *cfg;
    evr_gw_secret_t secret;
    evr_gw_secret_t hook_secret;    /* webhook_secret_file's: GitHub's signatures */
    pthread_mutex_t mu;         /* guards client and the bus_ fields but bus_cfg */
    evr_client_t *client;       /* made by the watch (evr_gw_bus.c); NULL until the broker
                                   answers, and after a failed call */
    /* the watch: the broker's connection (evr_gw_bus.c) */
    evr_config_t *bus_cfg[2];   /* the settings with the endpoints chosen: [0] the tcp://
                                   defaults, [1] a local broker's ipc:// sockets (NULL:
                                   cfg's, as chosen) */
    int bus_local;              /* the one of the last connection (atomic) */
    pthread_cond_t bus_cv;      /* with mu: an attempt ended, or the watch has work */
    bool bus_down;              /* the last attempt failed: requests get 503 at once */
    bool bus_again;             /* a call failed: the watch tries at once */
    uint64_t bus_retry_at;      /* mono ns: the watch's next attempt while down */
    char down_msg[EVR_ERR_MAX]; /* why it is down */
    pthread_t bus_thread;
    bool bus_on;
    struct MHD_Daemon *daemon;
    _Atomic int stopping;       /* streams end when set (read by every thread) */
    int downloads;              /* artifact downloads running (atomic) */
    evr_gw_metrics_t *metrics;  /* made by evr_gw_start */
    bool metrics_auth;          /* GET /metrics needs a token (metrics_token: required) */
    size_t body_max;            /* bytes of a request body */
    uint16_t port;              /* bound */
    const char *hosts;          /* http_allowed_hosts (cfg's), or NULL (evr_gw_hosts.c) */
    bool hosts_loopback;        /* listening on 127.0.0.0/8: Host names checked */
    char *tls_cert, *tls_key;   /* PEM, kept while serving */
    /* connection limits (evr_gw_limits.c) */
    unsigned max_conns, max_per_ip, idle_s;
    uint64_t request_ns;        /* a request's headers and body come within this */
    uint64_t keepalive_ns;      /* a quiet live log sends a comment this often */
    pthread_mutex_t conns_mu;   /* guards conns, nconns (made by evr_gw_start) */
    evr_gw_conn_t *conns;       /* every open connection */
    int nconns;
    uint64_t requests_cut;      /* past http_request_timeout (atomic) */
    uint64_t history_events;    /* events read from `history` pages (atomic) */
    pthread_t watchdog;
    bool watchdog_on;
    struct evr_gw_views *views; /* jobs' folded histories (evr_gw_view.c) */
} evr_gw_t;

typedef struct {
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char params[EVR_GW_PARAMS][128];
    evr_gw_scope_t scope;
    char *body;
    size_t len;
    /* the answer: a JSON body with status, or a ready response */
    int status;
    json_t *json;
    struct MHD_Response *resp;
    unsigned retry_after;   /* > 0: a Retry-After header of these seconds */
    /* mono ns: its broker calls give up by then, the wait for the shared
       connection too (0: timeout_ms each); no_turn when that wait did */
    uint64_t until_ns;
    bool no_turn;
    bool unanswered;        /* a call went out and its answer did not come: the broker
                               may have done what it asked */
    bool bus_nowait;        /* no wait for the watch's attempt: 503 while connecting */
} evr_gw_req_t;

typedef void(evr_gw_handler_fn)(evr_gw_t *gw, evr_gw_req_t *req);

typedef struct {
    const char *method;
    const char *path;           /* under EVR_GW_PREFIX; {name} is one segment */
    evr_gw_handler_fn *fn;
    bool write;                 /* needs a write-scope token */
    bool open;                  /* no token checked before the handler: it checks its own */
    bool root;                  /* path is from /, not under EVR_GW_PREFIX */
    bool tail;                  /* the last {param} takes the rest of the path, and each
                                   {param} an empty or long segment too (the handler
                                   reads the url and names what is wrong) */
    const char *query;          /* its query parameters, space-separated ("" none): any
                                   other is refused (400); NULL: not checked (hooks, UI,
                                   metrics: callers we do not write) */
    bool (*head)(struct evr_gw *gw, evr_gw_req_t *req);
                                /* an open route's checks of the head alone (its own
                                   token), before the body is read: false with the answer
                                   set (NULL: none) */
} evr_gw_route_t;

extern const evr_gw_route_t evr_gw_routes[];
extern const size_t evr_gw_nroutes;

/* ------------------------------------------------------------ evr_gw_http.c */

/*  The route of method and url (path only), its {params} copied into
    params; NULL when none, *status then 404 (no such path) or 405 (the
    path, another method). */
const evr_gw_route_t *evr_gw_route_match(const char *method, const char *url,
                                         char params[EVR_GW_PARAMS][128], int *status);

/*  A request target's path: url itself in origin form (/api/v1/...); the
    path of an absolute-form one (http://HOST[:PORT]/PATH, RFC 9112 3.2.2:
    a server must take it; any host, as the Host header), "/" when it has
    none; NULL when it has no host or has a fragment. */
const char *evr_gw_origin_form(const char *url);

/*  The length of the UTF-8 sequence at p (NUL-terminated), 0 when it is
    none (a stray or overlong byte, a surrogate, past U+10FFFF). */
size_t evr_gw_utf8_len(const unsigned char *p);

/*  s as a JSON string, each byte of it that is no UTF-8 written \xHH (a
    message quoting a header, or text cut by a %.Ns between the bytes of
    a character): never NULL, as json_string() is for such bytes. */
json_t *evr_gw_text(const char *s);

/*  evr_gw_check.c: a request's head checked before it is routed.  Each
    that refuses sets req's answer and returns false. */
/*  Content-Length and Transfer-Encoding (one of them, a coding read, none
    over HTTP/1.0), Host, field names and fields that may come once. */
bool evr_gw_framing_ok(evr_gw_req_t *req, const char *version);
/*  No NUL byte in a header field's value, no bare CR in a field. */
bool evr_gw_header_nul_ok(evr_gw_req_t *req);
/*  No escaped NUL (%00) in the path or a query parameter. */
bool evr_gw_nul_ok(evr_gw_req_t *req);
/*  The spaces and tabs after the values of the fields the gateway reads
    whole cut (RFC 9112 5: no part of them). */
void evr_gw_trim_fields(evr_gw_req_t *req);
/*  Only the route's query parameters, each once and with a value. */
bool evr_gw_query_ok(evr_gw_req_t *req, const evr_gw_route_t *route);

/*  Checks cfg's http_listen (HOST:PORT, an IPv4 address or localhost)
    and that tls_cert and tls_key are set both or neither, before
    anything is bound (--print-config too).  EVR_ERR_CONFIG naming the
    setting and its source (recorded for evr_config_report). */
evr_rc_t evr_gw_listen_check(const evr_config_t *cfg, evr_err_t *err);

/*  Starts serving on cfg's http_listen (TLS when tls_cert and tls_key
    are set; evr_gw_listen_check's errors too). */
evr_rc_t evr_gw_start(evr_gw_t *gw, evr_err_t *err);
void evr_gw_stop(evr_gw_t *gw);

/*  Checks req's bearer token (a write-scope one when write): false with
    the 401 or 403 answer set. */
bool evr_gw_auth(evr_gw_t *gw, evr_gw_req_t *req, bool write);

/*  Sets req's answer to {"error": {"code", "message"}} with status. */
void evr_gw_error(evr_gw_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*  Sets req's answer to status and js (taken). */
void evr_gw_json(evr_gw_req_t *req, int status, json_t *js);

/*  A query argument of req, or NULL. */
const char *evr_gw_query(const evr_gw_req_t *req, const char *key);

/*  A request header of req, or NULL. */
const char *evr_gw_header(const evr_gw_req_t *req, const char *key);

/*  A token header's value v without the spaces and tabs around it (not
    part of a field value, RFC 9110 5.5), copied into buf when it had
    some after it and fits; v itself otherwise (NULL stays NULL). */
const char *evr_gw_token_trim(const char *v, char *buf, size_t size);

/*  One line of the access log: "METHOD URL -> STATUS", each escaped (a
    control character, a byte past ASCII and the backslash as \xHH), and
    " (REASON)" when reason is not NULL; "-" for a method or URL not known
    (a connection refused or cut before its request's head was in). */
void evr_gw_log_answer(const char *method, const char *url, int status, const char *reason);

/* ---------------------------------------------------------- evr_gw_hosts.c */

/*  Checks cfg's http_allowed_hosts (host names separated by commas,
    .NAME, or *): EVR_ERR_CONFIG naming it (recorded for
    evr_config_report). */
evr_rc_t evr_gw_hosts_check(const evr_config_t *cfg, evr_err_t *err);

/*  The setting into gw, and whether sa (the listening address) is a
    loopback one (evr_gw_start). */
struct sockaddr_in;
void evr_gw_hosts_load(evr_gw_t *gw, const struct sockaddr_in *sa);

/*  Whether req's Host (the host of target, the request target as sent,
    when it is in absolute form) is one gw answers to: localhost, a name
    under .localhost, an IP address, one of http_allowed_hosts, or any
    when gw listens elsewhere than loopback and the setting is unset.
    False with a 421 set (DNS rebinding: a page of another site reading
    the gateway's answers under its own name). */
bool evr_gw_host_ok(const evr_gw_t *gw, evr_gw_req_t *req, const char *target);

/* --------------------------------------------------------- evr_gw_limits.c */

/*  Reads the settings http_max_connections, http_max_per_ip,
    http_idle_timeout and http_request_timeout into gw (and raises the
    open-file limit; lowers max_conns to what it holds).  EVR_ERR_CONFIG
    naming the setting when one is malformed or out of range. */
evr_rc_t evr_gw_limits_load(evr_gw_t *gw, evr_err_t *err);

/*  The settings' defaults into gw (evr_gw_start applies them when
    evr_gw_limits_load was not called). */
void evr_gw_limits_default(evr_gw_t *gw);

/*  MHD_OPTION_NOTIFY_CONNECTION's callback (cls: gw): lists and unlists
    connections. */
void evr_gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);

/*  Marks conn's request as all in (busy: no deadline) or answered (not
    busy: the next request's deadline counts from now, and the request's
    method and URL are forgotten). */
void evr_gw_conn_busy(evr_gw_t *gw, struct MHD_Connection *conn, bool busy);

/*  Counts one string of conn's request (its path, a query parameter's
    name or value) decoded with a NUL (%00) in it (the unescape callback),
    and takes the count (the first call for the request; answering it
    sets it to 0 too): libmicrohttpd hands the path on as a C string, cut
    at the NUL, so the count is how a NUL in it is seen.  evr_gw_conn_nul
    is false when conn has no registry entry to count on. */
bool evr_gw_conn_nul(struct MHD_Connection *conn);
unsigned evr_gw_conn_nuls_take(struct MHD_Connection *conn);

/*  The method and URL of conn's request, once its head is in (copied):
    what the watchdog logs when it cuts the request's body short. */
void evr_gw_conn_request(evr_gw_t *gw, struct MHD_Connection *conn, const char *method,
                         const char *url);

/*  libmicrohttpd's accept policy callback (cls: gw): a new connection from
    an address that has http_max_per_ip open already is refused (closed
    at once, no answer), with a line in the log; libmicrohttpd's own
    per-address limit would refuse it unlogged. */
enum MHD_Result evr_gw_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);

/*  Starts and stops the thread that cuts requests past http_request_timeout. */
void evr_gw_watchdog_start(evr_gw_t *gw);
void evr_gw_watchdog_stop(evr_gw_t *gw);

/* ------------------------------------------------------------- evr_gw_bus.c */

/*  Makes gw->bus_cfg from cfg (layered, its endpoints not resolved yet):
    the settings with the tcp:// defaults and with a local broker's
    ipc:// sockets for the endpoints not given. */
void evr_gw_bus_cfg_make(evr_gw_t *gw, const evr_config_t *cfg);

/*  Starts (evr_gw_start, before serving) and stops (evr_gw_stop, once no
    request runs) the watch: the thread that connects gw->client, choosing
    the endpoint again at each attempt, and tries again while no broker
    answers (0.25 s, doubling to 4 s).  EVR_ERR_IO when the thread
    cannot be made. */
evr_rc_t evr_gw_bus_start(evr_gw_t *gw, evr_err_t *err);
void evr_gw_bus_stop(evr_gw_t *gw);

/*  The settings of the broker's endpoints now (those of the last
    connection): a SUB socket of the event stream made with other ones
    is made again. */
const evr_config_t *evr_gw_bus_cfg(evr_gw_t *gw);

/*  The shared client (gw->mu held): once the watch's attempt running
    ends, when there is one (not with req->bus_nowait); NULL with req's
    503 set (with Retry-After and what to do) while no broker answers,
    and when its connection is down (waited for half a second at most:
    then lost, as evr_gw_bus_lost with down). */
evr_client_t *evr_gw_client(evr_gw_t *gw, evr_gw_req_t *req);

/*  evr_gw_client without keeping gw->mu: whether a call now would find
    the client (false with req's 503 set).  Called before taking a lock
    a call is made under, so that the wait is not made under it. */
bool evr_gw_bus_wait(evr_gw_t *gw, evr_gw_req_t *req);

/*  A call on gw->client failed with err (gw->mu held): the client is
    dropped and the watch connects again at once; down (a broker that
    did not answer, not a wait cut short by the request's own deadline):
    requests get 503 with err until it answers. */
void evr_gw_bus_lost(evr_gw_t *gw, const evr_err_t *err, bool down);

/* ---------------------------------------------------------- evr_gw_broker.c */

/*  One request/answer with the broker (evr_client_call), serialized.  On
    failure req's answer is set (503 unreachable or silent, 413 over the
    message limit) and the rc returned.  With req->until_ns, it gives up
    by then (503; req->no_turn when the connection stayed busy). */
evr_rc_t evr_gw_call(evr_gw_t *gw, evr_gw_req_t *req, const evr_msg_t *m, evr_msg_t *reply);

/*  A streamed request (evr_client_stream_end), serialized; the same
    failures.  An `error` answer sets req's answer by its code. */
evr_rc_t evr_gw_stream(evr_gw_t *gw, evr_gw_req_t *req, const evr_msg_t *m,
                       evr_client_item_fn *fn, void *arg, evr_msg_t *end);

/*  Sets req's answer from a broker `error` answer (or an unexpected one):
    bad_request 400, not_found 404, conflict and busy 409, too_large 413,
    queue_full 429 (Retry-After EVR_GW_RETRY_QUEUE_S), internal 500,
    unknown_type 501, unavailable 503 (Retry-After 1); a code not listed
    here, or an answer that is no `error`, 502 bad_gateway. */
#define EVR_GW_RETRY_QUEUE_S 5
void evr_gw_refused(evr_gw_req_t *req, const evr_msg_t *reply);

/*  The job id in req->params[0] (upper-cased); false with a 404 set when
    it is no job id. */
bool evr_gw_job_param(evr_gw_req_t *req, char id[EVR_ULID_LEN + 1]);

/*  ns since the epoch as "2026-11-30T01:02:03.456Z" into js[key] (left
    out when 0). */
void evr_gw_time_set(json_t *js, const char *key, uint64_t ns);

/* ----------------------------------------------------------- evr_gw_view.c */

/*  What a job's history says about it: copies, the caller clears them
    with evr_gw_view_clear. */
typedef struct {
    json_t *steps;          /* [{name, status, started, finished, exit_code, ...}] */
    json_t *source, *ci_source;     /* {kind, url, ref, sha} or NULL */
    json_t *files;          /* [{step, path, size, sha256}] */
    uint32_t events;        /* the last jseq */
    bool finished;          /* job.finished is among them */
} evr_gw_view_t;

/*  Made by evr_gw_start, destroyed by evr_gw_stop. */
void evr_gw_views_new(evr_gw_t *gw);
void evr_gw_views_destroy(evr_gw_t *gw);

/*  The view of job, folded from its history (the events after those
    folded before, for one of the last jobs asked); false with req's
    answer set (404 for a job the broker does not know, 503). */
bool evr_gw_view_get(evr_gw_t *gw, evr_gw_req_t *req, const char *job, evr_gw_view_t *out);
void evr_gw_view_clear(evr_gw_view_t *v);

/* ------------------------------------------------------------ evr_gw_api.c */

/*  Reads a submit body (Content-Type ctype) into spec (zeroed): YAML, or
    JSON with `steps`.  false with status (400, 413 past 1 MiB, 415) and *error (a JSON
    error object, caller owns) otherwise. */
bool evr_gw_parse_submit(const char *ctype, const char *body, size_t len, evr_spec_t *spec,
                         int *status, json_t **error);

/*  req's error (message and details) with an unknown arg refused by
    evr_spec_bind_args (the broker's "[WHERE: ]args.NAME: the pipeline
    declares no arg ...") named as the request gave it: "?arg=NAME" when
    query (may be NULL) has NAME, else "body.args.NAME". */
void evr_gw_args_named(evr_gw_req_t *req, const evr_strmap_t *query);

/*  Why a JSON body did not parse, from jansson's je, into buf:
    "body:LINE:COL: bad JSON: TEXT" ("body: bad JSON: TEXT" with no
    position), a \u0000 said as "a NUL character (\u0000) is not allowed"
    (jansson names its flag JSON_ALLOW_NUL), a byte that is no UTF-8 with
    " (JSON must be UTF-8)".  Returns buf. */
const char *evr_gw_json_why(const json_error_t *je, char *buf, size_t size);

/*  Whether req's body, if any, is sent as JSON: a Content-Type of
    application/json (parameters aside) or none; else req's 415 is set,
    naming the type and eg (an example body). */
bool evr_gw_json_type_ok(evr_gw_req_t *req, const char *eg);

/*  Whether a submit body is the start of a registered pipeline: JSON
    {"pipeline": NAME, "args": {NAME: VALUE}, "labels": [L]} (no steps).
    1: it is, and m's pipeline, args and labels are set; 0: it is not
    (a pipeline to run, or no JSON object); -1: it is, but is malformed
    (*error set: a JSON error object, caller owns). */
int evr_gw_parse_start(const char *ctype, const char *body, size_t len, evr_msg_t *m,
                       json_t **error);

/*  The job id an Idempotency-Key stands for (a record in
    STATE/gateway/idempotency, made with a new id the first time); false
    with req's answer set (400 for a key that is not 1 to 255 printable
    ASCII characters, space excluded). */
bool evr_gw_idem_job(evr_gw_t *gw, evr_gw_req_t *req, const char *key,
                     char job[EVR_ULID_LEN + 1]);

/*  Whether key (an Idempotency-Key header's value) is 1 to max printable
    ASCII characters other than the space (! to ~); false with req's 400
    set, naming max. */
bool evr_gw_idem_key_ok(evr_gw_req_t *req, const char *key, size_t max);

/*  Removes the Idempotency-Key records of state_dir (and records left
    half-made by a crash) last written over max_age_s seconds before
    now_s; how many.  The gateway runs it hourly (EVR_GW_IDEM_AGE_S). */
size_t evr_gw_idem_prune(const char *state_dir, uint64_t max_age_s, uint64_t now_s);
#define EVR_GW_IDEM_AGE_S (24u * 3600u)

void evr_gw_h_submit(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_jobs(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_job(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_cancel(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_pause(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_resume(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_runners(evr_gw_t *gw, evr_gw_req_t *req);

/* ---------------------------------------------------------- evr_gw_pipes.c */

void evr_gw_h_pipelines(evr_gw_t *gw, evr_gw_req_t *req);

/* ------------------------------------------------------------ evr_gw_art.c */

/*  Whether p is a path an artifact may have (relative, no empty, . or
    .. component, no trailing /, no control character, UTF-8, at most
    1024 bytes); NULL, or what is wrong with it. */
const char *evr_gw_art_path_problem(const char *p);

void evr_gw_h_artifacts(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_artifact(evr_gw_t *gw, evr_gw_req_t *req);

/* -------------------------------------------------------------- evr_gw_ui.c */

/*  The Content-Type of a UI file by its extension; NULL for a type not
    served. */
const char *evr_gw_ui_type(const char *path);

/*  Whether p may name a file of the UI directory (components of letters,
    digits, _ - . not starting with a dot, a served type, at most 255
    bytes); NULL, or what is wrong with it. */
const char *evr_gw_ui_path_problem(const char *p);

/*  ui_dir's default: share/evrun/ui beside the directory of the running
    binary (BIN/../share/evrun/ui).  Caller frees. */
char *evr_gw_ui_default_dir(void);

/*  GET / (index.html) and GET /ui/{path}: the web UI's files, no token. */
void evr_gw_h_ui_index(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_ui_file(evr_gw_t *gw, evr_gw_req_t *req);

/* ---------------------------------------------------------- evr_gw_hooks.c */

/*  What a GitHub event asks to run. */
typedef struct {
    char event[16];
    char branch[257];       /* a push's branch, a pull request's base, a job's head branch */
    char sha[65];           /* the commit to run */
    char *url;              /* its repository (a fork's for a pull request from one) */
    char *ci_url, *ci_ref;  /* the repository that sent it, its default branch */
    bool fork;              /* a pull request from another repository */
    evr_strlist_t labels;   /* workflow_job: its labels (runs-on), as given */
    char *demand_why;       /* workflow_job: set when its labels cannot make a demand */
    char *repo;             /* workflow_job: repository.full_name, "?" when none */
    long long job_id;       /* workflow_job: its id (workflow_job.id); 0: none given */
} evr_gw_github_t;

/*  A workflow_job's name, for its demand, into buf: its id, or the
    delivery (X-GitHub-Delivery, may be NULL) when the event has none
    (no id, 0 or not a positive integer), or "-" when neither. */
void evr_gw_github_job_name(const evr_gw_github_t *gh, const char *delivery, char *buf,
                            size_t size);

/*  Whether header ("sha256=HEX") is body's HMAC-SHA256 under s
    (compared in constant time); false when s is empty. */
bool evr_gw_hook_signed(const evr_gw_secret_t *s, const char *header, const char *body,
                        size_t len);

/*  Reads a GitHub event (push, pull_request or workflow_job) into gh:
    0 when it asks for a run, 1 when it asks for none (why says so: a
    closed pull request, a tag push...), -1 when malformed (why says
    where).  Free gh with evr_gw_github_clear. */
int evr_gw_github_parse(const char *event, const char *body, size_t len, evr_gw_github_t *gh,
                        char *why, size_t size);
void evr_gw_github_clear(evr_gw_github_t *gh);

/*  Whether a pipeline's on.github (events, branches as listed by the
    broker) matches gh. */
bool evr_gw_github_match(const evr_strlist_t *events, const evr_strlist_t *branches,
                         const evr_gw_github_t *gh);

void evr_gw_h_github(evr_gw_t *gw, evr_gw_req_t *req);
void evr_gw_h_hook(evr_gw_t *gw, evr_gw_req_t *req);

/*  POST /hooks/NAME's checks of the request's head, before its body is
    read (an unauthenticated caller's body is never buffered): NAME a
    pipeline name (404), its hook token given (401; 400 for two). */
bool evr_gw_hook_head(evr_gw_t *gw, evr_gw_req_t *req);

/* --------------------------------------------------------- evr_gw_demand.c */

/*  Reads a demand body ({"labels", "count", "ttl", "reason"}, all
    optional) into m (zeroed): 0, or -1 with why (where and what). */
int evr_gw_parse_demand(const char *body, size_t len, evr_msg_t *m, char *why, size_t size);

/*  Sends m (labels, count, ttl, reason set) to the broker as a `demand`,
    its id from the Idempotency-Key record key when given, else new: the
    answer's JSON {"id", "labels", "count", "ttl", "message", "duplicate"}
    (caller owns; duplicate true when the broker kept or retired a demand
    of that id already, and added nothing: then labels, count and ttl are
    the kept demand's, as the broker lists it, count the runners still
    wanted and ttl the seconds left; [], 0 and 0 for one retired), or NULL
    with req's answer set (400 bad key, 503 the broker unreachable, the
    broker's refusal). */
json_t *evr_gw_demand_send(evr_gw_t *gw, evr_gw_req_t *req, evr_msg_t *m, const char *key);

/*  An evr_gw_stream callback for the broker's `demands` answer: each
    entry as JSON {"id", "labels", "count", "ttl", "reason", "created"}
    appended to arg (a JSON array). */
int evr_gw_demand_item(const evr_msg_t *m, void *arg);

void evr_gw_h_demand(evr_gw_t *gw, evr_gw_req_t *req);

/* -------------------------------------------------------- evr_gw_metrics.c */

/*  Starts (evr_gw_start) and stops (evr_gw_stop) the thread that counts
    the event stream. */
void evr_gw_metrics_start(evr_gw_t *gw);
void evr_gw_metrics_stop(evr_gw_t *gw);

/*  Takes one broker round-trip of ns into the histogram. */
void evr_gw_metrics_rtt(evr_gw_t *gw, uint64_t ns);

/*  Writes v as a label value of the text format (backslash, double
    quote and newline escaped). */
void evr_gw_prom_label(FILE *out, const char *v);

/*  GET /metrics. */
void evr_gw_h_metrics(evr_gw_t *gw, evr_gw_req_t *req);

/* ------------------------------------------------------------ evr_gw_log.c */

/*  GET /jobs/{id}/log: text (as evrun-cli logs prints it), or with
    Accept: text/event-stream the live Server-Sent Events stream. */
void evr_gw_h_log(evr_gw_t *gw, evr_gw_req_t *req);

/*  The plain-text log as it is written, made UTF-8: each maximal subpart
    that is no character (Unicode's recommended practice: a stray or
    overlong byte, a surrogate's, past U+10FFFF, or a character's first
    bytes that no more of it follows, also across writes) becomes one
    U+FFFD; at most max bytes are kept, cut between characters (cut set).
    buf (malloc'd, or NULL with cap 0) grows to at most max + 1 bytes. */
typedef struct {
    char *buf;
    size_t len, cap, max;
    bool cut;                   /* text past max was dropped */
    unsigned char part[4];      /* a character's first bytes, awaiting the rest */
    size_t npart;
} evr_gw_text_t;

void evr_gw_text_put(evr_gw_text_t *t, const char *data, size_t n);
/*  The end of the text: a character cut short there is one U+FFFD. */
void evr_gw_text_end(evr_gw_text_t *t);

/*  The Last-Event-ID header's value as a seq; false when malformed. */
bool evr_gw_last_event_id(const char *s, uint32_t *seq);

#endif
