/*  evr_fake_prog.c: a fake unit's program, from a behaviour or a script.

    The script reader is a shell of a dozen commands (see evr_fake_prog.h):
    enough for a test pipeline to say "echo hi; sleep 0.02; exit 3" and
    have the fake executor print "hi\n", wait 20 ms and exit 3.  Words are
    read as sh reads them (quotes, backslashes, $VAR and ${VAR}); what it
    does not know it reports as sh would, "not found", status 127.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evr_fake_prog.h"

/* ------------------------------------------------------------- actions */

static evr_fake_act_t *
s_add(evr_fake_prog_t *p, evr_fake_akind_t kind)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = evr_realloc(p->v, p->cap * sizeof *p->v);
    }
    evr_fake_act_t *a = &p->v[p->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

static void
s_add_out(evr_fake_prog_t *p, int stream, const void *data, size_t len)
{
    evr_fake_act_t *a = s_add(p, EVR_FAKE_A_OUT);
    a->stream = stream;
    a->data = evr_malloc(len ? len : 1);
    memcpy(a->data, data, len);
    a->len = len;
}

static void
s_add_sleep(evr_fake_prog_t *p, uint64_t ms)
{
    s_add(p, EVR_FAKE_A_SLEEP)->ms = ms;
}

void
evr_fake_prog_free(evr_fake_prog_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].data);
        free(p->v[i].path);
    }
    free(p->v);
    memset(p, 0, sizeof *p);
}

void
evr_fake_prog_behave(evr_fake_prog_t *p, const evr_fake_behave_t *b)
{
    size_t len[2] = { b->out ? (b->out_len ? b->out_len : strlen(b->out)) : 0,
                      b->err ? (b->err_len ? b->err_len : strlen(b->err)) : 0 };
    const char *src[2] = { b->out, b->err };
    size_t at[2] = { 0, 0 };
    while (at[0] < len[0] || at[1] < len[1]) {
        for (int s = 0; s < 2; s++) {
            size_t n = len[s] - at[s];
            if (b->piece && n > b->piece)
                n = b->piece;
            if (n)
                s_add_out(p, s + 1, src[s] + at[s], n);
            at[s] += n;
        }
        if (b->piece_ms && (at[0] < len[0] || at[1] < len[1]))
            s_add_sleep(p, b->piece_ms);
    }
    if (b->forever)
        s_add_sleep(p, EVR_FAKE_FOREVER);
    else if (b->run_ms)
        s_add_sleep(p, b->run_ms);
    s_add(p, EVR_FAKE_A_EXIT)->code = b->oom ? 137 : b->exit_code;
    p->ignore_term = b->ignore_term;
    p->oom = b->oom;
}

/* ---------------------------------------------------------------- words */

typedef struct {
    char *s;
    size_t len, cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = evr_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/*  A redirection of a command's standard output, or a plain word. */
enum { S_WORD, S_TO_ERR, S_TO_FILE, S_APPEND, S_IGNORED, S_OTHER_FILE };

typedef struct {
    char *s;
    int kind;
} s_tok_t;

typedef struct {
    s_tok_t *v;
    size_t n, cap;
} s_cmd_t;

static void
s_cmd_push(s_cmd_t *c, char *s, int kind)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->v = evr_realloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (s_tok_t) { s, kind };
}

static void
s_cmd_free(s_cmd_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].s);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/*  $NAME or ${NAME} at p (just after the '$'): its value into b; returns
    where the reference ends. */
static const char *
s_expand(const char *p, const evr_strmap_t *env, s_buf_t *b)
{
    bool brace = *p == '{';
    const char *q = p + brace, *e = q;
    while (isalnum((unsigned char) *e) || *e == '_')
        e++;
    if (e == q || (brace && *e != '}')) {
        s_put(b, "$", 1);
        return p;
    }
    char *name = evr_strndup(q, (size_t) (e - q));
    const char *v = env ? evr_strmap_get(env, name) : NULL;
    if (v)
        s_put(b, v, strlen(v));
    free(name);
    return e + brace;
}

/*  A redirection at p ('>', or the fd digit before it): pushed to c;
    returns where it ends (the file name, if any, is the next word). */
