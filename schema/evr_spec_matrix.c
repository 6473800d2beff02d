/*  evr_spec_matrix.c: a step's `matrix`, expanded where the pipeline file
    is loaded.

    `matrix: {OS: [linux, bsd], V: ["1", "2"]}` on step `build` stands for
    four steps, build[OS=linux,V=1], build[OS=linux,V=2], build[OS=bsd,V=1]
    and build[OS=bsd,V=2] (keys in the order written, the first varying
    slowest), each with its values in its env.  A `needs: [build]` names
    all four.  The spec a client submits, the broker's job.accepted and
    the runner's all hold the expanded steps: the wire never carries a
    matrix (PROTOCOL.md, Decisions), so no receiver has to expand and all
    of them see the same step names.  The expanded names hold '[', '=' and
    ',': evr_spec_step_name_ok() accepts them wherever a step name is
    checked, and evr_spec_step_unit_form() gives the form podman and the
    process executor take for a unit name.  The checks that run on the
    expanded steps report about the steps as written, once for all
    combinations (evr_diag_expand_list).
*/
#include "evr_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  A matrix value: 1..EVR_SPEC_MAX_NAME bytes of letters, digits, _ . - */
static bool
s_value_ok(const char *s, size_t n)
{
    if (n == 0 || n > EVR_SPEC_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool
evr_spec_step_name_ok(const char *s)
{
    const char *open = strchr(s, '[');
    if (!open)
        return evr_spec_name_ok(s);
    size_t n = strlen(s);
    if (n > EVR_SPEC_MAX_NAME || s[n - 1] != ']' || open == s)
        return false;
    char base[EVR_SPEC_MAX_NAME + 1];
    memcpy(base, s, (size_t) (open - s));
    base[open - s] = '\0';
    if (!evr_spec_name_ok(base))
        return false;
    /* K=v pairs separated by ',' up to the final ']' */
    const char *p = open + 1, *end = s + n - 1;
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t) (end - p));
        if (!eq)
            return false;
        const char *comma = memchr(eq, ',', (size_t) (end - eq));
        const char *vend = comma ? comma : end;
        char key[EVR_SPEC_MAX_NAME + 1];
        memcpy(key, p, (size_t) (eq - p));
        key[eq - p] = '\0';
        if (!evr_spec_env_name_ok(key) || !s_value_ok(eq + 1, (size_t) (vend - eq - 1)))
            return false;
        if (comma && comma + 1 == end)
            return false;   /* "a[K=v,]" */
        p = comma ? comma + 1 : end;
    }
    return p == end && end > open + 1;
}

char *
evr_spec_step_unit_form(const char *s)
{
    char *u = evr_strdup(s);
    size_t n = strlen(u);
    if (!strchr(u, '['))
        return u;
    if (n && u[n - 1] == ']')
        u[--n] = '\0';
    for (char *c = u; *c; c++)
        *c = *c == '[' || *c == ',' ? '.' : *c == '=' ? '-' : *c;
    return u;
}

/*  Combinations of step st's matrix (1 without one), or 0 when over
    EVR_SPEC_MAX_MATRIX_COMBOS. */
static uint32_t
s_combos(const evr_step_t *st)
{
    uint64_t c = 1;
    for (uint32_t k = 0; k < st->matrix.n; k++) {
        const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, &st->matrix, k);
        c *= m->values.n;
        if (c > EVR_SPEC_MAX_MATRIX_COMBOS)
            return 0;
    }
    return (uint32_t) c;
}

/*  The name of combination c of st (the last key varies fastest), its
    values put into env when env is not NULL.  Caller frees. */
static char *
s_combo_name(const evr_step_t *st, uint32_t c, evr_strmap_t *env)
{
    uint32_t idx[EVR_SPEC_MAX_MATRIX_KEYS];
    for (uint32_t k = st->matrix.n; k-- > 0;) {
        const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, &st->matrix, k);
        idx[k] = c % m->values.n;
        c /= m->values.n;
    }
    size_t cap = strlen(st->name) + 3;
    for (uint32_t k = 0; k < st->matrix.n; k++) {
        const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, &st->matrix, k);
        cap += strlen(m->name) + strlen(m->values.v[idx[k]]) + 2;
    }
    char *name = evr_malloc(cap);
    size_t used = (size_t) snprintf(name, cap, "%s[", st->name);
    for (uint32_t k = 0; k < st->matrix.n; k++) {
        const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, &st->matrix, k);
        used += (size_t) snprintf(name + used, cap - used, "%s%s=%s", k ? "," : "", m->name,
                                  m->values.v[idx[k]]);
        if (env)
            evr_strmap_set(env, m->name, m->values.v[idx[k]]);
    }
    snprintf(name + used, cap - used, "]");
    return name;
}

