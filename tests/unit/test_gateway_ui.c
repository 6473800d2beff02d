/*  test_gateway_ui: how evrun-gateway serves the web UI's files
    (gateway/evr_gw_ui.c), without a broker: the paths it refuses before
    opening anything, the Content-Type of each served type, and a real
    server on a loopback port over a temporary ui_dir: no token needed,
    ETag and 304, security headers (and every other answer's), path tricks (.., %2e%2e, %2f, %00, a
    hidden file, a link out of the directory), a file over the size
    limit, a ui_dir that is missing. */
#define _GNU_SOURCE     /* vasprintf */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evr_gw.h"
#include "evr_test.h"

static void
test_paths(void)
{
    static const char *const good[] = { "index.html", "app.js", "style.css", "img/logo.png",
                                        "a-b_c.d.svg", "favicon.ico" };
    static const char *const bad[] = { "", "../x.js", "a/../b.js", ".hidden.js", "a/.git/x.js",
                                       "a//b.js", "a/", "/abs.js", "x.exe", "noext", "a\\b.js",
                                       "a b.js", "a%2fb.js", "x.js\x7f", "x.JS", "dir.js/" };
    for (size_t i = 0; i < EVR_ARRAY_LEN(good); i++)
        CHECK(evr_gw_ui_path_problem(good[i]) == NULL);
    for (size_t i = 0; i < EVR_ARRAY_LEN(bad); i++) {
        const char *p = evr_gw_ui_path_problem(bad[i]);
        CHECK(p != NULL);
        if (!p)
            fprintf(stderr, "  served: \"%s\"\n", bad[i]);
    }
    char longp[300];
    memset(longp, 'a', sizeof longp);
    memcpy(longp + 252, ".js", 4);      /* 255 bytes */
    CHECK(evr_gw_ui_path_problem(longp) == NULL);
    memset(longp, 'a', sizeof longp);
    memcpy(longp + 253, ".js", 4);      /* 256 */
    CHECK(evr_gw_ui_path_problem(longp) != NULL);
    CHECK_STR(evr_gw_ui_type("index.html"), "text/html; charset=utf-8");
    CHECK_STR(evr_gw_ui_type("a/app.js"), "text/javascript; charset=utf-8");
    CHECK_STR(evr_gw_ui_type("style.css"), "text/css; charset=utf-8");
    CHECK_STR(evr_gw_ui_type("x.png"), "image/png");
    CHECK_STR(evr_gw_ui_type("x.svg"), "image/svg+xml");
    CHECK(evr_gw_ui_type("a.js/b") == NULL);
    /* the routes: open (no token), from / */
    char params[EVR_GW_PARAMS][128];
    int st;
    const evr_gw_route_t *r = evr_gw_route_match("GET", "/", params, &st);
    CHECK(r && r->fn == evr_gw_h_ui_index && r->open);
    r = evr_gw_route_match("GET", "/ui/img/logo.png", params, &st);
    CHECK(r && r->fn == evr_gw_h_ui_file && r->open);
    CHECK(!evr_gw_route_match("POST", "/", params, &st) && st == 405);
    r = evr_gw_route_match("GET", "/ui/", params, &st);    /* its handler: 404, no file */
    CHECK(r && r->fn == evr_gw_h_ui_file);
    CHECK(!evr_gw_route_match("GET", "/ui", params, &st) && st == 404);
    CHECK(!evr_gw_route_match("GET", "/api/v1/", params, &st) && st == 404);
}

/*  One request to the server on port, the whole answer into out (cut
    at size); the status, -1 when it cannot connect. */
static int
s_get(uint16_t port, char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    char *req = NULL;
    va_start(ap, fmt);
    int len = vasprintf(&req, fmt, ap);
    va_end(ap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (len < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa)) {
        close(fd);
        free(req);
        return -1;
    }
    send(fd, req, (size_t) len, MSG_NOSIGNAL);
    free(req);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < size && (n = recv(fd, out + got, size - 1 - got, 0)) > 0)
        got += (size_t) n;
    out[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(out, "HTTP/1.%*d %d", &status);
    return status;
}

