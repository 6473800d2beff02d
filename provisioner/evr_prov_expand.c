/*  evr_prov_expand.c: the command provider's templates (evr_prov_run.h
    evr_prov_expand): {job}, {labels}, {runner_id}, {broker} (start),
    {runner_id}, {broker}, {handle} (stop) put in single-quoted for
    /bin/sh; other braces are the shell's.  The
    string it grows with (evr_prov_append) serves evr_prov_run.c too.
*/
#include <stdlib.h>
#include <string.h>

#include "evr_prov_run.h"

void
evr_prov_append(char **buf, size_t *len, const char *s, size_t n)
{
    *buf = evr_realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/*  v single-quoted for /bin/sh ('\'' for each quote). */
static void
s_quoted(char **buf, size_t *len, const char *v)
{
    evr_prov_append(buf, len, "'", 1);
    for (const char *q; (q = strchr(v, '\'')); v = q + 1) {
        evr_prov_append(buf, len, v, (size_t) (q - v));
        evr_prov_append(buf, len, "'\\''", 4);
    }
    evr_prov_append(buf, len, v, strlen(v));
    evr_prov_append(buf, len, "'", 1);
}

char *
evr_prov_expand(const char *tpl, const char *job, const char *labels, const char *runner_id,
                const char *broker, const char *handle, evr_err_t *err)
{
    static const char *const keys[] = { "job", "labels", "runner_id", "broker", "handle" };
    const char *vals[] = { job, labels, runner_id, broker, handle };
    char *buf = NULL;
    size_t len = 0;
    evr_prov_append(&buf, &len, "", 0);
    while (*tpl) {
        const char *open = strchr(tpl, '{');
        if (!open) {
            evr_prov_append(&buf, &len, tpl, strlen(tpl));
            break;
        }
        evr_prov_append(&buf, &len, tpl, (size_t) (open - tpl));
        size_t klen = strspn(open + 1, "abcdefghijklmnopqrstuvwxyz_");
        if ((open > tpl && open[-1] == '$') || !klen || open[1 + klen] != '}') {
            evr_prov_append(&buf, &len, "{", 1);   /* the shell's: ${VAR}, {a,b}, { cmd; } */
            tpl = open + 1;
            continue;
        }
        const char *close = open + 1 + klen;
        size_t k = 0;
        for (; k < EVR_ARRAY_LEN(keys); k++)
            if (strlen(keys[k]) == klen && !strncmp(open + 1, keys[k], klen))
                break;
        if (k == EVR_ARRAY_LEN(keys) || !vals[k]) {
            evr_err_set(err, EVR_ERR_CONFIG, "\"%.*s\": expected %s%s", (int) (klen + 2), open,
                        handle ? "{runner_id}, {broker} or {handle} ({job} and {labels} go in "
                        "start only)" : "{job}, {labels}, {runner_id} or {broker}",
                        handle ? "" : " ({handle} goes in stop only)");
            free(buf);
            return NULL;
        }
        s_quoted(&buf, &len, vals[k]);
        tpl = close + 1;
        if (len > 16384) {
            evr_err_set(err, EVR_ERR_LIMIT, "the command grows past 16 KiB");
            free(buf);
            return NULL;
        }
    }
    return buf;
}
