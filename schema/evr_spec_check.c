/*  evr_spec_check.c: the semantic checks of a pipeline spec
    (evr_spec_validate): names, paths, env maps, artifacts, caches, the
    steps and their needs (no cycle), resources and the spec's encoded
    size.  The checks of control flow, sources, where steps run and the
    queue are in evr_spec_flow.c, evr_spec_source.c, evr_spec_run.c and
    evr_spec_queue.c, and the range of numbers in evr_spec_range.c; the
    field tables are in evr_spec.c. */
#include "evr_spec.h"

#include "evr_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
evr_spec_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > EVR_SPEC_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

bool
evr_spec_env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_'))
            return false;
    }
    return true;
}

const char *
evr_spec_path_problem(const char *p)
{
    if (!*p)
        return "empty path";
    if (*p == '/')
        return "absolute path (paths are relative to /workspace)";
    const char *c = p;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t) (e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "path contains \"..\" (paths must stay inside /workspace)";
        c += n;
        if (*c == '/')
            c++;
    }
    return NULL;
}

/*  A path with a control character (a line break, a tab): runner records
    keep paths one a line (STATE/caches/JOB.mounts), events refuse them. */
static bool
s_has_control(const char *p)
{
    for (; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static const char s_control_path[] = "the path holds a control character (a tab, a line "
                                     "break...): a file name on one line is expected";

char *
evr_spec_path_tidy(const char *p)
{
    char *out = evr_malloc(strlen(p) + 1);
    size_t used = 0;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n && !(n == 1 && p[0] == '.')) {
            if (used)
                out[used++] = '/';
            memcpy(out + used, p, n);
            used += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[used] = '\0';
    return out;
}

/*  Each item of list (at path) written before it too, said at the item. */
static void
s_check_repeats(const evr_strlist_t *list, const char *path, evr_diag_t *diag)
{
    for (uint32_t i = 0; i < list->n; i++)
        if (evr_spec_item_repeats(list, i)) {
            char p[256];
            snprintf(p, sizeof p, "%s[%u]", path, i);
            evr_diag_add(diag, p, "\"%.64s\" is listed twice", list->v[i]);
        }
}

const char *
evr_spec_env_runners(const char *name)
{
    static const struct {
        const char *name;   /* a prefix when it ends in _ */
        const char *what;
    } own[] = {
        { "EVRUN_OUTPUT", "the file of the step's outputs" },
        { "EVRUN_CONTROL", "the job's control channel" },
        { "EVRUN_OUT_", "the outputs of the steps it needs" },
        { "EVRUN_SOURCE_", "the job's source" },
        { "EVRUN_CI_SOURCE_", "the job's ci_source" },
        { "EVRUN_FAILED_", "the failed steps, for on_error and when: steps" },
        { "EVRUN_PREPARE_FAILED", "why the job's preparation failed" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(own); i++) {
        size_t n = strlen(own[i].name);
        if (own[i].name[n - 1] == '_' ? !strncmp(name, own[i].name, n)
                                      : !strcmp(name, own[i].name))
            return own[i].what;
    }
    return NULL;
}

/*  A name the runner sets over the pipeline's: said at path. */
static void
s_check_runners(const char *name, const char *path, evr_diag_t *diag)
{
    const char *what = evr_spec_env_runners(name);
    if (what)
        evr_diag_add(diag, path, "%s is the runner's (%s), which it sets over env, args and "
                     "secrets: give yours another name", name, what);
}

static void
s_check_envmap(const evr_strmap_t *env, const char *path, evr_diag_t *diag)
{
    for (uint32_t i = 0; i < env->n; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s", path, env->k[i]);
        if (!evr_spec_env_name_ok(env->k[i]))
            evr_diag_add(diag, p, "not a valid environment variable name "
                                  "(letters, digits and _, not starting with a digit)");
        else
            s_check_runners(env->k[i], p, diag);
    }
}

/*  Length of the directory before path's first glob character (* ?):
    3 for "out/a*.xml"; 0 when the glob is in the first component; -1
    when path holds none.  The runner copies a path (artifacts) or mounts
    it (caches) as named: a pattern would name nothing. */
static int
s_glob_dir(const char *path)
{
    const char *g = strpbrk(path, "*?");
    if (!g)
        return -1;
    size_t n = (size_t) (g - path);
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 0 && path[n - 1] == '/')
        n--;
    return n > 0 ? (int) n : (path[0] == '/' ? 1 : 0);
}

/*  Artifact paths of step i: safe, no glob, each once. */
static void
s_check_artifacts(const evr_artifacts_t *a, const char *at, evr_diag_t *diag)
{
    char p[128];
    for (uint32_t k = 0; k < a->paths.n; k++) {
        const char *path = a->paths.v[k];
        const char *why = evr_spec_path_problem(path);
        /* a pipeline file's paths are tidy (the loader): another form was
           sent so, and its files would be recorded by another path */
        char *tidy = why ? NULL : evr_spec_path_tidy(path);
        bool control = s_has_control(path);
        bool untidy = tidy && strcmp(tidy, path) != 0;
        int dir = why || untidy || control ? -1 : s_glob_dir(path);
        /* the loader marks a shorthand list's items as paths[k] too */
        snprintf(p, sizeof p, "%s.artifacts.paths[%u]", at, k);
        if (why)
            evr_diag_add(diag, p, "%s: \"%s\"", why, path);
        else if (untidy && !*tidy)
            evr_diag_add(diag, p, "\"%s\" is the workspace itself: name the files or "
                         "directories to keep", path);
        else if (untidy)
            evr_diag_add(diag, p, "\"%s\": an empty or \".\" component, or a / at the end: "
                         "write \"%s\" (the path its files are recorded by)", path, tidy);
        else if (control)
            evr_diag_add(diag, p, "%s", s_control_path);
        else if (dir > 0)
            evr_diag_add(diag, p, "\"%s\" holds a glob character (* ?): artifact paths are "
                         "copied as named, not matched; name the directory (\"%.*s\", copied "
                         "whole) or each file", path, dir, path);
        else if (dir == 0)
            evr_diag_add(diag, p, "\"%s\" holds a glob character (* ?): artifact paths are "
                         "copied as named, not matched; name each file (or their directory, "
                         "copied whole)", path);
        free(tidy);
        why = why || untidy || control ? "bad" : dir >= 0 ? "glob" : NULL;
        if (!why && evr_spec_item_repeats(&a->paths, k))
            evr_diag_add(diag, p, "\"%s\" is listed twice", a->paths.v[k]);
    }
}

/*  NULL when a cache path is usable: absolute (not / nor /workspace
    itself), or a safe relative path (not "."); else why.  Empty and "."
    components count for nothing ("/./workspace" is /workspace, "./." the
    workspace itself), as when the runner mounts it. */
static const char *
s_cache_path_problem(const char *path, bool job)
{
    bool abs = *path == '/';
    char *t = evr_spec_path_tidy(path);
    const char *why = NULL;
    if (!*path)
        why = evr_spec_path_problem(path);
    else if (abs && !*t)
        why = "the root cannot be a cache";
    else if (abs && !strcmp(t, "workspace"))
        why = "/workspace itself cannot be a cache (name a directory inside it)";
    /* the /job layout's mounts: a cache there would hide the workspace,
       the checked-out source (every step's working directory) or the
       read-only CI source */
    else if (abs && job && !strcmp(t, "job"))
        why = "/job itself cannot be a cache in a pipeline with a source (it is the "
              "workspace: name a directory inside it)";
    else if (abs && job && !strcmp(t, "job/src"))
        why = "/job/src cannot be a cache: the source is checked out there (name a directory "
              "inside it, e.g. node_modules)";
    else if (abs && job && (!strcmp(t, "job/ci") || !strncmp(t, "job/ci/", 7)))
        why = "the CI source is mounted read-only at /job/ci: a cache cannot be there";
    else if (!*t)
        why = "the workspace itself cannot be a cache (name a directory inside it)";
    else if (evr_spec_path_problem(t))   /* t is relative: a ".." */
        why = abs ? "path contains \"..\"" : evr_spec_path_problem(t);
    free(t);
    return why ? why : s_has_control(path) ? s_control_path : NULL;
}

/*  Whether cache paths a and b name one directory (empty and "."
    components aside). */
static bool
s_same_cache_path(const char *a, const char *b)
{
    if ((*a == '/') != (*b == '/'))
        return false;
    char *ta = evr_spec_path_tidy(a), *tb = evr_spec_path_tidy(b);
    bool same = strcmp(ta, tb) == 0;
    free(ta);
    free(tb);
    return same;
}

/*  path ("steps[3].cache") as the file has it, for a message naming it:
    the index of the step as written when the steps were expanded. */
static void
s_as_written(const evr_diag_t *diag, const char *path, char *out, size_t size)
{
    char *end;
    unsigned long i = strncmp(path, "steps[", 6) ? 0 : strtoul(path + 6, &end, 10);
    if (strncmp(path, "steps[", 6) || end == path + 6 || *end != ']' || i > UINT32_MAX)
        snprintf(out, size, "%s", path);
    else
        snprintf(out, size, "steps[%u]%s", evr_diag_written_index(diag, "steps", (uint32_t) i),
                 end + 1);
}

/*  A `cache` list at path ("cache", "steps[2].cache"): keys, paths, each
    path once; none in a process pipeline. */
static void
s_check_cache(const evr_spec_t *spec, const evr_reclist_t *cache, const char *path,
              evr_diag_t *diag)
{
    char p[160];
    if (cache->n && spec->executor == EVR_EXECUTOR_PROCESS) {
        evr_diag_add(diag, path, "caches are podman volumes: a process pipeline has none; "
                                 "remove cache (or keep the files in a directory of the host)");
        return;
    }
    for (uint32_t k = 0; k < cache->n; k++) {
        const evr_cache_t *c = evr_spec_cache(cache, k);
        if (!c->key || !c->path)
            continue;   /* reported by the loader */
        snprintf(p, sizeof p, "%s[%u].key", path, k);
        const char *why = *c->key ? evr_spec_cache_key_walk(c->key, NULL, NULL) : "empty key";
        if (why)
            evr_diag_add(diag, p, "%s", why);
        snprintf(p, sizeof p, "%s[%u].path", path, k);
        why = s_cache_path_problem(c->path, evr_spec_has_source(spec));
        int dir = why ? -1 : s_glob_dir(c->path);
        if (why == s_control_path)   /* not quoted: a line break would end the line */
            evr_diag_add(diag, p, "%s", why);
        else if (why)
            evr_diag_add(diag, p, "%s: \"%s\"", why, c->path);
        else if (dir > 0)
            evr_diag_add(diag, p, "\"%s\" holds a glob character (* ?): a cache is one "
                         "directory, mounted as named; name the directory (\"%.*s\")", c->path,
                         dir, c->path);
        else if (dir == 0)
            evr_diag_add(diag, p, "\"%s\" holds a glob character (* ?): a cache is one "
                         "directory, mounted as named; name the directory", c->path);
        why = why ? why : dir >= 0 ? "glob" : NULL;
        for (uint32_t m = 0; m < k && !why; m++)
            if (evr_spec_cache(cache, m)->path
                && s_same_cache_path(evr_spec_cache(cache, m)->path, c->path)) {
                char w[160];
                s_as_written(diag, path, w, sizeof w);
                evr_diag_add(diag, p, "\"%s\" is the path of %s[%u] already", c->path, w, m);
                break;
            }
    }
}

/*  Depth-first search for a cycle through step i.  color: 0 white,
    1 on the stack, 2 done.  stack holds the current path.  A cycle found
    is said and its search ends (the path marked done), so each search
    from a step not yet seen says at most one. */
static bool
s_find_cycle(const evr_spec_t *spec, uint32_t i, uint8_t *color, uint32_t *stack,
             uint32_t depth, evr_diag_t *diag)
{
    color[i] = 1;
    stack[depth] = i;
    const evr_step_t *st = evr_spec_step(spec, i);
    for (uint32_t k = 0; k < st->needs.n; k++) {
        int j = evr_spec_step_index(spec, st->needs.v[k]);
        if (j < 0 || (uint32_t) j == i)
            continue;   /* "needs itself" is said already */
        if (color[j] == 1) {
            /* the cycle is stack[pos..depth] followed by j again */
            uint32_t pos = 0;
            while (stack[pos] != (uint32_t) j)
                pos++;
            char buf[2048] = "";
            size_t used = 0;
            for (uint32_t d = pos; d <= depth + 1; d++) {
                uint32_t s = d <= depth ? stack[d] : (uint32_t) j;
                int w = snprintf(buf + used, sizeof buf - used, "%s%s", d > pos ? " -> " : "",
                                 evr_spec_step(spec, s)->name);
                if (w < 0 || (size_t) w >= sizeof buf - used)
                    break;
                used += (size_t) w;
            }
            char p[64];
            snprintf(p, sizeof p, "steps[%u].needs", i);
            evr_diag_add(diag, p, "dependency cycle: %s", buf);
            /* the steps on the path are done with: a search from another
               step that meets them finds no cycle that is not there */
            for (uint32_t d = 0; d <= depth; d++)
                color[stack[d]] = 2;
            return true;
        }
        if (color[j] == 0 && s_find_cycle(spec, (uint32_t) j, color, stack, depth + 1, diag))
            return true;
    }
    color[i] = 2;
    return false;
}

/*  An image given (the spec's or a step's) at path: none in a process
    pipeline, else a reference podman can parse ("" is a value, not
    absence: PROTOCOL.md). */
static void
s_check_image(const evr_spec_t *spec, const char *image, const char *path, evr_diag_t *diag)
{
    const char *why;
    if (spec->executor == EVR_EXECUTOR_PROCESS)
        evr_diag_add(diag, path, "a process pipeline runs on the host; remove image");
    else if (!*image)
        evr_diag_add(diag, path, "empty image: name an image, or leave the key out");
    else if ((why = evr_spec_image_problem(image)))
        evr_diag_add(diag, path, "\"%.128s\" is not an image reference "
                     "([HOST[:PORT]/]NAME[:TAG][@DIGEST]): %s", image, why);
}

/*  A step (at) without an image of its own in a podman pipeline without
    one: said at the step, or once at the top-level image: when the file
    wrote it with no value (an image that failed to load is said there
    already). */
static void
s_no_image(const char *at, evr_diag_t *diag)
{
    if (!evr_diag_marked(diag, "image"))
        evr_diag_add(diag, at, "no image: set image: on the step or at the top of the file");
    else if (!evr_diag_reported(diag, "image"))
        evr_diag_add(diag, "image", "no value, and a step has no image of its own: name the "
                     "steps' image here, or set image: on each step");
}

/*  What a step and on_error both check: image, artifacts, cache, env;
    at is the step's path ("steps[2]", "on_error"). */
static void
s_check_step(const evr_spec_t *spec, const evr_step_t *st, const char *at, evr_diag_t *diag)
{
    char p[128];
    if (st->image) {
        snprintf(p, sizeof p, "%s.image", at);
        s_check_image(spec, st->image, p, diag);
    }
    else if (!spec->image && spec->executor != EVR_EXECUTOR_PROCESS)
        s_no_image(at, diag);
    s_check_artifacts(&st->artifacts, at, diag);
    snprintf(p, sizeof p, "%s.retry", at);
    bool retry = st->retry.present && !evr_diag_reported(diag, p);   /* else said once */
    snprintf(p, sizeof p, "%s.retry.on", at);
    if (retry && st->retry.on.n == 0)
        evr_diag_add(diag, p, "an empty list retries on nothing: list the outcomes that retry "
                     "the step (lost, failed, timed_out), or remove retry");
    else if (retry && !evr_diag_reported(diag, p))   /* a wrong item: said as wrong */
        s_check_repeats(&st->retry.on, p, diag);
    if (st->retry.present && st->retry.max > EVR_SPEC_MAX_RETRY) {
        snprintf(p, sizeof p, "%s.retry.max", at);
        evr_diag_add(diag, p, "%u: at most %d (further attempts, each a container of its own)",
                     st->retry.max, EVR_SPEC_MAX_RETRY);
    }
    if (st->cache.n) {     /* the paths only when there is something to check */
        snprintf(p, sizeof p, "%s.cache", at);
        s_check_cache(spec, &st->cache, p, diag);
    }
    if (st->env.n) {
        snprintf(p, sizeof p, "%s.env", at);
        s_check_envmap(&st->env, p, diag);
    }
}

/*  No two steps share a unit form (evr_spec_step_unit_form): checked
    only when a name holds '[' (a plain name is its own form, and plain
    names are checked as duplicates). */
static void
s_check_unit_forms(const evr_spec_t *spec, evr_diag_t *diag)
{
    uint32_t n = spec->steps.n;
    bool any = false;
    for (uint32_t i = 0; i < n && !any; i++)
        any = evr_spec_step(spec, i)->name && strchr(evr_spec_step(spec, i)->name, '[');
    if (!any)
        return;
    char **form = evr_calloc(n, sizeof *form);
    for (uint32_t i = 0; i < n; i++)
        if (evr_spec_step(spec, i)->name)
            form[i] = evr_spec_step_unit_form(evr_spec_step(spec, i)->name);
    for (uint32_t j = 1; j < n; j++)
        for (uint32_t i = 0; i < j && form[j]; i++) {
            const char *a = evr_spec_step(spec, i)->name, *b = evr_spec_step(spec, j)->name;
            if (!a || (!strchr(a, '[') && !strchr(b, '[')) || !strcmp(a, b)
                || strcmp(form[i], form[j]))
                continue;
            uint32_t at = strchr(b, '[') ? j : i;   /* at the matrix step's name */
            char p[64];
            snprintf(p, sizeof p, "steps[%u].name", at);
            evr_diag_add(diag, p, "step \"%s\" and step \"%s\" would share the container "
                         "name \"%s\": rename one of them", at == j ? b : a, at == j ? a : b,
                         form[j]);
            break;
        }
    for (uint32_t i = 0; i < n; i++)
        free(form[i]);
    free(form);
}

/*  Whether a and b, the "[K=v,...]" ends of two step names, hold the
    same pairs, in any order. */
static bool
s_same_pairs(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb || la < 2 || a[la - 1] != ']' || b[lb - 1] != ']')
        return false;
    size_t na = 0, nb = 0;
    for (const char *q = a; *q; q++)
        na += *q == ',';
    for (const char *q = b; *q; q++)
        nb += *q == ',';
    if (na != nb)
        return false;
    for (const char *q = a + 1; q < a + la - 1;) {   /* each pair of a is one of b's */
        size_t pl = strcspn(q, ",]");
        bool found = false;
        for (const char *r = b + 1; r < b + lb - 1 && !found;) {
            size_t rl = strcspn(r, ",]");
            found = rl == pl && !strncmp(q, r, pl);
            r += rl + 1;
        }
        if (!found)
            return false;
        q += pl + 1;
    }
    return true;
}

/*  "unknown step", with the step name it is a near-miss of; for a
    combination of a matrix step that has none so named, its names. */
static void
s_unknown_need(const evr_spec_t *spec, const char *p, const char *need, evr_diag_t *diag)
{
    const char *names[EVR_SPEC_MAX_STEPS];
    size_t n = 0;
    for (uint32_t i = 0; i < spec->steps.n && n < EVR_SPEC_MAX_STEPS; i++)
        if (evr_spec_step(spec, i)->name)
            names[n++] = evr_spec_step(spec, i)->name;
    if (!strcmp(need, "on_error")) {    /* no step may be called so: it is the last one */
        evr_diag_add(diag, p, "unknown step \"on_error\": on_error is the job's last step, "
                     "run after every other one, so no step can need it (remove it)");
        return;
    }
    const char *open = strchr(need, '[');
    size_t base = open ? (size_t) (open - need) : 0;
    char list[512] = "";
    size_t used = 0, ncomb = 0;
    for (size_t i = 0; base && i < n; i++) {
        if (strncmp(names[i], need, base) || names[i][base] != '[')
            continue;   /* not a combination of the step need names */
        if (s_same_pairs(need + base, names[i] + base)) {
            evr_diag_add(diag, p, "unknown step \"%s\"; did you mean %s? (a matrix step's "
                         "name lists its keys in the order of its matrix)", need, names[i]);
            return;
        }
        int w = ncomb < 8 ? snprintf(list + used, sizeof list - used, "%s%s", ncomb ? ", " : "",
                                     names[i]) : 0;
        if (w > 0 && (size_t) w < sizeof list - used)
            used += (size_t) w;
        ncomb++;
    }
    if (ncomb) {
        evr_diag_add(diag, p, "unknown step \"%s\": the combinations of %.*s are %s%s "
                     "(needs: [%.*s] waits for all of them)", need, (int) base, need, list,
                     ncomb > 8 ? ", ..." : "", (int) base, need);
        return;
    }
    /* a matrix step's name as written is a candidate too ("buidl": build) */
    char (*bases)[EVR_SPEC_MAX_NAME + 1] = evr_calloc(n + 1, sizeof *bases);
    const char **cand = evr_calloc(2 * n + 1, sizeof *cand);
    size_t nc = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        cand[nc++] = names[i];
        size_t bl = strcspn(names[i], "[");
        if (!names[i][bl] || bl > EVR_SPEC_MAX_NAME
            || (nb && !strncmp(bases[nb - 1], names[i], bl) && !bases[nb - 1][bl]))
            continue;   /* no matrix, or the base of the combination before */
        memcpy(bases[nb], names[i], bl);
        bases[nb][bl] = '\0';
        cand[nc++] = bases[nb++];
    }
    const char *near = evr_diag_near(need, cand, nc);
    evr_diag_add(diag, p, "unknown step \"%s\"%s%s%s", need, near ? "; did you mean " : "",
                 near ? near : "", near ? "?" : "");
    free(cand);
    free(bases);
}

