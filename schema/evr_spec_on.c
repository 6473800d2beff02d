/*  evr_spec_on.c: a pipeline's `on:` key, the events that start a
    registered pipeline from outside (issue 16): `on: {github: {events,
    branches}}`, read by evrun-gateway's POST /hooks/github through the
    broker's `pipeline` listing.  The broker itself starts nothing on
    it. */
#include "evr_spec.h"

#include <stddef.h>
#include <string.h>

const char *const evr_github_events[] = { "push", "pull_request", "workflow_job", NULL };

static const char *
s_check_events(const void *v)
{
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++) {
        bool ok = false;
        for (size_t k = 0; evr_github_events[k]; k++)
            ok |= !strcmp(l->v[i], evr_github_events[k]);
        if (!ok)
            return "expected a list of: push, pull_request, workflow_job";
    }
    return NULL;
}

static const char *
s_check_branches(const void *v)
{
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++)
        if (!l->v[i][0] || strlen(l->v[i]) > EVR_SPEC_MAX_REF || strchr(l->v[i], '\n'))
            return "expected a list of branch names or shell patterns (main, release/*), "
                   "each 1 to 256 bytes on one line";
    return NULL;
}

#define F(T, key, type, req, limit, member, sub, check, doc)                                     \
    { key, type, req, limit, offsetof(T, member), sub, check, NULL, doc, NULL, NULL }

static const evr_field_t s_github_fields[] = {
    F(evr_on_github_t, "events", EVR_FT_STRLIST, false, 3, events, NULL, s_check_events,
      "the GitHub events that start it: push, pull_request, workflow_job; default push"),
    F(evr_on_github_t, "branches", EVR_FT_STRLIST, false, 32, branches, NULL, s_check_branches,
      "branches (shell patterns) whose events start it: a push's branch, a pull request's "
      "base, a workflow job's head branch; default every branch"),
};
const evr_rectype_t evr_on_github_type = { "github", sizeof(evr_on_github_t), s_github_fields,
                                           EVR_ARRAY_LEN(s_github_fields),
                                           offsetof(evr_on_github_t, present), NULL };

static const evr_field_t s_on_fields[] = {
    F(evr_on_t, "github", EVR_FT_RECORD, false, 0, github, &evr_on_github_type, NULL,
      "GitHub webhooks (evrun-gateway's POST /hooks/github) that start it"),
};
const evr_rectype_t evr_on_type = { "on", sizeof(evr_on_t), s_on_fields,
                                    EVR_ARRAY_LEN(s_on_fields), offsetof(evr_on_t, present),
                                    NULL };
