/*  evr_source.c: a job's source made into a tar (see evr_source.h).

    The git checkout is a short shell script run by /bin/sh in a child
    process of its own group, its stdout and stderr one pipe watched on
    the loop; the script's results come back in a small file (commit,
    objects fetched), its last words on the pipe make the error message.
    The script holds an flock(1) on the repository's cache entry, so
    that two jobs fetching the same repository take turns, and a runner
    killed mid-checkout leaves a child that finishes (or dies) on its own:
    the next checkout waits for the lock, and git's own atomic updates
    keep the cache whole.  Credentials go to git through the environment
    (GIT_CONFIG_*: an http.extraHeader for the repository's own server),
    never on a command line; a submodule's URL (the job's .gitmodules) is
    checked before git sees it.  The
    submodules' tars the script leaves are merged into the commit's with
    libarchive in a child process too (evr_offload.h): a large tree takes
    seconds, which the loop (other jobs' output, the heartbeat) must not
    wait for.
*/
#define _GNU_SOURCE
#include "evr_source.h"
#include "evr_artifact.h"
#include "evr_codec.h"
#include "evr_offload.h"
#include "evr_reap.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define S_TAIL 2048             /* the child's last words kept for a message */
#define S_WORDS 400             /* of them, what a message quotes */
#define S_TIMEOUT_MS (10u * 60u * 1000u)

/*  $EVR_* in, "commit SHA" and "objects N" lines out in $EVR_INFO.  Exit
    codes: 3 the ref is not in the repository, 4 over the size limit. */
static const char s_script[] =
    "set -e\n"
    "mkdir -p \"$EVR_CACHE_DIR\"\n"
    "exec 9>\"$EVR_CACHE.lock\"\n"
    "flock 9\n"
    "if [ ! -f \"$EVR_CACHE/HEAD\" ]; then rm -rf \"$EVR_CACHE\"; "
    "git init -q --bare \"$EVR_CACHE\"; fi\n"
    "touch \"$EVR_CACHE\"\n"   /* its last use (evr_source_cache_trim) */
    "export GIT_DIR=\"$EVR_CACHE\"\n"
    /* a URL's scheme and server, lower case: scheme://host[:port] */
    "origin() { printf %s \"$1\" | sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://)([^@/?#]*@)?([^/?#]*).*#\\1\\3#' "
    "| tr A-Z a-z; }\n"
    "count() { git count-objects -v | awk '/^count:/{c=$2} /^in-pack:/{p=$2} "
    "END{print c+p}'; }\n"
    "before=$(count)\n"
    "d=\n"
    "[ \"$EVR_DEPTH\" -gt 0 ] && d=--depth=$EVR_DEPTH\n"
    "if [ -z \"$d\" ] && [ \"$(git rev-parse --is-shallow-repository)\" = true ]; then "
    "d=--unshallow; fi\n"
    "ref=$EVR_REF\n"
    /* a ref the remote lacks: 3; the fetch failed otherwise: 6 */
    "fetch() { git fetch -q --no-tags $d --end-of-options \"$EVR_URL\" \"$@\" 2>\"$EVR_INFO.err\" && return 0; "
    "cat \"$EVR_INFO.err\" >&2; grep -qi \"couldn't find remote ref\\|not our ref\" "
    "\"$EVR_INFO.err\" && exit 3; exit 6; }\n"
    "if printf %s \"$ref\" | grep -Eqx '[0-9a-f]{40}|[0-9a-f]{64}'; then\n"
    "  if [ -n \"$d\" ] || ! git cat-file -e \"$ref^{commit}\" 2>/dev/null; then\n"
    /* a server that refuses a SHA asked for: its branches and tags */
    "    git fetch -q --no-tags $d --end-of-options \"$EVR_URL\" \"$ref\" 2>/dev/null || "
    "fetch '+refs/heads/*:refs/evrun-heads/*' '+refs/tags/*:refs/tags/*'\n"
    "    git cat-file -e \"$ref^{commit}\" 2>/dev/null || "
    "{ echo \"commit $ref: not found\" >&2; exit 3; }\n"
    "  fi\n"
    "  commit=$(git rev-parse --verify -q \"$ref^{commit}\") || exit 3\n"
    "else\n"
    "  fetch \"$ref\"\n"
    "  commit=$(git rev-parse --verify -q FETCH_HEAD^{commit}) || exit 3\n"
    "fi\n"
    "git update-ref \"refs/evrun/$commit\" \"$commit\"\n"
    "after=$(count)\n"
    "max=$((EVR_MAX_BYTES + 1))\n"
    "git archive --format=tar --prefix=\"$EVR_PREFIX\" \"$commit\" | head -c $max "
    "> \"$EVR_OUT\"\n"
    "used=$(wc -c < \"$EVR_OUT\")\n"
    "[ $used -lt $max ] || exit 4\n"
    "n=$((after - before)); [ $n -ge 0 ] || n=0\n"
    "printf 'commit %s\\nobjects %s\\n' \"$commit\" \"$n\" > \"$EVR_INFO\"\n"
    "[ \"$EVR_SUBMODULES\" = 1 ] || exit 0\n"
    "git cat-file -e \"$commit:.gitmodules\" 2>/dev/null || exit 0\n"
    /* one level: each submodule's commit from its own cache entry, its
       tree in a tar of its own ($EVR_OUT.subN) that evr_source merges */
    "git config --blob \"$commit:.gitmodules\" --get-regexp '^submodule\\..*\\.path$' |\n"
    "{ i=0; while read -r key path; do\n"
    "  name=${key#submodule.}; name=${name%.path}\n"
    "  url=$(git config --blob \"$commit:.gitmodules\" --get \"submodule.$name.url\")\n"
    "  base=${EVR_URL%/}\n"
    "  while :; do case $url in ../*) url=${url#../}; base=${base%/*};; ./*) url=${url#./};; "
    "*) break;; esac; done\n"
    "  case $url in *://*) ;; *) url=$base/$url;; esac\n"
    /* the .gitmodules of the repository is the job's code, not the
       operator's: a URL of the schemes the pipeline's own may have (one
       starting with '-' would be an option of git's), on the
       repository's own server (scheme, host and port): elsewhere, with
       the runner user's ssh keys or from its network, it could fetch what
       the job may not see (a private repository, a local service) */
    "  case $url in https://*|http://*|git://*|ssh://*|file://*) ;;\n"
    "    *) echo \"submodule $path: its url must be https://, http://, git:// or ssh:// (or a path "
    "relative to the repository's)\" >&2; exit 5;; esac\n"
    "  [ \"$(origin \"$url\")\" = \"$(origin \"$EVR_URL\")\" ] || { echo \"submodule $path: its "
    "url is not on the repository's server ($(origin \"$EVR_URL\")): a submodule's url must be "
    "relative to the repository's, or on its server\" >&2; exit 5; }\n"
    "  case /$path/ in */../*|*/./*|//*) echo \"submodule $name: its path $path leaves the "
    "tree\" >&2; exit 5;; esac\n"
    "  sha=$(git ls-tree \"$commit\" -- \"$path\" | awk '$2==\"commit\"{print $3}')\n"
    "  [ -n \"$sha\" ] || continue\n"
    "  sc=\"$EVR_CACHE_DIR/sub-$(printf %s \"$url\" | sha256sum | cut -c1-32).git\"\n"
    "  [ -f \"$sc/HEAD\" ] || git init -q --bare \"$sc\"\n"
    "  touch \"$sc\"\n"
    "  GIT_DIR=$sc git cat-file -e \"$sha^{commit}\" 2>/dev/null || "
    "GIT_DIR=$sc git fetch -q --no-tags --end-of-options \"$url\" \"$sha\" || "
    "{ echo \"submodule $path: commit $sha not found in $url\" >&2; exit 5; }\n"
    "  GIT_DIR=$sc git update-ref \"refs/evrun/$sha\" \"$sha\"\n"
    "  i=$((i + 1))\n"
    /* the submodules' tars and the commit's together under the limit */
    "  left=$((max - used))\n"
    "  GIT_DIR=$sc git archive --format=tar --prefix=\"$EVR_PREFIX$path/\" \"$sha\" "
    "| head -c $left > \"$EVR_OUT.sub$i\"\n"
    "  sz=$(wc -c < \"$EVR_OUT.sub$i\"); [ $sz -lt $left ] || exit 4; used=$((used + sz))\n"
    "  echo \"subs $i\" >> \"$EVR_INFO\"\n"
    "done; }\n";

