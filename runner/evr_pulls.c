/*  evr_pulls.c: image pulls for the podman executor: podman's pull
    (evr_podman_pull.c), a memo of images a `missing` pull found a moment
    ago (evr_image_memo.h), and the credentials a pull sends.  Pulls in
    flight are listed, so that destroying the executor frees them. */
#include "evr_pulls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_image_memo.h"
#include "evr_regauth.h"

typedef enum { S_PLAIN, S_NEVER, S_MEMO } s_kind_t;

typedef struct s_pull s_pull_t;

struct evr_pulls {
    evr_podman_t *pm;
    evr_loop_t *loop;
    char *registry_auth;    /* a containers-auth.json file, or NULL: podman's own */
    evr_image_memo_t *memo; /* images a `missing` pull found a moment ago */
    s_pull_t *pulls;        /* in flight */
};

struct s_pull {
    evr_pulls_t *ps;
    s_kind_t kind;
    char *image;
    evr_exec_line_fn *line;
    evr_exec_fn *fn;
    void *arg;
    void *call;             /* podman's handle of the pull */
    uint64_t timer;         /* the loop timer of a memo's answer or a refusal's, or 0 */
    char *msg;              /* a refusal's reason */
    s_pull_t *prev, *next;
};

evr_pulls_t *
evr_pulls_new(evr_podman_t *pm, evr_loop_t *loop, uint64_t memo_ms)
{
    evr_pulls_t *self = evr_calloc(1, sizeof *self);
    self->pm = pm;
    self->loop = loop;
    self->memo = evr_image_memo_new(memo_ms * 1000000ull);
    return self;
}

static void
s_pull_free(s_pull_t *p)
{
    evr_pulls_t *ps = p->ps;
    if (p->prev)
        p->prev->next = p->next;
    else
        ps->pulls = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->timer)
        evr_loop_timer_cancel(ps->loop, p->timer);
    free(p->image);
    free(p->msg);
    free(p);
}

void
evr_pulls_destroy(evr_pulls_t **self_p)
{
    evr_pulls_t *self = *self_p;
    if (!self)
        return;
    while (self->pulls)
        s_pull_free(self->pulls);
    free(self->registry_auth);
    evr_image_memo_destroy(&self->memo);
    free(self);
    *self_p = NULL;
}

void
evr_pulls_set_registry_auth(evr_pulls_t *self, const char *path)
{
    free(self->registry_auth);
    self->registry_auth = path && *path ? evr_strdup(path) : NULL;
}

bool
evr_pulls_memo_drop(evr_pulls_t *self, const char *image)
{
    return evr_image_memo_drop(self->memo, image);
}

void
evr_pulls_memo_renew(evr_pulls_t *self, const char *image)
{
    evr_image_memo_renew(self->memo, image, evr_mono_ns());
}

static void
s_line(const char *text, void *arg)
{
    s_pull_t *p = arg;
    if (p->line)
        p->line(text, p->arg);
}

static void
s_done(const evr_podman_pull_result_t *pr, void *arg)
{
    s_pull_t *p = arg;
    char msg[EVR_ERR_MAX];
    evr_exec_result_t r = { .rc = pr->rc, .msg = pr->msg ? pr->msg : "", .id = pr->id,
                            .digest = pr->digest, .size = pr->size, .pulled = pr->pulled };
    /* podman's words for a `never` policy are "IMAGE: image not known" */
    if (pr->rc && p->kind == S_NEVER) {
        snprintf(msg, sizeof msg, "image %s is not in the runner's storage, and pull is never "
                 "(podman: %s)", p->image, pr->msg);
        r.msg = msg;
    }
    if (!pr->rc && p->kind == S_MEMO)
        evr_image_memo_set(p->ps->memo, p->image, evr_mono_ns());
    if (p->fn)
        p->fn(&r, p->arg);
    s_pull_free(p);
}

static void
s_refused(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_pull_t *p = arg;
    p->timer = 0;
    evr_podman_pull_result_t r = { .rc = EVR_ERR_PODMAN, .msg = p->msg };
    s_done(&r, p);
}

/*  The memo's answer: the image is there (as it was, not pulled). */
static void
s_memo_answer(evr_loop_t *loop, void *arg)
{
    (void) loop;
    s_pull_t *p = arg;
    p->timer = 0;
    evr_podman_pull_result_t r = { .rc = EVR_OK, .msg = "" };
    s_done(&r, p);
}

bool
evr_pulls_auth(const evr_pulls_t *self, const char *auth, char **header, evr_err_t *err)
{
    *header = NULL;
    if (auth) {
        *header = evr_regauth_header_user(auth);
        if (!*header) {
            evr_err_set(err, EVR_ERR_CONFIG, "the pipeline's registry_auth secret does not "
                        "hold user:password");
            return false;
        }
        return true;
    }
    return !self->registry_auth || !evr_regauth_header_file(self->registry_auth, header, err);
}

void *
evr_pulls_start(evr_pulls_t *self, const char *image, uint32_t policy, const char *auth,
                evr_exec_line_fn *line, evr_exec_fn *fn, void *arg)
{
    static const char *const names[] = { [EVR_PULL_MISSING] = "missing",
                                         [EVR_PULL_ALWAYS] = "always",
                                         [EVR_PULL_NEVER] = "never" };
    bool memo = policy == EVR_PULL_MISSING && !auth;   /* a pipeline's credentials: not */
    s_pull_t *p = evr_calloc(1, sizeof *p);
    p->ps = self;
    p->kind = policy == EVR_PULL_NEVER ? S_NEVER : memo ? S_MEMO : S_PLAIN;
    p->image = evr_strdup(image);
    p->line = line;
    p->fn = fn;
    p->arg = arg;
    p->next = self->pulls;
    if (self->pulls)
        self->pulls->prev = p;
    self->pulls = p;
    if (memo && evr_image_memo_fresh(self->memo, image, evr_mono_ns())) {
        p->timer = evr_loop_timer_add(self->loop, 0, s_memo_answer, p);
        return p;
    }
    const char *pname = policy < EVR_ARRAY_LEN(names) && names[policy] ? names[policy]
                                                                        : "missing";
    char *header = NULL;
    evr_err_t err;
    if (!evr_pulls_auth(self, auth, &header, &err)) {
        p->msg = evr_strdup(err.msg);   /* reported from a turn of the loop */
        p->timer = evr_loop_timer_add(self->loop, 0, s_refused, p);
        return p;
    }
    p->call = evr_podman_pull(self->pm, image, pname, header, EVR_PULLS_TIMEOUT_MS, s_line,
                              s_done, p);
    if (header) {
        memset(header, 0, strlen(header));
        free(header);
    }
    return p;
}

void
evr_pulls_cancel(evr_pulls_t *self, void *handle)
{
    s_pull_t *p = handle;
    if (!p->timer)   /* a refusal or the memo's answer is reported soon anyway */
        evr_podman_pull_cancel(self->pm, p->call);
}