static const char *
s_redirect(const char *p, s_cmd_t *c, int fd)
{
    p++;   /* '>' */
    bool append = *p == '>';
    if (append)
        p++;
    if (*p == '&') {
        int to = p[1] - '0';
        s_cmd_push(c, NULL, fd == 1 && to == 2 ? S_TO_ERR : S_IGNORED);
        return p + 2;
    }
    s_cmd_push(c, NULL, fd == 1 ? (append ? S_APPEND : S_TO_FILE) : S_OTHER_FILE);
    return p;
}

/*  Reads one command from *pp into c (empty when there is none); false
    at the end of the script. */
static bool
s_read_cmd(const char **pp, const evr_strmap_t *env, s_cmd_t *c)
{
    const char *p = *pp;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#')
            while (*p && *p != '\n')
                p++;
        if (!*p) {
            *pp = p;
            return c->n > 0;
        }
        if (*p == ';' || *p == '\n' || *p == '&' || *p == '|') {
            while (*p == '&' || *p == '|')
                p++;
            if (*p == ';' || *p == '\n')
                p++;
            *pp = p;
            return true;
        }
        if (*p == '>' || ((*p == '1' || *p == '2') && p[1] == '>')) {
            int fd = *p == '>' ? 1 : *p - '0';
            p = s_redirect(*p == '>' ? p : p + 1, c, fd);
            continue;
        }
        s_buf_t w = { 0 };
        s_put(&w, "", 0);
        while (*p && !strchr(" \t;\n&|>", *p)) {
            if (*p == '\'') {
                const char *e = strchr(p + 1, '\'');
                size_t n = e ? (size_t) (e - p - 1) : strlen(p + 1);
                s_put(&w, p + 1, n);
                p += n + 1 + (e != NULL);
            }
            else if (*p == '"') {
                for (p++; *p && *p != '"';) {
                    if (*p == '\\' && p[1] && strchr("\"\\$`", p[1])) {
                        s_put(&w, p + 1, 1);
                        p += 2;
                    }
                    else if (*p == '$')
                        p = s_expand(p + 1, env, &w);
                    else
                        s_put(&w, p++, 1);
                }
                if (*p == '"')
                    p++;
            }
            else if (*p == '\\' && p[1] == '\n')
                p += 2;
            else if (*p == '\\' && p[1]) {
                s_put(&w, p + 1, 1);
                p += 2;
            }
            else if (*p == '$')
                p = s_expand(p + 1, env, &w);
            else
                s_put(&w, p++, 1);
        }
        s_cmd_push(c, w.s, S_WORD);
    }
}

/* ------------------------------------------------------------- commands */

/*  printf's format: \n \t \\ escapes, %s and %d take the next argument,
    %% is a percent sign. */
static void
s_printf(s_buf_t *out, const char *fmt, char **args, size_t nargs)
{
    size_t next = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            s_put(out, &c, 1);
        }
        else if (*p == '%' && (p[1] == 's' || p[1] == 'd')) {
            const char *a = next < nargs ? args[next++] : "";
            s_put(out, a, strlen(a));
            p++;
        }
        else if (*p == '%' && p[1] == '%')
            s_put(out, p++, 1);
        else
            s_put(out, p, 1);
    }
}

/*  Where a command's standard output goes: stream 1 or 2, or a file. */
typedef struct {
    int stream;
    const char *file;
    bool append;
} s_target_t;

static void
s_emit(evr_fake_prog_t *p, const s_target_t *t, const char *data, size_t len)
{
    if (t->file) {
        evr_fake_act_t *a = s_add(p, EVR_FAKE_A_FILE);
        a->path = evr_strdup(t->file);
        a->append = t->append;
        a->data = evr_malloc(len ? len : 1);
        memcpy(a->data, data, len);
        a->len = len;
    }
    else if (len)
        s_add_out(p, t->stream, data, len);
}

static void
s_status(evr_fake_prog_t *p, int code)
{
    s_add(p, EVR_FAKE_A_STATUS)->code = code;
}

