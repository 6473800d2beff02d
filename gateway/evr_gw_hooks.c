/*  evr_gw_hooks.c: webhooks.

    POST /hooks/github: a GitHub delivery, its body signed with the
    webhook secret (X-Hub-Signature-256: HMAC-SHA256, checked with
    libsodium and compared in constant time).  push, pull_request
    (opened, synchronize, reopened) and workflow_job (queued) start each
    registered pipeline whose on.github (the broker's `pipeline` listing:
    github_events, github_branches) names the event and a pattern that
    matches its branch, through the broker's `start` with the source
    overrides: source_url/source_ref the commit the event names (a fork's
    for a pull request from one: untrusted code), ci_source_url/
    ci_source_ref the repository that sent the hook at its default branch
    (trusted: no pull request changes it).  The job id of a delivery and
    pipeline is an Idempotency-Key record ("github:DELIVERY:PIPELINE"),
    so a redelivery starts nothing new, also across gateway restarts.

    POST /hooks/{pipeline}: any other system, with the pipeline's own
    token (STATE/gateway/hooks/NAME.token, made by evrun-cli hook-token
    NAME) as a bearer token or in X-Evrun-Token; the body is empty or
    {"args": {...}, "labels": [...]} (POST /jobs's ?arg= and ?label=
    are refused, not dropped).

    A workflow_job (queued) that starts no pipeline asks for a runner
    with the job's labels (workflow_job.labels): a `demand` to the broker
    (evr_gw_demand.c), which evrun-provisioner counts as a waiting job; its
    id is the Idempotency-Key record of the workflow job's id
    ("github-demand:job:ID"; of the delivery, "github-demand:DELIVERY",
    when the event has no id), so a redelivery, or another delivery of
    the same workflow job, is a duplicate the broker adds nothing for
    while it keeps that demand or remembers it met or ended (24 hours):
    answered 200 with "duplicate": true.  One that starts pipelines asks
    for none: their jobs wait in the queue with their own labels.  See
    evr_gw.h. */
#include "evr_gw.h"
#include "evr_log.h"

#include <fnmatch.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ signature */

bool
evr_gw_hook_signed(const evr_gw_secret_t *s, const char *header, const char *body, size_t len)
{
    unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
    size_t n = 0;
    if (!s->len || !header || strncmp(header, "sha256=", 7) || strlen(header + 7) != 64
        || sodium_hex2bin(got, sizeof got, header + 7, 64, NULL, &n, NULL) || n != sizeof got)
        return false;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *) s->key, s->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *) body, len);
    crypto_auth_hmacsha256_final(&st, want);
    return sodium_memcmp(want, got, sizeof want) == 0;
}

/* ---------------------------------------------------------------- events */

/*  A workflow_job's labels, id and repository, for its demand: labels kept
    as given (at most 32), each once (a runs-on that repeats one is GitHub's
    to send, and the broker refuses a demand that repeats a label), or
    demand_why set. */
static void
s_job_labels(json_t *js, evr_gw_github_t *gh)
{
    json_t *wj = json_object_get(js, "workflow_job"), *labels = json_object_get(wj, "labels");
    json_t *id = json_object_get(wj, "id");
    const char *repo = json_string_value(json_object_get(json_object_get(js, "repository"),
                                                         "full_name"));
    gh->job_id = json_is_integer(id) && json_integer_value(id) > 0
               ? (long long) json_integer_value(id) : 0;
    gh->repo = evr_asprintf("%.200s", repo ? repo : "?");
    if (!json_is_array(labels) || json_array_size(labels) > 32) {
        gh->demand_why = evr_asprintf("workflow_job.labels: expected an array of at most 32 "
                                      "labels");
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach(labels, i, l) {
        const char *v = json_string_value(l);
        if (!v || (!evr_spec_name_ok(v)
                   && (strncmp(v, "executor:", 9) || !evr_spec_name_ok(v + 9)))) {
            gh->demand_why = evr_asprintf("workflow_job.labels[%zu]: expected a label: a "
                                          "letter or digit, then letters, digits, _ . - (at "
                                          "most %d bytes)", i, EVR_SPEC_MAX_NAME);
            evr_strlist_free(&gh->labels);
            return;
        }
        bool seen = false;
        for (uint32_t j = 0; j < gh->labels.n && !seen; j++)
            seen = !strcmp(gh->labels.v[j], v);
        if (!seen)
            evr_strlist_push(&gh->labels, v);
    }
}

static const char *
s_str(json_t *js, const char *path)
{
    char key[64];
    for (const char *p = path; js && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int) n, p);
        js = json_object_get(js, key);
        p += n + (p[n] == '.');
    }
    return json_string_value(js);
}

