/*  evrun-job: the client of a step's control channel, run inside a job.

    Linked statically against libc alone, so that it runs in any image
    (busybox included): the runner shows it to each step at
    /run/evrun/bin/evrun-job (podman) or DIR/bin/evrun-job (the process
    executor), first in PATH.  It speaks the channel's protocol
    (schema/PROTOCOL.md, "Job control channel"): one JSON request line,
    one JSON answer line, over the Unix socket EVRUN_CONTROL names
    (default /run/evrun/control.sock).  No JSON library: it writes its
    one request with escaping and reads the answer's "ok" and "error"
    with the small scanner below. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define S_VALUE_MAX 32768          /* EVR_JOB_SECRET_MAX */
/*  An answer line at most: `result` carries a job's outputs (up to 256
    values of 4 KiB) and steps, all of a broker's message (4 MiB) at
    worst, each byte escaped as \u00XX (6) at the very worst. */
#define S_ANSWER_MAX (32u << 20)
#define S_CONNECT_WAIT_MS 10000    /* a runner restarting listens again within this */
#define S_TRIGGER_WAIT_MS 120000    /* the broker's answer, the runner restarting */
#define S_ANSWER_WAIT_MS 60000
#define S_LINE_MAX 262144          /* a request line at most (EVR_CHAN_LINE_MAX) */
/*  The start of the error answered to a connection past the channel's
    most (as a JSON string's text): evrun-job asks again. */
#define S_FULL "\"too many connections to this step's channel"

static void
s_usage(FILE *f)
{
    fprintf(f,
            "usage: evrun-job COMMAND [ARGS]\n"
            "Talks to the runner of the step it runs in, over the step's control channel\n"
            "(the socket $EVRUN_CONTROL, default /run/evrun/control.sock).\n"
            "\n"
            "commands:\n"
            "  secret NAME   register the value read from stdin (at most %d bytes; one\n"
            "                trailing newline is dropped) as a secret of the job: from now\n"
            "                on it is masked (***) in every output of the job, and the\n"
            "                steps created after this one get it as variable NAME\n"
            "  trigger PIPELINE... [--file PATH]... [-a NAME=VALUE]... [--wait]\n"
            "                start a job of each registered PIPELINE (given the args,\n"
            "                each NAME once),\n"
            "                with this job and step recorded as its parent; the pipeline\n"
            "                must be in this job's triggers: (or the runner allow any).\n"
            "                --file PATH: a pipeline file of the job's source (its\n"
            "                ci_source when it has one) as it was before the steps ran,\n"
            "                PATH relative to its root and listed in triggers: as\n"
            "                file:PATH (or a glob); its errors come back with line and\n"
            "                column.  Prints each new job's id, one a line.  Without a\n"
            "                broker (evrun-runner --exec) prints the command that runs\n"
            "                each; with --exec --follow-triggers the runner runs them\n"
            "                after this job.\n"
            "                --wait: then waits for them to end: exit 0 when all\n"
            "                succeeded, 1 when one did not (refused for this job's own\n"
            "                pipeline when its concurrency is 1: that job could not\n"
            "                start before this one ends)\n"
            "  running PIPELINE\n"
            "                exit 0 when a job of PIPELINE runs or waits, 1 when none\n"
            "  result JOB|PIPELINE\n"
            "                print the job's (or the pipeline's newest job's) status,\n"
            "                steps (status, exit code) and outputs as one JSON line;\n"
            "                exit 1 when the broker knows no such job.  A pipeline\n"
            "                other than this job's own must be in its triggers:\n"
            "  hello         print what the channel serves (job, pipeline, step, attempt,\n"
            "                the commands it knows) as one JSON line\n"
            "  --version     print evrun-job's version, exit 0\n"
            "\n"
            "exit status: 0 done; 1 as said above; 2 usage, channel or refusal (the\n"
            "runner's message on stderr).\n",
            S_VALUE_MAX);
}