/*  names: whether every step's name is known (the matrices expanded), so
    that needs, duplicate names and cycles can be checked. */
static void
s_check_steps(const evr_spec_t *spec, bool names, evr_diag_t *diag)
{
    char p[128];
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        evr_spec_path_idx(p, sizeof p, "steps[", i, "].name");
        /* a step with no name (reported by the loader) is checked all the
           same, but for its name */
        if (st->name && !evr_spec_step_name_ok(st->name))
            evr_diag_add(diag, p, "invalid step name \"%s\" (letters, digits, _ . -, the first "
                         "a letter or digit; at most %d)", st->name, EVR_SPEC_MAX_NAME);
        if (st->name && st->matrix.n && names) {
            snprintf(p, sizeof p, "steps[%u].matrix", i);
            evr_diag_add(diag, p, "a matrix is expanded where the pipeline file is loaded: a "
                         "spec on the wire holds one step per combination (evr_spec_expand)");
        }
        for (uint32_t j = 0; j < i && names && st->name; j++)
            if (evr_spec_step(spec, j)->name
                && strcmp(evr_spec_step(spec, j)->name, st->name) == 0) {
                char q[64];
                uint32_t line = 0, col = 0;
                snprintf(q, sizeof q, "steps[%u].name", j);
                if (evr_diag_pos(diag, q, &line, &col))
                    evr_diag_add(diag, p, "duplicate step name \"%s\" (first at line %u)",
                                 st->name, line);
                else
                    evr_diag_add(diag, p, "duplicate step name \"%s\" (same as steps[%u])",
                                 st->name, evr_diag_written_index(diag, "steps", j));
                break;
            }
        for (uint32_t k = 0; k < st->needs.n && names; k++) {
            snprintf(p, sizeof p, "steps[%u].needs[%u]", i, k);
            const char *need = st->needs.v[k];
            if (st->name && strcmp(need, st->name) == 0)
                evr_diag_add(diag, p, "step \"%s\" needs itself", need);
            else if (evr_spec_step_index(spec, need) < 0)
                s_unknown_need(spec, p, need, diag);
            if (evr_spec_item_repeats(&st->needs, k))
                evr_diag_add(diag, p, "\"%s\" is listed twice", need);
        }
        evr_spec_path_idx(p, sizeof p, "steps[", i, "]");
        s_check_step(spec, st, p, diag);
    }
    if (!names)
        return;
    s_check_unit_forms(spec, diag);
    /* Cycles: only meaningful once names are unique. */
    uint32_t n = spec->steps.n;
    /* on the stack up to the most steps a spec holds (a submit's checks run
       for every submit); a file's expanded steps may be more */
    uint8_t color_s[EVR_SPEC_MAX_STEPS] = { 0 };
    uint32_t stack_s[EVR_SPEC_MAX_STEPS + 1];
    bool heap = n > EVR_SPEC_MAX_STEPS;
    uint8_t *color = heap ? evr_calloc(n, 1) : color_s;
    uint32_t *stack = heap ? evr_calloc(n + 1, sizeof(uint32_t)) : stack_s;
    for (uint32_t i = 0; i < n; i++)   /* every cycle apart from the others: all at once */
        if (color[i] == 0)
            s_find_cycle(spec, i, color, stack, 0, diag);
    if (heap) {
        free(color);
        free(stack);
    }
}

