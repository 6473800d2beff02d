/*  test_pipeline_errors: the loader's errors as a newcomer meets them:
    words of other CI systems (GitLab's, GitHub's) named with evrun's
    own, a first pipeline's common slips, and the errors reviews found
    unclear, each checked word for word at its file:line:column. */
#include "evr_test.h"
#include "evr_ytest.h"

#define S_HEAD "pipeline: p\nimage: i\nsteps:\n"

/*  What a newcomer's first mistakes get: a near-miss or another CI
    system's word for a key is answered with evrun's ("did you mean
    needs?"), and the key it stands for is not reported missing too; a
    step key at the top level says to indent it; libyaml's words get what
    to do (a tab, a key indented too deep, bytes that are not text, at
    their line and column); a scalar where a list goes shows the list. */
/*  Other systems' layouts met whole: a GitLab job at the top of the file
    is told to be a step; GitLab's needs: [{job:}] and script: list,
    GitHub's on: [push], uses, with, strategy and working-directory, and
    prunner's pipelines: are each answered with evrun's form. */
static void
test_ci_layouts(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nbuild:\n  stage: build\n  script: [make]\n"
                             "steps:\n  - {name: a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: build: unknown key: a GitLab job? evrun's jobs are steps, a "
                      "list under steps: (steps: - name: build, then run: with its script)");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nother: {a: b}\nsteps:\n  - {name: a, run: x}\n",
                       &n, NULL);
    CHECK(!strstr(e, "GitLab job"));    /* a mapping with no script or stage: no guess */
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - name: b\n    needs:\n      - job: a\n"
                       "    run:\n      - make\n      - make test\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:7:9: steps[1].needs[0]: expected a step's name, got a mapping "
                      "(GitLab's needs: [{job: build}] is needs: [build] here)");
    CHECK_CONTAINS(e, "f.yml:9:7: steps[1].run: expected a string, got a list (GitLab's script: "
                      "list is one text here: run: |, then the commands one a line, indented "
                      "below it)");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\non: [push]\nsteps:\n"
                       "  - {name: a, run: x, uses: actions/checkout@v4, with: {depth: 1},"
                       " working-directory: d, strategy: {matrix: {os: [l]}}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:5: on: expected a mapping, got a list (GitHub's on: [push] is "
                      "on: {github: {events: [push]}} here, in a registered pipeline)");
    CHECK_CONTAINS(e, "steps[0].uses: unknown key: GitHub Actions' uses: evrun runs no actions");
    CHECK_CONTAINS(e, "steps[0].with: unknown key: GitHub Actions' with (an action's inputs)");
    CHECK_CONTAINS(e, "steps[0].working-directory: unknown key: evrun has no "
                      "working-directory: begin run with cd DIR");
    CHECK_CONTAINS(e, "steps[0].strategy: unknown key: GitHub's strategy: {matrix: ...} is a "
                      "step's matrix here");
    free(e);
    e = evr_ytest_load("pipelines:\n  release:\n    tasks:\n      lint: {script: [make]}\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:1:1: pipelines: unknown key: prunner's pipelines: NAME: tasks: "
                      "layout: an evrun file holds one pipeline");
    CHECK(!strstr(e, "did you mean pipeline"));
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - wait\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:5: steps[1]: expected a mapping, got a scalar (Buildkite's "
                      "wait: a step waits for others with needs here, needs: [build])");
    free(e);
}

/*  Other CI systems' keys evrun has no key for get what to write instead
    (stages is no misspelt labels); GitLab's image: {name:} and a cache
    written as one mapping get their form; an unquoted matrix name in a
    flow list gets "quote it"; a file with no steps: key is told at its
    top; the errors come in file order whatever check found them. */
