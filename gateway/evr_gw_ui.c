/*  evr_gw_ui.c: the web UI's files over HTTP.

    The UI is plain HTML, CSS and JavaScript (gateway/ui/, no build step)
    that runs in the browser and talks to the JSON API with the token the
    user pastes in once.  The gateway serves its files without a token
    (they hold no data): GET / is index.html, GET /ui/{path} any other
    file, read from the directory of the setting ui_dir.  Its default is
    share/evrun/ui beside the binary's directory (BIN/../share/evrun/ui):
    where `cmake --install` puts it, and in a build tree a link that CMake
    makes to gateway/ui of the source tree.

    A path is refused before anything is opened unless each of its
    components is a plain name (letters, digits, `_ - .`, not starting
    with a dot: no `..`, no hidden file) and its extension one of the
    types served; the file itself must be a regular file (no link) of at
    most S_FILE_MAX bytes.  Answers carry an ETag (the file's inode, size
    and modification time) and `Cache-Control: no-cache`, so a browser
    asks again each time and gets 304 until the file changes (a new
    version is seen at once), and headers that keep the page from being
    framed, sniffed or from running scripts of anywhere else.  A file is
    sent from its descriptor, never held in memory whole.
    See evr_gw.h. */
#include "evr_gw.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_FILE_MAX (4u << 20)    /* bytes of one UI file */
#define S_PATH_MAX 255           /* bytes of a path under /ui/ */

/*  What the page may load and run: its own files only, no inline script
    (job data is never markup: this is a second wall behind the
    escaping), no framing. */
#define S_CSP "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " \
              "form-action 'self'; frame-ancestors 'none'"

static const struct {
    const char *ext, *type;
} s_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".ico", "image/x-icon" },
    { ".json", "application/json" },
    { ".txt", "text/plain; charset=utf-8" },
};

const char *
evr_gw_ui_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return NULL;
    for (size_t i = 0; i < EVR_ARRAY_LEN(s_types); i++)
        if (!strcmp(dot, s_types[i].ext))
            return s_types[i].type;
    return NULL;
}

const char *
evr_gw_ui_path_problem(const char *p)
{
    size_t n = strlen(p);
    if (!n || n > S_PATH_MAX)
        return "expected 1 to 255 bytes";
    for (const char *c = p; c;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t) (e - c) : strlen(c);
        if (!l)
            return "it has an empty component (// or a trailing /)";
        if (c[0] == '.')
            return "a component starts with a dot (., .. or a hidden file)";
        for (size_t i = 0; i < l; i++) {
            char ch = c[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                  || ch == '_' || ch == '-' || ch == '.'))
                return "only letters, digits, _ - . and / are served";
        }
        c = e ? e + 1 : NULL;
    }
    if (!evr_gw_ui_type(p))
        return "not a type the UI serves (.html .js .css .svg .png .ico .json .txt)";
    return NULL;
}

char *
evr_gw_ui_default_dir(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return evr_strdup("share/evrun/ui");
    exe[n] = '\0';
    char *bin = dirname(exe);   /* BIN/evrun-gateway -> BIN */
    char *up = evr_strdup(dirname(bin));
    char *dir = evr_asprintf("%s/share/evrun/ui", up);
    free(up);
    return dir;
}

/*  dir/path opened: a regular file (not a link) of at most S_FILE_MAX
    bytes, its stat in st; -1 with req's answer set (404, or 500 when it
    is there but cannot be opened: EACCES...). */
static int
s_open(evr_gw_req_t *req, const char *dir, const char *path, struct stat *st)
{
    char *full = evr_asprintf("%s/%s", dir, path);
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int e = errno;
    if (fd < 0 && (e == ENOENT || e == ENOTDIR || e == ELOOP))
        evr_gw_error(req, 404, "not_found", "no such file of the web UI: %s%s", path,
                     e == ELOOP ? " (a link: not served)" : "");
    else if (fd < 0)
        evr_gw_error(req, 500, "internal", "ui_dir: %s: %s", full, strerror(e));
    else if (fstat(fd, st) || !S_ISREG(st->st_mode))
        evr_gw_error(req, 404, "not_found", "no such file of the web UI: %s (not a regular "
                     "file)", path);
    else if ((uint64_t) st->st_size > S_FILE_MAX)
        evr_gw_error(req, 404, "not_found", "no such file of the web UI: %s (over %u bytes: "
                     "not served)", path, S_FILE_MAX);
    else {
        free(full);
        return fd;
    }
    if (fd >= 0)
        close(fd);
    free(full);
    return -1;
}

/*  Answers req with the file path of the UI directory. */
static void
s_serve(evr_gw_t *gw, evr_gw_req_t *req, const char *path)
{
    const char *dir = evr_config_get(gw->cfg, "ui_dir");
    const char *problem = evr_gw_ui_path_problem(path);
    if (problem) {
        evr_gw_error(req, 404, "not_found", "no such file of the web UI: %s", problem);
        return;
    }
    struct stat dst;
    if (!dir || stat(dir, &dst) || !S_ISDIR(dst.st_mode)) {
        evr_gw_error(req, 404, "not_found", "the web UI's files are not here: ui_dir = %s is "
                     "no directory (set ui_dir to gateway/ui of evrun's source tree, or to "
                     "share/evrun/ui where evrun is installed)", dir ? dir : "(unset)");
        return;
    }
    struct stat st;
    int fd = s_open(req, dir, path, &st);
    if (fd < 0)
        return;
    char etag[96];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long) st.st_ino,
             (unsigned long long) st.st_size,
             (unsigned long long) st.st_mtim.tv_sec * 1000000000ull
                 + (unsigned long long) st.st_mtim.tv_nsec);
    /* a list of tags, weak ones too (W/"..."), or "*": any version of
       a file that is there (RFC 9110 13.1.2) */
    const char *inm = evr_gw_header(req, "If-None-Match");
    size_t lead = inm ? strspn(inm, " \t") : 0;
    bool same = inm && (strstr(inm, etag) || (inm[lead] == '*'
                                              && !inm[lead + 1 + strspn(inm + lead + 1, " \t")]));
    /* the file is sent from its descriptor as the socket takes it (the
       response owns it): nothing of it is held in memory.  A 304 is the
       same response: libmicrohttpd sends its headers alone, with the
       Content-Length a 200 has (RFC 9110 8.6: a 304 may send none or
       that one; an empty answer's 0 would be wrong) */
    req->resp = MHD_create_response_from_fd((uint64_t) st.st_size, fd);
    if (!req->resp)
        close(fd);
    if (!req->resp) {
        evr_gw_error(req, 500, "internal", "cannot answer with %s", path);
        return;
    }
    req->status = same ? 304 : 200;
    MHD_add_response_header(req->resp, "Content-Type", evr_gw_ui_type(path));
    MHD_add_response_header(req->resp, "ETag", etag);
    MHD_add_response_header(req->resp, "Cache-Control", "no-cache");
    MHD_add_response_header(req->resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(req->resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(req->resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(req->resp, "Content-Security-Policy", S_CSP);
}

void
evr_gw_h_ui_index(evr_gw_t *gw, evr_gw_req_t *req)
{
    s_serve(gw, req, "index.html");
}

void
evr_gw_h_ui_file(evr_gw_t *gw, evr_gw_req_t *req)
{
    /* the whole rest of the URL: params holds its first 127 bytes only */
    s_serve(gw, req, req->url + strlen("/ui/"));
}
