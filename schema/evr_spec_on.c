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
    return evr_spec_list_problem(v, evr_github_events);
}

static const char *
s_check_branches(const void *v)
{
    const evr_strlist_t *l = v;
    for (uint32_t i = 0; i < l->n; i++)
        if (!l->v[i][0] || strlen(l->v[i]) > EVR_SPEC_MAX_REF || strchr(l->v[i], '\n'))
            return "expected a list of branch names or shell patterns (main, release/*), "
                   "each 1 to 256 bytes on one line";
    return NULL;   /* a repeat: the whole spec's check (evr_spec_check.c) */
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

/* ------------------------------------------------------------- triggers */

/*  Why path (a glob when glob) is not a file of the source a trigger may
    name, or NULL. */
static const char *
s_trigger_path(const char *path, bool glob)
{
    size_t n = strlen(path);
    if (n == 0 || n > EVR_SPEC_MAX_TRIGGER_PATH)
        return "expected a path of 1-256 bytes";
    if (path[0] == '/')
        return "an absolute path: expected one relative to the root of the job's source";
    for (const char *c = path; *c; c++) {
        if ((unsigned char) *c < 0x20 || *c == 0x7f || *c == '\\')
            return "a control character or backslash in the path";
        if (!glob && strchr("*?[", *c))
            return "a glob character (* ? [) in a file's path";
    }
    for (const char *c = path; *c;) {
        const char *e = strchr(c, '/');
        size_t k = e ? (size_t) (e - c) : strlen(c);
        if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
            return "an empty, \".\" or \"..\" component in the path: expected one inside the "
                   "job's source";
        c += k;
        if (*c == '/' && !*++c)
            return "a path ending in /: expected a file";
    }
    return NULL;
}

const char *
evr_spec_trigger_path_problem(const char *path)
{
    return s_trigger_path(path, false);
}

const char *
evr_spec_trigger_problem(const char *item)
{
    if (!strncmp(item, EVR_SPEC_TRIGGER_FILE, sizeof EVR_SPEC_TRIGGER_FILE - 1))
        return s_trigger_path(item + sizeof EVR_SPEC_TRIGGER_FILE - 1, true);
    return evr_spec_name_ok(item) ? NULL : "no pipeline name (1-64 bytes of "
                                           "[A-Za-z0-9][A-Za-z0-9_.-]*) nor file:PATH";
}
