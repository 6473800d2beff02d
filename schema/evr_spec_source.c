/*  evr_spec_source.c: the checks of a pipeline's `source` and `ci_source`
    (part of evr_spec_validate): exactly one form each (git, copy or
    tarball), none in a process pipeline, a git URL of a known scheme
    without credentials in it (a secret names them), a ref git would take,
    a secret that is a variable name, an http(s) tarball (its secret beside
    it, a variable name too, and with no other form), a copy path that
    names something. */
#include "evr_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Whether url's authority holds credentials: a password
    ("scheme://user:pass@host"), or for anything but ssh:// any user part
    (a token as the user name, "https://TOKEN@host"). */
static bool
s_url_has_password(const char *url)
{
    const char *a = strstr(url, "://");
    if (!a)
        return false;
    a += 3;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    return at && (strncmp(url, "ssh://", 6) || memchr(a, ':', (size_t) (at - a)));
}

void
evr_spec_check_http_url(const char *url, const char *path, evr_diag_t *diag)
{
    const char *a = !strncmp(url, "http://", 7) ? url + 7 : !strncmp(url, "https://", 8) ? url + 8
                  : NULL;
    const char *any = strstr(url, "://");   /* any scheme's authority: not echoed with a password */
    size_t n = a ? strcspn(a, "/?#") : 0;
    if (any && memchr(any + 3, '@', strcspn(any + 3, "/?#")))
        evr_diag_add(diag, path, "credentials in the URL would be stored with the job and "
                     "printed in its log: serve the file without them, or fetch it in a step "
                     "that reads a secret (and an http:// or https:// URL is expected)");
    else if (!a)
        evr_diag_add(diag, path, "expected an http:// or https:// URL, got \"%s\"", url);
    else if (strpbrk(url, " \t\r\n\v\f") || evr_text_has_ctl(url))
        evr_diag_add(diag, path, "a URL cannot contain spaces or control characters (write a "
                     "space as %%20), got \"%s\"", url);
    else if (n == 0 || *a == ':')
        evr_diag_add(diag, path, "the URL names no host, got \"%s\"", url);
}

void
evr_spec_check_secret_name(const char *name, const char *path, evr_diag_t *diag)
{
    if (name && !evr_spec_env_name_ok(name))
        evr_diag_add(diag, path, "invalid secret name \"%s\" (an environment variable name, "
                     "as under secrets)", name);
}

/*  NULL when ref is a name git can fetch (a branch, tag or SHA), else why. */
static const char *
s_ref_problem(const char *ref)
{
    if (!*ref)
        return "empty ref (leave the key out for the remote's HEAD)";
    if (*ref == '-')
        return "a ref cannot start with '-'";
    if (strstr(ref, "..") || strstr(ref, "@{") || strstr(ref, "//"))
        return "a ref cannot contain \"..\", \"@{\" or \"//\"";
    for (const char *c = ref; *c; c++)
        if ((unsigned char) *c <= ' ' || *c == 0x7f || strchr("~^:?*[\\", *c))
            return "a ref cannot contain spaces, control characters or any of ~ ^ : ? * [ \\";
    size_t n = strlen(ref);
    if (ref[n - 1] == '/' || ref[n - 1] == '.' || *ref == '/')
        return "a ref cannot start or end with '/' or end with '.'";
    return NULL;
}

static void
s_check_source(const evr_spec_t *spec, const evr_source_t *src, const char *key,
               evr_diag_t *diag)
{
    char p[128];
    if (!src->present)
        return;
    int forms = src->git.present + !!src->copy + !!src->tarball;
    if (forms != 1) {
        if (!forms && evr_diag_reported(diag, key))
            return;   /* its one form did not load: said already */
        evr_diag_add(diag, key, "%s: expected exactly one of git, copy, tarball (or `%s: none`)",
                     forms ? "more than one form" : "no form", key);
        return;
    }
    if (spec->executor == EVR_EXECUTOR_PROCESS)
        evr_diag_add(diag, key, "a process pipeline has no /job layout (its steps run as the "
                     "runner's user, who could write the read-only CI source): use executor "
                     "podman, or fetch the code in a step");
    if (src->git.present) {
        const evr_git_t *g = &src->git;
        snprintf(p, sizeof p, "%s.git.url", key);
        static const char *const schemes[] = { "https://", "http://", "git://", "ssh://",
                                               "file://" };
        bool known = false;
        for (size_t i = 0; g->url && i < EVR_ARRAY_LEN(schemes); i++)
            known |= !strncmp(g->url, schemes[i], strlen(schemes[i]));
        if (g->url && s_url_has_password(g->url))
            evr_diag_add(diag, p, "credentials in the URL would be stored with the job: put "
                         "USER:PASSWORD (or a token) in a secret and name it in %s.git.secret",
                         key);
        else if (g->url && !known)
            evr_diag_add(diag, p, "expected an https://, http://, git://, ssh:// or file:// "
                         "URL, got \"%s\"", g->url);
        else if (g->url && (strchr(g->url, ' ') || evr_text_has_ctl(g->url)))
            evr_diag_add(diag, p, "a URL cannot contain spaces or control characters (write a "
                         "space as %%20)");
        const char *why = g->ref ? s_ref_problem(g->ref) : NULL;
        snprintf(p, sizeof p, "%s.git.ref", key);
        if (why)
            evr_diag_add(diag, p, "%s: \"%s\"", why, g->ref);
        snprintf(p, sizeof p, "%s.git.secret", key);
        evr_spec_check_secret_name(g->secret, p, diag);
        snprintf(p, sizeof p, "%s.git.depth", key);
        if (g->depth > 1000000)
            evr_diag_add(diag, p, "%u: at most 1000000 (0 for the whole history)", g->depth);
    }
    snprintf(p, sizeof p, "%s.tarball", key);
    if (src->tarball)
        evr_spec_check_http_url(src->tarball, p, diag);
    snprintf(p, sizeof p, "%s.secret", key);
    if (src->secret && !src->tarball)
        evr_diag_add(diag, p, "only a tarball is fetched with a secret beside it: %s",
                     src->git.present ? "a git source names its own (git.secret)"
                                      : "a copy is not fetched");
    else
        evr_spec_check_secret_name(src->secret, p, diag);
    snprintf(p, sizeof p, "%s.copy", key);
    if (src->copy && !*src->copy)
        evr_diag_add(diag, p, "empty path: name a directory");
}

void
evr_spec_validate_source(const evr_spec_t *spec, evr_diag_t *diag)
{
    s_check_source(spec, &spec->source, "source", diag);
    s_check_source(spec, &spec->ci_source, "ci_source", diag);
}
