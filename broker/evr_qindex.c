/*  evr_qindex.c: the broker's queue in memory, its lists and its counts.

    The jobs the broker holds (waiting, held, dispatched, running) are one
    doubly linked list in queue order (b->jobs), so that a job leaves it in
    constant time wherever it is.  Each job is also in the list of its
    pipeline's jobs (evr_queue_pipe_t, in b->qpipes by name), in queue
    order, with their counts by state: a submit's queue policy
    (evr_policy.c), a dispatch pass's concurrency check and a pipeline's
    listing look at that pipeline's jobs, or only count them, instead of
    walking the whole queue.  A job that came with a partition (a
    partitioned_replace submit) is in its partition's list too.  The
    index by id (b->index) and by runner (b->by_runner) follow the same
    moves.  Every job gets an order number when it joins: the queue's
    order as a number, for lists that are not kept in it (a runner's).

    A job joins at the end (evr_queue_append) or at the head
    (evr_queue_push_front) and leaves through evr_queue_remove; its state
    and its interrupted flag change through evr_queue_set_state and
    evr_queue_set_interrupted, its runner through evr_queue_set_runner:
    so the counts stay true.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_broker_int.h"

#define S_ORDER_MID (UINT64_C(1) << 62)   /* the first order: room before it and after */

void
evr_queue_index_init(evr_broker_t *b)
{
    b->index = zhashx_new();   /* keyed by the job's own id: no copy of it */
    zhashx_set_key_duplicator(b->index, NULL);
    zhashx_set_key_destructor(b->index, NULL);
    b->qpipes = zhashx_new();
    b->by_runner = zhashx_new();
    b->order_front = S_ORDER_MID;
    b->order_back = S_ORDER_MID;
}

void
evr_queue_index_fini(evr_broker_t *b)
{
    while (b->jobs)
        evr_queue_remove(b, b->jobs);
    zhashx_destroy(&b->index);
    zhashx_destroy(&b->qpipes);
    zhashx_destroy(&b->by_runner);
}

evr_queue_job_t *
evr_queue_find(const evr_broker_t *b, const char *id)
{
    return b->index ? zhashx_lookup(b->index, id) : NULL;
}

evr_queue_pipe_t *
evr_queue_pipe(const evr_broker_t *b, const char *p)
{
    return zhashx_lookup(b->qpipes, p);
}

evr_queue_part_t *
evr_queue_part(const evr_broker_t *b, const char *p, const char *part)
{
    const evr_queue_pipe_t *pl = evr_queue_pipe(b, p);
    return pl && pl->parts ? zhashx_lookup(pl->parts, part) : NULL;
}

size_t
evr_queue_count(const evr_broker_t *b, const char *p)
{
    const evr_queue_pipe_t *pl = evr_queue_pipe(b, p);
    return pl ? pl->njobs : 0;
}

bool
evr_queue_waits(const evr_queue_job_t *j, const char *p, const char *part)
{
    return (j->state == B_QUEUED || j->state == B_HELD) && strcmp(j->pipeline, p) == 0
        && (!part || (j->partition && strcmp(j->partition, part) == 0));
}

evr_queue_job_t *
evr_queue_of_runner(const evr_broker_t *b, const char *runner)
{
    return b->by_runner && runner ? zhashx_lookup(b->by_runner, runner) : NULL;
}

/*  j joins (on, a job of the list with a runner) or leaves its runner's
    jobs. */
static void
s_runner_link(evr_broker_t *b, evr_queue_job_t *j, bool on)
{
    if (on && !j->rlinked && j->runner) {
        j->rprev = NULL;
        j->rnext = zhashx_lookup(b->by_runner, j->runner);
        if (j->rnext)
            j->rnext->rprev = j;
        zhashx_update(b->by_runner, j->runner, j);
        j->rlinked = true;
    }
    else if (!on && j->rlinked) {
        if (j->rnext)
            j->rnext->rprev = j->rprev;
        if (j->rprev)
            j->rprev->rnext = j->rnext;
        else if (j->rnext)
            zhashx_update(b->by_runner, j->runner, j->rnext);
        else
            zhashx_delete(b->by_runner, j->runner);
        j->rnext = j->rprev = NULL;
        j->rlinked = false;
    }
}

void
evr_queue_set_runner(evr_broker_t *b, evr_queue_job_t *j, const char *runner)
{
    bool listed = j->pipe != NULL;
    s_runner_link(b, j, false);
    free(j->runner);
    j->runner = runner ? evr_strdup(runner) : NULL;
    s_runner_link(b, j, listed);
}

static void
s_step(size_t *v, int delta)
{
    *v = delta > 0 ? *v + 1 : *v - 1;
}

/*  Counts j (delta +1) or no longer (-1) in its pipeline's counts and
    the queue's. */