static bool
s_sha_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return (n == 40 || n == 64) && strspn(s, "0123456789abcdef") == n;
}

/*  The body of a delivery as JSON, when it is an object (caller owns);
    NULL with why set otherwise. */
static json_t *
s_body_object(const char *body, size_t len, char *why, size_t size)
{
    json_error_t je;
    json_t *js = json_loadb(body, len, 0, &je);
    if (json_is_object(js))
        return js;
    if (len >= 8 && !memcmp(body, "payload=", 8))   /* GitHub's default content type */
        snprintf(why, size, "body: a form (application/x-www-form-urlencoded, payload=...), "
                 "not JSON: set the webhook's content type to application/json");
    else if (js)
        snprintf(why, size, "body: expected a JSON object (GitHub's event), not %s",
                 json_is_array(js) ? "an array" : "a scalar");
    else
        evr_gw_json_why(&je, why, size);
    json_decref(js);
    return NULL;
}

int
evr_gw_github_parse(const char *event, const char *body, size_t len, evr_gw_github_t *gh,
                    char *why, size_t size)
{
    memset(gh, 0, sizeof *gh);
    json_t *js = s_body_object(body, len, why, size);
    int r = 0;
    if (!js)
        return -1;
    const char *action = s_str(js, "action"), *ref = NULL, *url = NULL, *sha = NULL;
    const char *where = "";
    snprintf(gh->event, sizeof gh->event, "%s", event);
    if (!strcmp(event, "push")) {
        ref = s_str(js, "ref");
        url = s_str(js, "repository.clone_url");
        sha = s_str(js, "after");
        where = "after";
        if (json_is_true(json_object_get(js, "deleted")))
            r = snprintf(why, size, "a branch deletion starts nothing") > 0;
        else if (ref && strncmp(ref, "refs/heads/", 11))
            r = snprintf(why, size, "a push of %.200s (not a branch) starts nothing", ref) > 0;
        ref = ref && !strncmp(ref, "refs/heads/", 11) ? ref + 11 : ref;
    }
    else if (!strcmp(event, "pull_request")) {
        ref = s_str(js, "pull_request.base.ref");
        url = s_str(js, "pull_request.head.repo.clone_url");
        sha = s_str(js, "pull_request.head.sha");
        where = "pull_request.head.sha";
        const char *head = s_str(js, "pull_request.head.repo.full_name");
        const char *base = s_str(js, "repository.full_name");
        gh->fork = !head || !base || strcmp(head, base);
        if (!action || (strcmp(action, "opened") && strcmp(action, "synchronize")
                        && strcmp(action, "reopened")))
            r = snprintf(why, size, "pull_request action \"%.64s\" starts nothing (opened, "
                         "synchronize and reopened do)", action ? action : "") > 0;
    }
    else {      /* workflow_job */
        ref = s_str(js, "workflow_job.head_branch");
        url = s_str(js, "repository.clone_url");
        sha = s_str(js, "workflow_job.head_sha");
        where = "workflow_job.head_sha";
        if (!action || strcmp(action, "queued"))
            r = snprintf(why, size, "workflow_job action \"%.64s\" starts nothing (queued "
                         "does)", action ? action : "") > 0;
    }
    const char *ci = s_str(js, "repository.clone_url");
    const char *def = s_str(js, "repository.default_branch");
    if (!r && (!ref || !*ref || strlen(ref) > 256))
        r = -(snprintf(why, size, "%s event: no branch in it", event) > 0);
    else if (!r && (!url || !*url || strlen(url) > 2048 || !ci || strlen(ci) > 2048))
        r = -(snprintf(why, size, "%s event: no repository clone_url in it", event) > 0);
    else if (!r && !s_sha_ok(sha))
        r = -(snprintf(why, size, "%s event: %s: expected a commit SHA (40 or 64 lower-case "
                       "hex digits)", event, where) > 0);
    else if (!r && def && strlen(def) > 256)
        r = -(snprintf(why, size, "%s event: repository.default_branch is too long", event) > 0);
    if (!r) {
        snprintf(gh->branch, sizeof gh->branch, "%s", ref);
        snprintf(gh->sha, sizeof gh->sha, "%s", sha);
        gh->url = evr_strdup(url);
        gh->ci_url = evr_strdup(ci);
        gh->ci_ref = def ? evr_strdup(def) : NULL;
        if (!strcmp(event, "workflow_job"))
            s_job_labels(js, gh);
    }
    json_decref(js);
    return r;
}

