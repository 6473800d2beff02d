/*  cli_query.c: the listings of evrun-cli: status (one job), jobs (a page
    of them, newest first, or a tree of the jobs their steps triggered)
    and runners (then the providers and the demand).  One request each,
    printed as a table or JSON lines; a page of jobs with more past it
    says on stderr the command for the next one (--before the last job
    listed, the page's options kept). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_job.h"
#include "evr_json.h"

static void
s_print_job(const evr_msg_t *m)
{
    char c[32], s[32], f[32];
    evr_time_format(m->created, c, sizeof c);
    evr_time_format(m->started, s, sizeof s);
    evr_time_format(m->finished, f, sizeof f);
    printf("job       %s\npipeline  %s\nstatus    %s", m->job, m->pipeline, m->status);
    if (m->allowed_failures)
        printf(" (%u step%s failed (allowed))", m->allowed_failures,
               m->allowed_failures == 1 ? "" : "s");
    printf("\n");
    if (m->reason)
        printf("reason    %s\n", m->reason);
    if (m->parent_job)
        printf("parent    %s (step %s)\n", m->parent_job, m->parent_step ? m->parent_step : "?");
    printf("runner    %s\nsteps     %u/%u done\ncreated   %s\nstarted   %s\nfinished  %s\n",
           m->runner ? m->runner : "-", m->steps_done, m->steps_total, c, s, f);
    if (m->started && m->finished)
        printf("duration  %.3f s\n", (double) (m->finished - m->started) / 1e9);
    for (uint32_t i = 0; i < m->children.n; i++)   /* jobs its steps triggered */
        printf("%-10s%s\n", i ? "" : "children", m->children.v[i]);
    for (uint32_t i = 0; i < m->outputs.n; i++)   /* STEP/KEY: the step's outputs */
        printf("%-10s%s=%s\n", i ? "" : "outputs", m->outputs.k[i], m->outputs.v[i]);
}

/*  A job of a `jobs --tree` listing: its line, its children. */
typedef struct {
    char id[EVR_ULID_LEN + 1];
    char *line;
    evr_strlist_t children;
    bool child;     /* a child of a job of the listing: printed under it */
} s_node_t;

/*  A `jobs` listing: the last job printed, the cursor of the next page;
    with --tree the jobs held until the end. */
typedef struct {
    evr_cli_t *cli;
    char last[EVR_ULID_LEN + 1];
    bool tree;
    s_node_t *nodes;
    size_t n;
    evr_msgtype_t type;     /* EVR_MSG_JOBS or EVR_MSG_RUNNERS */
    bool headed;            /* the table's header printed */
    bool waiting;           /* a job listed is queued or paused */
} s_listing_t;

/*  The table's header, once, before its first row (or at the end of an
    empty listing): never before an error. */
static void
s_header(s_listing_t *ls)
{
    bool jobs = ls->type == EVR_MSG_JOBS;
    if (ls->headed || ls->cli->json)
        return;
    ls->headed = true;
    printf(jobs ? "%-26s  %-20s  %-10s  %-7s  %-20s  %s\n" : "%-24s  %-8s  %-9s  %-20s  %s\n",
           jobs ? "JOB" : "RUNNER", jobs ? "PIPELINE" : "STATE", jobs ? "STATUS" : "RUN/CAP",
           jobs ? "STEPS" : "LABELS", jobs ? "RUNNER" : "LAST HEARTBEAT", jobs ? "CREATED" : "");
}

static int
s_list_job(const evr_msg_t *m, void *arg)
{
    s_listing_t *ls = arg;
    evr_cli_t *cli = ls->cli;
    snprintf(ls->last, sizeof ls->last, "%s", m->job);
    ls->waiting |= m->status && (!strcmp(m->status, "queued") || !strcmp(m->status, "paused"));
    s_header(ls);
    if (cli->json) {
        evr_cli_json(m);
        return 0;
    }
    char c[32], fail[48] = "";
    evr_time_format(m->created, c, sizeof c);
    if (m->allowed_failures)   /* after the columns: a script's fields stay where they were */
        snprintf(fail, sizeof fail, "  %u failed (allowed)", m->allowed_failures);
    char *line = evr_asprintf("%-20s  %-10s  %3u/%-3u  %-20s  %s%s", m->pipeline, m->status,
                              m->steps_done, m->steps_total, m->runner ? m->runner : "-", c,
                              fail);
    if (!ls->tree) {
        printf("%-26s  %s\n", m->job, line);
        free(line);
        return 0;
    }
    ls->nodes = evr_realloc(ls->nodes, (ls->n + 1) * sizeof *ls->nodes);
    s_node_t *nd = &ls->nodes[ls->n++];
    *nd = (s_node_t) { .line = line };
    snprintf(nd->id, sizeof nd->id, "%s", m->job);
    for (uint32_t i = 0; i < m->children.n; i++)
        evr_strlist_push(&nd->children, m->children.v[i]);
    return 0;
}