static void
test_foreign_words(void)
{
    size_t n;
    char *e = evr_ytest_load("stages: [build]\npipeline: p\nimage: {name: alpine}\n"
                             "before_script: [make deps]\nsteps:\n"
                             "  - {name: a, run: x, continue-on-error: true,"
                             " cache: {key: k, path: d}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:1:1: stages: unknown key: evrun has no stages: steps run in the "
                      "order written, or as a DAG with needs");
    CHECK(!strstr(e, "did you mean labels"));
    CHECK_CONTAINS(e, "f.yml:3:8: image: expected a string, got a mapping (GitLab's image: "
                      "{name: NAME} is image: NAME here)");
    CHECK(!strstr(e, "no image"));      /* the top-level image's error is the one said */
    CHECK_CONTAINS(e, "f.yml:4:1: before_script: unknown key: evrun has no before_script");
    CHECK_CONTAINS(e, "steps[0].continue-on-error: unknown key; did you mean allow_failure?");
    CHECK_CONTAINS(e, "steps[0].cache: expected a list, got a mapping: a list of one is "
                      "[{...}]");
    /* in file order: line 1, then 3, 4, 6 */
    const char *l1 = strstr(e, "f.yml:1:1:"), *l3 = strstr(e, "f.yml:3:"),
               *l4 = strstr(e, "f.yml:4:"), *l6 = strstr(e, "f.yml:6:");
    CHECK(l1 && l3 && l4 && l6 && l1 < l3 && l3 < l4 && l4 < l6);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - {name: b, run: y, needs: [a[K=v]]}\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "quote the item (\"build[OS=linux]\")");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\n", &n, NULL);
    CHECK_STR(e, "f.yml:1:1: steps: missing (a pipeline needs steps:)\n");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: \"\"}\n  - {name: b, run: \"  \"}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:20: steps[0].run: an empty command: write what the step runs");
    CHECK_CONTAINS(e, "f.yml:5:20: steps[1].run: an empty command");
    free(e);
    {   /* an arg near a declared one: did you mean */
        evr_spec_t spec = { 0 };
        e = evr_ytest_load("pipeline: p\nimage: i\nargs: {REGION: {default: eu}}\nsteps:\n"
                           "  - {name: a, run: x}\n", &n, &spec);
        CHECK(n == 0);
        evr_strmap_t given = { 0 }, bound = { 0 };
        evr_strmap_set(&given, "REGON", "x");
        evr_diag_t *d = evr_diag_new("f.yml");
        CHECK(evr_spec_bind_args(&spec, &given, &bound, d) != EVR_OK);
        CHECK_CONTAINS(evr_diag_get(d, 0), "args.REGON: the pipeline declares no arg \"REGON\"; "
                                           "did you mean REGION?");
        evr_diag_destroy(&d);
        evr_strmap_free(&given);
        evr_strmap_free(&bound);
        evr_rec_free(&evr_spec_type, &spec);
        free(e);
    }
    {   /* a spec from the wire (no source map) with no step: said */
        evr_spec_t *w = evr_spec_new();
        w->pipeline = evr_strdup("p");
        w->image = evr_strdup("i");
        evr_diag_t *d = evr_diag_new("wire");
        CHECK(evr_spec_validate(w, d) != EVR_OK);
        CHECK(evr_diag_count(d) == 1
              && strstr(evr_diag_get(d, 0), "steps: a pipeline needs at least one step"));
        evr_diag_destroy(&d);
        evr_spec_destroy(&w);
    }
    e = evr_ytest_load("pipeline: p\nimage: i\njobs:\n  build: {runs-on: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: jobs: unknown key: GitHub's jobs: NAME: {runs-on, steps} "
                      "layout");
    CHECK(n == 1);  /* not also "steps: missing", nor one with no place */
    free(e);
}

