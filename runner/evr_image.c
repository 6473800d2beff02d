/*  evr_image.c: a job's images, pulled once per image and policy per job.

    Before a step's create (and before resources are put into the
    workspace through a container of the first step's image), the engine
    asks whether the image is ready (evr_eng_image_need).  The first ask
    starts the executor's pull; later asks for the same image and policy
    wait for it, and once it has ended they all go on, or all fail with
    the same reason (the image's name and the registry's words).  Only a
    pull that went to a registry is recorded (image.pulling, up to
    S_LINES_MAX image.progress lines, image.pulled or image.pull_failed):
    an image a `missing` policy finds is not, so local images cost one
    quick call and no event.  The pull counts in job->calls while it runs,
    so that the job outlives it.  A runner killed during a pull leaves no
    record of it but the events: recovery creates the step again, which
    asks again (podman finishes or restarts the pull). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_engine_int.h"

#define S_LINES_MAX 100

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} s_waiter_t;

struct evr_eng_image {
    evr_eng_job_t *job;
    char *image;
    uint32_t policy;
    int state;              /* S_PULLING, S_READY, S_FAILED */
    char *why;              /* S_FAILED: the reason */
    s_waiter_t *waiters;
    uint32_t nwait, capwait;
    uint64_t t0;            /* mono ns of the pull's start */
    bool announced;         /* image.pulling recorded */
    uint32_t lines;         /* image.progress recorded */
    void *handle;           /* S_PULLING: the executor's, for a cancel */
};

enum { S_PULLING, S_READY, S_FAILED };

static void
s_wait_add(evr_eng_image_t *im, void (*fn)(void *), void *arg)
{
    if (im->nwait == im->capwait) {
        im->capwait = im->capwait ? 2 * im->capwait : 4;
        im->waiters = evr_realloc(im->waiters, im->capwait * sizeof *im->waiters);
    }
    im->waiters[im->nwait++] = (s_waiter_t) { fn, arg };
}

static void
s_announce(evr_eng_image_t *im)
{
    if (im->announced)
        return;
    im->announced = true;
    evr_eng_emit(im->job, EVR_EV_IMAGE_PULLING, NULL)->data.image = evr_strdup(im->image);
}

static void
s_line(const char *text, void *arg)
{
    evr_eng_image_t *im = arg;
    if (!im->announced)
        evr_eng_test_pause("pulling", NULL);   /* a crash test kills the runner here */
    s_announce(im);
    if (im->lines >= S_LINES_MAX)
        return;
    if (++im->lines == S_LINES_MAX)
        text = "(further progress lines are not recorded)";
    evr_event_t *ev = evr_eng_emit(im->job, EVR_EV_IMAGE_PROGRESS, NULL);
    ev->data.image = evr_strdup(im->image);
    ev->data.text = evr_strdup(text);
    evr_eng_print(im->job->eng, "image %s | %s", im->image, text);
}

/*  A localhost/ image comes from no registry: one built on the runner's
    host.  Its failed pull says so, not only podman's "connection
    refused" of a registry at localhost:443, and under pull: always that
    the policy is the cause. */
static const char *
s_pull_hint(const char *image, uint32_t policy)
{
    if (strncmp(image, "localhost/", 10) != 0)
        return "";
    /* always pulls even an image podman has: the lack is not the cause */
    return policy == EVR_PULL_ALWAYS
               ? " (a localhost/ image is built on the runner's host and comes from no "
                 "registry: pull: always cannot pull it; use pull: missing)"
               : " (a localhost/ image is built on the runner's host, with podman build or "
                 "tools/build-test-image; this runner's podman does not have it)";
}

/*  What podman says of a registry it could not pull from (not one it
    refused: s_auth_hint) names no fix: the cause, in words, and what to
    change.  "" when the message is none of these. */
static const char *
s_registry_hint(const char *image, const char *msg)
{
    if (strstr(msg, "did not resolve to an alias")
        && strstr(msg, "no unqualified-search registries"))
        return " (a short name, and this runner's podman searches no registry for one: give "
               "the image's registry and tag, e.g. docker.io/library/NAME:TAG, or a "
               "localhost/ image)";
    if (strstr(msg, "server gave HTTP response to HTTPS client"))
        return " (the registry speaks plain HTTP: mark it insecure in the registries.conf of "
               "the runner's podman service: [[registry]] location = \"HOST:PORT\" insecure "
               "= true)";
    /* docker-registry says it of a repository it does not have too */
    if (strstr(msg, "manifest unknown"))
        return " (the registry has no image of that name and tag: check both)";
    if (strstr(msg, "name unknown"))
        return " (the registry has no such repository: check the image's name)";
    if (strncmp(image, "localhost/", 10) && strstr(msg, "pinging container registry")
        && (strstr(msg, "connection refused") || strstr(msg, "no such host")
            || strstr(msg, "i/o timeout") || strstr(msg, "network is unreachable")
            || strstr(msg, "connection reset")))
        return " (the runner's podman cannot reach the registry the image names: check the "
               "registry's host and port in the image, that it runs, and that the runner's "
               "host reaches it)";
    return "";
}