/*  Prints node i and, indented under it, its children in the listing. */
static void
s_tree_print(s_listing_t *ls, size_t i, int depth)
{
    s_node_t *nd = &ls->nodes[i];
    printf("%*s%-*s  %s\n", 2 * depth, "", 26 - (depth < 13 ? 2 * depth : 0), nd->id, nd->line);
    for (uint32_t k = 0; k < nd->children.n && depth < 16; k++)
        for (size_t j = 0; j < ls->n; j++)
            if (j != i && !strcmp(ls->nodes[j].id, nd->children.v[k]))
                s_tree_print(ls, j, depth + 1);
}

/*  --tree: the jobs that are no listed job's child, each with its
    children under it; frees the nodes. */
static void
s_tree_end(s_listing_t *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        for (uint32_t k = 0; k < ls->nodes[i].children.n; k++)
            for (size_t j = 0; j < ls->n; j++)
                if (j != i && !strcmp(ls->nodes[j].id, ls->nodes[i].children.v[k]))
                    ls->nodes[j].child = true;
    for (size_t i = 0; i < ls->n; i++)
        if (!ls->nodes[i].child)
            s_tree_print(ls, i, 0);
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->nodes[i].line);
        evr_strlist_free(&ls->nodes[i].children);
    }
    free(ls->nodes);
    ls->nodes = NULL;
    ls->n = 0;
}

static int
s_list_runner(const evr_msg_t *m, void *arg)
{
    s_listing_t *ls = arg;
    evr_cli_t *cli = ls->cli;
    s_header(ls);
    if (cli->json) {
        evr_cli_json(m);
        return 0;
    }
    char hb[32], labels[256] = "";
    evr_time_format(m->heartbeat, hb, sizeof hb);
    for (uint32_t i = 0, at = 0; i < m->labels.n && at < sizeof labels; i++)
        at += (uint32_t) snprintf(labels + at, sizeof labels - at, "%s%s", i ? "," : "",
                                  m->labels.v[i]);
    printf("%-24s  %-8s  %4u/%-4u  %-20s  %s%s\n", m->runner, m->state, m->running,
           m->capacity, labels[0] ? labels : "-", hb,
           m->ephemeral ? "  ephemeral" : "");   /* after the columns: scripts' fields stay */
    return 0;
}

/*  A table after the runners' (s_list_after): its rows so far (its
    header goes before the first). */
typedef struct {
    evr_cli_t *cli;
    uint32_t n;
} s_table_t;

/*  The providers the provisioners report, after the runners: a second
    table (a header first), or JSON lines. */
static int
s_list_provider(const evr_msg_t *m, void *arg)
{
    s_table_t *ps = arg;
    if (ps->cli->json) {
        evr_cli_json(m);
        return 0;
    }
    if (!ps->n++)
        printf("\n%-20s  %-16s  %-9s  %6s  %6s  %s\n", "PROVIDER", "PROVISIONER", "RUN/MAX",
               "STARTS", "FAILED", "STATE");
    char run[32];
    snprintf(run, sizeof run, "%u/%u", m->running, m->max);
    printf("%-20s  %-16s  %-9s  %6u  %6u  %s%s\n", m->provider, m->runner ? m->runner : "-",
           run, m->starts, m->failed_starts, m->reason ? "paused: " : "active",
           m->reason ? m->reason : "");
    return 0;
}

/*  The demand the broker keeps, after the providers: a third table (a
    header first), or JSON lines with a "demand" key (its id). */