/*  Path with each $KEY and ${KEY} of a matrix key in env put in (a key
    written $OS_X is the key OS_X, not OS then _X, as the shell reads it);
    NULL when it names none.  Caller frees. */
static char *
s_put_keys(const char *path, const evr_reclist_t *matrix, const evr_strmap_t *env)
{
    static const char ident[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    if (!strchr(path, '$'))
        return NULL;
    size_t cap = strlen(path) + 1;   /* each $ (2 bytes or more) becomes a value at most */
    for (const char *d = path; (d = strchr(d, '$')); d++)
        cap += EVR_SPEC_MAX_NAME;
    char *out = evr_malloc(cap);
    size_t used = 0;
    bool put = false;
    for (const char *p = path; *p;) {
        const char *value = NULL;
        size_t skip = 0;
        if (*p == '$') {
            bool brace = p[1] == '{';
            const char *name = p + 1 + brace;
            size_t n = strspn(name, ident);
            if (n && n <= EVR_SPEC_MAX_NAME && (!brace || name[n] == '}')) {
                char key[EVR_SPEC_MAX_NAME + 1];
                memcpy(key, name, n);
                key[n] = '\0';
                for (uint32_t k = 0; k < matrix->n && !value; k++) {
                    const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, matrix, k);
                    if (!strcmp(m->name, key))
                        value = evr_strmap_get(env, key);
                }
                skip = 1 + brace + n + brace;
            }
        }
        if (value) {
            size_t vn = strlen(value);
            memcpy(out + used, value, vn);
            used += vn;
            p += skip;
            put = true;
        }
        else
            out[used++] = *p++;
    }
    out[used] = '\0';
    if (!put) {
        free(out);
        return NULL;
    }
    return out;
}

/*  Step to's artifact paths, with its combination's matrix values put in
    for $KEY and ${KEY} (`artifacts: ["dist/$OS"]`): the combinations share
    the workspace, and each keeps its own files only by a path of its own.
    Nothing else is expanded in an artifact path. */
static void
s_expand_artifacts(evr_step_t *to, const evr_reclist_t *matrix)
{
    for (uint32_t k = 0; k < to->artifacts.paths.n; k++) {
        char *path = s_put_keys(to->artifacts.paths.v[k], matrix, &to->env);
        if (path) {
            free(to->artifacts.paths.v[k]);
            to->artifacts.paths.v[k] = path;
        }
    }
}

/*  Checks step i's matrix; returns its combinations (1: none; 0: errors
    added). */