/*  Appends s[0,n) as a JSON string to buf (sized by the caller: 6n+3). */
static size_t
s_json_str(char *buf, const char *s, size_t n)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char) c;
        }
        else if (c < 0x20 || c == 0x7f)
            o += (size_t) sprintf(buf + o, "\\u%04x", c);
        else
            buf[o++] = (char) c;
    }
    buf[o++] = '"';
    return o;
}

/*  The offset of the first byte of s that starts no valid UTF-8
    character (no overlongs, surrogates, nothing past U+10FFFF), or -1
    when s is UTF-8: a JSON string carries nothing else, and the runner
    refuses a request that is not JSON. */
static long
s_utf8_bad(const char *s)
{
    const unsigned char *p = (const unsigned char *) s;
    for (size_t i = 0; p[i];) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2
                 : c >= 0xf0 && c <= 0xf4 ? 3 : 9;
        unsigned long cp = k == 0 ? c : k == 1 ? c & 0x1f : k == 2 ? c & 0x0f : c & 0x07;
        bool ok = k < 9;
        for (size_t j = 1; ok && j <= k; j++) {
            ok = (p[i + j] & 0xc0) == 0x80;   /* a NUL ends it: not a continuation */
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        ok = ok && !(k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
             && !(k == 3 && (cp < 0x10000 || cp > 0x10ffff));
        if (!ok)
            return (long) i;
        i += k + 1;
    }
    return -1;
}

/*  False, said, when s (what) is not UTF-8. */
static bool
s_utf8_ok(const char *cmd, const char *what, const char *s)
{
    long at = s_utf8_bad(s);
    if (at < 0)
        return true;
    fprintf(stderr, "evrun-job: %s: %s is not UTF-8 text (byte %ld is 0x%02x): the control "
            "channel carries UTF-8 only\n", cmd, what, at + 1, (unsigned char) s[at]);
    return false;
}

static void
s_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/*  Connected to the channel, or -1 (said on stderr). */
static int
s_connect(void)
{
    const char *path = getenv("EVRUN_CONTROL");
    if (!path || !*path)
        path = "/run/evrun/control.sock";
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "evrun-job: control socket path %s is too long\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    for (long waited = 0;; waited += 200) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            fprintf(stderr, "evrun-job: socket: %s\n", strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0)
            return fd;
        int e = errno;
        close(fd);
        struct stat st;   /* no runner restarting puts a file or directory there */
        if (e == ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "evrun-job: cannot reach the job's control channel at %s: %s, not "
                    "a socket (is this a step of an evrun job? EVRUN_CONTROL names the "
                    "socket)\n", path, S_ISDIR(st.st_mode) ? "a directory" : "a file");
            return -1;
        }
        if ((e != ECONNREFUSED && e != ENOENT && e != EAGAIN) || waited >= S_CONNECT_WAIT_MS) {
            fprintf(stderr, "evrun-job: cannot reach the job's control channel at %s: %s (is "
                    "this a step of an evrun job? EVRUN_CONTROL names the socket)\n", path,
                    strerror(e));
            return -1;
        }
        s_sleep_ms(200);   /* the runner may be restarting (recovery listens again) */
    }
}

/*  Skips one JSON value at *p (no validation beyond what finding its end
    needs).  False at a malformed end. */
static bool
s_skip(const char **p)
{
    const char *s = *p;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++)
            if (*s == '\\' && s[1])
                s++;
        if (!*s)
            return false;
        *p = s + 1;
        return true;
    }
    if (*s == '{' || *s == '[') {
        int depth = 0;
        do {
            if (*s == '"') {
                if (!s_skip(&s))
                    return false;
                continue;
            }
            if (*s == '{' || *s == '[')
                depth++;
            else if (*s == '}' || *s == ']')
                depth--;
            else if (!*s)
                return false;
            s++;
        } while (depth > 0);
        *p = s;
        return true;
    }
    while (*s && *s != ',' && *s != '}' && *s != ']')
        s++;
    *p = s;
    return true;
}