void
evr_gw_github_clear(evr_gw_github_t *gh)
{
    free(gh->url);
    free(gh->ci_url);
    free(gh->ci_ref);
    evr_strlist_free(&gh->labels);
    free(gh->demand_why);
    free(gh->repo);
    memset(gh, 0, sizeof *gh);
}

bool
evr_gw_github_match(const evr_strlist_t *events, const evr_strlist_t *branches,
                    const evr_gw_github_t *gh)
{
    bool ev = false, br = !branches->n;
    for (uint32_t i = 0; i < events->n; i++)
        ev |= !strcmp(events->v[i], gh->event);
    for (uint32_t i = 0; i < branches->n; i++)
        br |= !fnmatch(branches->v[i], gh->branch, FNM_PATHNAME);
    return ev && br;
}

/* ------------------------------------------------------------ starting */

/*  The first refusal of a hook's starts: its status and Retry-After. */
typedef struct {
    int status;
    unsigned retry_after;
} s_refusal_t;

/*  Starts pipeline with the start message m (pipeline, args, labels and
    overrides set); the job id from the Idempotency-Key record key when
    given.  Appends {"pipeline", "id", "existing"} (and "note", the
    broker's accepted.message) to started, or
    {"pipeline", "error"} to refused (with *first the first refusal's
    status and Retry-After); false when req's answer is set (the broker
    unreachable). */
static bool
s_start(evr_gw_t *gw, evr_gw_req_t *req, evr_msg_t *m, const char *key, json_t *started,
        json_t *refused, s_refusal_t *first)
{
    char job[EVR_ULID_LEN + 1];
    evr_msg_t rep = { 0 };
    if (key && !evr_gw_idem_job(gw, req, key, job))
        return false;
    if (!key)
        evr_ulid_new(job);
    free(m->job);
    m->job = evr_strdup(job);
    m->type = EVR_MSG_START;
    if (evr_gw_call(gw, req, m, &rep))
        return false;
    if (rep.type == EVR_MSG_ACCEPTED) {
        json_t *j = json_pack("{s:s,s:s,s:b}", "pipeline", m->pipeline, "id", job, "existing",
                              rep.existing);
        if (j && rep.message)   /* a start of a pipeline whose file last failed to load */
            json_object_set_new(j, "note", json_string(rep.message));
        json_array_append_new(started, j);
    }
    else {
        evr_gw_req_t r = { 0 };
        evr_gw_refused(&r, &rep);
        evr_gw_args_named(&r, NULL);    /* a hook's args are its body's */
        if (!json_array_size(refused))
            *first = (s_refusal_t) { r.status, r.retry_after };
        json_array_append_new(refused, json_pack("{s:s,s:O}", "pipeline", m->pipeline, "error",
                                                 json_object_get(r.json, "error")));
        json_decref(r.json);
    }
    evr_msg_clear(&rep);
    return true;
}

typedef struct {
    json_t *names;      /* of the pipelines that match */
    uint32_t all;       /* registered pipelines */
    uint32_t hooked;    /* with on.github */
    const evr_gw_github_t *gh;
} s_match_t;

static int
s_match_item(const evr_msg_t *m, void *arg)
{
    s_match_t *mt = arg;
    if (m->type != EVR_MSG_PIPELINE || !m->pipeline || !m->pipeline[0])
        return 0;
    mt->all++;
    mt->hooked += m->github_events.n > 0;
    if (evr_gw_github_match(&m->github_events, &m->github_branches, mt->gh)
        && json_array_size(mt->names) < 256)
        json_array_append_new(mt->names, json_string(m->pipeline));
    return 0;
}