static uint32_t
s_check_matrix(const evr_step_t *st, uint32_t i, evr_diag_t *diag)
{
    char p[256];
    size_t before = evr_diag_count(diag);
    bool empty = false;
    if (!st->name)   /* reported by the loader; it stays one step (unexpanded), so
                        the others' names, needs and cycles are still checked */
        return 1;
    if (!st->matrix.n) {
        if (strchr(st->name, '[')) {
            snprintf(p, sizeof p, "steps[%u].name", i);
            evr_diag_add(diag, p, "\"%s\": NAME[K=v] is the name of a matrix step; write "
                         "matrix: {K: [v]} on a step called NAME instead", st->name);
            return 0;
        }
        snprintf(p, sizeof p, "steps[%u].matrix", i);
        if (evr_diag_marked(diag, p) && !evr_diag_reported(diag, p)) {
            evr_diag_add(diag, p, "empty matrix: give KEY: [values], or remove matrix");
            return 0;
        }
        return 1;
    }
    for (uint32_t k = 0; k < st->matrix.n; k++) {
        const evr_matrix_t *m = evr_reclist_at(&evr_matrix_type, &st->matrix, k);
        if (!m->name) {   /* a key the loader refused (a repeat, not a name) */
            empty = true;
            continue;
        }
        snprintf(p, sizeof p, "steps[%u].matrix.%s", i, m->name);
        if (!evr_spec_env_name_ok(m->name))
            evr_diag_add(diag, p, "not a valid environment variable name (letters, digits "
                         "and _, not starting with a digit)");
        else if (evr_strmap_get(&st->env, m->name))
            evr_diag_add(diag, p, "%s is also set in the step's env: the matrix sets it, "
                         "remove it from env", m->name);
        else if (!m->values.n && !evr_diag_reported(diag, p))   /* not a list that failed */
            evr_diag_add(diag, p, "no value: give a list of at least one value");
        if (!m->values.n)
            empty = true;   /* a load error leaves it empty too */
        for (uint32_t v = 0; v < m->values.n; v++) {
            const char *val = m->values.v[v];
            snprintf(p, sizeof p, "steps[%u].matrix.%s.values[%u]", i, m->name, v);
            if (!s_value_ok(val, strlen(val)))
                evr_diag_add(diag, p, "\"%s\": a matrix value is 1-%d letters, digits, _ . - "
                             "(it becomes part of the step's name)", val, EVR_SPEC_MAX_NAME);
            if (evr_spec_item_repeats(&m->values, v))
                evr_diag_add(diag, p, "\"%s\" is listed twice", val);
        }
    }
    if (evr_diag_count(diag) > before || empty)
        return 0;
    uint32_t n = s_combos(st);
    snprintf(p, sizeof p, "steps[%u].matrix", i);
    if (!n) {
        evr_diag_add(diag, p, "more than %d combinations: at most %d steps per matrix (use "
                     "fewer keys or values)", EVR_SPEC_MAX_MATRIX_COMBOS,
                     EVR_SPEC_MAX_MATRIX_COMBOS);
        return 0;
    }
    for (uint32_t c = 0; c < n; c++) {
        char *name = s_combo_name(st, c, NULL);
        size_t len = strlen(name);
        if (len > EVR_SPEC_MAX_NAME)
            evr_diag_add(diag, p, "the step name \"%s\" is %zu bytes, over %d: shorten the "
                         "step's name, the keys or the values", name, len, EVR_SPEC_MAX_NAME);
        free(name);
        if (len > EVR_SPEC_MAX_NAME)
            return 0;
    }
    return n;
}

/*  Rewrites needs: a name of a matrix step (index in the written spec)
    stands for all its combinations, the first in its place and the rest
    appended (so the written needs keep their indexes for diagnostics). */
static void
s_expand_needs(const evr_spec_t *spec, const uint32_t *count, evr_strlist_t *needs)
{
    evr_strlist_t out = { 0 }, extra = { 0 };
    for (uint32_t k = 0; k < needs->n; k++) {
        int j = evr_spec_step_index(spec, needs->v[k]);
        const evr_step_t *o = j >= 0 ? evr_spec_step(spec, (uint32_t) j) : NULL;
        if (!o || !o->matrix.n) {
            evr_strlist_push(&out, needs->v[k]);
            continue;
        }
        for (uint32_t c = 0; c < count[j]; c++) {
            char *name = s_combo_name(o, c, NULL);
            evr_strlist_push(c ? &extra : &out, name);
            free(name);
        }
    }
    for (uint32_t k = 0; k < extra.n; k++)
        evr_strlist_push(&out, extra.v[k]);
    evr_strlist_free(&extra);
    evr_strlist_free(needs);
    *needs = out;
}

/*  Checks step i's needs where a matrix step's name stands for all its
    combinations (before expansion, when they are as written): a matrix
    step naming itself, and a combination listed beside its step's name.
    Returns false when the step cannot be expanded. */
static bool
s_check_matrix_needs(const evr_spec_t *spec, const evr_step_t *st, uint32_t i,
                     evr_diag_t *diag)
{
    char p[128];
    bool ok = true, combination = false;   /* a need NAME[K=v]: the pairs to compare */
    for (uint32_t k = 0; k < st->needs.n && !combination; k++)
        combination = strchr(st->needs.v[k], '[') != NULL;
    for (uint32_t k = 0; st->name && k < st->needs.n; k++) {
        const char *need = st->needs.v[k];
        snprintf(p, sizeof p, "steps[%u].needs[%u]", i, k);
        if (st->matrix.n && evr_spec_step_matches(st->name, need)) {
            evr_diag_add(diag, p, "step \"%s\" needs itself (a matrix step's name stands for "
                         "all its combinations)", need);
            ok = false;
            continue;
        }
        for (uint32_t m = 0; combination && m < k; m++) {
            const char *a = st->needs.v[m], *b = need;
            if (strchr(a, '['))
                a = need, b = st->needs.v[m];   /* a: the step's name, b: its combination */
            /* the name's lookup last: needs of every step above each of
               256 steps (allowed) made it a billion compares */
            if (!strcmp(a, b) || !evr_spec_step_matches(a, b))
                continue;
            int j = evr_spec_step_index(spec, a);
            if (j >= 0 && evr_spec_step(spec, (uint32_t) j)->matrix.n) {
                evr_diag_add(diag, p, "%s already covers \"%s\" (a matrix step's name stands "
                             "for all its combinations): keep one", a, b);
                break;
            }
        }
    }
    return ok;
}