/*  Compiles one command (words w[0..n), output to t); false after exit. */
static bool
s_compile(evr_fake_prog_t *p, char **w, size_t n, const s_target_t *t)
{
    const char *cmd = w[0];
    s_buf_t out = { 0 };
    s_put(&out, "", 0);
    bool more = true;
    if (strcmp(cmd, "echo") == 0) {
        bool nl = !(n > 1 && strcmp(w[1], "-n") == 0);
        for (size_t i = nl ? 1 : 2; i < n; i++) {
            if (i > (nl ? 1u : 2u))
                s_put(&out, " ", 1);
            s_put(&out, w[i], strlen(w[i]));
        }
        if (nl)
            s_put(&out, "\n", 1);
        s_emit(p, t, out.s, out.len);
        s_status(p, 0);
    }
    else if (strcmp(cmd, "printf") == 0 && n > 1) {
        s_printf(&out, w[1], w + 2, n - 2);
        s_emit(p, t, out.s, out.len);
        s_status(p, 0);
    }
    else if (strcmp(cmd, "seq") == 0 && n > 1) {
        long first = n > 2 ? atol(w[1]) : 1, last = atol(w[n > 2 ? 2 : 1]);
        for (long i = first; i <= last; i++) {
            char line[32];
            int k = snprintf(line, sizeof line, "%ld\n", i);
            s_put(&out, line, (size_t) k);
        }
        s_emit(p, t, out.s, out.len);
        s_status(p, 0);
    }
    else if (strcmp(cmd, "cat") == 0) {
        for (size_t i = 1; i < n; i++) {
            evr_fake_act_t *a = s_add(p, EVR_FAKE_A_CAT);
            a->path = evr_strdup(w[i]);
            a->stream = t->stream;
        }
    }
    else if (strcmp(cmd, "sleep") == 0 && n > 1) {
        s_add_sleep(p, (uint64_t) (strtod(w[1], NULL) * 1000.0 + 0.5));
        s_status(p, 0);
    }
    else if (strcmp(cmd, "exit") == 0) {
        s_add(p, EVR_FAKE_A_EXIT)->code = n > 1 ? atoi(w[1]) & 255 : -1;
        more = false;
    }
    else if (strcmp(cmd, "kill") == 0 && n > 1 && w[1][0] == '-' && atoi(w[1] + 1) > 0) {
        evr_fake_act_t *a = s_add(p, EVR_FAKE_A_EXIT);   /* kill -N $$ */
        a->sig = atoi(w[1] + 1) & 127;
        a->code = 128 + a->sig;
        more = false;
    }
    else if (strcmp(cmd, "trap") == 0 && n > 2) {
        for (size_t i = 2; i < n; i++)
            if (!*w[1] && (!strcmp(w[i], "TERM") || !strcmp(w[i], "SIGTERM")
                           || !strcmp(w[i], "15")))
                p->ignore_term = true;
        s_status(p, 0);
    }
    else if (strcmp(cmd, "true") == 0 || strcmp(cmd, ":") == 0)
        s_status(p, 0);
    else if (strcmp(cmd, "false") == 0)
        s_status(p, 1);
    else {
        char msg[256];
        int k = snprintf(msg, sizeof msg, "sh: %s: not found\n", cmd);
        s_add_out(p, 2, msg, (size_t) k < sizeof msg ? (size_t) k : sizeof msg - 1);
        s_status(p, 127);
    }
    free(out.s);
    return more;
}

void
evr_fake_prog_script(evr_fake_prog_t *p, const char *script, const evr_strmap_t *env)
{
    const char *at = script ? script : "";
    bool more = true;
    while (more) {
        s_cmd_t c = { 0 };
        more = s_read_cmd(&at, env, &c);
        /* the words, and where the output goes */
        char **w = evr_calloc(c.n + 1, sizeof *w);
        size_t n = 0;
        s_target_t t = { .stream = 1 };
        for (size_t i = 0; i < c.n; i++) {
            s_tok_t *k = &c.v[i];
            if (k->kind == S_WORD)
                w[n++] = k->s;
            else if (k->kind == S_TO_ERR)
                t.stream = 2;
            else if ((k->kind == S_TO_FILE || k->kind == S_APPEND) && i + 1 < c.n
                     && c.v[i + 1].kind == S_WORD) {
                t.file = c.v[++i].s;
                t.append = k->kind == S_APPEND;
            }
            else if (k->kind == S_OTHER_FILE && i + 1 < c.n && c.v[i + 1].kind == S_WORD)
                i++;   /* 2> FILE: its name (stderr into a file is not kept) */
        }
        if (n && !s_compile(p, w, n, &t))
            more = false;
        free(w);
        s_cmd_free(&c);
    }
    s_add(p, EVR_FAKE_A_EXIT)->code = -1;
}