/*  A registry that refused the pull's credentials (none, or wrong ones)
    says only "unauthorized: authentication required": where they come
    from, and so what to fix. */
static char *
s_auth_hint(const evr_eng_job_t *job, const char *msg)
{
    if (!strstr(msg, "unauthorized") && !strstr(msg, "authentication required"))
        return evr_strdup("");
    if (job->spec->registry_auth)
        return evr_asprintf(" (the registry refused the credentials of the pipeline's "
                            "registry_auth, the secret %.128s: check its user:password)",
                            job->spec->registry_auth);
    return evr_strdup(" (no credentials of the pipeline's, and the runner's or podman's were "
                      "refused or had none for this registry: give registry_auth: SECRET, a "
                      "secret holding user:password, or set the runner's registry_auth file)");
}

static void
s_pulled(const evr_exec_result_t *r, void *arg)
{
    evr_eng_image_t *im = arg;
    evr_eng_job_t *job = im->job;
    im->handle = NULL;
    job->calls--;
    uint64_t ms = (evr_mono_ns() - im->t0) / 1000000u;
    if (r->rc) {
        im->state = S_FAILED;
        char *auth = s_auth_hint(job, r->msg);
        im->why = im->policy == EVR_PULL_NEVER && !r->pulled
                      ? evr_strdup(r->msg)
                      : evr_asprintf("pulling image %s: %s%s%s%s", im->image, r->msg,
                                     s_pull_hint(im->image, im->policy),
                                     s_registry_hint(im->image, r->msg), auth);
        free(auth);
        if (r->pulled || im->announced) {
            s_announce(im);
            evr_event_t *ev = evr_eng_emit(job, EVR_EV_IMAGE_PULL_FAILED, NULL);
            ev->data.image = evr_strdup(im->image);
            ev->data.reason = evr_strdup(im->why);
            ev->data.duration = ms;
        }
        evr_eng_print(job->eng, "image %s > %s", im->image, im->why);
    }
    else {
        im->state = S_READY;
        if (r->pulled) {
            s_announce(im);
            evr_event_t *ev = evr_eng_emit(job, EVR_EV_IMAGE_PULLED, NULL);
            ev->data.image = evr_strdup(im->image);
            ev->data.digest = r->digest ? evr_strdup(r->digest) : NULL;
            ev->data.size = r->size;
            ev->data.duration = ms;
            evr_eng_print(job->eng, "image %s > pulled (%s, %llu bytes, %llu.%03llus)",
                          im->image, r->digest ? r->digest : "no digest",
                          (unsigned long long) r->size, (unsigned long long) (ms / 1000),
                          (unsigned long long) (ms % 1000));
        }
    }
    /* the waiters go on once these events are committed */
    for (uint32_t i = 0; i < im->nwait; i++)
        im->waiters[i].fn(im->waiters[i].arg);
    im->nwait = 0;
}

int
evr_eng_image_need(evr_eng_job_t *job, const char *image, uint32_t policy,
                   void (*fn)(void *arg), void *arg, const char **why)
{
    evr_exec_t *ex = job->ex;
    *why = NULL;
    if (!ex->ops->pull || !image)
        return 1;   /* a backend without images */
    evr_eng_image_t *im = NULL;
    for (uint32_t i = 0; i < job->nimages && !im; i++)
        if (job->images[i]->policy == policy && !strcmp(job->images[i]->image, image))
            im = job->images[i];
    if (im && im->state == S_READY)
        return 1;
    if (im && im->state == S_FAILED) {
        *why = im->why;
        return -1;
    }
    if (im) {
        s_wait_add(im, fn, arg);
        return 0;
    }
    im = evr_calloc(1, sizeof *im);
    im->job = job;
    im->image = evr_strdup(image);
    im->policy = policy;
    im->t0 = evr_mono_ns();
    job->images = evr_realloc(job->images, (job->nimages + 1) * sizeof *job->images);
    job->images[job->nimages++] = im;
    s_wait_add(im, fn, arg);
    job->calls++;
    im->handle = ex->ops->pull(ex, image, policy, job->registry_auth, s_line, s_pulled, im);
    return 0;
}

void
evr_eng_images_stop(evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->nimages; i++) {
        evr_eng_image_t *im = job->images[i];
        if (im->state == S_PULLING && im->handle && job->ex->ops->pull_cancel)
            job->ex->ops->pull_cancel(job->ex, im->handle);
    }
}

void
evr_eng_images_free(evr_eng_job_t *job)
{
    for (uint32_t i = 0; i < job->nimages; i++) {
        evr_eng_image_t *im = job->images[i];
        free(im->image);
        free(im->why);
        free(im->waiters);
        free(im);
    }
    free(job->images);
    job->images = NULL;
    job->nimages = 0;
}
