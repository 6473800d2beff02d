/*  cli_validate.c: `evrun-cli validate [--print] [-a K=V]... FILE...`.

    Loads each pipeline file with the same loader the runner uses, binds
    the args given with -a, builds the tar of a copy: source as run's
    submit does (evr_cli_copy_tar), and prints `FILE: ok` or every error as
    `file:line:column: field: message`.  With --print, the normalized spec
    of each valid file goes to stdout as JSON instead.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bus.h"
#include "evr_json.h"
#include "evr_yaml.h"

static void
s_help(FILE *out)
{
    fprintf(out,
            "usage: evrun-cli validate [--print] [-a NAME=VALUE]... FILE...\n"
            "\n"
            "Checks pipeline files: YAML syntax, known keys (a near-miss, or another CI\n"
            "system's word such as script:, gets \"did you mean run?\"), value types,\n"
            "step names, needs and cycles, matrices, durations, paths, image\n"
            "references ([HOST[:PORT]/]NAME[:TAG][@DIGEST]), items listed twice\n"
            "(labels, secrets, needs, triggers, retry.on...), catchup or timezone\n"
            "without schedule, the size as sent (at most 1 MiB, YAML aliases\n"
            "counted once per use, matrices expanded), that every arg without a\n"
            "default is given with -a, and that a copy: source (or ci_source) is a\n"
            "directory whose compressed tar fits a submit (1 MiB), as evrun-cli run\n"
            "builds it (with no symbolic link); evrun-runner --exec reads that\n"
            "directory itself, within its own resource_max_bytes, so a file for\n"
            "--exec only may fail this check.\n"
            "--print shows a matrix step's combinations as the steps they become.\n"
            "Prints FILE: ok for each valid file; errors go to stderr as\n"
            "file:line:column: field: message.  A warning (the exit status stays 0):\n"
            "a step written without needs in a pipeline whose other steps have needs\n"
            "starts at once (needs: [] says it is meant); parallel over 1 in a\n"
            "pipeline whose steps run one after another (no needs, no dag: true);\n"
            "GitHub's ${{ ... }} in a run; a $NAME or ${{ ... }} in an env value,\n"
            "which reaches the step as written (evrun expands nothing in it); a $NAME\n"
            "in an artifact path that is no matrix key of its step; a step's timeout\n"
            "longer than the pipeline's.\n"
            "\n"
            "  -a, --arg NAME=VALUE  give an arg, as evrun-cli run would\n"
            "  -p, --print           print the normalized spec of each valid file as JSON\n"
            "  -h, --help            this text\n"
            "\n"
            "exit status: 0 all files valid, 1 some file invalid, 2 usage error\n");
}

/*  Makes defaults explicit: each step's image (on_error's too), the queue
    strategy. */
static void
s_normalize(evr_spec_t *spec)
{
    for (uint32_t i = 0; i < spec->steps.n; i++) {
        evr_step_t *st = evr_spec_step(spec, i);
        if (!st->image && spec->image)
            st->image = evr_strdup(spec->image);
    }
    if (spec->on_error.present && !spec->on_error.image && spec->image)
        spec->on_error.image = evr_strdup(spec->image);
    if (spec->queue.present && !spec->queue.strategy)
        spec->queue.strategy = evr_strdup("append");
}

/*  The written name of step i (a matrix combination's "build[OS=linux]":
    "build") into buf. */
static const char *
s_written_name(const evr_spec_t *spec, uint32_t i, char *buf, size_t size)
{
    const char *name = evr_spec_step(spec, i)->name;
    size_t n = strcspn(name, "[");
    snprintf(buf, size, "%.*s", (int) (n < size ? n : size - 1), name);
    return buf;
}

/*  The warning of one env value v at path (said as shown): GitHub's
    ${{ ... }} or a $NAME reaches the step as written, since evrun expands
    nothing in an env value (GitLab does in its variables). */