/*  The answer of a hook: 202 with the jobs started, else the first
    refusal's status with its error (an Error body, openapi) and
    Retry-After (429 queue_full, 503 unavailable: as POST /api/v1/jobs),
    else 200 with why nothing matched. */
static void
s_answer(evr_gw_req_t *req, json_t *started, json_t *refused, s_refusal_t first,
         const char *none)
{
    int status = first.status;
    json_t *js = json_pack("{s:O}", "jobs", started);
    if (json_array_size(refused))
        json_object_set(js, "refused", refused);
    if (!json_array_size(started) && json_array_size(refused))
        json_object_set(js, "error", json_object_get(json_array_get(refused, 0), "error"));
    if (json_array_size(started))
        status = 202;
    else if (!json_array_size(refused)) {
        status = 200;
        json_object_set_new(js, "message", evr_gw_text(none));
    }
    else
        req->retry_after = first.retry_after;
    evr_gw_json(req, status, js);
}

void
evr_gw_github_job_name(const evr_gw_github_t *gh, const char *delivery, char *buf, size_t size)
{
    if (gh->job_id)
        snprintf(buf, size, "%lld", gh->job_id);
    else
        snprintf(buf, size, "%s", delivery ? delivery : "-");
}

/*  A workflow_job's demand: one runner with its labels; sets *kept (the
    broker's answer) or *refused (an error object).  Either caller owns. */
static void
s_github_demand(evr_gw_t *gw, evr_gw_req_t *req, const evr_gw_github_t *gh,
                const char *delivery, json_t **kept, json_t **refused)
{
    if (gh->demand_why) {
        *refused = json_pack("{s:s,s:s}", "code", "bad_request", "message", gh->demand_why);
        return;
    }
    evr_msg_t m = { .count = 1 };
    char name[128];
    evr_gw_github_job_name(gh, delivery, name, sizeof name);
    m.reason = evr_asprintf("github workflow_job %s of %s, delivery %s", name,
                            gh->repo ? gh->repo : "?", delivery ? delivery : "-");
    for (uint32_t i = 0; i < gh->labels.n; i++)
        evr_strlist_push(&m.labels, gh->labels.v[i]);
    /* one demand per workflow job, however often and under whatever
       delivery it comes */
    char *key = gh->job_id ? evr_asprintf(EVR_GW_KEY_GH_DEMAND "job:%lld", gh->job_id)
              : delivery ? evr_asprintf(EVR_GW_KEY_GH_DEMAND "%s", delivery) : NULL;
    evr_gw_req_t sub = { .conn = req->conn };    /* its error goes into req's answer */
    *kept = evr_gw_demand_send(gw, &sub, &m, key);
    if (!*kept)
        *refused = json_incref(json_object_get(sub.json, "error"));
    json_decref(sub.json);
    free(key);
    evr_msg_clear(&m);
}