struct evr_source_req {
    evr_loop_t *loop;
    evr_source_fn *fn;
    void *arg;
    pid_t pid;
    int fd;                 /* the child's output; -1 once it ended */
    uint64_t timer;         /* the deadline, then the reap retries */
    bool timed_out;
    int status;
    char tail[S_TAIL];      /* the child's last output */
    size_t tlen;
    char *tar_out, *info;
    char *url, *ref;        /* for messages */
    uint64_t max_bytes, timeout_ms;
    char *start_err;        /* fork failed: said from a turn */
    uint64_t t0;            /* the start (evr_mono_ns), for the deadline */
    evr_offload_t *merge;   /* the submodules' tars merged, in a child */
    unsigned subs;          /* how many the script left: tar_out.subN */
    char commit[72];
    unsigned long long objects;
};

char *
evr_source_cache_path(const char *cache_dir, const char *url)
{
    /* readable, and unique by a 64-bit FNV-1a of the whole URL, with an
       offset basis of its own (FNV's standard one has a digit more: this
       one was written short once and is kept, since it names the caches
       runners hold already; any odd basis hashes as well) */
    uint64_t h = 1469598103934665603ull;
    for (const char *c = url; *c; c++)
        h = (h ^ (unsigned char) *c) * 1099511628211ull;
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    char name[72];
    size_t n = 0;
    for (; *s && n < 48; s++)
        name[n++] = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
                         || (*s >= '0' && *s <= '9') || *s == '.' || *s == '-'
                        ? *s : '_';
    name[n] = '\0';
    return evr_asprintf("%s/%s-%016llx.git", cache_dir, name, (unsigned long long) h);
}

