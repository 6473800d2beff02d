/*  evr_chan.c: the control channel's socket, connections and requests.

    A connection reads into a buffer until a newline, answers each line
    (evr_chan_answer), and writes the answers back, one line at a time:
    the next is answered once the answer before it is written, and the
    connection reads only while no answer waits.  A client that sends
    without reading fills its own socket, not the runner's memory.  A line longer than
    EVR_CHAN_LINE_MAX, or a channel full of connections, is answered
    with an error and the connection closed once that answer is out. */
#define _GNU_SOURCE   /* accept4 */
#include "evr_chan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evr_codec.h"   /* evr_utf8_clean */

typedef struct s_conn {
    evr_chan_t *chan;
    int fd;
    char *in;               /* bytes read, no full line among them */
    size_t ilen, icap;
    char *out;              /* answers not written yet, from odone on */
    size_t odone, olen;
    bool closing;           /* close once out is written */
    bool eof;               /* the client shut its writing half: close once all is answered */
    struct s_conn *next;
} s_conn_t;

struct evr_chan {
    evr_loop_t *loop;
    const evr_chan_cmd_t *cmds;
    void *arg;
    int fd;
    char *path;
    s_conn_t *conns;
    uint32_t nconns;
    uint64_t backoff;       /* the timer that listens again after accept ran out of fds */
};

static void s_conn_io(evr_loop_t *loop, int fd, int events, void *arg);

