/*  evr_gw_art.c: a job's artifact files over HTTP.

    GET /jobs/{id}/artifacts lists them: the job's history names its
    files (step.artifact events; the latest of each step and path wins,
    as in evrun-cli artifacts), folded by evr_gw_view.c.  GET /jobs/{id}/artifacts/{step}/{path}
    sends one, streamed: libmicrohttpd asks for the bytes as the socket
    takes them, and each piece of at most 1 MiB is fetched from the
    broker (`fetch`, answered `artifact_data`) only when asked for, so a
    download holds one piece at most, and at most S_DOWNLOADS_MAX run at
    once (503 past it).  The path is checked as the broker checks it
    (relative, no `.` or `..`, no control character; a %00 is refused
    before routing, see s_nul_ok in evr_gw_http.c) before anything is
    asked.
    Each fetch names the sha256 the job's history records, so the broker
    never serves another copy's bytes (a retried step's earlier copy,
    even of the same size): it answers that it holds another copy, a 503
    as for a file not shipped yet.  See evr_gw.h. */
#include "evr_gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_codec.h"
#include "evr_event.h"

#define S_DOWNLOADS_MAX 16       /* downloads at once */
#define S_BLOCK (64u * 1024u)    /* bytes libmicrohttpd asks for at a time */

const char *
evr_gw_art_path_problem(const char *p)
{
    size_t n = strlen(p);
    if (!n)
        return "it is empty";
    if (n > 1024)
        return "it is over 1024 bytes";
    if (p[0] == '/')
        return "it is absolute: give it relative to the step's workspace";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) p[i] < 0x20 || p[i] == 0x7f)
            return "it holds a control character";
    if (!evr_utf8_valid(p, n))
        return "it is not UTF-8";
    for (const char *c = p; c;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t) (e - c) : strlen(c);
        if (!l)
            return "it has an empty component (// or a trailing /)";
        if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return "it has a . or .. component";
        c = e ? e + 1 : NULL;
    }
    return NULL;
}

/* -------------------------------------------------------------- listing */

void
evr_gw_h_artifacts(evr_gw_t *gw, evr_gw_req_t *req)
{
    char id[EVR_ULID_LEN + 1];
    evr_gw_view_t v = { 0 };
    if (evr_gw_job_param(req, id) && evr_gw_view_get(gw, req, id, &v)) {
        json_t *js = json_pack("{s:s,s:O,s:b}", "id", id, "artifacts", v.files, "finished",
                               v.finished);
        evr_gw_json(req, 200, js);
    }
    evr_gw_view_clear(&v);
}

/* ------------------------------------------------------------- download */

typedef struct {
    evr_gw_t *gw;
    char job[EVR_ULID_LEN + 1];
    char *step, *path;
    char sha[65];           /* the file's, from the job's history */
    uint64_t size;
    evr_msg_t piece;        /* the last artifact_data: its bytes from piece.offset */
} s_dl_t;

/*  How the broker's answer to a fetch of a copy it refused for good
    begins (schema/PROTOCOL.md, `fetch`): it never comes. */
#define S_REFUSED "the broker refused artifact "

/*  One `fetch` of dl's file at off into dl->piece; an error answer
    (status and message) into req when it fails. */