static void
test_newcomer_errors(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - name: b\n    need: [a]\n"
                          "    run: y\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:6:5: steps[1].need: unknown key; did you mean needs? (expected "
                      "one of: name, run,");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    script: make\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:5: steps[0].script: unknown key; did you mean run?");
    CHECK(n == 1);   /* not also "steps[0].run: missing" */
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    comand: make\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].comand: unknown key; did you mean run?");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - {name: b, run: y, depends_on: [a]}\n",
                    &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:23: steps[1].depends_on: unknown key; did you mean needs?");
    free(e);
    /* GitLab's retry: a count, and `when` for evrun's `on` (there only) */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: 2}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:30: steps[0].retry: expected a mapping, got a scalar (retry: "
                      "{max: 2, on: [failed]})");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: always}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].retry: expected a mapping, got a scalar (retry: {max: 2, on: "
                      "[failed]})");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {max: 2, when: [script_failure]}}\n",
                    &n, NULL);
    CHECK_CONTAINS(e, "steps[0].retry.when: unknown key; did you mean on? (expected one of: ");
    CHECK(n == 1);   /* not also "retry.on: missing" */
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\nwhen: always\n", &n, NULL);
    CHECK_CONTAINS(e, "when: unknown key at the top of the file: when is a key of a step");
    CHECK(strstr(e, "did you mean on") == NULL);
    free(e);
    e = evr_ytest_load("pipline: p\nimgae: i\nsteps:\n  - {name: a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:1:1: pipline: unknown key; did you mean pipeline?");
    CHECK_CONTAINS(e, "f.yml:2:1: imgae: unknown key; did you mean image?");
    CHECK(strstr(e, "missing") == NULL);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\ncolour: blue\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:1: colour: unknown key (expected one of: pipeline,");
    CHECK(strstr(e, "did you mean") == NULL);
    free(e);
    e = evr_ytest_load(S_HEAD "- name: a\nrun: x\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:1: run: unknown key at the top of the file: run is a key of a "
                      "step; indent it under its step");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n\trun: x\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:1: YAML syntax error: found a tab character");
    CHECK_CONTAINS(e, ": a tab; YAML indents with spaces only");
    free(e);
    e = evr_ytest_load(S_HEAD "\t- name: a\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:1: YAML syntax error: found character that cannot start any "
                      "token (while scanning for the next token at line 4): a tab; YAML "
                      "indents with spaces only");
    free(e);
    /* a BOM at the file's start is skipped; one further in (two files
       joined) was said as an indentation error alone */
    e = evr_ytest_load("\xEF\xBB\xBFpipeline: p\r\nimage: i\r\nsteps: [{name: a, run: x}]\r\n",
                       &n, NULL);
    CHECK(n == 0);
    free(e);
    e = evr_ytest_load("\xEF\xBB\xBFpipeline: p\nimage: i\n"
                       "\xEF\xBB\xBFsteps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:2: YAML syntax error: did not find expected key (while parsing a "
                      "block mapping at line 1): a byte order mark (U+FEFF) inside the file, "
                      "where YAML takes one only at its start (two files joined, each with its "
                      "own?): delete it\n");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n      run: x\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:10: YAML syntax error: mapping values are not allowed in this "
                      "context: a key indented deeper than the one above it");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: \"\x01\"\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:11: YAML syntax error: control characters are not allowed "
                      "(byte 0x01): the file must be text");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: \"\xff\"\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:11: YAML syntax error: invalid leading UTF-8 octet (byte 0xff): "
                      "the file must be UTF-8 text");
    free(e);
    /* a Latin-1 "é" before a space: libyaml names the space (0x20, a
       column on); the byte to fix is the é */
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: echo caf\xe9 au lait\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:18: YAML syntax error: invalid trailing UTF-8 octet (byte 0xe9 "
                      "starts a UTF-8 sequence that the bytes after it do not continue): the "
                      "file must be UTF-8 text (saved as Latin-1");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: \"\xc3\xa9\xe9t\"\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:12: YAML syntax error: invalid trailing UTF-8 octet (byte 0xe9 ");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x # caf\xe9", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:17: YAML syntax error: incomplete UTF-8 octet sequence (byte "
                      "0xe9): the file must be UTF-8 text");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: \"\xed\xa0\x80\"\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:11: YAML syntax error: invalid Unicode character (U+D800): the "
                      "file must be UTF-8 text");
    free(e);
    /* a size too large for 64 bits was a "bad size" of the form asked for */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, limits: {memory: 17179869184T}}\n"
                       "  - {name: b, run: x, limits: {memory: 1025T}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:40: steps[0].limits.memory: 17179869184T is over the maximum, "
                      "1125899906842624 bytes (1 PiB: 1024T)\n");
    CHECK_CONTAINS(e, "f.yml:5:40: steps[1].limits.memory: 1126999418470400 bytes is over the "
                      "maximum, 1125899906842624 bytes (1 PiB: 1024T)\n");
    free(e);
    /* more errors than are kept: the first of the file are, not the first
       found (the steps' names, checked once all are read, were left out
       for the 60 errors the walk found after them) */
    char many[4096] = S_HEAD;
    for (int i = 0; i < 30; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "  - {name: \"bad name %d\", run: x, timeout: x, foo: 1}\n", i);
    e = evr_ytest_load(many, &n, NULL);
    CHECK(n == 90);
    CHECK(!strncmp(e, "f.yml:4:12: steps[0].name: invalid step name \"bad name 0\"", 55));
    CHECK_CONTAINS(e, "f.yml:20:12: steps[16].name: invalid step name");
    CHECK_CONTAINS(e, "f.yml:20:44: steps[16].timeout: bad duration");
    CHECK(strstr(e, "steps[16].foo") == NULL);   /* 16 lines of 3, and 2: 50 */
    free(e);
    /* a key written twice says where the first is, as the settings do */
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    env:\n      A: 1\n      B: 2\n"
                       "      A: 3\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:9:7: steps[0].env.A: duplicate key (first at line 7)\n");
    free(e);
    /* a tag: libyaml's loader drops "!" from the value, so the step would
       have run grep -q x f (the opposite); YAML's own !!str is taken */
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: ! grep -q x f\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:10: a \"!\" that starts a YAML tag: YAML tags mean nothing to "
                      "evrun, and the tag is not part of the value");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: !step a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:12: the YAML tag \"!step\": YAML tags mean nothing");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: !!str x}\n", &n, NULL);
    CHECK(e == NULL || !*e);
    free(e);
    /* YAML's own tags that say more than what the text is: !!binary's
       base64 would have run as text, !!null x as x, !!set and a
       !!python/... tag been dropped */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: !!binary ZWNobw==}\n"
                       "  - {name: b, run: !!null x, needs: !!set {a}}\n"
                       "  - {name: c, run: !!python/object:os.system x, timeout: !!int 5,"
                       " env: !!map {A: !!null }}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:20: the YAML tag \"!!binary\": evrun reads a value as the text "
                      "written, so a !!binary value would be its base64 text, not the bytes "
                      "YAML decodes: write the text itself (of YAML's own tags it takes !!str, "
                      "!!int, !!float, !!bool, !!timestamp, !!map, !!seq, and !!null on no "
                      "value)\n");
    CHECK_CONTAINS(e, "f.yml:5:20: the YAML tag \"!!null\": evrun reads a value as the text "
                      "written, so !!null would not make the value null: write nothing, or ~, "
                      "for no value");
    CHECK_CONTAINS(e, "f.yml:5:37: the YAML tag \"!!set\": evrun reads a value as the text "
                      "written, so the tag would be dropped from the value: remove it");
    CHECK_CONTAINS(e, "f.yml:6:20: the YAML tag \"!!python/object:os.system\"");
    CHECK(n == 4);
    free(e);
    /* values YAML reads as its own syntax: the hint says to quote them */
    const struct {
        const char *run, *said;
    } quoted[] = {
        { "@x", "f.yml:5:10: YAML syntax error: found character that cannot start any token "
                "(while scanning for the next token at line 5): a value that starts with @, ` "
                "or % (characters YAML reserves): quote the value ('@...')" },
        { "\"a\" b", "f.yml:5:14: YAML syntax error: did not find expected key (while parsing "
                     "a block mapping at line 4): text after a quoted value" },
        { "*x", "f.yml:5:10: YAML syntax error: found undefined alias: a value that starts "
                "with * is an alias" },
        { "- x", "f.yml:5:10: YAML syntax error: block sequence entries are not allowed in "
                 "this context: \"- \" after \"KEY: \" on one line" },
        { "> out", "f.yml:5:12: YAML syntax error: did not find expected comment or line break "
                   "(while scanning a block scalar at line 5): after | or > (a block of lines)" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(quoted); i++) {
        char text[256];
        snprintf(text, sizeof text, S_HEAD "  - name: a\n    run: %s\n", quoted[i].run);
        e = evr_ytest_load(text, &n, NULL);
        CHECK_CONTAINS(e, quoted[i].said);
        free(e);
    }
    /* a "," in a value of a {...} step ends the value: the rest is a key */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: echo \"a, b\"}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:29: steps[0].b\": unknown key, with no value: in {...} a \",\" "
                      "ends a value, so is this the rest of the value before it? quote a value "
                      "that holds a \",\"");
    free(e);
    /* no space after a key's ":": a plain scalar where a key was to be */
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    timeout:5m\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:7:1: YAML syntax error: could not find expected ':' (while scanning "
                      "a simple key at line 6): a \"KEY:VALUE\" with no space after the \":\"");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    timeout 5m\n", &n, NULL);
    CHECK_CONTAINS(e, "(while scanning a simple key at line 6): a key without its \":\"");
    free(e);
    /* a [ or { left open, or closed by the other bracket: said so (it
       was the hint about a [ inside a matrix step's name, or none) */
    const struct {
        const char *text, *said;
    } brackets[] = {
        { "env: {A: [x}\n", "f.yml:4:12: YAML syntax error: did not find expected ',' or ']' "
                            "(while parsing a flow sequence at line 4): a list opened with [ "
                            "and closed with }: close it with ]" },
        { "env: {A: x]\n", "(while parsing a flow mapping at line 4): a mapping opened with { "
                           "and closed with ]: close it with }" },
        { "env: {A: x\n", "f.yml:5:1: YAML syntax error: did not find expected ',' or '}' (while "
                          "parsing a flow mapping at line 4): a { opened and never closed" },
        { "labels: [a, b\n", "(while parsing a flow sequence at line 4): a [ opened and never "
                             "closed: end the list with ]" },
        { "env: {A: x y: z}\n", "f.yml:4:13: YAML syntax error: did not find expected ',' or "
                                "'}' (while parsing a flow mapping at line 4): in {...} the "
                                "pairs are KEY: VALUE" },
        { "labels: [a,,b]\n", "f.yml:4:12: YAML syntax error: did not find expected node content "
                              "(while parsing a flow node at line 4): a value missing" },
        { "steps:\n  - {name: a, run: x, needs: [b[K=v]]}\n", "a [ or ] inside an item of a "
          "[...] list (a matrix step's name" },
    };
    for (size_t i = 0; i < EVR_ARRAY_LEN(brackets); i++) {
        char text[256];
        snprintf(text, sizeof text, "pipeline: p\nimage: i\nsteps: [{name: a, run: x}]\n%s",
                 brackets[i].text);
        if (strstr(brackets[i].text, "steps:"))
            snprintf(text, sizeof text, "pipeline: p\nimage: i\n%s", brackets[i].text);
        e = evr_ytest_load(text, &n, NULL);
        CHECK_CONTAINS(e, brackets[i].said);
        free(e);
    }
    /* ... and in a {...} map of strings (env), where every key is one,
       a key with no ":" is said so; one with a ":" and no value is an
       empty value, as in a block */
    e = evr_ytest_load("pipeline: p\nimage: i\nenv: {A: hello, world}\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:17: env.world: a key with no \":\" and no value: in {...} a "
                      "\",\" ends a value, so is this the rest of the value before it? quote a "
                      "value that holds a \",\" (A: \"hello, world\"); an empty value is world: "
                      "\"\"");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nenv: {A: hello, W: , V: }\n"
                       "steps: [{name: a, run: x, env: {\"Q\"}}]\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].env.Q: a key with no \":\"");
    CHECK(strstr(e, "env.W") == NULL && strstr(e, "env.V") == NULL);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nenv:\n  A:\n  B: x\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK(n == 0);
    free(e);
    /* an indentation slip keeps its hint */
    e = evr_ytest_load("pipeline: p\nimage: i\nenv:\n    A: x\n  B: \"y\"\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:3: YAML syntax error: did not find expected key (while parsing a "
                      "block mapping at line 1): check the indentation");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - {name: b, run: y, needs: a}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:30: steps[1].needs: expected a list, got a scalar: write [a]");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, when: allways}\nexecutor: proces\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:29: steps[0].when: expected one of on_success, on_failure, "
                      "always, got \"allways\"; did you mean always?");
    CHECK_CONTAINS(e, "executor: expected one of podman, process, got \"proces\"; did you "
                      "mean process?");
    free(e);
    /* a list of enum values names the bad one, as the enum errors do */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {max: 1, on: [lost, wifi]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:50: steps[0].retry.on[1]: expected a list of: lost, failed, "
                      "timed_out, got \"wifi\"\n");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {max: 1, on: [faild]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].retry.on[0]: expected a list of: lost, failed, timed_out, got "
                      "\"faild\"; did you mean failed?");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\non: {github: {events: [push, fork]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:30: on.github.events[1]: expected a list of: push, pull_request, "
                      "workflow_job, got \"fork\"");
    free(e);
    e = evr_ytest_load("---\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:1:1: empty file: expected a pipeline");
    free(e);
    e = evr_ytest_load("- pipeline: p\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:1:1: expected a mapping of the pipeline's keys");
    CHECK(strstr(e, "spec") == NULL);
    free(e);
    const char *keys[] = { "needs", "run", "name", "on", "env" };
    CHECK_STR(evr_diag_near("need", keys, 5), "needs");
    CHECK_STR(evr_diag_near("NEEDS", keys, 5), "needs");
    CHECK_STR(evr_diag_near("nedes", keys, 5), "needs");   /* two letters swapped */
    CHECK(evr_diag_near("nede", keys, 5) == NULL);     /* two edits: too far for 4 letters */
    CHECK(evr_diag_near("colour", keys, 5) == NULL);
    CHECK(evr_diag_near("x", keys, 5) == NULL);
    CHECK(evr_diag_near("o", keys, 5) == NULL);      /* one letter: no guess */
    CHECK_STR(evr_diag_near("ON", keys, 5), "on");
    CHECK(evr_diag_near("", keys, 5) == NULL);
}