/*  The value of key at the top level of the object text, as its raw text
    [*v, *v+*n), or false. */
static bool
s_member(const char *text, const char *key, const char **v, size_t *n)
{
    const char *s = text;
    while (*s == ' ')
        s++;
    if (*s++ != '{')
        return false;
    size_t kl = strlen(key);
    while (*s) {
        while (*s == ' ' || *s == ',')
            s++;
        const char *k = s;
        if (*s != '"' || !s_skip(&s))
            return false;
        size_t klen = (size_t) (s - k);
        while (*s == ' ' || *s == ':')
            s++;
        const char *val = s;
        if (!s_skip(&s))
            return false;
        if (klen == kl + 2 && !strncmp(k + 1, key, kl)) {
            *v = val;
            *n = (size_t) (s - val);
            return true;
        }
        while (*s == ' ')
            s++;
        if (*s == '}')
            return false;
    }
    return false;
}

/*  The 4 hex digits at p as a number, or -1. */
static long
s_hex4(const char *p)
{
    long u = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        u = u << 4 | d;
    }
    return u;
}

/*  Writes code point u as UTF-8 (one not to be written, a lone surrogate,
    as U+FFFD). */
static void
s_put_utf8(FILE *f, long u)
{
    if (u >= 0xd800 && u <= 0xdfff)
        u = 0xfffd;
    if (u < 0x80)
        fputc((int) u, f);
    else if (u < 0x800) {
        fputc((int) (0xc0 | u >> 6), f);
        fputc((int) (0x80 | (u & 0x3f)), f);
    }
    else if (u < 0x10000) {
        fputc((int) (0xe0 | u >> 12), f);
        fputc((int) (0x80 | (u >> 6 & 0x3f)), f);
        fputc((int) (0x80 | (u & 0x3f)), f);
    }
    else {
        fputc((int) (0xf0 | u >> 18), f);
        fputc((int) (0x80 | (u >> 12 & 0x3f)), f);
        fputc((int) (0x80 | (u >> 6 & 0x3f)), f);
        fputc((int) (0x80 | (u & 0x3f)), f);
    }
}

/*  Prints a JSON string's text v[0,n) (its quotes included): its escapes
    undone, \u as UTF-8 (a surrogate pair as the one code point it makes),
    as any JSON encoder may have written them. */
static void
s_print_str(FILE *f, const char *v, size_t n)
{
    static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";   /* pairs: as written, meant */
    for (size_t i = 1; i + 1 < n; i++) {
        if (v[i] != '\\' || i + 2 >= n) {
            fputc(v[i], f);
            continue;
        }
        char c = v[++i];
        const char *e = strchr(esc, c);
        if (c && e && (e - esc) % 2 == 0) {
            fputc(e[1], f);
            continue;
        }
        long u = c == 'u' && i + 5 < n ? s_hex4(v + i + 1) : -1;
        if (u < 0) {   /* not an escape JSON has: as it stands */
            fputc('\\', f);
            fputc(c, f);
            continue;
        }
        i += 4;
        long lo = u >= 0xd800 && u <= 0xdbff && i + 7 < n && v[i + 1] == '\\' && v[i + 2] == 'u'
                  ? s_hex4(v + i + 3) : -1;
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        s_put_utf8(f, u);
    }
}

/*  An answer line, grown as it comes (from 64 KiB up to S_ANSWER_MAX):
    text is NUL-terminated, its newline dropped.  The caller frees text. */
typedef struct {
    char *text;
    size_t cap;
} s_answer_t;

/*  Sends req (one line, newline included), reads the answer line into
    ans.  Returns 0 when the answer says ok, 2 otherwise (said on stderr);
    3 (said on stderr too) when the channel failed before an answer, when
    retry is set. */
static int s_call_ex(const char *req, size_t len, s_answer_t *ans, bool retry);

static int
s_call(const char *req, size_t len, s_answer_t *ans)
{
    return s_call_ex(req, len, ans, false);
}

