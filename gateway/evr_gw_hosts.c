/*  evr_gw_hosts.c: the Host header a request may name (setting
    http_allowed_hosts).  A page of another site can make a browser on
    this machine send requests to 127.0.0.1:7780 under the site's own
    name, by answering that name's DNS query with 127.0.0.1 once the page
    is loaded (DNS rebinding): the browser then takes the gateway's
    answers as the site's own, and lets its script read them (/metrics,
    the UI's files, whatever else needs no token).  Such a request names
    the site in its Host header.  So a gateway that listens on a loopback
    address answers only names that cannot be rebound (localhost, a name
    under .localhost, an IP address) and those the setting lists; one
    listening elsewhere answers any unless the setting is given.  See
    evr_gw.h. */
#include "evr_gw.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define S_NAME_MAX 253      /* a DNS name's length (RFC 1035) */

/*  The next item of the comma-separated list at *s, without the spaces
    and tabs around it, into *len; NULL when none is left ("a,,b" is
    refused before: evr_config's list check). */
static const char *
s_item(const char **s, size_t *len)
{
    const char *p = *s + strspn(*s, ", \t");
    size_t n = strcspn(p, ",");
    *s = p + n;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    *len = n;
    return n ? p : NULL;
}

evr_rc_t
evr_gw_hosts_check(const evr_config_t *cfg, evr_err_t *err)
{
    const char *s = evr_config_get(cfg, "http_allowed_hosts"), *it;
    size_t len, n = 0;
    while (s && (it = s_item(&s, &len))) {
        n++;
        if (len == 1 && *it == '*')
            continue;
        size_t ok = strspn(it, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.");
        if (ok < len || len > S_NAME_MAX || (len == 1 && *it == '.'))
            return evr_config_problem(cfg, "http_allowed_hosts", err, "\"%.*s\": expected host "
                                      "names (letters, digits, - and .; no port, no scheme), "
                                      "separated by commas: e.g. \"ci.example.org, "
                                      ".example.org\" (.NAME: NAME and every name under it), or "
                                      "* for any", (int) (len < 64 ? len : 64), it);
    }
    if (s && !n)
        return evr_config_problem(cfg, "http_allowed_hosts", err, "empty: give host names "
                                  "separated by commas, or * for any (unset: localhost and IP "
                                  "addresses when listening on a loopback address, any "
                                  "otherwise)");
    return EVR_OK;
}

void
evr_gw_hosts_load(evr_gw_t *gw, const struct sockaddr_in *sa)
{
    gw->hosts = evr_config_get(gw->cfg, "http_allowed_hosts");
    /* 127.0.0.0/8: only this machine reaches it, through a browser too */
    gw->hosts_loopback = (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

/*  Whether name (len bytes, no port, in any case) is one that no DNS
    answer can make: an IPv4 address, localhost or a name under it (RFC
    6761 6.3: resolved to loopback, never asked of DNS). */
static bool
s_unbindable(const char *name, size_t len)
{
    char ip[16];
    struct in_addr a;
    if (len < sizeof ip) {
        memcpy(ip, name, len);
        ip[len] = '\0';
        if (inet_pton(AF_INET, ip, &a) == 1)
            return true;
    }
    return (len == 9 && !strncasecmp(name, "localhost", 9))
        || (len > 10 && !strncasecmp(name + len - 10, ".localhost", 10));
}

/*  Whether name (len bytes) is one of the setting's list. */
static bool
s_listed(const char *list, const char *name, size_t len)
{
    const char *it;
    size_t n;
    while (list && (it = s_item(&list, &n))) {
        if ((n == 1 && *it == '*') || (n == len && !strncasecmp(it, name, n)))
            return true;
        if (*it == '.' && ((n - 1 == len && !strncasecmp(it + 1, name, len))
                           || (len > n && !strncasecmp(name + len - n, it, n))))
            return true;
    }
    return false;
}

bool
evr_gw_host_ok(const evr_gw_t *gw, evr_gw_req_t *req, const char *target)
{
    /* a target in absolute form names the host itself, and the Host
       header is not read (RFC 9112 3.2.2) */
    size_t skip = !target ? 0 : !strncasecmp(target, "http://", 7) ? 7
                : !strncasecmp(target, "https://", 8) ? 8 : 0;
    char in_target[S_NAME_MAX + 16];
    const char *host = evr_gw_header(req, "Host");
    if (skip) {
        size_t n = strcspn(target + skip, "/?#");
        snprintf(in_target, sizeof in_target, "%.*s", (int) n, target + skip);
        host = in_target;
    }
    if (!host || !*host || (!gw->hosts && !gw->hosts_loopback))
        return true;    /* HTTP/1.0 without one (1.1 needs one: evr_gw_framing_ok), or
                           an empty one (a target without a host: no browser sends it) */
    /* [an IPv6 address]: no DNS answer makes one */
    size_t len = *host == '[' ? strcspn(host, "]") : strcspn(host, ":");
    bool ipv6 = false;
    if (*host == '[' && host[len] == ']') {
        char ip6[48];
        struct in6_addr a6;
        snprintf(ip6, sizeof ip6, "%.*s", (int) (len - 1), host + 1);
        ipv6 = len - 1 < sizeof ip6 && inet_pton(AF_INET6, ip6, &a6) == 1;
        len++;
    }
    const char *port = host + len;
    bool port_ok = !*port || (*port == ':' && strspn(port + 1, "0123456789") == strlen(port + 1));
    size_t nlen = len && !ipv6 && host[len - 1] == '.' ? len - 1 : len;  /* "localhost." */
    if (port_ok && len && (ipv6 || s_unbindable(host, nlen) || s_listed(gw->hosts, host, nlen)))
        return true;
    /* 421 (RFC 9110 15.5.20): the request names a server this is not */
    evr_gw_error(req, 421, "misdirected_request", "%s \"%.128s\" is not a name this "
                 "gateway answers to: %s; send the request to http://localhost:PORT/ or "
                 "http://127.0.0.1:PORT/, or add the name to the setting http_allowed_hosts "
                 "(--allowed-hosts; a page of another site that made a browser send this "
                 "could read the answer: DNS rebinding)",
                 skip ? "the request target's host" : "Host", host,
                 !port_ok ? "its port is no number"
                      : gw->hosts ? "it answers to localhost, IP addresses and the names of "
                                    "http_allowed_hosts"
                                  : "listening on a loopback address, it answers to localhost "
                                    "and IP addresses only");
    return false;
}