static void
s_tally(evr_broker_t *b, const evr_queue_job_t *j, int delta)
{
    evr_queue_pipe_t *pl = j->pipe;
    if (j->state == B_QUEUED || j->state == B_HELD) {
        s_step(&pl->nwaiting, delta);
        if (j->not_before)
            s_step(&pl->ndelayed, delta);
        if (!j->common)
            s_step(&pl->nuncommon, delta);
    }
    else
        s_step(&pl->nbusy, delta);
    if (j->state != B_ACTIVE)
        s_step(&b->nunstarted, delta);
    if (j->interrupted)
        s_step(&pl->ninterrupted, delta);
}

void
evr_queue_set_state(evr_broker_t *b, evr_queue_job_t *j, evr_queue_state_t state)
{
    if (j->pipe)
        s_tally(b, j, -1);
    j->state = state;
    if (j->pipe)
        s_tally(b, j, +1);
}

void
evr_queue_set_interrupted(evr_broker_t *b, evr_queue_job_t *j)
{
    if (j->pipe)
        s_tally(b, j, -1);
    j->interrupted = true;
    if (j->pipe)
        s_tally(b, j, +1);
}

/*  Links j into the list of head and tail through its links nx and pv:
    at the front, or at the end; S_UNLINK takes it out. */
#define S_LINK(head, tail, j, nx, pv, front)                                                     \
    do {                                                                                         \
        if (front) {                                                                             \
            (j)->pv = NULL;                                                                      \
            (j)->nx = (head);                                                                    \
            if (head)                                                                            \
                (head)->pv = (j);                                                                \
            else                                                                                 \
                (tail) = (j);                                                                    \
            (head) = (j);                                                                        \
        }                                                                                        \
        else {                                                                                   \
            (j)->nx = NULL;                                                                      \
            (j)->pv = (tail);                                                                    \
            if (tail)                                                                            \
                (tail)->nx = (j);                                                                \
            else                                                                                 \
                (head) = (j);                                                                    \
            (tail) = (j);                                                                        \
        }                                                                                        \
    } while (0)

#define S_UNLINK(head, tail, j, nx, pv)                                                          \
    do {                                                                                         \
        if ((j)->pv)                                                                             \
            (j)->pv->nx = (j)->nx;                                                               \
        else                                                                                     \
            (head) = (j)->nx;                                                                    \
        if ((j)->nx)                                                                             \
            (j)->nx->pv = (j)->pv;                                                               \
        else                                                                                     \
            (tail) = (j)->pv;                                                                    \
        (j)->nx = (j)->pv = NULL;                                                                \
    } while (0)

static bool
s_same_labels(const evr_strlist_t *a, const evr_strlist_t *c)
{
    if (a->n != c->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], c->v[i]) != 0)
            return false;
    return true;
}

/*  Whether j's labels are pl's common ones: the first job with a submit
    to join pl gives them. */
static bool
s_common(evr_queue_pipe_t *pl, const evr_queue_job_t *j)
{
    if (!j->body)
        return false;   /* running, taken up from the archive: no labels kept */
    if (!pl->labelled) {
        for (uint32_t i = 0; i < j->labels.n; i++)
            evr_strlist_push(&pl->labels, j->labels.v[i]);
        pl->labelled = true;
    }
    return s_same_labels(&pl->labels, &j->labels);
}

/*  j (not in the queue) joins it: at the front or at the end of each of
    its lists, and the indexes and counts follow. */
static void
s_join(evr_broker_t *b, evr_queue_job_t *j, bool front)
{
    j->order = front ? --b->order_front : b->order_back++;
    S_LINK(b->jobs, b->last, j, next, prev, front);
    evr_queue_pipe_t *pl = evr_queue_pipe(b, j->pipeline);
    if (!pl) {
        pl = evr_calloc(1, sizeof *pl);
        zhashx_insert(b->qpipes, j->pipeline, pl);
    }
    j->pipe = pl;
    j->common = s_common(pl, j);
    S_LINK(pl->head, pl->tail, j, pnext, pprev, front);
    pl->njobs++;
    s_tally(b, j, +1);
    if (j->partition) {
        if (!pl->parts)
            pl->parts = zhashx_new();
        evr_queue_part_t *pt = zhashx_lookup(pl->parts, j->partition);
        if (!pt) {
            pt = evr_calloc(1, sizeof *pt);
            zhashx_insert(pl->parts, j->partition, pt);
        }
        j->part = pt;
        S_LINK(pt->head, pt->tail, j, tnext, tprev, front);
    }
    s_runner_link(b, j, true);
    if (zhashx_insert(b->index, j->id, j) != 0) {
        zhashx_delete(b->index, j->id);     /* the key is the listed job's id: j's now */
        zhashx_insert(b->index, j->id, j);
    }
    b->njobs++;
}

