/*  evr_store_list.c: the job listing (evrun-cli jobs, through the broker).

    A page of jobs, newest first: the `jobs` database walked backwards
    from the newest id (ULIDs sort by creation time), reading of each
    projection only its status and pipeline from the msgpack bytes, so a
    page costs the jobs it passes over, never a decode of every
    projection.  With no filter a page of 100 reads 100 entries, however
    long the history.
*/
#include <string.h>

#include "evr_codec.h"
#include "evr_codec_read.h"
#include "evr_store_int.h"

typedef struct {
    evr_job_status_t status;
    const char *pipeline;
    uint32_t left;              /* jobs still to hand over */
    evr_store_list_fn *fn;
    void *arg;
} s_list_t;

/*  The status and pipeline of a stored projection, read without decoding
    it; false when it is not a map of string keys (a full decode says
    what is wrong). */
static bool
s_peek(const uint8_t *buf, size_t len, uint32_t *status, const uint8_t **pipe, uint32_t *plen)
{
    evr_codec_rd_t r = { buf, buf + len };
    uint32_t n;
    if (!evr_codec_rd_map(&r, &n))
        return false;
    *status = EVR_JOB_NONE;     /* the zero value is left out when encoding */
    *pipe = NULL;
    *plen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        uint32_t kn, vn;
        if (!evr_codec_rd_raw(&r, false, &k, &kn))
            return false;
        bool is_status = kn == 6 && memcmp(k, "status", 6) == 0;
        if (is_status || (kn == 8 && memcmp(k, "pipeline", 8) == 0)) {
            if (!evr_codec_rd_raw(&r, false, &v, &vn))
                return false;
            if (!is_status) {
                *pipe = v;
                *plen = vn;
            }
            else {
                char name[24];
                evr_job_status_t st;
                if (vn >= sizeof name || memchr(v, '\0', vn))
                    return false;
                memcpy(name, v, vn);
                name[vn] = '\0';
                if (!evr_job_status_parse(name, &st))
                    return false;
                *status = st;
            }
            continue;
        }
        size_t skip = evr_codec_skip(r.p, (size_t) (r.end - r.p), EVR_CODEC_MAX_DEPTH - 1);
        if (!skip)
            return false;
        r.p += skip;
    }
    return true;
}

static evr_rc_t
s_list_one(evr_store_t *self, MDB_txn *txn, const MDB_val *k, const MDB_val *v, void *arg,
           bool *stop, evr_err_t *err)
{
    (void) self;
    (void) txn;
    s_list_t *l = arg;
    if (k->mv_size != EVR_ULID_LEN)
        return EVR_OK;
    uint32_t status, plen;
    const uint8_t *pipe;
    evr_job_t job = { 0 };
    if (!s_peek(v->mv_data, v->mv_size, &status, &pipe, &plen)) {
        /* not read by hand: the full decoder reads it or says why not */
        if (evr_codec_decode(v->mv_data, v->mv_size, &evr_job_type, &job, "job", err))
            return evr_err_set(err, EVR_ERR_STORE, "store: projection of job %.26s: %s",
                               (const char *) k->mv_data, err ? err->msg : "");
        status = job.status;
        pipe = (const uint8_t *) job.pipeline;
        plen = job.pipeline ? (uint32_t) strlen(job.pipeline) : 0;
    }
    bool match = (l->status == EVR_JOB_NONE || status == (uint32_t) l->status)
              && (!l->pipeline || (pipe && strlen(l->pipeline) == plen
                                   && memcmp(l->pipeline, pipe, plen) == 0));
    evr_rec_free(&evr_job_type, &job);
    if (!match)
        return EVR_OK;
    char id[EVR_ULID_LEN + 1];
    memcpy(id, k->mv_data, EVR_ULID_LEN);
    id[EVR_ULID_LEN] = '\0';
    *stop = l->fn(id, (evr_job_status_t) status, l->arg) != 0 || --l->left == 0;
    return EVR_OK;
}

evr_rc_t
evr_store_list(evr_store_t *self, evr_job_status_t status, const char *pipeline,
               const char *before, uint32_t limit, evr_store_list_fn *fn, void *arg,
               evr_err_t *err)
{
    if (before && !evr_ulid_valid(before))
        return evr_err_set(err, EVR_ERR_PROTO, "store: list before \"%.64s\": not a job id",
                           before);
    if (limit == 0)
        return EVR_OK;
    s_list_t l = { status, pipeline, limit, fn, arg };
    return evr_store_walk_back(self, self->jobs, "jobs", before, before ? EVR_ULID_LEN : 0,
                               s_list_one, &l, err);
}