/*  Room in ans for more than got bytes and a NUL: false when it holds
    S_ANSWER_MAX already (or memory ran out, said). */
static bool
s_room(s_answer_t *ans, size_t got)
{
    if (got + 1 < ans->cap)
        return true;
    if (ans->cap >= S_ANSWER_MAX)
        return false;
    size_t cap = ans->cap ? 2 * ans->cap : 65536;
    char *p = realloc(ans->text, cap < S_ANSWER_MAX ? cap : S_ANSWER_MAX);
    if (!p) {
        fprintf(stderr, "evrun-job: out of memory for the runner's answer (%zu bytes)\n", got);
        return false;
    }
    ans->text = p;
    ans->cap = cap < S_ANSWER_MAX ? cap : S_ANSWER_MAX;
    return true;
}

/*  One connection's call: as s_call_ex, and 4 when the channel had too
    many connections to read the request (nothing was done). */
static int
s_call_once(const char *req, size_t len, s_answer_t *ans, bool retry)
{
    if (ans->text)
        ans->text[0] = '\0';   /* no earlier answer read as this one */
    int fd = s_connect();
    if (fd < 0)
        return retry ? 3 : 2;
    size_t off = 0;
    int sent = 0;   /* errno of a send the runner's close cut short: its answer may be in */
    while (off < len && !sent) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            sent = errno;   /* a full channel answers a connection and closes it at once */
        else if (w <= 0) {
            fprintf(stderr, "evrun-job: sending to the control channel: %s\n", strerror(errno));
            close(fd);
            return retry ? 3 : 2;
        }
        else
            off += (size_t) w;
    }
    size_t got = 0;
    char *nl = NULL;
    while (!nl && s_room(ans, got)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, S_ANSWER_WAIT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t r = pr > 0 ? recv(fd, ans->text + got, ans->cap - 1 - got, 0) : -1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 && sent) {
            fprintf(stderr, "evrun-job: sending to the control channel: %s\n", strerror(sent));
            close(fd);
            return retry ? 3 : 2;
        }
        if (r <= 0) {
            /* asked again (retry): said once, as what it is, not a failure */
            static bool said;
            if (!retry || !said)
                fprintf(stderr, "evrun-job: the runner did not answer%s%s%s\n",
                        r < 0 ? ": " : "",
                        r < 0 ? (pr == 0 ? "timed out" : strerror(errno)) : " (channel closed)",
                        retry ? "; asking again (a runner restarting answers once it "
                        "listens again)" : "");
            said = said || retry;
            close(fd);
            return retry ? 3 : 2;
        }
        nl = memchr(ans->text + got, '\n', (size_t) r);   /* the new bytes only */
        got += (size_t) r;
        ans->text[got] = '\0';
    }
    close(fd);
    if (!nl) {
        if (ans->cap >= S_ANSWER_MAX)
            fprintf(stderr, "evrun-job: the runner's answer is longer than %u bytes\n",
                    S_ANSWER_MAX - 1);
        return 2;
    }
    *nl = '\0';
    const char *v;
    size_t n;
    if (s_member(ans->text, "ok", &v, &n) && n == 4 && !strncmp(v, "true", 4))
        return 0;
    if (s_member(ans->text, "error", &v, &n) && !strncmp(v, S_FULL, strlen(S_FULL)))
        return 4;
    fprintf(stderr, "evrun-job: refused: ");
    if (s_member(ans->text, "error", &v, &n) && *v == '"')
        s_print_str(stderr, v, n);
    else
        fputs(ans->text, stderr);
    fputc('\n', stderr);
    return 2;
}

/*  A channel full of connections (other evrun-jobs of the step, run at
    once) refused the request before reading it: asked again, as a
    socket not there yet is, for S_CONNECT_WAIT_MS, then said. */