/*  j leaves the queue: its lists, the indexes and counts. */
static void
s_leave(evr_broker_t *b, evr_queue_job_t *j)
{
    if (b->fresh == j)
        b->fresh = j->next;     /* added after it: not looked at either */
    S_UNLINK(b->jobs, b->last, j, next, prev);
    evr_queue_pipe_t *pl = j->pipe;
    if (j->part) {
        evr_queue_part_t *pt = j->part;
        S_UNLINK(pt->head, pt->tail, j, tnext, tprev);
        j->part = NULL;
        if (!pt->head) {    /* j->partition is as it joined: only one it had none is read later */
            zhashx_delete(pl->parts, j->partition);
            free(pt);
        }
    }
    S_UNLINK(pl->head, pl->tail, j, pnext, pprev);
    s_tally(b, j, -1);
    pl->njobs--;
    j->pipe = NULL;
    if (!pl->njobs) {
        zhashx_destroy(&pl->parts);
        evr_strlist_free(&pl->labels);
        zhashx_delete(b->qpipes, j->pipeline);
        free(pl);
    }
    s_runner_link(b, j, false);
    zhashx_delete(b->index, j->id);
    b->njobs--;
}

void
evr_queue_remove(evr_broker_t *b, evr_queue_job_t *j)
{
    if (j->pipe)
        s_leave(b, j);
    evr_queue_free(j);
}

void
evr_queue_append(evr_broker_t *b, evr_queue_job_t *j)
{
    s_join(b, j, false);
}

void
evr_queue_push_front(evr_broker_t *b, evr_queue_job_t *j)
{
    s_join(b, j, true);
}

/* ---------------------------------------------------------------- walk */

/*  The walk's heap: the smaller order (nearer the queue's head) first. */
static bool
s_nearer(const void *a, const void *b)
{
    return ((const evr_queue_job_t *) a)->order < ((const evr_queue_job_t *) b)->order;
}

void
evr_queue_walk_pipes(evr_broker_t *b, evr_queue_walk_t *w, uint64_t pass)
{
    *w = (evr_queue_walk_t) { .merged = true, .pass = pass };
    size_t np = zhashx_size(b->qpipes);
    w->heap = np ? evr_malloc(np * sizeof *w->heap) : NULL;
    for (evr_queue_pipe_t *pl = zhashx_first(b->qpipes); pl; pl = zhashx_next(b->qpipes))
        if (pl->nwaiting && pl->head) {   /* one with busy jobs only has nothing to give */
            w->heap[w->n] = pl->head;
            evr_heap_up((void **) w->heap, w->n++, s_nearer);
        }
}

void
evr_queue_walk_from(evr_queue_walk_t *w, evr_queue_job_t *at)
{
    *w = (evr_queue_walk_t) { .at = at };
}

/*  Whether the rest of pl's jobs may be left out of the walk. */
static bool
s_pipe_done(const evr_queue_walk_t *w, const evr_queue_pipe_t *pl)
{
    return pl->dead == w->pass && !pl->nuncommon && !pl->ndelayed;
}

/*  The pipeline of the job returned last gets its next job into the heap
    now: the caller has looked at that job (and may have found the
    pipeline dead). */
static void
s_walk_settle(evr_queue_walk_t *w)
{
    evr_queue_job_t *j = w->last;
    w->last = NULL;
    if (j && j->pnext && !s_pipe_done(w, j->pipe)) {
        w->heap[w->n] = j->pnext;
        evr_heap_up((void **) w->heap, w->n++, s_nearer);
    }
}

evr_queue_job_t *
evr_queue_walk_next(evr_queue_walk_t *w)
{
    if (!w->merged) {
        evr_queue_job_t *j = w->at;
        if (j)
            w->at = j->next;
        return j;
    }
    s_walk_settle(w);
    if (!w->n)
        return NULL;
    evr_queue_job_t *j = w->heap[0];
    w->heap[0] = w->heap[--w->n];
    evr_heap_down((void **) w->heap, w->n, 0, s_nearer);
    w->last = j;
    return j;
}

bool
evr_queue_walk_done(evr_queue_walk_t *w)
{
    if (!w->merged)
        return !w->at;
    s_walk_settle(w);
    return !w->n;
}

void
evr_queue_walk_fini(evr_queue_walk_t *w)
{
    free(w->heap);
    w->heap = NULL;
    w->n = 0;
}

uint32_t
evr_queue_assigned(const evr_broker_t *b, const char *runner)
{
    uint32_t n = 0;
    for (const evr_queue_job_t *j = evr_queue_of_runner(b, runner); j; j = j->rnext)
        n += j->state == B_DISPATCHED || j->state == B_ACTIVE;
    return n;
}

static int
s_by_order(const void *x, const void *y)
{
    const evr_queue_job_t *a = *(evr_queue_job_t *const *) x, *c = *(evr_queue_job_t *const *) y;
    return a->order < c->order ? -1 : a->order > c->order;
}

size_t
evr_queue_runner_jobs(const evr_broker_t *b, const char *runner, evr_queue_state_t state,
                      evr_queue_job_t ***out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    for (evr_queue_job_t *j = evr_queue_of_runner(b, runner); j; j = j->rnext) {
        if (j->state != state)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = evr_realloc(*out, cap * sizeof **out);
        }
        (*out)[n++] = j;
    }
    if (n > 1)
        qsort(*out, n, sizeof **out, s_by_order);
    return n;
}