/*  Whether step i's written name is its own where a matrix is involved:
    a matrix step and an earlier step of the same name (with a matrix or
    not) expand to different names, but `needs: [NAME]` would stand for
    the first of them only.  Two plain steps of one name are left to the
    check of the expanded names (evr_spec_check.c). */
static bool
s_check_matrix_name(const evr_spec_t *spec, const evr_step_t *st, uint32_t i, evr_diag_t *diag)
{
    for (uint32_t j = 0; st->name && j < i; j++) {
        const evr_step_t *o = evr_spec_step(spec, j);
        if (!o->name || strcmp(o->name, st->name) || (!st->matrix.n && !o->matrix.n))
            continue;
        char p[64], q[64];
        uint32_t line = 0, col = 0;
        snprintf(p, sizeof p, "steps[%u].name", i);
        snprintf(q, sizeof q, "steps[%u].name", j);
        if (evr_diag_pos(diag, q, &line, &col))
            evr_diag_add(diag, p, "duplicate step name \"%s\" (first at line %u; a matrix "
                         "step's name stands for all its combinations, in needs too): rename "
                         "one", st->name, line);
        else
            evr_diag_add(diag, p, "duplicate step name \"%s\" (same as steps[%u]; a matrix "
                         "step's name stands for all its combinations, in needs too): rename "
                         "one", st->name, j);
        return false;
    }
    return true;
}

evr_rc_t
evr_spec_expand(evr_spec_t *spec, evr_diag_t *diag)
{
    uint32_t n = spec->steps.n, total = 0;
    bool any = false, bad = false;
    uint32_t *first = evr_calloc(n ? n : 1, sizeof *first);
    uint32_t *count = evr_calloc(n ? n : 1, sizeof *count);
    for (uint32_t i = 0; i < n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        count[i] = s_check_matrix_needs(spec, st, i, diag) ? s_check_matrix(st, i, diag) : 0;
        if (!s_check_matrix_name(spec, st, i, diag))
            count[i] = 0;
        bad |= !count[i];
        any |= st->matrix.n > 0;
        first[i] = total;
        total += count[i];
    }
    if (!bad && total > EVR_SPEC_MAX_STEPS)
        evr_diag_add(diag, "steps", "%u steps once the matrices are expanded, over the limit "
                     "of %d", total, EVR_SPEC_MAX_STEPS);
    evr_rc_t rc = bad || total > EVR_SPEC_MAX_STEPS ? EVR_ERR_SPEC : EVR_OK;
    if (rc || !any)
        goto out;
    evr_reclist_t steps = { evr_calloc(total, sizeof(evr_step_t)), total };
    char **names = evr_calloc(total, sizeof *names);   /* each combination's, for diag */
    for (uint32_t i = 0; i < n; i++) {
        evr_step_t *st = evr_spec_step(spec, i);
        evr_reclist_t matrix = st->matrix;
        st->matrix = (evr_reclist_t) { 0 };
        for (uint32_t c = 0; c < count[i]; c++) {
            evr_step_t *to = evr_reclist_at(&evr_step_type, &steps, first[i] + c);
            evr_rec_copy(&evr_step_type, to, st);
            s_expand_needs(spec, count, &to->needs);
            if (!matrix.n || !st->name)
                continue;
            st->matrix = matrix;
            free(to->name);
            to->name = s_combo_name(st, c, &to->env);
            s_expand_artifacts(to, &matrix);
            names[first[i] + c] = evr_strdup(to->name);
            st->matrix = (evr_reclist_t) { 0 };
        }
        st->matrix = matrix;
    }
    for (uint32_t i = 0; i < n; i++)
        evr_rec_free(&evr_step_type, evr_spec_step(spec, i));
    free(spec->steps.v);
    spec->steps = steps;
    evr_diag_expand_list(diag, "steps", first, count, n, names);
    for (uint32_t k = 0; k < total; k++)
        free(names[k]);
    free(names);
out:
    free(first);
    free(count);
    return rc;
}

bool
evr_spec_step_matches(const char *want, const char *step)
{
    if (!want || !step)
        return false;
    if (strcmp(want, step) == 0)
        return true;
    size_t n = strlen(want);
    return n && !strchr(want, '[') && strncmp(step, want, n) == 0 && step[n] == '[';
}