static int
s_call_ex(const char *req, size_t len, s_answer_t *ans, bool retry)
{
    for (long waited = 0;; waited += 50) {
        int rc = s_call_once(req, len, ans, retry);
        if (rc != 4)
            return rc;
        if (waited >= S_CONNECT_WAIT_MS) {
            fprintf(stderr, "evrun-job: the job's control channel had too many connections "
                    "(other evrun-jobs of this step) for %d s: run fewer at once\n",
                    S_CONNECT_WAIT_MS / 1000);
            return 2;
        }
        s_sleep_ms(50);
    }
}

static int
s_secret(const char *name)
{
    static char value[S_VALUE_MAX + 2];
    if (!s_utf8_ok("secret", "NAME", name))
        return 2;
    size_t n = 0;
    for (;;) {
        size_t r = fread(value + n, 1, sizeof value - n, stdin);
        n += r;
        if (r == 0 || n == sizeof value)
            break;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "evrun-job: secret %s: reading stdin: %s\n", name, strerror(errno));
        return 2;
    }
    if (n && value[n - 1] == '\n')
        n--;
    if (n > S_VALUE_MAX || n == 0 || memchr(value, '\0', n)) {
        fprintf(stderr, "evrun-job: secret %s: the value on stdin must be 1 to %d bytes "
                "without NUL (one trailing newline is dropped)\n", name, S_VALUE_MAX);
        return 2;
    }
    /* value_hex: any bytes but NUL, whether UTF-8 or not */
    size_t nl = strlen(name);
    char *req = malloc(6 * nl + 2 * n + 64);
    if (!req)
        return 2;
    size_t o = (size_t) sprintf(req, "{\"cmd\":\"secret\",\"name\":");
    o += s_json_str(req + o, name, nl);
    o += (size_t) sprintf(req + o, ",\"value_hex\":\"");
    for (size_t i = 0; i < n; i++)
        o += (size_t) sprintf(req + o, "%02x", (unsigned char) value[i]);
    req[o++] = '"';
    req[o++] = '}';
    req[o++] = '\n';
    /* asked again while the channel fails before an answer (the runner
       killed or restarting: a registration it kept and did not answer is
       made again, which changes nothing) */
    s_answer_t ans = { 0 };
    int rc = 3;
    for (long waited = 0, pause = 25; rc == 3 && waited < S_TRIGGER_WAIT_MS; waited += pause) {
        rc = s_call_ex(req, o, &ans, true);
        if (rc == 3) {
            pause = pause < 300 ? pause * 2 : 300;
            s_sleep_ms(pause);
        }
    }
    if (rc == 3) {
        fprintf(stderr, "evrun-job: secret %s: no answer from the runner within %d s\n", name,
                S_TRIGGER_WAIT_MS / 1000);
        rc = 2;
    }
    memset(req, 0, o);
    memset(value, 0, sizeof value);
    free(req);
    free(ans.text);
    return rc;
}

/*  A fresh ULID (time and random bytes): the call id of one trigger,
    the same in each retry of this invocation. */
static void
s_call_id(char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long ms = (unsigned long long) ts.tv_sec * 1000ull
                            + (unsigned long long) ts.tv_nsec / 1000000ull;
    unsigned char rnd[10] = { 0 };
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(rnd, 1, sizeof rnd, f) != sizeof rnd) {   /* unlikely: time and pid */
        unsigned long long x = (unsigned long long) ts.tv_nsec ^ ((unsigned long long) getpid() << 32);
        for (int i = 0; i < 10; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            rnd[i] = (unsigned char) (x >> 56);
    }
    if (f)
        fclose(f);
    for (int i = 9; i >= 0; i--, ms >>= 5)
        out[i] = b32[ms & 31];
    /* 80 random bits as 16 characters of 5 bits */
    for (int i = 0; i < 16; i++) {
        int bit = i * 5, v = 0;
        for (int k = 0; k < 5; k++, bit++)
            v = v << 1 | ((rnd[bit / 8] >> (7 - bit % 8)) & 1);
        out[10 + i] = b32[v];
    }
    out[26] = '\0';
}