static void
s_write(const char *dir, const char *name, const char *text, size_t n)
{
    char *p = evr_asprintf("%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fwrite(text, 1, n, fp);
        fclose(fp);
    }
    free(p);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"

static void
test_server(void)
{
    char root[] = "/tmp/evr-gwui-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char *ui = evr_asprintf("%s/ui", root), *sub = evr_asprintf("%s/ui/img", root);
    mkdir(ui, 0700);
    mkdir(sub, 0700);
    s_write(ui, "index.html", "<!doctype html><title>evrun</title>\n", 36);
    s_write(ui, "app.js", "console.log(1);\n", 16);
    s_write(ui, ".hidden.js", "hidden\n", 7);
    s_write(sub, "a.svg", "<svg/>", 6);
    s_write(root, "secret.js", "secret\n", 7);
    char *big = evr_malloc((4u << 20) + 1);
    memset(big, 'x', (4u << 20) + 1);
    s_write(ui, "big.js", big, (4u << 20) + 1);
    s_write(ui, "max.js", big, 4u << 20);
    free(big);
    char *link = evr_asprintf("%s/link.js", ui), *target = evr_asprintf("%s/secret.js", root);
    CHECK(symlink(target, link) == 0);
    char *dirjs = evr_asprintf("%s/dir.js", ui);
    mkdir(dirjs, 0700);

    const evr_config_key_t keys[] = {
        { "http_listen", "127.0.0.1:0", "" }, { "tls_cert", NULL, "" }, { "tls_key", NULL, "" },
        { "state_dir", "/tmp", "" }, { "client_endpoint", "ipc:///tmp/evr-gwt-none/clients", "" },
        { "events_endpoint", "ipc:///tmp/evr-gwt-none/events", "" },
        { "timeout_ms", "300", "" }, { "client_cert", NULL, "" }, { "broker_key", NULL, "" },
        { "ui_dir", ui, "" },
    };
    evr_gw_t gw = { .cfg = evr_config_new(keys, EVR_ARRAY_LEN(keys)),
                    .secret = { "0123456789abcdef0123456789abcdef", 32 },
                    .body_max = EVR_MSG_MAX_BYTES };
    evr_err_t err;
    pthread_mutex_init(&gw.mu, NULL);
    CHECK(evr_gw_start(&gw, &err) == EVR_OK);
    static char out[1 << 16];
    /* no token: the page and its files */
    CHECK(s_get(gw.port, out, sizeof out, GET("/") "\r\n") == 200);
    CHECK(strstr(out, "<title>evrun</title>") != NULL);
    CHECK(strstr(out, "Content-Type: text/html; charset=utf-8\r\n") != NULL);
    CHECK(strstr(out, "Cache-Control: no-cache\r\n") != NULL);
    CHECK(strstr(out, "X-Content-Type-Options: nosniff\r\n") != NULL);
    CHECK(strstr(out, "Content-Security-Policy: default-src 'self'") != NULL);
    CHECK(strstr(out, "frame-ancestors 'none'") != NULL);
    char etag[96] = "", length[40] = "";
    const char *e = strstr(out, "ETag: "), *l = strstr(out, "Content-Length: ");
    CHECK(e && sscanf(e, "ETag: %95s", etag) == 1);
    CHECK(l && sscanf(l, "Content-Length: %39[0-9]", length) == 1 && strcmp(length, "0"));
    CHECK(s_get(gw.port, out, sizeof out, GET("/") "If-None-Match: %s\r\n\r\n", etag) == 304);
    CHECK(!strstr(out, "<title>"));
    /* a 304's Content-Length, when sent, is the 200's (RFC 9110 8.6), not 0 */
    l = strstr(out, "Content-Length: ");
    CHECK(!l || !strncmp(l + strlen("Content-Length: "), length, strlen(length)));
    CHECK(!strstr(out, "Content-Length: 0\r\n"));
    CHECK(s_get(gw.port, out, sizeof out, GET("/") "If-None-Match: \"other\"\r\n\r\n") == 200);
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/app.js") "\r\n") == 200);
    CHECK(strstr(out, "Content-Type: text/javascript; charset=utf-8\r\n") != NULL);
    CHECK(strstr(out, "console.log(1);") != NULL);
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/img/a.svg") "\r\n") == 200);
    CHECK(strstr(out, "Content-Type: image/svg+xml\r\n") != NULL);
    /* refused: 404, and the file outside is never sent */
    static const char *const tricks[] = {
        "/ui/../secret.js", "/ui/%2e%2e/secret.js", "/ui/..%2fsecret.js", "/ui/img/..%2f..%2fsecret.js",
        "/ui/app.js%00.png", "/ui/.hidden.js", "/ui/link.js", "/ui/dir.js", "/ui/nope.js",
        "/ui/%2fetc%2fpasswd", "/ui/app.js/", "/ui//app.js",
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(tricks); i++) {
        int got = s_get(gw.port, out, sizeof out, "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                        "Connection: close\r\n\r\n", tricks[i]);
        CHECK(got == 404 || got == 400);
        CHECK(!strstr(out, "secret") && !strstr(out, "hidden\n"));
        if (got != 404 && got != 400)
            fprintf(stderr, "  %s: %d\n", tricks[i], got);
    }
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/max.js") "\r\n") == 200);
    CHECK(strstr(out, "Content-Length: 4194304\r\n") != NULL);
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/big.js") "\r\n") == 404);
    CHECK(strstr(out, "over 4194304 bytes") != NULL);
    /* the API still needs its token */
    CHECK(s_get(gw.port, out, sizeof out, GET("/api/v1/runners") "\r\n") == 401);
    /* every other answer shares the UI's origin (its token): never sniffed
       as markup, run or framed, as a 404 quoting the URL's <script> */
    CHECK(strstr(out, "X-Content-Type-Options: nosniff\r\n") != NULL);
    CHECK(strstr(out, "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"));
    CHECK(s_get(gw.port, out, sizeof out, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                "/%3Chtml%3E%3Cscript%3Ealert(1)%3C/script%3E") == 404);
    CHECK(strstr(out, "<script>") != NULL);     /* quoted in its JSON... */
    CHECK(strstr(out, "Content-Type: application/json\r\n") != NULL);
    CHECK(strstr(out, "X-Content-Type-Options: nosniff\r\n") != NULL);   /* ...never run */
    CHECK(strstr(out, "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"));
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/nope.js") "\r\n") == 404);
    CHECK(strstr(out, "X-Content-Type-Options: nosniff\r\n") != NULL);
    /* a UI file keeps its own policy, once */
    CHECK(s_get(gw.port, out, sizeof out, GET("/ui/app.js") "\r\n") == 200);
    CHECK(!strstr(out, "default-src 'none'"));
    CHECK(strstr(out, "nosniff") && !strstr(strstr(out, "nosniff") + 1, "nosniff"));
    evr_gw_stop(&gw);
    evr_config_destroy(&gw.cfg);

    /* a ui_dir that is no directory: 404 that says which setting */
    char *none = evr_asprintf("%s/none", root);
    const evr_config_key_t keys2[] = {
        { "http_listen", "127.0.0.1:0", "" }, { "tls_cert", NULL, "" }, { "tls_key", NULL, "" },
        { "state_dir", "/tmp", "" }, { "client_endpoint", "ipc:///tmp/evr-gwt-none/clients", "" },
        { "events_endpoint", "ipc:///tmp/evr-gwt-none/events", "" },
        { "timeout_ms", "300", "" }, { "client_cert", NULL, "" }, { "broker_key", NULL, "" },
        { "ui_dir", none, "" },
    };
    gw.cfg = evr_config_new(keys2, EVR_ARRAY_LEN(keys2));
    gw.stopping = 0;
    CHECK(evr_gw_start(&gw, &err) == EVR_OK);
    CHECK(s_get(gw.port, out, sizeof out, GET("/") "\r\n") == 404);
    CHECK(strstr(out, "ui_dir = ") != NULL);
    evr_gw_stop(&gw);
    evr_client_destroy(&gw.client);
    pthread_mutex_destroy(&gw.mu);
    evr_config_destroy(&gw.cfg);

    char *cmd = evr_asprintf("rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    free(cmd);
    free(none);
    free(ui);
    free(sub);
    free(link);
    free(target);
    free(dirjs);
}

int
main(void)
{
    EVR_TEST_RUN(test_paths);
    EVR_TEST_RUN(test_server);
    EVR_TEST_END();
}