void
evr_gw_h_github(evr_gw_t *gw, evr_gw_req_t *req)
{
    const char *event = evr_gw_header(req, "X-GitHub-Event");
    const char *delivery = evr_gw_header(req, "X-GitHub-Delivery");
    char why[512], none[1024];
    evr_gw_github_t gh = { 0 };
    /* 403, not 401: a 401 must challenge an HTTP authentication scheme
       (RFC 9110 15.5.2: WWW-Authenticate), and a webhook has none (its
       signature is of the body); "Bearer" would send a client after a
       token that nothing here takes */
    const char *sig = evr_gw_header(req, "X-Hub-Signature-256");
    if (!evr_gw_hook_signed(&gw->hook_secret, sig, req->body ? req->body : "", req->len)) {
        /* a value not of GitHub's form is said as such: "does not match"
           would send the sender after the secret */
        bool formed = sig && !strncmp(sig, "sha256=", 7) && strlen(sig + 7) == 64
                   && strspn(sig + 7, "0123456789abcdefABCDEF") == 64;
        evr_gw_error(req, 403, "forbidden", "X-Hub-Signature-256: %s%.80s%s (the body's "
                     "HMAC-SHA256 with the secret in the gateway's webhook_secret_file, "
                     "given to GitHub as the webhook's secret)",
                     !sig ? evr_gw_header(req, "X-Hub-Signature")
                                ? "missing (only X-Hub-Signature, SHA-1, came: send the "
                                  "SHA-256 one)" : "missing"
                          : formed ? "does not match the body" : "\"",
                     sig && !formed ? sig : "",
                     sig && !formed ? "\" is not sha256= and 64 hex digits" : "");
        return;
    }
    if (!event || !event[strspn(event, " \t")]) {
        evr_gw_error(req, 400, "bad_request", "X-GitHub-Event: %s (GitHub sends the event's "
                     "name: push, pull_request, workflow_job, ping)", event ? "empty" : "missing");
        return;
    }
    size_t dn = delivery ? strlen(delivery) : 0;
    for (size_t i = 0; i < dn; i++)
        if ((unsigned char) delivery[i] < 0x21 || (unsigned char) delivery[i] > 0x7e)
            dn = 0;
    if (delivery && (!dn || dn > 100)) {
        evr_gw_error(req, 400, "bad_request", "X-GitHub-Delivery: expected 1 to 100 printable "
                     "ASCII characters (GitHub sends a UUID)");
        return;
    }
    /* every event's body is a JSON object (GitHub sends nothing else):
       one that is none is 400 whatever the event, ping too */
    json_t *obj = s_body_object(req->body ? req->body : "", req->len, why, sizeof why);
    if (!obj) {
        evr_gw_error(req, 400, "bad_request", "%s", why);
        return;
    }
    json_decref(obj);
    if (!strcmp(event, "ping")) {
        evr_gw_json(req, 200, json_pack("{s:[],s:s}", "jobs", "message", "pong"));
        return;
    }
    if (strcmp(event, "push") && strcmp(event, "pull_request") && strcmp(event, "workflow_job")) {
        snprintf(none, sizeof none, "no pipeline matched: event \"%.64s\" is not handled (push, "
                 "pull_request and workflow_job are)", event);
        evr_gw_json(req, 200, json_pack("{s:[],s:o}", "jobs", "message", evr_gw_text(none)));
        return;
    }
    int r = evr_gw_github_parse(event, req->body ? req->body : "", req->len, &gh, why,
                                sizeof why);
    if (r) {
        if (r < 0)
            evr_gw_error(req, 400, "bad_request", "%s", why);
        else {
            snprintf(none, sizeof none, "no pipeline matched: %s", why);
            evr_gw_json(req, 200, json_pack("{s:[],s:o}", "jobs", "message", evr_gw_text(none)));
        }
        return;
    }
    s_match_t mt = { json_array(), 0, 0, &gh };
    evr_msg_t q = { .type = EVR_MSG_PIPELINES }, end = { 0 };
    json_t *started = json_array(), *refused = json_array(), *kept = NULL, *dref = NULL;
    s_refusal_t first = { 0 };
    if (evr_gw_stream(gw, req, &q, s_match_item, &mt, &end))
        goto out;
    size_t i;
    json_t *name;
    json_array_foreach(mt.names, i, name) {
        evr_msg_t m = { .pipeline = evr_strdup(json_string_value(name)),
                        .source_url = evr_strdup(gh.url), .source_ref = evr_strdup(gh.sha),
                        .ci_source_url = evr_strdup(gh.ci_url),
                        .ci_source_ref = gh.ci_ref ? evr_strdup(gh.ci_ref) : NULL };
        char *key = delivery ? evr_asprintf(EVR_GW_KEY_GITHUB "%s:%s", delivery, m.pipeline) : NULL;
        bool ok = s_start(gw, req, &m, key, started, refused, &first);
        free(key);
        evr_msg_clear(&m);
        if (!ok)
            goto out;
    }
    snprintf(none, sizeof none, "no pipeline matched: of %u registered pipelines, %u have "
             "on.github, none with %s in events and a branch pattern matching \"%.256s\"",
             mt.all, mt.hooked, gh.event, gh.branch);
    if (!strcmp(gh.event, "workflow_job") && !json_array_size(started))
        s_github_demand(gw, req, &gh, delivery, &kept, &dref);
    s_answer(req, started, refused, first, none);
    bool dup = json_is_true(json_object_get(kept, "duplicate"));
    if (kept && req->json) {     /* work is coming: accepted; a duplicate: 200 */
        json_object_set(req->json, "demand", kept);
        req->status = req->status == 200 && !dup ? 202 : req->status;
        req->retry_after = req->status < 300 ? 0 : req->retry_after;
    }
    if (dup && req->json) {
        char jname[128];
        evr_gw_github_job_name(&gh, delivery, jname, sizeof jname);
        json_object_set_new(req->json, "duplicate", json_true());
        json_object_set_new(req->json, "message", json_sprintf(
            "a duplicate: workflow_job %s (delivery %s) asked for a runner before: %s",
            jname, delivery ? delivery : "-",
            json_string_value(json_object_get(kept, "message"))));
    }
    if (dref && req->json)
        json_object_set(req->json, "demand_refused", dref);
    /* the commit the jobs run: this body's, unless a job is one an
       earlier delivery of this id started (it runs that body's commit,
       which may differ; GET /api/v1/jobs/{id} shows it) */
    bool repeat = false;
    json_t *j;
    json_array_foreach(started, i, j)
        repeat |= json_is_true(json_object_get(j, "existing"));
    json_t *src = repeat ? NULL : json_pack("{s:s,s:s,s:s,s:b}", "url", gh.url, "ref", gh.sha,
                                            "branch", gh.branch, "untrusted", gh.fork);
    if (req->json && src)
        json_object_set_new(req->json, "source", src);
    else
        json_decref(src);
out:
    json_decref(kept);
    json_decref(dref);
    json_decref(mt.names);
    json_decref(started);
    json_decref(refused);
    evr_msg_clear(&end);
    evr_gw_github_clear(&gh);
}