/*  One trigger of pipeline with args (argv-style NAME=VALUE): asks until
    the runner says accepted, refused or local.  0, or 2 (said). */
static int
s_trigger_one(const char *pipeline, bool file, char *const *args, int nargs, bool wait,
              char child[32])
{
    char call[27];
    s_call_id(call);
    size_t cap = 6 * strlen(pipeline) + 144;
    for (int i = 0; i < nargs; i++)
        cap += 6 * strlen(args[i]) + 8;
    char *req = malloc(cap);
    if (!req)
        return 2;
    size_t o = (size_t) sprintf(req, "{\"cmd\":\"trigger\",\"%s\":", file ? "file" : "pipeline");
    o += s_json_str(req + o, pipeline, strlen(pipeline));
    o += (size_t) sprintf(req + o, ",\"call\":\"%s\",%s\"args\":{", call,
                          wait ? "\"wait\":true," : "");
    for (int i = 0; i < nargs; i++) {
        const char *eq = strchr(args[i], '=');
        o += (size_t) sprintf(req + o, "%s", i ? "," : "");
        o += s_json_str(req + o, args[i], (size_t) (eq - args[i]));
        req[o++] = ':';
        o += s_json_str(req + o, eq + 1, strlen(eq + 1));
    }
    o += (size_t) sprintf(req + o, "}}\n");
    if (o - 1 > S_LINE_MAX) {   /* the runner would refuse it and close */
        fprintf(stderr, "evrun-job: trigger %s: the request is %zu bytes, more than the control "
                "channel's %d (its args together, as JSON, a control character as 6 bytes): "
                "give fewer or shorter args\n", pipeline, o - 1, S_LINE_MAX);
        free(req);
        return 2;
    }
    s_answer_t a = { 0 };
    int rc = 3;
    for (long waited = 0, pause = 25; waited < S_TRIGGER_WAIT_MS; waited += pause) {
        rc = s_call_ex(req, o, &a, true);
        const char *ans = a.text;
        const char *v;
        size_t n;
        if (rc == 0 && s_member(ans, "local", &v, &n)) {
            if (s_member(ans, "command", &v, &n) && *v == '"') {
                printf("next job: %s: ", pipeline);
                s_print_str(stdout, v, n);
                putchar('\n');
            }
            break;
        }
        if (rc == 0 && !(s_member(ans, "state", &v, &n) && !strncmp(v, "\"pending\"", n))) {
            if (s_member(ans, "job", &v, &n) && *v == '"' && n == 28) {
                s_print_str(stdout, v, n);
                putchar('\n');
                memcpy(child, v + 1, 26);
                child[26] = '\0';
            }
            break;
        }
        if (rc == 2)
            break;
        pause = pause < 300 ? pause * 2 : 300;
        s_sleep_ms(pause);  /* pending, or the runner away: ask again, the same call */
    }
    free(req);
    free(a.text);
    fflush(stdout);
    if (rc == 0 || rc == 2)
        return rc;
    fprintf(stderr, "evrun-job: trigger %s: no answer from the broker within %d s\n", pipeline,
            S_TRIGGER_WAIT_MS / 1000);
    return 2;
}

#define S_FINAL "\"succeeded\"\"failed\"\"cancelled\"\"timed_out\"\"lost\""

/*  Asks req until the runner's answer is not pending (the broker has
    answered): 0 with the answer in ans, 2 refused (said), 3 the channel
    failed for S_TRIGGER_WAIT_MS. */
static int
s_poll(const char *req, size_t len, s_answer_t *ans)
{
    int rc = 3;
    for (long waited = 0, pause = 25; waited < S_TRIGGER_WAIT_MS; waited += pause) {
        rc = s_call_ex(req, len, ans, true);
        const char *v;
        size_t n;
        if (rc == 2 || (rc == 0 && !(s_member(ans->text, "state", &v, &n)
                                     && !strncmp(v, "\"pending\"", n))))
            return rc;
        pause = pause < 300 ? pause * 2 : 300;
        s_sleep_ms(pause);
    }
    fprintf(stderr, "evrun-job: no answer from the broker within %d s\n",
            S_TRIGGER_WAIT_MS / 1000);
    return 3;
}