static void
s_check_resources(const evr_spec_t *spec, evr_diag_t *diag)
{
    char p[128];
    for (uint32_t i = 0; i < spec->resources.n; i++) {
        const evr_resource_t *r = evr_spec_resource(spec, i);
        if (!r->name || !r->url || !r->path)
            continue;   /* reported by the loader */
        snprintf(p, sizeof p, "resources[%u].name", i);
        if (!evr_spec_name_ok(r->name))
            evr_diag_add(diag, p, "invalid resource name \"%s\" (letters, digits, _ . -, the "
                         "first a letter or digit; at most %d)", r->name, EVR_SPEC_MAX_NAME);
        for (uint32_t j = 0; j < i; j++)
            if (evr_spec_resource(spec, j)->name
                && strcmp(evr_spec_resource(spec, j)->name, r->name) == 0)
                evr_diag_add(diag, p, "duplicate resource name \"%s\"", r->name);
        snprintf(p, sizeof p, "resources[%u].url", i);
        evr_spec_check_http_url(r->url, p, diag);
        snprintf(p, sizeof p, "resources[%u].secret", i);
        evr_spec_check_secret_name(r->secret, p, diag);
        snprintf(p, sizeof p, "resources[%u].path", i);
        const char *why = evr_spec_path_problem(r->path);
        char *t = why ? NULL : evr_spec_path_tidy(r->path);
        if (why)
            evr_diag_add(diag, p, "%s: \"%s\"", why, r->path);
        else if (s_has_control(r->path))
            evr_diag_add(diag, p, "%s", s_control_path);
        /* the /job layout's mounts: a resource under /job/ci is hidden by
           the CI source's volume, one at /job/src is where the source's
           tree goes (a file there failed the source's copy) */
        else if (evr_spec_has_source(spec) && (!strcmp(t, "ci") || !strncmp(t, "ci/", 3)))
            evr_diag_add(diag, p, "the CI source is mounted read-only at /job/ci, over anything "
                         "put there: put the resource elsewhere in /job: \"%s\"", r->path);
        else if (evr_spec_has_source(spec) && !strcmp(t, "src"))
            evr_diag_add(diag, p, "/job/src is the source's directory: put the resource inside "
                         "it (src/NAME) or beside it: \"%s\"", r->path);
        free(t);
    }
}