/*  "Basic base64(user:password)", or "Bearer token" without a ':'. */
static char *
s_auth_header(const char *auth)
{
    if (!strchr(auth, ':'))
        return evr_asprintf("Authorization: Bearer %s", auth);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(auth);
    char *enc = evr_malloc(4 * (n / 3 + 1) + 1), *o = enc;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) (unsigned char) auth[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t) (unsigned char) auth[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char) auth[i + 2];
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    char *h = evr_asprintf("Authorization: Basic %s", enc);
    free(enc);
    return h;
}

/*  The child's environment: the runner's PATH and HOME (ssh's keys), git
    kept from the runner's own git configuration and from prompting, and
    the script's inputs.  Made before fork (the child only execs). */
static char **
s_env(const evr_source_git_opts_t *o, const char *cache, const char *info)
{
    size_t cap = 32, n = 0;
    char **env = evr_calloc(cap, sizeof(char *));
    const char *path = getenv("PATH"), *home = getenv("HOME");
    env[n++] = evr_asprintf("PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (home)
        env[n++] = evr_asprintf("HOME=%s", home);
    env[n++] = evr_strdup("LC_ALL=C");
    env[n++] = evr_strdup("GIT_TERMINAL_PROMPT=0");
    env[n++] = evr_strdup("GIT_CONFIG_NOSYSTEM=1");
    env[n++] = evr_strdup("GIT_CONFIG_GLOBAL=/dev/null");
    env[n++] = evr_strdup("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
    env[n++] = evr_asprintf("EVR_CACHE_DIR=%s", o->cache_dir);
    env[n++] = evr_asprintf("EVR_CACHE=%s", cache);
    env[n++] = evr_asprintf("EVR_URL=%s", o->git->url);
    env[n++] = evr_asprintf("EVR_REF=%s", o->git->ref ? o->git->ref : "HEAD");
    env[n++] = evr_asprintf("EVR_DEPTH=%u", o->git->depth);
    env[n++] = evr_asprintf("EVR_SUBMODULES=%d", o->git->submodules ? 1 : 0);
    env[n++] = evr_asprintf("EVR_PREFIX=%s", o->prefix);
    env[n++] = evr_asprintf("EVR_OUT=%s", o->tar_out);
    env[n++] = evr_asprintf("EVR_INFO=%s", info);
    env[n++] = evr_asprintf("EVR_MAX_BYTES=%llu", (unsigned long long) o->max_bytes);
    /* file:// only for a file:// repository (its submodules may be
       file:// too: refused by default since git 2.38.1); the cache's
       housekeeping runs inside the lock, not detached from it; the
       credentials go only to the repository's own server (scheme, host
       and port), not to a submodule's elsewhere */
    bool file = strncmp(o->git->url, "file://", 7) == 0;
    env[n++] = evr_asprintf("EVR_FILE_OK=%d", file ? 1 : 0);
    char *header = o->auth ? s_auth_header(o->auth) : NULL;
    env[n++] = evr_asprintf("GIT_CONFIG_COUNT=%d", header ? 4 : 3);
    env[n++] = evr_strdup("GIT_CONFIG_KEY_0=protocol.file.allow");
    env[n++] = evr_asprintf("GIT_CONFIG_VALUE_0=%s", file ? "always" : "never");
    env[n++] = evr_strdup("GIT_CONFIG_KEY_1=gc.autoDetach");
    env[n++] = evr_strdup("GIT_CONFIG_VALUE_1=false");
    env[n++] = evr_strdup("GIT_CONFIG_KEY_2=maintenance.autoDetach");
    env[n++] = evr_strdup("GIT_CONFIG_VALUE_2=false");
    if (header) {
        const char *host = strstr(o->git->url, "://");
        size_t olen = host ? (size_t) (host + 3 - o->git->url) + strcspn(host + 3, "/?#") : 0;
        env[n++] = evr_asprintf("GIT_CONFIG_KEY_3=http.%.*s/.extraHeader", (int) olen,
                                o->git->url);
        env[n++] = evr_asprintf("GIT_CONFIG_VALUE_3=%s", header);
        free(header);
    }
    return env;
}

static void
s_free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

static void s_report(evr_source_req_t *req);

static void
s_reap(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_source_req_t *req = arg;
    req->timer = 0;
    pid_t r = waitpid(req->pid, &req->status, WNOHANG);
    if (r == 0) {   /* its output ended a moment before it exits */
        req->timer = evr_loop_timer_add(req->loop, 5, s_reap, req);
        return;
    }
    if (r < 0)
        req->status = -1;
    req->pid = 0;
    s_report(req);
}

static void
s_timeout_msg(const evr_source_req_t *req, char *msg, size_t size)
{
    snprintf(msg, size, "git: the checkout of %.200s took longer than its time limit (%llu s)",
             req->url, (unsigned long long) (req->timeout_ms / 1000));
}

static void s_unlink_subs(const evr_source_req_t *req);
static void s_finish(evr_source_req_t *req, evr_rc_t rc, const char *msg);

static void
s_deadline(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_source_req_t *req = arg;
    req->timer = 0;
    req->timed_out = true;
    if (req->merge) {   /* the merge's child killed, its files removed */
        evr_offload_cancel(&req->merge);
        s_unlink_subs(req);
        char msg[EVR_ERR_MAX];
        s_timeout_msg(req, msg, sizeof msg);
        s_finish(req, EVR_ERR_IO, msg);
        return;
    }
    kill(-req->pid, SIGKILL);   /* its output then ends */
}

static void
s_readable(evr_loop_t *loop, int fd, int events, void *arg)
{
    (void) events;
    evr_source_req_t *req = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        size_t k = (size_t) n;
        if (k >= S_TAIL) {
            memcpy(req->tail, buf + k - (S_TAIL - 1), S_TAIL - 1);
            req->tlen = S_TAIL - 1;
        }
        else {
            if (req->tlen + k >= S_TAIL) {
                size_t drop = req->tlen + k - (S_TAIL - 1);
                memmove(req->tail, req->tail + drop, req->tlen - drop);
                req->tlen -= drop;
            }
            memcpy(req->tail + req->tlen, buf, k);
            req->tlen += k;
        }
        return;
    }
    evr_loop_fd_remove(loop, fd);
    close(fd);
    req->fd = -1;
    evr_loop_timer_cancel(loop, req->timer);
    req->timer = 0;
    s_reap(loop, req);
}

/*  What the child said went wrong, for a message, into out (size bytes):
    git's `fatal:` and `error:` lines joined with "; " (its advice after
    them, "Please make sure you have the correct access rights...", left
    out), else the last line of its output.  Returns out. */
static const char *
s_last_words(evr_source_req_t *req, char *out, size_t size)
{
    req->tail[req->tlen] = '\0';
    while (req->tlen && (req->tail[req->tlen - 1] == '\n' || req->tail[req->tlen - 1] == ' '))
        req->tail[--req->tlen] = '\0';
    size_t len = 0;
    out[0] = '\0';
    for (const char *l = req->tail; *l && len + 1 < size;) {
        size_t n = strcspn(l, "\n");
        if (!strncmp(l, "fatal:", 6) || !strncmp(l, "error:", 6)) {
            int k = snprintf(out + len, size - len, "%s%.*s", len ? "; " : "", (int) n, l);
            len = k > 0 && (size_t) k < size - len ? len + (size_t) k : size - 1;
        }
        l += n + (l[n] == '\n');
    }
    if (!len) {
        const char *nl = strrchr(req->tail, '\n'), *w = nl ? nl + 1 : req->tail;
        size_t n = strlen(w) < size ? strlen(w) : size - 1;
        memcpy(out, w, n);
        out[n] = '\0';
    }
    evr_utf8_clean(out);
    return out;
}

/*  Copies every entry of the tar from into out; false with err set. */
static bool
s_copy_entries(const char *from, struct archive *out, evr_err_t *err)
{
    struct archive *in = archive_read_new();
    archive_read_support_format_tar(in);
    bool ok = archive_read_open_filename(in, from, 65536) == ARCHIVE_OK;
    struct archive_entry *e;
    int r = ARCHIVE_OK;
    while (ok && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
        ok = archive_write_header(out, e) == ARCHIVE_OK;
        const void *buf;
        size_t len;
        int64_t off;
        int d;
        while (ok && (d = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
            ok = archive_write_data(out, buf, len) == (la_ssize_t) len;
        ok = ok && d == ARCHIVE_EOF;
    }
    ok = ok && r == ARCHIVE_EOF;
    if (!ok) {   /* a name it quotes escaped: no raw byte in a reason */
        char why[EVR_ERR_MAX / 2];
        evr_text_escape_ctl(archive_error_string(in) ? archive_error_string(in)
                            : archive_error_string(out) ? archive_error_string(out)
                            : "a damaged tar", why, sizeof why);
        evr_err_set(err, EVR_ERR_IO, "git: merging the submodules' trees: %s", why);
    }
    archive_read_free(in);
    return ok;
}

/*  The commit's tar and its n submodules' tars (tar.subI) made one
    (through tar.merged).  Runs in the merge's child (evr_offload.h). */
static evr_rc_t
s_merge_subs(const char *tar, unsigned n, evr_err_t *err)
{
    char *tmp = evr_asprintf("%s.merged", tar);
    struct archive *out = archive_write_new();
    archive_write_set_format_pax_restricted(out);
    /* names as git wrote them, bytes that are not UTF-8 too (a Latin-1
       file name): not converted through the locale, which refuses them */
    archive_write_set_format_option(out, "pax", "hdrcharset", "BINARY");
    bool ok = archive_write_open_filename(out, tmp) == ARCHIVE_OK;
    if (!ok)
        evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, archive_error_string(out));
    ok = ok && s_copy_entries(tar, out, err);
    for (unsigned i = 1; i <= n; i++) {
        char *sub = evr_asprintf("%s.sub%u", tar, i);
        ok = ok && s_copy_entries(sub, out, err);
        unlink(sub);
        free(sub);
    }
    if (archive_write_close(out) != ARCHIVE_OK && ok) {
        evr_err_set(err, EVR_ERR_IO, "%s: %s", tmp, archive_error_string(out));
        ok = false;
    }
    archive_write_free(out);
    if (ok && rename(tmp, tar) != 0) {
        evr_err_set(err, EVR_ERR_IO, "%s: %s", tar, strerror(errno));
        ok = false;
    }
    unlink(tmp);
    free(tmp);
    return ok ? EVR_OK : EVR_ERR_IO;
}

/*  The submodules' tars and the merge's temporary file, whatever a merge
    (done, failed or killed) or a script that failed or was killed
    midway (its tars up to the one it stopped at: tar.sub1, 2, ... with
    no gap) left of them. */
static void
s_unlink_tars(const char *tar_out, unsigned subs)
{
    for (unsigned i = 1;; i++) {
        char *sub = evr_asprintf("%s.sub%u", tar_out, i);
        bool gone = unlink(sub) != 0 && errno == ENOENT;
        free(sub);
        if (gone && i > subs)
            break;
    }
    char *tmp = evr_asprintf("%s.merged", tar_out);
    unlink(tmp);
    free(tmp);
}

static void
s_unlink_subs(const evr_source_req_t *req)
{
    s_unlink_tars(req->tar_out, req->subs);
}

/*  The end: fn called with rc (msg saying why), the request freed. */
static void
s_finish(evr_source_req_t *req, evr_rc_t rc, const char *msg)
{
    char commit[sizeof req->commit];   /* req is freed before fn */
    memcpy(commit, req->commit, sizeof commit);
    evr_source_result_t r = { .rc = rc, .msg = rc ? msg : "", .commit = commit,
                              .objects = req->objects };
    struct stat sb;
    if (!rc && stat(req->tar_out, &sb) == 0)
        r.tar_bytes = (uint64_t) sb.st_size;
    if (rc)
        unlink(req->tar_out);
    evr_source_fn *fn = req->fn;
    void *arg = req->arg;
    evr_source_cancel(&req);
    fn(&r, arg);
}

/*  What the merge's child reports. */
typedef struct {
    int32_t rc;
    char msg[EVR_ERR_MAX];
} s_merged_t;
EVR_OFFLOAD_FITS(s_merged_t);

/*  In the merge's child: req is its snapshot, read only. */
static void
s_merge_work(void *arg, void *out, size_t size)
{
    (void) size;
    const evr_source_req_t *req = arg;
    s_merged_t *m = out;
    evr_err_t err = { 0 };
    m->rc = (int32_t) s_merge_subs(req->tar_out, req->subs, &err);
    if (m->rc)
        snprintf(m->msg, sizeof m->msg, "%s", err.msg);
}

/*  Back on the loop: the merged tar is the checkout's (or not: why). */
static void
s_merged(evr_rc_t rc, const char *msg, const void *out, void *arg)
{
    evr_source_req_t *req = arg;
    const s_merged_t *m = out;
    req->merge = NULL;
    s_unlink_subs(req);
    char why[2 * EVR_ERR_MAX];
    if (rc)
        snprintf(why, sizeof why, "git: merging the submodules' trees: %s", msg);
    else
        snprintf(why, sizeof why, "%s", m->msg);
    s_finish(req, rc ? EVR_ERR_IO : (evr_rc_t) m->rc, why);
}

/*  The script is done, with subs submodules' tars: they are merged in a
    child, under what is left of the checkout's time limit. */
static void
s_merge_start(evr_source_req_t *req, unsigned subs)
{
    req->subs = subs;
    req->merge = evr_offload_start(req->loop, s_merge_work, sizeof(s_merged_t), s_merged, req);
    evr_offload_what(req->merge, "merging the submodules' trees of %s", req->url);
    char *tmp = evr_asprintf("%s.merged", req->tar_out);
    evr_offload_temp(req->merge, tmp);
    evr_offload_temp(req->merge, req->tar_out);   /* rename()d onto as it ends */
    free(tmp);
    uint64_t spent = (evr_mono_ns() - req->t0) / 1000000u;
    req->timer = evr_loop_timer_add(req->loop, spent < req->timeout_ms
                                    ? req->timeout_ms - spent : 0, s_deadline, req);
}

static void
s_report(evr_source_req_t *req)
{
    char msg[2 * EVR_ERR_MAX] = "";
    evr_rc_t rc = EVR_OK;
    int code = WIFEXITED(req->status) ? WEXITSTATUS(req->status) : -1;
    char buf[S_WORDS];
    const char *words = s_last_words(req, buf, sizeof buf);
    if (req->start_err)
        snprintf(msg, sizeof msg, "%s", req->start_err);
    else if (req->timed_out)
        s_timeout_msg(req, msg, sizeof msg);
    else if (code == 3)
        snprintf(msg, sizeof msg, "git: ref \"%.256s\" is not in %.200s (a branch, tag or full "
                 "commit SHA)%s%.200s", req->ref, req->url, *words ? ": " : "", words);
    else if (code == 127 || strstr(words, "git: not found"))
        snprintf(msg, sizeof msg, "git: the git command is not installed on this runner (apt-get "
                 "install git): %.200s", words);
    else if (code == 6)
        snprintf(msg, sizeof msg, "git: fetching %.200s failed%s: %.300s", req->url,
                 strstr(words, "Username") || strstr(words, "uthentication")
                 ? " (a private repository: name a secret holding USER:PASSWORD in git.secret)"
                 : "", *words ? words : "no reason given");
    else if (code == 4)
        snprintf(msg, sizeof msg, "git: the tree is over the limit of %llu bytes (the runner's "
                 "resource_max_bytes setting)", (unsigned long long) req->max_bytes);
    else if (code != 0 && req->status != -1 && WIFSIGNALED(req->status)) {
        char how[64];   /* not by evrun: a timeout is said above */
        snprintf(msg, sizeof msg, "git: the checkout was %s%s%.400s",
                 evr_wait_text(req->status, how, sizeof how), *words ? ": " : "", words);
    }
    else if (code != 0)
        snprintf(msg, sizeof msg, "git: %.400s", *words ? words : "the checkout failed");
    if (req->start_err || req->timed_out || code != 0)
        rc = code == 4 ? EVR_ERR_LIMIT : EVR_ERR_IO;
    FILE *fp = rc ? NULL : fopen(req->info, "re");
    unsigned subs = 0;
    if (fp) {
        if (fscanf(fp, "commit %64s objects %llu", req->commit, &req->objects) != 2)
            req->commit[0] = '\0';
        while (fscanf(fp, " subs %u", &subs) == 1)
            ;
        fclose(fp);
    }
    if (!rc && !req->commit[0]) {
        snprintf(msg, sizeof msg, "git: the checkout said no commit");
        rc = EVR_ERR_IO;
    }
    if (!rc && subs)
        s_merge_start(req, subs);
    else
        s_finish(req, rc, msg);
}

static void
s_start_failed(evr_loop_t *loop, void *arg)
{
    (void) loop;
    evr_source_req_t *req = arg;
    req->timer = 0;
    s_report(req);
}

evr_source_req_t *
evr_source_git_start(evr_loop_t *loop, const evr_source_git_opts_t *o, evr_source_fn *fn,
                     void *arg)
{
    evr_source_req_t *req = evr_calloc(1, sizeof *req);
    req->loop = loop;
    req->fn = fn;
    req->arg = arg;
    req->fd = -1;
    req->tar_out = evr_strdup(o->tar_out);
    req->info = evr_asprintf("%s.info", o->tar_out);
    req->max_bytes = o->max_bytes;
    req->timeout_ms = o->timeout_ms ? o->timeout_ms : S_TIMEOUT_MS;
    req->url = evr_strdup(o->git->url);
    req->ref = evr_strdup(o->git->ref ? o->git->ref : "HEAD");
    req->t0 = evr_mono_ns();
    char *cache = evr_source_cache_path(o->cache_dir, o->git->url);
    char **env = s_env(o, cache, req->info);
    free(cache);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        req->start_err = evr_asprintf("git: pipe: %s", strerror(errno));
        req->timer = evr_loop_timer_add(loop, 0, s_start_failed, req);
        s_free_env(env);
        return req;
    }
    char *const argv[] = { "sh", "-c", (char *) s_script, "evrun-checkout", NULL };
    pid_t pid = fork();
    if (pid == 0) {   /* the child: only async-signal-safe calls until exec */
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        if (close_range(3, ~0u, 0) != 0)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        execve("/bin/sh", argv, env);
        _exit(127);
    }
    close(p[1]);
    s_free_env(env);
    if (pid < 0) {
        close(p[0]);
        req->start_err = evr_asprintf("git: fork: %s", strerror(errno));
        req->timer = evr_loop_timer_add(loop, 0, s_start_failed, req);
        return req;
    }
    setpgid(pid, pid);   /* either side may come first */
    req->pid = pid;
    req->fd = p[0];
    fcntl(req->fd, F_SETFL, fcntl(req->fd, F_GETFL) | O_NONBLOCK);
    if (evr_loop_fd_add(loop, req->fd, EVR_LOOP_READ, s_readable, req) != EVR_OK) {
        kill(-pid, SIGKILL);
        req->start_err = evr_strdup("git: the loop watches too many files");
        close(req->fd);
        req->fd = -1;
        evr_reap_later(loop, pid, NULL, NULL);   /* no file of its yet */
        req->pid = 0;
        req->timer = evr_loop_timer_add(loop, 0, s_start_failed, req);
        return req;
    }
    req->timer = evr_loop_timer_add(loop, req->timeout_ms, s_deadline, req);
    return req;
}

/* ------------------------------------------------------ killed children */

/*  tar_out's leftovers: its submodules' tars, the merge's temporary
    file, info and info.err. */
static void
s_unlink_left(const char *tar_out, const char *info, unsigned subs)
{
    if (tar_out)
        s_unlink_tars(tar_out, subs);
    if (!info)
        return;
    unlink(info);
    char *err_file = evr_asprintf("%s.err", info);
    unlink(err_file);
    free(err_file);
}

/*  What a cancelled checkout's killed script may still be writing. */
typedef struct {
    char *tar_out, *info;
    unsigned subs;
} s_left_t;

/*  Once the script is reaped (evr_reap.h): what it was writing as the
    signal came (tar_out.subN, info, info.err) removed again. */
static void
s_left_reaped(void *arg)
{
    s_left_t *l = arg;
    s_unlink_left(l->tar_out, l->info, l->subs);
    free(l->tar_out);
    free(l->info);
    free(l);
}

/*  A cancelled checkout's killed script, reaped from the loop, never
    waited for (evr_reap.h): its files removed again then. */
static void
s_bury(evr_loop_t *loop, pid_t pid, const char *tar_out, const char *info, unsigned subs)
{
    s_left_t *l = evr_calloc(1, sizeof *l);
    l->tar_out = evr_strdup(tar_out);
    l->info = evr_strdup(info);
    l->subs = subs;
    evr_reap_later(loop, pid, s_left_reaped, l);
}

void
evr_source_cancel(evr_source_req_t **req_p)
{
    evr_source_req_t *req = *req_p;
    if (!req)
        return;
    *req_p = NULL;
    evr_loop_timer_cancel(req->loop, req->timer);
    if (req->fd >= 0) {
        evr_loop_fd_remove(req->loop, req->fd);
        close(req->fd);
    }
    if (req->pid > 0) {   /* reaped from the loop, never waited for here */
        kill(-req->pid, SIGKILL);
        s_bury(req->loop, req->pid, req->tar_out, req->info, req->subs);
    }
    if (req->merge)   /* its child killed, the merged tar and tar_out removed */
        evr_offload_cancel(&req->merge);
    /* a script's that stopped midway too */
    s_unlink_left(req->tar_out, req->info, req->subs);
    free(req->info);
    free(req->tar_out);
    free(req->url);
    free(req->ref);
    free(req->start_err);
    free(req);
}

/* ------------------------------------------------------------------ copy */

#define S_IGNORE_MAX 256        /* patterns of one .evrunignore */
#define S_COPY_DEPTH 64

typedef struct {
    struct archive *out;
    const char *root, *prefix;
    char *pat[S_IGNORE_MAX];
    size_t npat;
    uint64_t bytes, max_bytes;
    unsigned flags;
    uint32_t entries;   /* written so far */
    evr_err_t *err;
} s_copy_t;

/*  Whether rel (a path under the root; dir: a directory) is left out. */
static bool
s_ignored(const s_copy_t *c, const char *rel, bool dir)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (!strcmp(base, ".git"))
        return true;
    for (size_t i = 0; i < c->npat; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s", c->pat[i]);
        size_t n = strlen(p);
        bool dir_only = n > 1 && p[n - 1] == '/';
        if (dir_only)
            p[--n] = '\0';
        if (dir_only && !dir)
            continue;
        const char *pp = p[0] == '/' ? p + 1 : p;   /* "/x": from the root only */
        if (fnmatch(pp, rel, FNM_PATHNAME) == 0 || (p[0] != '/' && fnmatch(pp, base, 0) == 0))
            return true;
    }
    return false;
}