/* ------------------------------------------------------- a pipeline's hook */

/*  Whether req carries pipeline name's hook token, in Authorization:
    Bearer or X-Evrun-Token but not both; false with 401 (400 for both)
    set. */
static bool
s_hook_token_ok(evr_gw_t *gw, evr_gw_req_t *req, const char *name)
{
    char *path = evr_asprintf("%s/gateway/hooks/%s.token", evr_config_get(gw->cfg, "state_dir"),
                              name);
    evr_gw_secret_t tok;
    evr_err_t err;
    const char *h = evr_gw_header(req, "Authorization");
    bool bearer = h && !strncasecmp(h, "Bearer ", 7);   /* another scheme (a proxy's) is no token */
    char buf[EVR_GW_SECRET_MAX + 1];
    if (bearer && evr_gw_header(req, "X-Evrun-Token")) {
        evr_gw_error(req, 400, "bad_request", "both Authorization: Bearer and X-Evrun-Token: "
                     "send the hook token in one of them (which one would count?)");
        free(path);
        return false;
    }
    const char *given = bearer ? h + 7 : evr_gw_header(req, "X-Evrun-Token");
    given = evr_gw_token_trim(given, buf, sizeof buf);
    evr_rc_t rc = evr_gw_secret_file(path, false, &tok, &err);
    bool ok = !rc && given && strlen(given) == tok.len
           && sodium_memcmp(given, tok.key, tok.len) == 0;
    if (rc == EVR_ERR_NOTFOUND)     /* answered as a wrong token: whether a pipeline has a
                                       hook is not an unauthenticated caller's to learn */
        evr_log_info("gateway", "a hook of pipeline \"%s\", which has no hook token (make one "
                     "with evrun-cli hook-token %s)", name, name);
    if (rc && rc != EVR_ERR_NOTFOUND) {
        /* why (a path, a mode) is the operator's to read, not a caller's */
        evr_log_warn("gateway", "the hook token of pipeline \"%s\" cannot be read: %s", name,
                     err.msg);
        evr_gw_error(req, 401, "unauthorized", "the hook token of pipeline \"%s\" cannot be "
                     "read (the gateway's log says why)", name);
    }
    else if (!ok)
        evr_gw_error(req, 401, "unauthorized", "%s: not the hook token of pipeline \"%s\" "
                     "(Authorization: Bearer TOKEN or X-Evrun-Token: TOKEN, where TOKEN is "
                     "what evrun-cli hook-token %s prints, and makes when the pipeline has "
                     "none)", given ? "the token given" : "no token given", name, name);
    sodium_memzero(&tok, sizeof tok);
    free(path);
    return ok;
}