/*  What a first run met: a glob in an artifact or cache path (the runner
    copies each path as it is named) is refused, naming the directory to
    give instead; retry.max is bounded; an empty matrix is refused; a
    source whose form had a load error gets no "no form" besides. */
static void
test_first_run_errors(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    artifacts: [\"out/*.xml\"]\n",
                          &n, NULL);
    CHECK_CONTAINS(e, "f.yml:6:17: steps[0].artifacts.paths[0]: \"out/*.xml\" holds a glob "
                      "character (* ?): artifact paths are copied as named, not matched; "
                      "name the directory (\"out\", copied whole) or each file");
    free(e);
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    artifacts: {paths: [a.txt, \"r?.log\"]}\n",
                    &n, NULL);
    CHECK_CONTAINS(e, "steps[0].artifacts.paths[1]: \"r?.log\" holds a glob character (* ?): "
                      "artifact paths are copied as named, not matched; name each file (or "
                      "their directory, copied whole)");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\ncache: [{key: k, path: \"vendor/?ab\"}]\nsteps:\n"
                    "  - {name: a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:24: cache[0].path: \"vendor/?ab\" holds a glob character "
                      "(* ?): a cache is one directory, mounted as named; name the directory "
                      "(\"vendor\")");
    free(e);
    /* a [ is a name's: a route file of Next.js or SvelteKit */
    e = evr_ytest_load(S_HEAD "  - name: a\n    run: x\n    artifacts: [\"app/[slug]/page.js\"]\n",
                    &n, NULL);
    CHECK(n == 0);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {on: [failed], max: 4294967295}}\n", &n, NULL);
    CHECK_CONTAINS(e, "steps[0].retry.max: 4294967295: at most 100 (further attempts, each a "
                      "container of its own)");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {on: [failed], max: 100}}\n", &n, NULL);
    CHECK(n == 0);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\n  - name: b\n    run: y\n    matrix: {}\n",
                    &n, NULL);
    CHECK_CONTAINS(e, "f.yml:7:5: steps[1].matrix: empty matrix: give KEY: [values], or remove "
                      "matrix");
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x}\nsource: {git: \"https://h/r\"}\n", &n, NULL);
    CHECK_CONTAINS(e, "source.git: expected a mapping, got a scalar");
    CHECK(strstr(e, "no form") == NULL);
    CHECK(n == 1);
    free(e);
    /* each key's own check runs whatever is wrong with the others: a
       schedule, its zone and catchup are all said in one go */
    e = evr_ytest_load("pipeline: p\nimage: i\nschedule: \"61 * * * *\"\ncatchup: lots\n"
                    "timezone: Mars/Base\nsteps:\n  - {name: a, run: x, timeout: forever}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:11: schedule: field 1 (minute): 61 is out of range 0-59");
    CHECK_CONTAINS(e, "f.yml:4:10: catchup: expected one of one, none, got \"lots\"");
    CHECK_CONTAINS(e, "f.yml:5:11: timezone: unknown time zone");
    CHECK_CONTAINS(e, "f.yml:7:32: steps[0].timeout: bad duration \"forever\"");
    CHECK(n == 4);
    free(e);
}