/*  dir/.evrunignore's patterns into c (none when it is missing); a file
    of more than S_IGNORE_MAX patterns, or with a line over 1023 bytes,
    is refused rather than read in part (what it would leave out, a file
    of secrets, would be sent). */
static evr_rc_t
s_read_ignore(s_copy_t *c)
{
    char *path = evr_asprintf("%s/.evrunignore", c->root);
    FILE *fp = fopen(path, "re");
    char line[1024];
    evr_rc_t rc = EVR_OK;
    for (unsigned no = 1; !rc && fp && fgets(line, sizeof line, fp); no++) {
        if (!strchr(line, '\n') && !feof(fp)) {
            rc = evr_err_set(c->err, EVR_ERR_LIMIT, "copy %s: line %u is over %zu bytes "
                             "(a pattern of .evrunignore)", path, no, sizeof line - 1);
            break;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = '\0';
        if (!*s || *s == '#')
            continue;
        if (c->npat == S_IGNORE_MAX)
            rc = evr_err_set(c->err, EVR_ERR_LIMIT, "copy %s: more than %d patterns (at line "
                             "%u): join some with a shell glob", path, S_IGNORE_MAX, no);
        else
            c->pat[c->npat++] = evr_strdup(s);
    }
    if (fp)
        fclose(fp);
    free(path);
    return rc;
}

static evr_rc_t
s_write_err(s_copy_t *c, const char *what)
{
    return evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s", what, archive_error_string(c->out));
}

/*  One regular file's data, counted against the limit. */
static evr_rc_t
s_copy_file(s_copy_t *c, const char *full, const char *rel)
{
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s", full, strerror(errno));
    char buf[65536];
    ssize_t n;
    evr_rc_t rc = EVR_OK;
    while (!rc && (n = read(fd, buf, sizeof buf)) > 0) {
        c->bytes += (uint64_t) n;
        if (c->bytes > c->max_bytes)
            rc = evr_err_set(c->err, EVR_ERR_LIMIT, "copy %s: the contents are over the limit "
                             "of %llu bytes", c->root, (unsigned long long) c->max_bytes);
        else if (archive_write_data(c->out, buf, (size_t) n) != n)
            rc = s_write_err(c, rel);
    }
    if (!rc && n < 0)
        rc = evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s", full, strerror(errno));
    close(fd);
    return rc;
}

static evr_rc_t
s_copy_dir(s_copy_t *c, const char *rel, unsigned depth)
{
    if (depth > S_COPY_DEPTH)
        return evr_err_set(c->err, EVR_ERR_LIMIT, "copy %s: directories nested deeper than %d at "
                           "%s", c->root, S_COPY_DEPTH, rel);
    char *dpath = *rel ? evr_asprintf("%s/%s", c->root, rel) : evr_strdup(c->root);
    DIR *d = opendir(dpath);
    if (!d) {
        evr_rc_t rc = evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s", dpath, strerror(errno));
        free(dpath);
        return rc;
    }
    evr_rc_t rc = EVR_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *r = *rel ? evr_asprintf("%s/%s", rel, de->d_name) : evr_strdup(de->d_name);
        char *full = evr_asprintf("%s/%s", dpath, de->d_name);
        struct stat sb;
        if (lstat(full, &sb) != 0)
            rc = evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s", full, strerror(errno));
        bool dir = !rc && S_ISDIR(sb.st_mode);
        bool kind = !rc && (dir || S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode));
        bool ignored = !rc && kind && s_ignored(c, r, dir);
        if (!rc && kind && !ignored && S_ISLNK(sb.st_mode) && (c->flags & EVR_SOURCE_NO_LINKS))
            rc = evr_err_set(c->err, EVR_ERR_IO, "copy %s: %s is a symbolic link, which a copy "
                             "sent to a broker cannot carry (list it in .evrunignore)", c->root,
                             r);
        if (!rc && kind && !ignored && (c->flags & EVR_SOURCE_MAX_ENTRIES)
            && ++c->entries > EVR_ARTIFACT_MAX_ENTRIES)
            rc = evr_err_set(c->err, EVR_ERR_LIMIT, "copy %s: more than %d files and "
                             "directories, which a runner does not unpack (leave some out with "
                             ".evrunignore, or use git:)", c->root, EVR_ARTIFACT_MAX_ENTRIES);
        if (!rc && kind && !ignored) {
            struct archive_entry *e = archive_entry_new();
            char *name = evr_asprintf("%s%s", c->prefix, r);
            archive_entry_copy_stat(e, &sb);
            archive_entry_set_pathname(e, name);
            archive_entry_set_uid(e, 0);
            archive_entry_set_gid(e, 0);
            if (S_ISLNK(sb.st_mode)) {
                char target[4096];
                ssize_t n = readlink(full, target, sizeof target - 1);
                target[n > 0 ? n : 0] = '\0';
                archive_entry_set_symlink(e, target);
                archive_entry_set_size(e, 0);
            }
            if (archive_write_header(c->out, e) != ARCHIVE_OK)
                rc = s_write_err(c, r);
            if (!rc && S_ISREG(sb.st_mode))
                rc = s_copy_file(c, full, r);
            archive_entry_free(e);
            free(name);
            if (!rc && dir)
                rc = s_copy_dir(c, r, depth + 1);
        }
        free(r);
        free(full);
    }
    closedir(d);
    free(dpath);
    return rc;
}