/*  Sets *cls to "arg" or "label" at the first query parameter of that
    name: POST /jobs's ways to give args and labels, which a hook does
    not read (its body has them). */
static enum MHD_Result
s_start_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    const char **found = cls;
    (void) kind;
    (void) value;
    if (!*found && !strcmp(key, "arg"))
        *found = "arg";
    else if (!*found && !strcmp(key, "label"))
        *found = "label";
    return MHD_YES;
}

bool
evr_gw_hook_head(evr_gw_t *gw, evr_gw_req_t *req)
{
    const char *name = req->params[0];
    if (!evr_spec_name_ok(name)) {
        evr_gw_error(req, 404, "not_found", "no pipeline \"%.64s\": a pipeline name starts "
                     "with a letter or digit, then letters, digits, _ . - (at most %d bytes)",
                     name, EVR_SPEC_MAX_NAME);
        return false;
    }
    return s_hook_token_ok(gw, req, name);
}

/*  After evr_gw_hook_head passed. */
void
evr_gw_h_hook(evr_gw_t *gw, evr_gw_req_t *req)
{
    const char *name = req->params[0];
    evr_msg_t m = { 0 };
    json_t *body = NULL, *error = NULL, *started = json_array(), *refused = json_array();
    char *text = NULL;
    json_error_t je;
    s_refusal_t first = { 0 };
    /* ?arg=WHO=x dropped quietly would start the job with WHO's default */
    const char *param = NULL;
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, s_start_param, &param);
    if (param) {
        evr_gw_error(req, 400, "bad_request", "query parameter %s: a hook takes its args and "
                     "runner labels in the body, {\"args\": {\"NAME\": \"VALUE\"}, "
                     "\"labels\": [\"L\"]} (sent as application/json), not as ?arg=NAME=VALUE "
                     "or ?label=L", param);
        goto out;
    }
    if (!evr_gw_json_type_ok(req, "{\"args\": {...}, \"labels\": [...]}"))
        goto out;
    body = req->len ? json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &je)
                    : json_object();
    if (!json_is_object(body)) {
        char bad[384];
        evr_gw_error(req, 400, "bad_request", "%s%snothing or a JSON object {\"args\": {...}, "
                     "\"labels\": [...]}%s", body ? "body: expected " :
                     evr_gw_json_why(&je, bad, sizeof bad), body ? "" : " (send ",
                     body ? "" : ")");
        goto out;
    }
    const char *p = json_string_value(json_object_get(body, "pipeline"));
    if (json_object_get(body, "pipeline") && (!p || strcmp(p, name))) {
        evr_gw_error(req, 400, "bad_request", "body.pipeline: this hook starts \"%s\"", name);
        goto out;
    }
    json_object_set_new(body, "pipeline", json_string(name));
    text = json_dumps(body, JSON_COMPACT);
    if (evr_gw_parse_start("application/json", text, strlen(text), &m, &error) != 1) {
        /* a body with steps is a pipeline spec, which parse_start takes as
           a submit and not a start (and so sets no error) */
        evr_gw_json(req, 400, error ? error : json_pack("{s:{s:s,s:s}}", "error", "code",
            "bad_request", "message", "body: a hook starts the registered pipeline of its "
            "name and takes no pipeline spec (steps): send nothing or {\"args\": {...}, "
            "\"labels\": [...]}; to run a spec of your own, POST it to /api/v1/jobs with a "
            "bearer token"));
        goto out;
    }
    const char *key = evr_gw_header(req, "Idempotency-Key");
    if (key && !evr_gw_idem_key_ok(req, key, 180))     /* openapi: maxLength 180 */
        goto out;
    char *k = key ? evr_asprintf(EVR_GW_KEY_HOOK "%s:%s", name, key) : NULL;
    bool ok = s_start(gw, req, &m, k, started, refused, &first);
    free(k);
    if (ok)
        s_answer(req, started, refused, first, "");
out:
    evr_msg_clear(&m);
    json_decref(body);
    json_decref(started);
    json_decref(refused);
    free(text);
}