/*  A first-time user's review: an empty matrix hides only the checks
    that need every step's name; a source's wrong forms say the right
    ones; a step that needs itself is one error, not also a cycle; a
    queue strategy outside its set says the value, as enum errors do. */
static void
test_review_errors(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x, matrix: {cc: []}}\n"
                          "  - {name: b, run: y, needs: [zz], retry: {on: [failed], max: 101}}\n"
                          "resources: [{name: a, url: \"ftp://x/y\", path: p}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:32: steps[0].matrix.cc: no value");
    CHECK_CONTAINS(e, "f.yml:5:63: steps[1].retry.max: 101: at most 100");
    CHECK_CONTAINS(e, "f.yml:6:28: resources[0].url: expected an http:// or https:// URL, got "
                      "\"ftp://x/y\"");
    CHECK(strstr(e, "unknown step") == NULL);   /* needs: the stated exception */
    CHECK(n == 3);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsource: nothing\nsteps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:9: source: expected a mapping (one of: git, copy, tarball) or "
                      "none, got \"nothing\"");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nsource: { git: \"https://h/r\" }\n"
                    "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:16: source.git: expected a mapping, got a scalar (git: {url: "
                      "https://h/r})");
    CHECK(n == 1);
    free(e);
    e = evr_ytest_load(S_HEAD "  - {name: b, run: x, needs: [b]}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:31: steps[0].needs[0]: step \"b\" needs itself");
    CHECK(n == 1);   /* not also "dependency cycle: b -> b" */
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nqueue: {strategy: fifo}\nsteps: [{name: a, run: x}]\n"
                    "catchup: non\n", &n, NULL);
    CHECK_CONTAINS(e, "queue.strategy: expected one of append, replace, partitioned_replace, "
                      "got \"fifo\"");
    CHECK_CONTAINS(e, "catchup: expected one of one, none, got \"non\"; did you mean none?");
    free(e);
}