static int
s_list_demand(const evr_msg_t *m, void *arg)
{
    s_table_t *ds = arg;
    if (ds->cli->json) {
        json_t *js = evr_json_from_rec(evr_msgtype_fields(m->type), m);
        json_object_set_new(js, "demand", json_string(m->job));
        json_object_del(js, "job");
        char *s = json_dumps(js, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(js);
        return 0;
    }
    if (!ds->n++)
        printf("\n%-26s  %6s  %-20s  %7s  %7s  %s\n", "DEMAND", "WANTED", "LABELS", "AGE",
               "LEFT", "SOURCE");
    char labels[256] = "", age[32] = "-", left[32];
    for (uint32_t i = 0, at = 0; i < m->labels.n && at < sizeof labels; i++)
        at += (uint32_t) snprintf(labels + at, sizeof labels - at, "%s%s", i ? "," : "",
                                  m->labels.v[i]);
    uint64_t now = evr_now_ns();
    if (m->created)     /* the broker's clock and ours: never below 0 */
        snprintf(age, sizeof age, "%llus",
                 (unsigned long long) (now > m->created ? (now - m->created) / 1000000000ull : 0));
    snprintf(left, sizeof left, "%us", m->ttl);
    printf("%-26s  %6u  %-20s  %7s  %7s  %s\n", m->job, m->count, labels[0] ? labels : "-",
           age, left, m->reason ? m->reason : "-");
    return 0;
}

/*  A table after `runners`' (`providers`, then `demands`: type, each
    row printed by fn); a broker that does not know the request (or any
    refusal) lists none, one that cannot be reached is said (what: the
    table). */
static void
s_list_after(evr_cli_t *cli, evr_msgtype_t type, evr_client_item_fn *fn, const char *what)
{
    evr_msg_t req = { .type = type };
    s_table_t t = { cli, 0 };
    evr_err_t err;
    if (evr_client_stream(cli->client, &req, fn, &t, &err) == EVR_ERR_IO)
        fprintf(stderr, "%s: %s: %s\n", cli->prog, what, err.msg);
}

/*  status, jobs and runners: one request, a table or JSON lines. */
static int
s_query(int argc, char **argv, evr_msgtype_t type)
{
    static const struct option opts[] = {
        EVR_CLI_COMMON_OPTS, { "pipeline", required_argument, NULL, 'p' },
        { "status", required_argument, NULL, 's' }, { "limit", required_argument, NULL, 'n' },
        { "before", required_argument, NULL, 'b' }, { "tree", no_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    bool tree = false;
    const char *name = type == EVR_MSG_STATUS ? "status" : type == EVR_MSG_JOBS ? "jobs"
                                                                                 : "runners";
    char prog[64];
    snprintf(prog, sizeof prog, "evrun-cli %s", name);
    evr_cli_t cli = { .prog = prog };
    evr_msg_t req = { .type = type };
    int c, status = 0;
    while ((c = evr_cli_getopt(cli.prog, argc, argv, "h", opts)) != -1 && !status) {
        if (evr_cli_common(&cli, c, optarg))
            continue;
        if (type == EVR_MSG_JOBS && c == 'p') {
            req.pipeline = optarg;
            if (!evr_cli_pipeline_arg(prog, "--pipeline", optarg))
                status = 2;
        }
        else if (type == EVR_MSG_JOBS && c == 's')
            req.status = optarg;
        else if (type == EVR_MSG_JOBS && c == 't')
            tree = true;
        else if (type == EVR_MSG_JOBS && c == 'n') {
            unsigned long n;
            if (evr_cli_uint_arg(prog, "--limit", optarg, 1, 10000, &n))
                req.limit = (uint32_t) n;
            else
                status = 2;
        }
        else if (type == EVR_MSG_JOBS && c == 'b') {
            free(req.job);
            char *opt = evr_asprintf("%s: --before", prog);   /* which JOB_ID was wrong */
            if (!(req.job = evr_client_job_arg(opt, optarg)))
                status = 2;
            free(opt);
        }
        else if (c == 'h') {
            printf("usage: evrun-cli %s%s [options]\n\n%s\n\n%s%s\nexit status: 0 ok; 1 refused "
                   "%s; 2 usage, or the broker unreachable\n", name,
                   type == EVR_MSG_STATUS ? " JOB_ID" : "",
                   type == EVR_MSG_STATUS ? "Prints one job's state: status, runner, steps "
                                            "done, times, why it failed, and\nits steps' "
                                            "outputs (STEP/KEY=VALUE, masked)."
                   : type == EVR_MSG_JOBS ? "Lists jobs, newest first: queued, running and "
                                            "finished.  When jobs are\nleft past the "
                                            "limit, says so on stderr with the command for "
                                            "the next page;\nwithout --json, stderr also "
                                            "says the broker's queue limit (a pipeline\n"
                                            "whose queue sets no limit waits at most that many "
                                            "jobs)."
                                          : "Lists the runners the broker knows: state (idle, "
                                            "busy, draining,\nlost, or stopped: it said goodbye), "
                                            "running/capacity, labels,\nlast heartbeat; "
                                            "`ephemeral` after it for a single-use "
                                            "runner\n(evrun-runner --once).  Then the providers "
                                            "evrun-provisioners report:\nrunning/max, starts, "
                                            "failed starts, state (active, or paused: why);\nin "
                                            "--json, objects with a \"provider\" key.  Then the "
                                            "demand the\nbroker keeps (POST /api/v1/demand, GitHub "
                                            "workflow_job events):\nrunners still wanted, labels, "
                                            "age, seconds left, source; in --json,\nobjects with a "
                                            "\"demand\" key (its id).",
                   type == EVR_MSG_JOBS ? "  --pipeline NAME      only this pipeline's jobs\n"
                                          "  --status S           only jobs in state S (queued "
                                          "running paused succeeded\n                       "
                                          "failed cancelled timed_out lost)\n"
                                          "  --limit N            at most N jobs (default 100, "
                                          "at most 10000)\n"
                                          "  --before JOB_ID      only jobs older than JOB_ID: "
                                          "the next page\n"
                                          "  --tree               a job a listed job's step "
                                          "triggered under it, indented\n"
                                        : "", EVR_CLI_COMMON_HELP,
                   type == EVR_MSG_STATUS ? "(no such job)" : "(by the broker)");
            return 0;
        }
        else
            status = 2;
    }
    int want = type == EVR_MSG_STATUS ? 1 : 0;
    if (!status && argc - optind != want) {
        fprintf(stderr, "%s: %s (see --help)\n", prog, want ? "expected one JOB_ID"
                                                            : "unexpected arguments");
        status = 2;
    }
    if (!status && want && !(req.job = evr_client_job_arg(prog, argv[optind])))
        status = 2;
    evr_job_status_t st;
    if (!status && req.status && !evr_job_status_parse(req.status, &st)) {
        fprintf(stderr, "%s: --status %s: expected queued, running, paused, succeeded, failed, "
                "cancelled, timed_out or lost\n", prog, req.status);
        status = 2;
    }
    if (status || (status = evr_cli_connect(&cli))) {
        free(req.job);
        evr_cli_done(&cli);
        return status;
    }
    evr_err_t err;
    if (type == EVR_MSG_STATUS) {
        evr_msg_t rep = { 0 };
        status = evr_cli_call(&cli, &req, EVR_MSG_JOB, &rep);
        if (!status && cli.json)
            evr_cli_json(&rep);
        else if (!status) {
            s_print_job(&rep);
            if (rep.status && !strcmp(rep.status, "queued"))
                evr_cli_status_waiting(&cli, &rep);
        }
        evr_msg_clear(&rep);
    }
    else {
        s_listing_t ls = { &cli, "", tree, NULL, 0, type, false, false };
        evr_msg_t end = { 0 };
        evr_rc_t rc = type == EVR_MSG_JOBS
                    ? evr_client_stream_end(cli.client, &req, s_list_job, &ls, &end, &err)
                    : evr_client_stream(cli.client, &req, s_list_runner, &ls, &err);
        if (!rc)
            s_header(&ls);      /* an empty listing: the header alone */
        if (ls.tree)
            s_tree_end(&ls);
        if (rc) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            status = rc == EVR_ERR_STATE ? 1 : 2;
        }
        else if (end.more && ls.last[0]) {
            char lim[32] = "";
            if (req.limit)
                snprintf(lim, sizeof lim, " --limit %u", req.limit);
            /* the page as this one is printed: --tree and --json kept (the
               next page was a table, a flat one) */
            fprintf(stderr, "%s: more jobs past this page; the next: evrun-cli jobs --before %s%s"
                    "%s%s%s%s%s%s\n", prog, ls.last, lim, req.pipeline ? " --pipeline " : "",
                    req.pipeline ? req.pipeline : "", req.status ? " --status " : "",
                    req.status ? req.status : "", tree ? " --tree" : "",
                    cli.json ? " --json" : "");
        }
        if (!rc && type == EVR_MSG_RUNNERS) {
            s_list_after(&cli, EVR_MSG_PROVIDERS, s_list_provider, "providers");
            s_list_after(&cli, EVR_MSG_DEMANDS, s_list_demand, "demands");
        }
        /* on stderr: the listing stays the jobs alone; only when some wait (it bounds them) */
        if (!rc && end.queue_limit && !cli.json && ls.waiting)
            fprintf(stderr, "%s: queue limit %u: the most jobs waiting per pipeline whose "
                    "queue sets no limit (evrun-broker --queue-limit)\n", prog,
                    end.queue_limit);
        evr_msg_clear(&end);
    }
    free(req.job);
    evr_cli_done(&cli);
    return status;
}

int
evr_cli_status(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_STATUS);
}

int
evr_cli_jobs(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_JOBS);
}

int
evr_cli_runners(int argc, char **argv)
{
    return s_query(argc, argv, EVR_MSG_RUNNERS);
}