evr_rc_t
evr_spec_check_size(const evr_spec_t *spec, evr_err_t *err)
{
    size_t n = evr_codec_size(&evr_spec_type, spec);
    if (n <= EVR_SPEC_MAX_BYTES)
        return EVR_OK;
    return evr_err_set(err, EVR_ERR_LIMIT, "the pipeline spec is %zu bytes as msgpack, over "
                       "the limit of %u bytes (1 MiB; YAML aliases count once per use, a "
                       "matrix step once per combination): make the scripts, env or steps "
                       "smaller", n, EVR_SPEC_MAX_BYTES);
}

void
evr_spec_path_idx(char *buf, size_t len, const char *pre, uint32_t i, const char *post)
{
    char num[11];
    size_t d = sizeof num;
    do
        num[--d] = (char) ('0' + i % 10);
    while ((i /= 10) && d);
    size_t at = 0;
    const char *parts[3] = { pre, num + d, post };
    size_t lens[3] = { strlen(pre), sizeof num - d, strlen(post) };
    for (int k = 0; k < 3 && len; k++) {
        size_t n = lens[k] < len - 1 - at ? lens[k] : len - 1 - at;
        memcpy(buf + at, parts[k], n);
        at += n;
    }
    if (len)
        buf[at] = '\0';
}