/*  A variable the runner sets over env, args and secrets (EVRUN_OUTPUT,
    EVRUN_CONTROL, EVRUN_OUT_*...) named by the pipeline is refused at its
    key: the value was dropped in silence (podman and host steps alike).
    The ones env may set (EVRUN_JOB_ID...) and other EVRUN_ names stay. */
static void
test_runners_env(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nenv: {EVRUN_OUTPUT: x, EVRUN_JOB_ID: j}\n"
                             "secrets: [EVRUN_SECRET_T, EVRUN_CONTROL]\n"
                             "args: {EVRUN_OUT_A_K: {default: v}}\nsteps:\n"
                             "  - {name: a, run: x, env: {EVRUN_FAILED_STEPS: s, EVRUN_MINE: m}}\n"
                             "on_error: {run: x, env: {EVRUN_SOURCE_SHA: s}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:7: env.EVRUN_OUTPUT: EVRUN_OUTPUT is the runner's (the file of "
                      "the step's outputs), which it sets over env, args and secrets: give "
                      "yours another name\n");
    CHECK_CONTAINS(e, "secrets[1]: EVRUN_CONTROL is the runner's (the job's control channel)");
    CHECK_CONTAINS(e, "args.EVRUN_OUT_A_K: EVRUN_OUT_A_K is the runner's");
    CHECK_CONTAINS(e, "steps[0].env.EVRUN_FAILED_STEPS: EVRUN_FAILED_STEPS is the runner's");
    CHECK_CONTAINS(e, "on_error.env.EVRUN_SOURCE_SHA: EVRUN_SOURCE_SHA is the runner's");
    CHECK(n == 5);
    CHECK(!strstr(e, "EVRUN_JOB_ID") && !strstr(e, "EVRUN_MINE") && !strstr(e, "SECRET_T"));
    free(e);
}