evr_rc_t
evr_source_copy_tar(const char *dir, const char *prefix, uint64_t max_bytes, unsigned flags,
                    const char *tar_out, uint64_t *bytes, evr_err_t *err)
{
    s_copy_t c = { .root = dir, .prefix = prefix, .max_bytes = max_bytes, .flags = flags,
                   .err = err };
    struct stat sb;
    *bytes = 0;
    if (stat(dir, &sb) != 0)
        return evr_err_set(err, EVR_ERR_IO, "copy %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return evr_err_set(err, EVR_ERR_IO, "copy %s: not a directory", dir);
    evr_rc_t rc = s_read_ignore(&c);
    if (rc) {
        for (size_t i = 0; i < c.npat; i++)
            free(c.pat[i]);
        unlink(tar_out);
        return rc;
    }
    c.out = archive_write_new();
    archive_write_set_format_pax_restricted(c.out);
    if (flags & EVR_SOURCE_GZIP)
        archive_write_add_filter_gzip(c.out);
    if (archive_write_open_filename(c.out, tar_out) != ARCHIVE_OK)
        rc = evr_err_set(err, EVR_ERR_IO, "%s: %s", tar_out, archive_error_string(c.out));
    if (!rc && *prefix) {   /* the prefix directory itself */
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, prefix);
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
        if (archive_write_header(c.out, e) != ARCHIVE_OK)
            rc = s_write_err(&c, prefix);
        archive_entry_free(e);
    }
    if (!rc)
        rc = s_copy_dir(&c, "", 0);
    if (archive_write_close(c.out) != ARCHIVE_OK && !rc)
        rc = s_write_err(&c, tar_out);
    archive_write_free(c.out);
    for (size_t i = 0; i < c.npat; i++)
        free(c.pat[i]);
    if (!rc && stat(tar_out, &sb) == 0)
        *bytes = (uint64_t) sb.st_size;
    if (rc)
        unlink(tar_out);
    return rc;
}

void
evr_source_locale(void)
{
    if (setlocale(LC_CTYPE, "C.UTF-8"))
        return;
    if (!setlocale(LC_CTYPE, "") || strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C");
}