static char *
s_error(const json_t *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*  {"ok": false, "error": ..., "id": id} as text.  The message may quote
    the request cut inside a character (a command's name at 64 bytes, a
    message at EVR_ERR_MAX): made valid UTF-8 first, which jansson wants
    (else no answer at all). */
static char *
s_error(const json_t *id, const char *fmt, ...)
{
    char msg[EVR_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    evr_utf8_clean(msg);
    json_t *ans = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
    if (id)
        json_object_set(ans, "id", (json_t *) id);
    char *text = json_dumps(ans, JSON_COMPACT);
    json_decref(ans);
    return text;
}

char *
evr_chan_answer(const evr_chan_cmd_t *cmds, void *arg, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!req)
        return s_error(NULL, "request is not JSON (column %d: %s): send one JSON object per "
                       "line, e.g. {\"cmd\": \"hello\"}", jerr.column, jerr.text);
    char *text = NULL;
    json_t *id = json_object_get(req, "id");
    const char *bad_id = !id || json_is_string(id) || json_is_integer(id) ? NULL
                         : json_is_real(id)                            ? "a number with a fraction"
                         : json_is_object(id)                          ? "an object"
                         : json_is_array(id)                           ? "an array"
                         : json_is_boolean(id)                         ? "a boolean"
                                                                       : "null";
    if (bad_id)
        id = NULL;      /* not echoed: the error says why */
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (!json_is_object(req))
        text = s_error(NULL, "request is not a JSON object: send {\"cmd\": NAME, ...}");
    else if (bad_id)
        text = s_error(NULL, "request \"id\" is %s: expected a string or an integer (it is "
                       "echoed in the answer)", bad_id);
    else if (!cmd)
        text = s_error(id, "request has no string \"cmd\": send {\"cmd\": NAME, ...}");
    if (text)
        goto out;
    const evr_chan_cmd_t *c = cmds;
    while (c->name && strcmp(c->name, cmd))
        c++;
    if (!c->name) {
        char known[256] = "";
        for (const evr_chan_cmd_t *k = cmds; k->name; k++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                     k == cmds ? "" : ", ", k->name);
        text = s_error(id, "unknown command \"%.64s\" (this runner knows: %s)", cmd, known);
        goto out;
    }
    json_t *ans = json_object();
    evr_err_t err = { "" };
    if (c->fn(req, ans, &err, arg)) {
        json_decref(ans);
        text = s_error(id, "%s: %s", c->name, err.msg);
        goto out;
    }
    json_object_set_new(ans, "ok", json_true());
    if (id)
        json_object_set(ans, "id", id);
    text = json_dumps(ans, JSON_COMPACT);
    json_decref(ans);
out:
    json_decref(req);
    return text;
}

static void
s_conn_free(s_conn_t *c)
{
    evr_chan_t *chan = c->chan;
    for (s_conn_t **p = &chan->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    chan->nconns--;
    evr_loop_fd_remove(chan->loop, c->fd);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static void
s_queue(s_conn_t *c, char *text)
{
    size_t n = strlen(text);
    c->out = evr_realloc(c->out, c->olen + n + 1);
    memcpy(c->out + c->olen, text, n);
    c->out[c->olen + n] = '\n';
    c->olen += n + 1;
    free(text);
}

/*  Writes what waits; watches for reading when nothing does, for
    writing otherwise.  Returns false when the connection was freed. */
static bool
s_flush(s_conn_t *c)
{
    while (c->odone < c->olen) {
        ssize_t w = send(c->fd, c->out + c->odone, c->olen - c->odone, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            s_conn_free(c);
            return false;
        }
        c->odone += (size_t) w;
    }
    if (c->odone == c->olen) {
        c->odone = c->olen = 0;
        if (c->closing) {
            s_conn_free(c);
            return false;
        }
    }
    evr_loop_fd_add(c->chan->loop, c->fd, c->olen ? EVR_LOOP_WRITE : EVR_LOOP_READ, s_conn_io,
                    c);
    return true;
}

/*  The length of the request line p[0,n) (its newline not among them):
    a final \r is not the line's. */
static size_t
s_line_len(const char *p, size_t n)
{
    return n && p[n - 1] == '\r' ? n - 1 : n;
}

/*  Answers the first request line in c->in and drops it (and the empty
    lines before it); the rest stays.  A line too long ends the
    connection. */
static void
s_line(s_conn_t *c)
{
    size_t at = 0;
    char *nl;
    bool answered = false;
    while (!answered && (nl = memchr(c->in + at, '\n', c->ilen - at))) {
        size_t len = s_line_len(c->in + at, (size_t) (nl - (c->in + at)));
        if (len > EVR_CHAN_LINE_MAX)
            break;
        if (len) {
            s_queue(c, evr_chan_answer(c->chan->cmds, c->chan->arg, c->in + at, len));
            answered = true;
        }
        at = (size_t) (nl - c->in) + 1;
    }
    memmove(c->in, c->in + at, c->ilen - at);
    c->ilen -= at;
    if (answered)
        return;   /* the next line is looked at once this answer is out */
    nl = memchr(c->in, '\n', c->ilen);
    if (s_line_len(c->in, nl ? (size_t) (nl - c->in) : c->ilen) > EVR_CHAN_LINE_MAX) {
        s_queue(c, s_error(NULL, "request line longer than %d bytes: the connection is closed",
                           EVR_CHAN_LINE_MAX));
        c->closing = true;
        c->ilen = 0;
    }
}

/*  Answers the lines c->in holds, one at a time, each once the answer
    before it is written: a client that sends many without reading has
    one answer waiting, the rest of its lines stay in its buffer (and
    socket).  With none left: reads on, or closes after the client's
    end.  Returns false when the connection was freed. */
static bool
s_serve(s_conn_t *c)
{
    while (!c->olen) {
        s_line(c);
        if (!c->olen)
            break;   /* no full line */
        if (!s_flush(c))
            return false;
    }
    if (c->olen)
        return true;   /* s_flush watches for writing */
    if (c->eof) {
        s_conn_free(c);
        return false;
    }
    evr_loop_fd_add(c->chan->loop, c->fd, EVR_LOOP_READ, s_conn_io, c);
    return true;
}

static void
s_conn_io(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) loop;
    s_conn_t *c = arg;
    if (c->olen) {   /* watching for writing only */
        if (s_flush(c) && !c->olen)
            s_serve(c);
        return;
    }
    (void) events;
    if (c->icap - c->ilen < 4096) {
        c->icap = c->icap ? c->icap * 2 : 8192;
        if (c->icap > EVR_CHAN_LINE_MAX + 8192)
            c->icap = EVR_CHAN_LINE_MAX + 8192;
        c->in = evr_realloc(c->in, c->icap);
    }
    ssize_t r = recv(fd, c->in + c->ilen, c->icap - c->ilen, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r < 0) {
        s_conn_free(c);
        return;
    }
    if (r == 0) {   /* the client is done: a last line without newline is answered */
        c->eof = true;
        if (c->ilen && s_line_len(c->in, c->ilen) <= EVR_CHAN_LINE_MAX)
            c->in[c->ilen++] = '\n';   /* icap - ilen >= 4096; no full line is left */
    }
    c->ilen += (size_t) r;
    s_serve(c);
}

static void s_accept(evr_loop_t *loop, int fd, int events, void *arg);

static void
s_listen_again(evr_loop_t *loop, void *arg)
{
    evr_chan_t *chan = arg;
    chan->backoff = 0;
    evr_loop_fd_add(loop, chan->fd, EVR_LOOP_READ, s_accept, chan);
}

static void
s_accept(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_chan_t *chan = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
        /* the connection waits in the backlog: polling it now would spin */
        evr_loop_fd_remove(loop, fd);
        chan->backoff = evr_loop_timer_add(loop, 1000, s_listen_again, chan);
        return;
    }
    if (cfd < 0)
        return;   /* EAGAIN, or the client gave up: nothing to serve */
    s_conn_t *c = evr_calloc(1, sizeof *c);
    c->chan = chan;
    c->fd = cfd;
    c->next = chan->conns;
    chan->conns = c;
    chan->nconns++;
    if (chan->nconns > EVR_CHAN_MAX_CONNS) {
        s_queue(c, s_error(NULL, "too many connections to this step's channel (at most %d "
                           "at once): close one and try again", EVR_CHAN_MAX_CONNS));
        c->closing = true;
        s_flush(c);
        return;
    }
    if (evr_loop_fd_add(chan->loop, cfd, EVR_LOOP_READ, s_conn_io, c))
        s_conn_free(c);
}

evr_chan_t *
evr_chan_new(evr_loop_t *loop, const char *dir, const evr_chan_cmd_t *cmds, void *arg,
             evr_err_t *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *path = evr_asprintf("%s/%s", dir, EVR_CHAN_SOCKET);
    if (strlen(path) >= sizeof sa.sun_path) {
        evr_err_set(err, EVR_ERR_CONFIG, "control socket path %s is %zu bytes, longer than a "
                    "unix socket address holds (%zu): use a shorter state directory",
                    path, strlen(path), sizeof sa.sun_path - 1);
        free(path);
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat sb;
    if (fd >= 0 && lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(path);   /* an earlier runner's */
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) || chmod(path, 0600)
        || listen(fd, EVR_CHAN_MAX_CONNS)) {
        evr_err_set(err, EVR_ERR_IO, "control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return NULL;
    }
    evr_chan_t *self = evr_calloc(1, sizeof *self);
    self->loop = loop;
    self->cmds = cmds;
    self->arg = arg;
    self->fd = fd;
    self->path = path;
    if (evr_loop_fd_add(loop, fd, EVR_LOOP_READ, s_accept, self)) {
        evr_err_set(err, EVR_ERR_LIMIT, "control socket %s: the loop watches too many fds",
                    path);
        evr_chan_destroy(&self);
    }
    return self;
}

void
evr_chan_destroy(evr_chan_t **self_p)
{
    evr_chan_t *self = *self_p;
    if (!self)
        return;
    while (self->conns)
        s_conn_free(self->conns);
    evr_loop_timer_cancel(self->loop, self->backoff);
    evr_loop_fd_remove(self->loop, self->fd);
    close(self->fd);
    unlink(self->path);
    free(self->path);
    free(self);
    *self_p = NULL;
}