static bool
s_fetch(s_dl_t *dl, evr_gw_req_t *req, uint64_t off)
{
    evr_msg_t m = { .type = EVR_MSG_FETCH, .job = dl->job, .step = dl->step, .path = dl->path,
                    .offset = off, .sha256 = dl->sha };
    evr_msg_clear(&dl->piece);
    memset(&dl->piece, 0, sizeof dl->piece);
    if (evr_gw_call(dl->gw, req, &m, &dl->piece))
        return false;
    const evr_msg_t *p = &dl->piece;
    char other[65];
    uint64_t other_size;
    if (evr_msg_other_copy(p, other, &other_size)) {
        /* an earlier attempt's copy, say: never its bytes under this sha256 */
        evr_gw_error(req, 503, "unavailable", "the broker holds another copy of %s/%s of job "
                     "%s (%llu bytes, sha256 %s) than the step recorded (%llu bytes, sha256 "
                     "%s): its runner has not shipped the latest copy yet: try again",
                     dl->step, dl->path, dl->job, (unsigned long long) other_size, other,
                     (unsigned long long) dl->size, dl->sha);
        req->retry_after = 1;
    }
    else if (evr_msg_reading(p)) {
        /* held, its sha256 being read again (or soon): not "not there" */
        evr_gw_error(req, 503, "unavailable", "the broker is reading its copy of %s/%s of job "
                     "%s to tell whether it is the one the step recorded (sha256 %s): try "
                     "again", dl->step, dl->path, dl->job, dl->sha);
        req->retry_after = 1;
    }
    else if (p->type == EVR_MSG_ERROR && p->code && !strcmp(p->code, EVR_CODE_NOT_FOUND)) {
        evr_gw_error(req, 503, "unavailable", "%s/%s of job %s is not at the broker yet (its "
                     "runner ships it after the step, or at its next start when it is down: "
                     "try again)", dl->step, dl->path, dl->job);
        req->retry_after = 1;
    }
    else if (p->type == EVR_MSG_ERROR && p->code && p->message
             && !strncmp(p->message, S_REFUSED, strlen(S_REFUSED)))
        evr_gw_error(req, 410, p->code, "%s", p->message);  /* too_large, or internal */
    else if (p->type != EVR_MSG_ARTIFACT_DATA)
        evr_gw_refused(req, p);
    else if (p->offset != off || (!p->data.len && off < p->size))
        evr_gw_error(req, 502, "bad_gateway", "the broker sent no bytes of %s/%s at %llu",
                     dl->step, dl->path, (unsigned long long) off);
    else if (p->size != dl->size) {
        evr_gw_error(req, 503, "unavailable", "the broker holds %llu bytes of %s/%s, the step "
                     "recorded %llu (its runner has not shipped the latest copy yet: try "
                     "again)", (unsigned long long) p->size, dl->step, dl->path,
                     (unsigned long long) dl->size);
        req->retry_after = 1;
    }
    else
        return true;
    return false;
}