/*  env written as a list, as Docker Compose, GitHub's services and
    Kubernetes write it, gets the mapping of its first items; GitHub's
    strategy and working-directory are answered at the top of the file
    and in on_error as in a step. */
static void
test_env_list(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nenv:\n  - A=1\n  - B=two words\nsteps:\n"
                             "  - name: a\n    run: x\n    env:\n      - name: A\n"
                             "        value: 1\n  - {name: b, run: x, env: [X]}\n"
                             "  - {name: c, run: x, env: [A=1, B=2, C=3, D=4]}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:3: env: expected a mapping, got a list (env is a mapping of "
                      "names to values, not a list: env: {A: \"1\", B: \"two words\"})\n");
    CHECK_CONTAINS(e, "f.yml:10:7: steps[0].env: expected a mapping, got a list (env is a "
                      "mapping of names to values, not a list: env: {A: \"1\"})\n");
    CHECK_CONTAINS(e, "f.yml:12:28: steps[1].env: expected a mapping, got a list (env is a "
                      "mapping of names to values, not a list: env: {NAME: value}, or one "
                      "NAME: value a line under env:)\n");
    CHECK_CONTAINS(e, "steps[2].env: expected a mapping, got a list (env is a mapping of names "
                      "to values, not a list: env: {A: \"1\", B: \"2\", C: \"3\", ...})\n");
    CHECK(n == 4);
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nworking-directory: d\nstrategy: {matrix: {}}\n"
                       "on_error: {run: x, working-directory: d}\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: working-directory: unknown key: evrun has no "
                      "working-directory: begin run with cd DIR");
    CHECK_CONTAINS(e, "f.yml:4:1: strategy: unknown key: GitHub's strategy: {matrix: ...} is a "
                      "step's matrix here");
    CHECK_CONTAINS(e, "f.yml:5:20: on_error.working-directory: unknown key: evrun has no "
                      "working-directory");
    CHECK(n == 3);
    free(e);
}

/*  A step written without a name (a matrix one too) hid the checks that
    need every step's name: the others' duplicate names, unknown needs and
    cycles, and its own keys; it is one step, unexpanded, and only its name
    goes unchecked. */
static void
test_nameless_step(void)
{
    size_t n;
    char *e = evr_ytest_load(S_HEAD "  - {name: a, run: x, needs: [b]}\n"
                             "  - {name: b, run: x, needs: [a]}\n"
                             "  - {run: x, needs: [a, zz], timeout: 5x}\n"
                             "  - {name: m, run: x, matrix: {K: [1, 2]}}\n"
                             "  - {run: y, matrix: {K: [1]}}\n  - {name: a, run: x}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:5:23: steps[1].needs: dependency cycle: a -> b -> a\n");
    CHECK_CONTAINS(e, "f.yml:6:5: steps[2].name: missing (a step needs name:)\n");
    CHECK_CONTAINS(e, "f.yml:6:25: steps[2].needs[1]: unknown step \"zz\"\n");
    CHECK_CONTAINS(e, "f.yml:6:39: steps[2].timeout: bad duration \"5x\"");
    CHECK_CONTAINS(e, "f.yml:8:5: steps[4].name: missing (a step needs name:)\n");
    CHECK_CONTAINS(e, "f.yml:9:12: steps[5].name: duplicate step name \"a\" (first at line 4)\n");
    CHECK(n == 6);
    free(e);
}

/*  Words whose evrun form differs in more than the key: GitHub's
    timeout-minutes (a number alone is seconds here: "did you mean
    timeout?" made timeout: 5 five seconds), GitLab's when: manual, never
    and delayed, GitHub's if: always(), artifacts' expire_in, a
    pipeline's retention (the broker's setting), and GitLab's retry when:
    words (script_failure...) in retry.on. */