/*  Waits for job to end: 0 succeeded, 1 otherwise, 2 when it cannot be
    followed. */
static int
s_wait_job(const char *job)
{
    char req[128];
    int len = snprintf(req, sizeof req, "{\"cmd\":\"result\",\"job\":\"%s\"}\n", job);
    s_answer_t a = { 0 };
    for (;;) {
        int rc = s_poll(req, (size_t) len, &a);
        const char *ans = a.text;
        if (rc) {
            free(a.text);
            return 2;
        }
        const char *v;
        size_t n;
        if (s_member(ans, "status", &v, &n) && n > 2 && n < 16) {
            char st[16];
            memcpy(st, v, n);
            st[n] = '\0';
            if (strstr(S_FINAL, st)) {
                const char *r;
                size_t rn;
                bool why = s_member(ans, "reason", &r, &rn) && rn > 2 && r[0] == '"';
                fprintf(stderr, "evrun-job: job %s: %.*s%s%.*s\n", job, (int) n - 2, v + 1,
                        why ? ": " : "", why ? (int) rn - 2 : 0, why ? r + 1 : "");
                rc = strcmp(st, "\"succeeded\"") ? 1 : 0;
                free(a.text);
                return rc;
            }
        }
        s_sleep_ms(500);
    }
}

/*  result JOB|PIPELINE: the answer printed; 1 for an unknown job. */
static int
s_result(const char *what)
{
    if (!s_utf8_ok("result", "JOB|PIPELINE", what))
        return 2;
    bool job = strlen(what) == 26 && strspn(what, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26;
    size_t wl = strlen(what);
    char *req = malloc(6 * wl + 64);
    if (!req)
        return 2;
    size_t o = (size_t) sprintf(req, "{\"cmd\":\"result\",\"%s\":", job ? "job" : "pipeline");
    o += s_json_str(req + o, what, wl);
    o += (size_t) sprintf(req + o, "}\n");
    s_answer_t ans = { 0 };
    int rc = s_poll(req, o, &ans);
    free(req);
    if (rc == 0)
        printf("%s\n", ans.text);
    if (rc == 2 && ans.text && strstr(ans.text, "\"result: no job "))
        rc = 1;   /* unknown (said on stderr) */
    free(ans.text);
    return rc == 3 ? 2 : rc;
}

/*  running PIPELINE: 0 when a job of it runs or waits, 1 when none. */
static int
s_running(const char *pipeline)
{
    if (!s_utf8_ok("running", "PIPELINE", pipeline))
        return 2;
    size_t pl = strlen(pipeline);
    char *req = malloc(6 * pl + 64);
    if (!req)
        return 2;
    size_t o = (size_t) sprintf(req, "{\"cmd\":\"running\",\"pipeline\":");
    o += s_json_str(req + o, pipeline, pl);
    o += (size_t) sprintf(req + o, "}\n");
    s_answer_t ans = { 0 };
    int rc = s_poll(req, o, &ans);
    free(req);
    const char *v;
    size_t n;
    long run = !rc && s_member(ans.text, "running", &v, &n) ? strtol(v, NULL, 10) : 0;
    long wait = !rc && s_member(ans.text, "waiting", &v, &n) ? strtol(v, NULL, 10) : 0;
    free(ans.text);
    return rc ? 2 : run + wait > 0 ? 0 : 1;
}

/*  trigger PIPELINE... [--file PATH]... [-a NAME=VALUE]... [--wait] */
static int
s_trigger(int argc, char **argv)
{
    char **pipes = calloc((size_t) argc, sizeof *pipes), **args = calloc((size_t) argc, sizeof *args);
    char (*kids)[32] = calloc((size_t) argc + 1, sizeof *kids);
    bool *isfile = calloc((size_t) argc + 1, sizeof *isfile);
    int np = 0, na = 0, rc = 0;
    bool wait = false;
    if (!pipes || !args || !kids || !isfile)
        rc = 2;
    for (int i = 0; !rc && i < argc; i++) {
        if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--arg")) {
            if (i + 1 >= argc || !strchr(argv[i + 1], '=') || argv[i + 1][0] == '=') {
                fprintf(stderr, "evrun-job: trigger: %s expects NAME=VALUE\n", argv[i]);
                rc = 2;
            }
            else {
                const char *kv = argv[++i];
                size_t kl = (size_t) (strchr(kv, '=') - kv);
                for (int k = 0; k < na; k++)
                    if (!strncmp(args[k], kv, kl + 1)) {
                        fprintf(stderr, "evrun-job: trigger: -a \"%.*s\": given twice (each "
                                "arg once)\n", (int) kl, kv);
                        rc = 2;
                    }
                args[na++] = (char *) kv;
            }
        }
        else if (!strcmp(argv[i], "--wait"))
            wait = true;
        else if (!strcmp(argv[i], "--file") || !strcmp(argv[i], "-f")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "evrun-job: trigger: %s expects a PATH of the job's source\n",
                        argv[i]);
                rc = 2;
            }
            else {
                isfile[np] = true;
                pipes[np++] = argv[++i];
            }
        }
        else if (argv[i][0] == '-') {
            fprintf(stderr, "evrun-job: trigger: unknown option %s\n", argv[i]);
            rc = 2;
        }
        else
            pipes[np++] = argv[i];
    }
    if (!rc && !np) {
        fprintf(stderr, "evrun-job: trigger: name at least one PIPELINE (or --file PATH)\n");
        rc = 2;
    }
    for (int i = 0; !rc && i < np; i++)
        if (!s_utf8_ok("trigger", isfile[i] ? "--file PATH" : "PIPELINE", pipes[i]))
            rc = 2;
    for (int i = 0; !rc && i < na; i++) {
        char what[48];
        snprintf(what, sizeof what, "-a NAME=VALUE number %d", i + 1);
        if (!s_utf8_ok("trigger", what, args[i]))
            rc = 2;
    }
    for (int i = 0; !rc && i < np; i++)
        rc = s_trigger_one(pipes[i], isfile[i], args, na, wait, kids[i]);
    /* --wait: 0 when every one succeeded, 1 when one did not, 2 when one
       cannot be followed; local (--exec): no job to wait for */
    for (int i = 0, w; rc != 2 && wait && i < np; i++)
        if (kids[i][0] && (w = s_wait_job(kids[i])) > rc)
            rc = w;
    free(pipes);
    free(args);
    free(kids);
    free(isfile);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        s_usage(stdout);
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("evrun-job %s\n", EVR_VERSION);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "secret"))
        return s_secret(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "trigger"))
        return s_trigger(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(argv[1], "running"))
        return s_running(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "result"))
        return s_result(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "hello")) {
        static const char req[] = "{\"cmd\":\"hello\"}\n";
        s_answer_t ans = { 0 };
        int rc = s_call(req, sizeof req - 1, &ans);
        if (!rc)
            printf("%s\n", ans.text);
        free(ans.text);
        return rc;
    }
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    /* one line, not the whole usage after it (which hid it) */
    static const char *const cmds[][2] = {
        { "secret", "one NAME (the value on stdin)" }, { "running", "one PIPELINE" },
        { "result", "one JOB or PIPELINE" }, { "hello", "no argument" },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i][0])) {
            fprintf(stderr, "evrun-job %s: expected %s, got %d (evrun-job --help)\n", argv[1],
                    cmds[i][1], argc - 2);
            return 2;
        }
    fprintf(stderr, "evrun-job: unknown command \"%s\": expected secret, trigger, running, "
            "result or hello (evrun-job --help describes them)\n", argv[1]);
    return 2;
}