static void
s_warn_env_value(const char *file, const evr_diag_t *diag, const char *path, const char *shown,
                 const char *v)
{
    const char *d = v;
    while ((d = strchr(d, '$')) && d[1] != '{' && d[1] != '_'
           && !(d[1] >= 'A' && d[1] <= 'Z') && !(d[1] >= 'a' && d[1] <= 'z'))
        d++;
    if (!d)
        return;
    uint32_t line = 0, col = 0;
    char at[64] = "";
    if (evr_diag_pos(diag, path, &line, &col))
        snprintf(at, sizeof at, "%u:%u:", line, col);
    if (!strncmp(d, "${{", 3))
        fprintf(stderr, "%s:%s %s: warning: ${{ ... }} is GitHub Actions' expression syntax; an "
                "env value reaches the step as written: a secret is listed under secrets: "
                "(read on the runner), an arg given with -a\n", file, at, shown);
    else {
        size_t n = 1 + (d[1] == '{') + strspn(d + 1 + (d[1] == '{'), "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                 "abcdefghijklmnopqrstuvwxyz0123456789_");
        n += d[1] == '{' && d[n] == '}';
        fprintf(stderr, "%s:%s %s: warning: %.*s is not expanded: an env value reaches the step "
                "as written (as GitHub's env, not GitLab's variables); use it in run, where "
                "the shell expands it\n", file, at, shown, (int) (n < 40 ? n : 40), d);
    }
}

/*  A step's timeout longer than the pipeline's, which ends the job
    first: once a written step.  Not a when: on_failure | always step's,
    nor on_error's: they run after the job's timeout too (a grace). */
static void
s_warn_timeouts(const char *file, const evr_spec_t *spec, const evr_diag_t *diag)
{
    uint32_t said = UINT32_MAX;
    for (uint32_t i = 0; spec->timeout && i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        uint32_t w = evr_diag_written_index(diag, "steps", i);
        if (st->timeout <= spec->timeout || st->when != EVR_WHEN_ON_SUCCESS || w == said)
            continue;
        said = w;
        char path[48], shown[48], mine[32], job[32], at[64] = "";
        snprintf(path, sizeof path, "steps[%u].timeout", i);
        snprintf(shown, sizeof shown, "steps[%u].timeout", w);
        uint32_t line = 0, col = 0;
        if (evr_diag_pos(diag, path, &line, &col))
            snprintf(at, sizeof at, "%u:%u:", line, col);
        evr_duration_format(st->timeout, mine, sizeof mine);
        evr_duration_format(spec->timeout, job, sizeof job);
        fprintf(stderr, "%s:%s %s: warning: %s, longer than the pipeline's timeout, %s, which "
                "covers the whole job and ends it first\n", file, at, shown, mine, job);
    }
}

/*  The env warnings: the pipeline's, each written step's (once for a
    matrix step's combinations) and on_error's. */
static void
s_warn_env(const char *file, const evr_spec_t *spec, const evr_diag_t *diag)
{
    char path[EVR_SPEC_MAX_NAME + 300], shown[EVR_SPEC_MAX_NAME + 300];
    for (uint32_t k = 0; k < spec->env.n; k++) {
        snprintf(path, sizeof path, "env.%s", spec->env.k[k]);
        s_warn_env_value(file, diag, path, path, spec->env.v[k]);
    }
    uint32_t said = UINT32_MAX;
    for (uint32_t i = 0; i <= spec->steps.n; i++) {
        bool oe = i == spec->steps.n;
        const evr_step_t *st = oe ? &spec->on_error : evr_spec_step(spec, i);
        uint32_t w = oe ? 0 : evr_diag_written_index(diag, "steps", i);
        if (!oe && w == said)
            continue;
        said = oe ? said : w;
        for (uint32_t k = 0; k < st->env.n; k++) {
            if (oe)
                snprintf(path, sizeof path, "on_error.env.%s", st->env.k[k]);
            else
                snprintf(path, sizeof path, "steps[%u].env.%s", i, st->env.k[k]);
            if (!oe)
                snprintf(shown, sizeof shown, "steps[%u].env.%s", w, st->env.k[k]);
            s_warn_env_value(file, diag, path, oe ? path : shown, st->env.v[k]);
        }
    }
}

/*  An artifact path with a $NAME that is no matrix key of its step: the
    runner looks for a file of that very name (only a matrix key's $KEY is
    put in, by the loader).  Once a written step. */
static void
s_warn_artifacts(const char *file, const evr_spec_t *spec, const evr_diag_t *diag)
{
    uint32_t said = UINT32_MAX;
    for (uint32_t i = 0; i <= spec->steps.n; i++) {
        bool oe = i == spec->steps.n;
        const evr_step_t *st = oe ? &spec->on_error : evr_spec_step(spec, i);
        uint32_t w = oe ? 0 : evr_diag_written_index(diag, "steps", i);
        if (!oe && w == said)
            continue;
        for (uint32_t k = 0; k < st->artifacts.paths.n; k++) {
            const char *d = st->artifacts.paths.v[k];
            while ((d = strchr(d, '$')) && d[1] != '{' && d[1] != '_'
                   && !(d[1] >= 'A' && d[1] <= 'Z') && !(d[1] >= 'a' && d[1] <= 'z'))
                d++;
            if (!d)
                continue;
            said = oe ? said : w;
            char path[64], shown[64], at[64] = "";
            if (oe)
                snprintf(path, sizeof path, "on_error.artifacts.paths[%u]", k);
            else
                snprintf(path, sizeof path, "steps[%u].artifacts.paths[%u]", i, k);
            snprintf(shown, sizeof shown, "steps[%u].artifacts.paths[%u]", w, k);
            uint32_t line = 0, col = 0;
            if (evr_diag_pos(diag, path, &line, &col))
                snprintf(at, sizeof at, "%u:%u:", line, col);
            size_t n = strcspn(d + 1, "/");
            fprintf(stderr, "%s:%s %s: warning: %.*s is not expanded: an artifact path is taken "
                    "as written (only a matrix key of the step, $KEY or ${KEY}, is put in), so "
                    "the runner looks for a file of that very name\n", file, at,
                    oe ? path : shown, (int) (n < 40 ? n + 1 : 41), d);
        }
    }
}

/*  Warnings of a valid file: in a DAG (a step has needs), a step written
    without needs below another starts at once, which a reader of the
    file (or of GitLab's stages) may not expect.  `needs: []` written says
    it is meant.  In a sequence (no needs, no dag: true), `parallel` over 1
    changes nothing.  A run with GitHub's ${{ ... }} fails in sh.  Printed
    on stderr as file:line:column: FIELD:
    warning: ...; they change no exit status. */
void
evr_cli_warn_dag(const char *file, const evr_spec_t *spec, const evr_diag_t *diag)
{
    bool dag = false;   /* one step needs another (not dag: true alone: said, meant) */
    for (uint32_t i = 0; i < spec->steps.n && !dag; i++)
        dag = evr_spec_step(spec, i)->needs.n > 0;
    if (!dag && !spec->dag && spec->parallel > 1 && spec->steps.n > 1) {
        /* GitLab's parallel makes copies of a job; here it bounds a DAG's
           steps at once, and a sequence runs one at a time whatever it says */
        uint32_t line = 0, col = 0;
        char at[64] = "";
        if (evr_diag_pos(diag, "parallel", &line, &col))
            snprintf(at, sizeof at, "%u:%u:", line, col);
        fprintf(stderr, "%s:%s parallel: warning: %u steps at once, but no step has needs: "
                "the steps run one after another, so parallel changes nothing (give steps "
                "needs, or write dag: true to start them all at once, up to parallel)\n", file,
                at, spec->parallel);
    }
    /* GitHub Actions' ${{ expr }} reaches sh as written: "bad substitution" */
    uint32_t said = UINT32_MAX;
    for (uint32_t i = 0; i <= spec->steps.n; i++) {
        bool oe = i == spec->steps.n;
        const evr_step_t *st = oe ? &spec->on_error : evr_spec_step(spec, i);
        uint32_t w = oe ? 0 : evr_diag_written_index(diag, "steps", i);
        if (!st->run || !strstr(st->run, "${{") || (!oe && w == said))
            continue;
        said = w;
        char path[48];
        if (oe)
            snprintf(path, sizeof path, "on_error.run");
        else
            snprintf(path, sizeof path, "steps[%u].run", i);
        uint32_t line = 0, col = 0;
        char at[64] = "";
        if (evr_diag_pos(diag, path, &line, &col))
            snprintf(at, sizeof at, "%u:%u:", line, col);
        if (!oe)
            snprintf(path, sizeof path, "steps[%u].run", w);
        fprintf(stderr, "%s:%s %s: warning: ${{ ... }} is GitHub Actions' expression syntax; "
                "run goes to /bin/sh as written, which fails on it (bad substitution): write "
                "$NAME for an env value or arg\n", file, at, path);
    }
    s_warn_env(file, spec, diag);
    s_warn_timeouts(file, spec, diag);
    s_warn_artifacts(file, spec, diag);
    uint32_t last = UINT32_MAX;
    for (uint32_t i = 1; dag && i < spec->steps.n; i++) {
        const evr_step_t *st = evr_spec_step(spec, i);
        uint32_t w = evr_diag_written_index(diag, "steps", i);
        char path[32], mark[48], name[EVR_SPEC_MAX_NAME + 1], prev[EVR_SPEC_MAX_NAME + 1];
        snprintf(path, sizeof path, "steps[%u]", i);    /* the source map's: expanded */
        snprintf(mark, sizeof mark, "steps[%u].needs", i);
        if (st->needs.n || st->when != EVR_WHEN_ON_SUCCESS || w == last || w == 0
            || evr_diag_marked(diag, mark))
            continue;
        last = w;
        uint32_t line = 0, col = 0;
        char at[64] = "";
        if (evr_diag_pos(diag, path, &line, &col))
            snprintf(at, sizeof at, "%u:%u:", line, col);
        s_written_name(spec, i - 1, prev, sizeof prev);
        fprintf(stderr, "%s:%s steps[%u]: warning: no needs, in a pipeline whose other steps have "
                "needs: %s starts at once, not after %s (write needs: [%s] to wait for it, "
                "or needs: [] to start it at once without this warning)\n", file, at, w,
                s_written_name(spec, i, name, sizeof name), prev, prev);
    }
}

/*  Validates one file; returns true when it is valid. */
static bool
s_validate(const char *file, const evr_strmap_t *given, bool print)
{
    evr_diag_t *diag = evr_diag_new(file);
    evr_spec_t spec = { 0 };
    evr_strmap_t resolved = { 0 };
    evr_rc_t rc = evr_yaml_load_file(&spec, diag);
    if (rc == EVR_OK)
        rc = evr_spec_bind_args(&spec, given, &resolved, diag);
    /* run's submit path: a copy: source names a directory whose tar fits */
    bool copy_ok = true;
    if (rc == EVR_OK && spec.source.copy
        && !evr_cli_copy_tar("evrun-cli validate", file, "source", spec.source.copy, NULL, diag))
        copy_ok = false;
    if (rc == EVR_OK && copy_ok && spec.ci_source.copy
        && !evr_cli_copy_tar("evrun-cli validate", file, "ci_source", spec.ci_source.copy, NULL,
                             diag))
        copy_ok = false;
    if (!copy_ok)
        rc = EVR_ERR_SPEC;
    if (rc == EVR_OK) {
        if (print) {
            s_normalize(&spec);
            json_t *j = evr_json_from_rec(&evr_spec_type, &spec);
            json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
            json_decref(j);
        }
        else
            printf("%s: ok\n", file);
        evr_cli_warn_dag(file, &spec, diag);
    }
    else {
        evr_diag_print(diag, stderr);
        if (!copy_ok)
            fprintf(stderr, "evrun-cli validate: %s: the copy: check is evrun-cli run's and "
                    "submit's (evrun-runner --exec reads the directory itself, within its "
                    "resource_max_bytes)\n", file);
    }
    evr_rec_free(&evr_spec_type, &spec);
    evr_strmap_free(&resolved);
    evr_diag_destroy(&diag);
    return rc == EVR_OK;
}

int
evr_cli_validate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "arg", required_argument, NULL, 'a' },
        { "print", no_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    evr_strmap_t given = { 0 };
    bool print = false;
    int c, status = 0;
    optind = 1;
    while ((c = evr_cli_getopt("evrun-cli validate", argc, argv, "a:ph", opts)) != -1) {
        switch (c) {
        case 'a':
            {
                int r = evr_spec_add_arg(optarg, &given);
                if (r < 0)
                    fprintf(stderr, "evrun-cli validate: -a %s: expected NAME=VALUE with NAME "
                                    "an environment variable name\n", optarg);
                else if (r)     /* as run refuses it */
                    fprintf(stderr, "evrun-cli validate: -a \"%.*s\": given twice (each arg "
                            "once)\n", (int) strcspn(optarg, "="), optarg);
                if (r)
                    status = 2;
            }
            break;
        case 'p': print = true; break;
        case 'h': s_help(stdout); status = -1; break;
        default: status = 2; break;
        }
    }
    if (status == 0 && optind >= argc) {
        fprintf(stderr, "evrun-cli validate: no FILE given\n");
        status = 2;
    }
    for (int i = optind; status == 0 && i < argc; i++)
        if (!*argv[i]) {   /* else ": cannot open", naming nothing */
            fprintf(stderr, "evrun-cli validate: FILE %d: the pipeline file name is empty: "
                    "give the path of a .yml file\n", i - optind + 1);
            status = 2;
        }
    if (status == 2)
        fprintf(stderr, "usage: evrun-cli validate [--print] [-a NAME=VALUE]... FILE...\n");
    if (status == 0)   /* every file is checked, whatever the ones before said */
        for (int i = optind; i < argc; i++)
            if (!s_validate(argv[i], &given, print))
                status = 1;
    evr_strmap_free(&given);
    return status < 0 ? 0 : status;
}