static void
test_other_forms(void)
{
    size_t n;
    char *e = evr_ytest_load("pipeline: p\nimage: i\nretention: 1d\nsteps:\n"
                             "  - {name: a, run: x, timeout-minutes: 5, when: manual}\n"
                             "  - {name: b, run: x, timeout_in_minutes: x, when: never}\n"
                             "  - {name: c, run: x, when: delayed, artifacts: {paths: [a], "
                             "expire_in: 1 week}}\n  - {name: d, run: x, when: always()}\n",
                             &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: retention: unknown key: retention is the broker's and the "
                      "runners' setting, for all pipelines (evrun.yml: retention: {max_age: "
                      "30d, keep_per_pipeline: 100})");
    CHECK_CONTAINS(e, "f.yml:5:23: steps[0].timeout-minutes: unknown key; timeout-minutes is "
                      "timeout here, with its unit: timeout: 5m (a number alone is seconds)");
    CHECK_CONTAINS(e, "steps[0].when: expected one of on_success, on_failure, always, got "
                      "\"manual\" (GitLab's manual: evrun has no steps that wait for a person");
    CHECK_CONTAINS(e, "steps[1].timeout_in_minutes: unknown key; timeout_in_minutes is timeout "
                      "here, with its unit: timeout: 30m");
    CHECK_CONTAINS(e, "got \"never\" (GitLab's never: remove the step, or comment it out)");
    CHECK_CONTAINS(e, "got \"delayed\" (GitLab's delayed: a job waits before it starts with "
                      "the pipeline's start_delay: 5m; a step has no delay)");
    CHECK_CONTAINS(e, "steps[2].artifacts.expire_in: unknown key: GitLab's expire_in: "
                      "artifacts are kept as long as their job");
    CHECK_CONTAINS(e, "got \"always()\"; did you mean always? (GitHub's if: success(), "
                      "failure(), always() are when: on_success, on_failure, always here)");
    CHECK(n == 8);
    free(e);
    /* GitLab's retry when: words, written under on: */
    e = evr_ytest_load(S_HEAD "  - {name: a, run: x, retry: {max: 2, on: [always]}}\n"
                       "  - {name: b, run: x, retry: {max: 2, on: [failed, "
                       "stuck_or_timeout_failure]}}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:4:44: steps[0].retry.on[0]: expected a list of: lost, failed, "
                      "timed_out, got \"always\" (GitLab's retry when: always is on: [failed, "
                      "timed_out, lost] here)\n");
    CHECK_CONTAINS(e, "steps[1].retry.on[1]: expected a list of: lost, failed, timed_out, got "
                      "\"stuck_or_timeout_failure\" (GitLab's retry when: "
                      "stuck_or_timeout_failure is timed_out here)\n");
    CHECK(n == 2);
    free(e);
    /* a GitHub workflow's jobs: and GitLab's default: */
    e = evr_ytest_load("name: CI\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
                       "      - run: make\ndefault: {image: alpine}\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:2:1: jobs: unknown key: GitHub's jobs: NAME: {runs-on, steps} "
                      "layout: an evrun file is one pipeline, its steps: at the top of the "
                      "file, each {name: N, run: ...} (several jobs: a file each, or steps "
                      "with needs)");
    CHECK_CONTAINS(e, "f.yml:7:1: default: unknown key: GitLab's default: write image, env, "
                      "limits, cache at the top of the file");
    CHECK(!strstr(e, "steps: missing"));
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\njobs: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: jobs: unknown key; did you mean steps?");
    free(e);
    /* args as GitHub's inputs or a list of names, a default written bare,
       required: */
    e = evr_ytest_load("pipeline: p\nimage: i\ninputs: {A: {default: x}}\n"
                       "args: {T: world, U: {required: true}}\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:1: inputs: unknown key; did you mean args?");
    CHECK_CONTAINS(e, "f.yml:4:11: args.T: expected a mapping, got a scalar (an arg's default "
                      "is written {default: world})\n");
    CHECK_CONTAINS(e, "f.yml:4:22: args.U.required: unknown key: an arg without a default is "
                      "required (-a NAME=VALUE must give it); one with a default is not "
                      "(expected one of: default, description)\n");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\nargs: [T]\nsteps: [{name: a, run: x}]\n", &n,
                       NULL);
    CHECK_CONTAINS(e, "f.yml:3:7: args: expected a mapping, got a list (args is a mapping of "
                      "names to {default, description}: args: {TARGET: {default: world}}, or "
                      "TARGET: {} for one that -a must give)\n");
    free(e);
    /* prunner's on_error written as its command, or as a list */
    e = evr_ytest_load("pipeline: p\nimage: i\non_error: ./notify.sh\n"
                       "steps: [{name: a, run: x}]\n", &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:11: on_error: expected a mapping, got a scalar (on_error is a step "
                      "without a name: on_error: {run: ./notify.sh})\n");
    free(e);
    e = evr_ytest_load("pipeline: p\nimage: i\non_error: [{run: x}]\nsteps: [{name: a, run: x}]\n",
                       &n, NULL);
    CHECK_CONTAINS(e, "f.yml:3:11: on_error: expected a mapping, got a list (on_error is one step "
                      "without a name, on_error: {run: ...}; several commands go in its "
                      "run: |)\n");
    free(e);
}

int
main(void)
{
    EVR_TEST_RUN(test_newcomer_errors);
    EVR_TEST_RUN(test_foreign_words);
    EVR_TEST_RUN(test_ci_layouts);
    EVR_TEST_RUN(test_first_run_errors);
    EVR_TEST_RUN(test_review_errors);
    EVR_TEST_RUN(test_runners_env);
    EVR_TEST_RUN(test_env_list);
    EVR_TEST_RUN(test_nameless_step);
    EVR_TEST_RUN(test_other_forms);
    EVR_TEST_END();
}