static evr_rc_t
s_validate(const evr_spec_t *spec, bool names, evr_diag_t *diag)
{
    size_t before = evr_diag_count(diag);
    char p[128];
    if (spec->pipeline && !evr_spec_name_ok(spec->pipeline))
        evr_diag_add(diag, "pipeline", "invalid name \"%s\" (letters, digits, _ . -, the "
                     "first a letter or digit; at most %d)", spec->pipeline, EVR_SPEC_MAX_NAME);
    /* no step: on the wire, or an empty steps: list in a file (a file with
       no steps: key at all is the loader's to say, or not when another key
       was taken for it: jobs: did you mean steps?) */
    uint32_t sline, scol;
    if (spec->steps.n == 0
        && (!evr_diag_mapped(diag) || evr_diag_pos(diag, "steps", &sline, &scol)))
        evr_diag_add(diag, "steps", "a pipeline needs at least one step");
    if (spec->image)
        s_check_image(spec, spec->image, "image", diag);
    /* repeats in lists where one means nothing (decoding takes them:
       older logs hold some) */
    static const char *const lists[] = { "triggers", "on.github.events", "on.github.branches" };
    const evr_strlist_t *lv[] = { &spec->triggers, &spec->on.github.events,
                                  &spec->on.github.branches };
    for (size_t i = 0; i < EVR_ARRAY_LEN(lists); i++)
        if (!evr_diag_reported(diag, lists[i]))   /* a wrong item: said as wrong */
            s_check_repeats(lv[i], lists[i], diag);
    /* `events: []` in a file: absent on the wire (push), but written so it
       says "no event", which starts nothing */
    if (spec->on.github.events.n == 0 && evr_diag_marked(diag, "on.github.events")
        && !evr_diag_reported(diag, "on.github.events"))
        evr_diag_add(diag, "on.github.events", "an empty list starts the pipeline on no "
                     "event: list push, pull_request or workflow_job, or leave events out "
                     "for push");
    for (uint32_t i = 0; i < spec->labels.n; i++) {
        snprintf(p, sizeof p, "labels[%u]", i);
        if (!evr_spec_name_ok(spec->labels.v[i]))
            evr_diag_add(diag, p, "invalid label \"%s\": a label is a name (letters, digits, _ "
                         ". -, the first a letter or digit, no \":\"; at most %d); the "
                         "executor's label comes from executor:", spec->labels.v[i],
                         EVR_SPEC_MAX_NAME);
        if (evr_spec_item_repeats(&spec->labels, i))
            evr_diag_add(diag, p, "\"%s\" is listed twice", spec->labels.v[i]);
    }
    for (uint32_t i = 0; i < spec->secrets.n; i++) {
        snprintf(p, sizeof p, "secrets[%u]", i);
        if (!evr_spec_env_name_ok(spec->secrets.v[i]))
            evr_diag_add(diag, p, "invalid secret name \"%s\" (an environment variable name)",
                         spec->secrets.v[i]);
        else
            s_check_runners(spec->secrets.v[i], p, diag);
        if (evr_spec_item_repeats(&spec->secrets, i))
            evr_diag_add(diag, p, "\"%s\" is listed twice", spec->secrets.v[i]);
    }
    for (uint32_t i = 0; i < spec->args.n; i++) {
        const evr_arg_t *a = evr_spec_arg(spec, i);
        if (!a->name)
            continue;   /* reported by the loader */
        snprintf(p, sizeof p, "args.%s", a->name);
        if (!evr_spec_env_name_ok(a->name))
            evr_diag_add(diag, p, "invalid arg name (an environment variable name)");
        else
            s_check_runners(a->name, p, diag);
    }
    s_check_envmap(&spec->env, "env", diag);
    s_check_cache(spec, &spec->cache, "cache", diag);
    s_check_steps(spec, names, diag);
    if (spec->on_error.present)
        s_check_step(spec, &spec->on_error, "on_error", diag);
    evr_spec_validate_flow(spec, names, diag);
    s_check_resources(spec, diag);
    evr_spec_validate_source(spec, diag);
    evr_spec_validate_run(spec, diag);
    if (spec->tz && !spec->schedule)
        evr_diag_add(diag, "timezone", "timezone is the zone of schedule: add a schedule, or "
                     "remove timezone");
    /* catchup: one is the zero value, absent on the wire: a file's is seen as written */
    bool catchup = spec->catchup != EVR_CATCHUP_ONE || evr_diag_marked(diag, "catchup");
    if (catchup && !spec->schedule && !evr_diag_reported(diag, "schedule"))
        evr_diag_add(diag, "catchup", "catchup says what becomes of the fire times of schedule "
                     "missed while the broker was down: add a schedule, or remove catchup");
    evr_spec_validate_queue(spec, diag);
    evr_spec_validate_range(spec, diag);
    return evr_diag_count(diag) > before ? EVR_ERR_SPEC : EVR_OK;
}

evr_rc_t
evr_spec_validate(const evr_spec_t *spec, evr_diag_t *diag)
{
    return s_validate(spec, true, diag);
}

evr_rc_t
evr_spec_validate_unexpanded(const evr_spec_t *spec, evr_diag_t *diag)
{
    return s_validate(spec, false, diag);
}

void
evr_spec_check_file(const evr_spec_t *spec, evr_diag_t *diag)
{
    char p[128];
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        if (st->run && !st->run[strspn(st->run, " \t\r\n")]) {
            evr_spec_path_idx(p, sizeof p, "steps[", i, "].run");
            evr_diag_add(diag, p, "an empty command: write what the step runs (run: \"true\" "
                         "for a step that does nothing)");
        }
    }
}