static ssize_t
s_dl_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    s_dl_t *dl = cls;
    if (pos >= dl->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    const evr_msg_t *p = &dl->piece;
    if (pos < p->offset || pos >= p->offset + p->data.len) {
        evr_gw_req_t quiet = { 0 };  /* the answer is sent already: errors end it short */
        bool ok = !dl->gw->stopping && s_fetch(dl, &quiet, pos);
        json_decref(quiet.json);
        if (!ok)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t at = (size_t) (pos - p->offset), n = p->data.len - at;
    n = n < max ? n : max;
    memcpy(buf, p->data.data + at, n);
    return (ssize_t) n;
}

static void
s_dl_free(void *cls)
{
    s_dl_t *dl = cls;
    __atomic_fetch_sub(&dl->gw->downloads, 1, __ATOMIC_SEQ_CST);
    evr_msg_clear(&dl->piece);
    free(dl->step);
    free(dl->path);
    free(dl);
}

/*  The step and path of req's url (…/artifacts/STEP/PATH) into dl;
    false with a 400 set when either is bad. */
static bool
s_dl_names(evr_gw_req_t *req, s_dl_t *dl)
{
    const char *a = strstr(req->url + strlen(EVR_GW_PREFIX "/jobs/"), "/artifacts/");
    const char *s = a ? a + strlen("/artifacts/") : "", *slash = strchr(s, '/');
    dl->step = slash ? evr_strndup(s, (size_t) (slash - s)) : evr_strdup(s);
    dl->path = evr_strdup(slash ? slash + 1 : "");
    const char *why = evr_gw_art_path_problem(dl->path);
    bool named = evr_spec_step_name_ok(dl->step);
    if (!named)
        evr_gw_error(req, 400, "bad_request", "step \"%.64s\": expected a step name: letters, "
                     "digits, _ . - (a matrix step's NAME[K=v,...]; at most %d bytes)",
                     dl->step, EVR_SPEC_MAX_NAME);
    else if (why)
        evr_gw_error(req, 400, "bad_request", "artifact path \"%.200s\": %s", dl->path, why);
    return !why && named;
}

/*  The size and sha256 the job's history records for dl's file; false
    with req's answer set (404 when it records none). */
static bool
s_dl_find(evr_gw_t *gw, evr_gw_req_t *req, s_dl_t *dl, char sha[65])
{
    evr_gw_view_t v = { 0 };
    bool ok = evr_gw_view_get(gw, req, dl->job, &v);
    json_t *f = NULL, *x;
    size_t i;
    json_array_foreach(v.files, i, x)
        if (!strcmp(json_string_value(json_object_get(x, "step")), dl->step)
            && !strcmp(json_string_value(json_object_get(x, "path")), dl->path))
            f = x;
    if (ok && !f)
        evr_gw_error(req, 404, "not_found", "job %s has no artifact file %s/%s%s (GET "
                     EVR_GW_PREFIX "/jobs/%s/artifacts lists them)", dl->job, dl->step,
                     dl->path, v.finished ? "" : " (yet: it has not finished)", dl->job);
    if (ok && f) {
        dl->size = (uint64_t) json_integer_value(json_object_get(f, "size"));
        snprintf(sha, 65, "%s", json_string_value(json_object_get(f, "sha256")));
    }
    evr_gw_view_clear(&v);
    return ok && f;
}

void
evr_gw_h_artifact(evr_gw_t *gw, evr_gw_req_t *req)
{
    s_dl_t *dl = evr_calloc(1, sizeof *dl);
    char sha[65], *etag = NULL, *disp = NULL;
    dl->gw = gw;
    __atomic_fetch_add(&gw->downloads, 1, __ATOMIC_SEQ_CST);
    if (!evr_gw_job_param(req, dl->job) || !s_dl_names(req, dl)
        || !s_dl_find(gw, req, dl, sha))
        goto fail;
    snprintf(dl->sha, sizeof dl->sha, "%s", sha);
    if (__atomic_load_n(&gw->downloads, __ATOMIC_SEQ_CST) > S_DOWNLOADS_MAX) {
        evr_gw_error(req, 503, "unavailable", "%d artifact downloads run already: try again "
                     "(Retry-After)", S_DOWNLOADS_MAX);
        req->retry_after = 5;   /* a download of a large file takes a while */
        goto fail;
    }
    if (dl->size && !s_fetch(dl, req, 0))  /* the first piece: a 404 is still JSON */
        goto fail;
    req->resp = MHD_create_response_from_callback(dl->size, S_BLOCK, s_dl_read, dl, s_dl_free);
    if (!req->resp) {
        evr_gw_error(req, 500, "internal", "cannot make the answer");
        goto fail;
    }
    const char *base = strrchr(dl->path, '/') ? strrchr(dl->path, '/') + 1 : dl->path;
    char enc[3 * 256 + 1];
    size_t k = 0;
    for (const char *c = base; *c && k + 4 < sizeof enc; c++) {   /* RFC 8187 */
        unsigned char u = (unsigned char) *c;
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9')
            || strchr("!#$&+-.^_`|~", u))
            enc[k++] = (char) u;
        else
            k += (size_t) snprintf(enc + k, 4, "%%%02X", u);
    }
    enc[k] = '\0';
    etag = evr_asprintf("\"%s\"", sha);
    disp = evr_asprintf("attachment; filename*=UTF-8''%s", enc);
    MHD_add_response_header(req->resp, "Content-Type", "application/octet-stream");
    MHD_add_response_header(req->resp, "Content-Disposition", disp);
    MHD_add_response_header(req->resp, "ETag", etag);
    MHD_add_response_header(req->resp, "X-Evrun-Sha256", sha);
    req->status = 200;
    free(etag);
    free(disp);
    return;
fail:
    s_dl_free(dl);
}
